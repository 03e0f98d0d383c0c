"""Where each layer's parameters sit in the one flat parameter buffer."""

import numpy as np


def aligned_empty(n, dtype, alignment=64):
    """An uninitialised 1-d array of n items whose data starts on a multiple of
    ``alignment`` bytes (NumPy only promises 16).

    The engine's small-batch kernel loads rows of W a cache line at a time;
    rows that straddle two lines made it 10-20% slower.
    """
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + n * dtype.itemsize].view(dtype)


class Layout:
    """Offsets of the weights and biases of a dense network in a flat buffer.

    Every weight matrix comes first (``W_l`` of shape ``(sizes[l], sizes[l+1])``,
    C order), then every bias. Weights-first makes "penalise weights, not biases"
    the single boundary ``n_weights`` for the optimizer kernels.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, output last.
    """

    def __init__(self, sizes):
        self.sizes = np.asarray(sizes, dtype=np.intp)
        # offsets summed in Python integers: a few layers, built on every fit
        widths = self.sizes.tolist()
        w_off, b_off, n = [], [], 0
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            w_off.append(n)
            n += fan_in * fan_out
        self.n_weights = n
        for fan_out in widths[1:]:
            b_off.append(n)
            n += fan_out
        self.n_params = n
        self.w_off = np.array(w_off, dtype=np.intp)
        self.b_off = np.array(b_off, dtype=np.intp)

    @property
    def n_layers(self):
        """Number of dense layers (weight matrices)."""
        return len(self.sizes) - 1

    def views(self, params):
        """Lists of per-layer weight and bias views into ``params``."""
        coefs, intercepts = [], []
        for l in range(self.n_layers):
            a, b = self.sizes[l], self.sizes[l + 1]
            w0, b0 = self.w_off[l], self.b_off[l]
            coefs.append(params[w0 : w0 + a * b].reshape(a, b))
            intercepts.append(params[b0 : b0 + b])
        return coefs, intercepts

    def pack(self, coefs, intercepts, dtype):
        """A new flat buffer holding copies of ``coefs`` and ``intercepts``."""
        params = aligned_empty(self.n_params, dtype)
        coef_views, intercept_views = self.views(params)
        for dst, src in zip(
            coef_views + intercept_views, list(coefs) + list(intercepts)
        ):
            dst[...] = src
        return params

    def is_view(self, params, coefs, intercepts):
        """True if ``coefs``/``intercepts`` are exactly this layout's views of
        ``params`` (type, dtype, shape, C strides and address of each).

        Runs on every prediction and continued fit, so the addresses the
        views would have are computed, not the views built.
        """
        n_layers = self.n_layers
        if len(coefs) != n_layers or len(intercepts) != n_layers:
            return False
        dtype, item = params.dtype, params.dtype.itemsize
        if params.ndim != 1 or params.strides != (item,):
            return False
        start = params.__array_interface__["data"][0]
        sizes = self.sizes.tolist()
        w_off, b_off = self.w_off.tolist(), self.b_off.tolist()
        for l in range(n_layers):
            fan_in, fan_out = sizes[l], sizes[l + 1]
            for array, shape, strides, offset in (
                (coefs[l], (fan_in, fan_out), (fan_out * item, item), w_off[l]),
                (intercepts[l], (fan_out,), (item,), b_off[l]),
            ):
                if not (
                    isinstance(array, np.ndarray)
                    and array.dtype == dtype
                    and array.shape == shape
                    and array.strides == strides
                    and array.__array_interface__["data"][0] == start + offset * item
                ):
                    return False
        return True
