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
        fan_in, fan_out = self.sizes[:-1], self.sizes[1:]
        n_w = fan_in * fan_out
        self.w_off = np.concatenate([[0], np.cumsum(n_w)[:-1]]).astype(np.intp)
        self.n_weights = int(n_w.sum())
        self.b_off = (
            self.n_weights + np.concatenate([[0], np.cumsum(fan_out)[:-1]])
        ).astype(np.intp)
        self.n_params = self.n_weights + int(fan_out.sum())

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
        ``params``."""
        ours_c, ours_i = self.views(params)
        return (
            all(
                isinstance(a, np.ndarray)
                and a.shape == b.shape
                and a.dtype == b.dtype
                and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
                and a.strides == b.strides
                for a, b in zip(list(coefs) + list(intercepts), ours_c + ours_i)
            )
            and len(coefs) == len(ours_c)
            and len(intercepts) == len(ours_i)
        )
