# Output losses: value and gradient w.r.t. the raw output, in one pass.
#
# The network's last layer is linear; each loss owns its output transform (softmax,
# logistic, exp, identity), so the gradient it returns is w.r.t. the raw output Z,
# where it is simple and stable (softmax cross-entropy gives p - y).
#
# For sample weights s_i (all 1 when absent) the batch objective is
# ``sum_i s_i * loss_i / sw_sum``; the gradient is scaled the same way, so the
# layers' backward pass needs no further normalisation.
#
# ==========================  ============================================  ==================
# loss                        loss_i (summed over the outputs k)            dloss_i / dz
# ==========================  ============================================  ==================
# softmax cross-entropy       logsumexp(z) - sum_k q_k z_k                  softmax(z) - q
#   (y: class index; q = (1 - eps) onehot(y) + eps / K, label smoothing eps = param)
# sigmoid log loss            log(1 + exp(-|z|)) + max(z, 0) - t z          sigmoid(z) - t
#   (t = (1 - eps) y + eps / 2)
# squared error               (z - y)^2 / 2                                 z - y
# absolute error              |z - y|                                       sign(z - y)
# huber (delta)               r^2/2 if |r| <= delta else delta(|r| - delta/2)   clip(r, -delta, delta)
# poisson (half deviance)     y log y - y - y z + exp(z)                    exp(z) - y
# quantile (pinball, tau)     max(tau u, (tau - 1) u)                       -tau (u > 0), 1 - tau (u < 0), 0
#   (u = y - z)
# ==========================  ============================================  ==================
#
# The loss parameter is one value per output column (``loss_parameters``): Huber's
# delta, the label smoothing (one value for softmax cross-entropy, whose rows mix
# the columns), the quantile tau of the pinball loss. At u = 0 the pinball loss
# takes 0 from its subdifferential [-tau, 1 - tau], as absolute error takes
# sign(0) = 0, so quantile 0.5 is exactly half the absolute error.


cdef enum LossKind:
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_LOG_LOSS = 1
    SQUARED_ERROR = 2
    ABSOLUTE_ERROR = 3
    HUBER = 4
    POISSON = 5
    QUANTILE = 6


LOSS_KINDS = {
    "softmax_cross_entropy": SOFTMAX_CROSS_ENTROPY,
    "sigmoid_log_loss": SIGMOID_LOG_LOSS,
    "squared_error": SQUARED_ERROR,
    "absolute_error": ABSOLUTE_ERROR,
    "huber": HUBER,
    "poisson": POISSON,
    "quantile": QUANTILE,
}


def loss_parameters(int loss, param, Py_ssize_t n_out):
    """The loss parameter as the kernel reads it: one float64 per output column.

    Parameters
    ----------
    loss : int
        Loss id (``LOSS_KINDS``).
    param : float or array-like of shape (n_out,)
        One value for every column, or one per column.
    n_out : int
        Output width of the network.

    Returns
    -------
    ndarray of float64, shape (n_out,), read-only

    Raises
    ------
    ValueError
        If the length is neither 1 nor ``n_out``, a value is not finite or is
        outside the loss's domain: the quantile in (0, 1), Huber's delta > 0, the
        label smoothing in [0, 1], one value for softmax cross-entropy.
    """
    values = np.array(param, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_out, values[()])
    if values.shape != (n_out,):
        raise ValueError(f"loss_param: one value or one per output ({n_out}), "
                         f"got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"loss_param must be finite, got {values}")
    if loss == QUANTILE and not ((values > 0) & (values < 1)).all():
        raise ValueError(f"loss_param: the quantiles must lie in (0, 1), got {values}")
    if loss == HUBER and not (values > 0).all():
        raise ValueError(f"loss_param: Huber's delta must be > 0, got {values}")
    if (loss == SOFTMAX_CROSS_ENTROPY or loss == SIGMOID_LOG_LOSS) and not (
            (values >= 0) & (values <= 1)).all():
        raise ValueError(f"loss_param: the label smoothing must lie in [0, 1], "
                         f"got {values}")
    if loss == SOFTMAX_CROSS_ENTROPY and (values != values[0]).any():
        # a softmax row mixes its columns: the kernel reads one smoothing
        raise ValueError(f"loss_param: softmax cross-entropy takes one label "
                         f"smoothing, got {values}")
    values.setflags(write=False)
    return values

# exp(z) of the Poisson loss is clipped here so a diverging model gives a large
# finite loss rather than inf (the divergence guard still sees it explode); the
# estimators treat a raw output this large as diverged (``MAX_EXP_ARG`` below).
cdef double MAX_EXP_ARG_C = 700.0
MAX_EXP_ARG = MAX_EXP_ARG_C


cdef inline double _softmax_row(const floating* z, Py_ssize_t n_out, Py_ssize_t y,
                                double scale, double eps, floating* g) noexcept nogil:
    # cross-entropy against q = (1 - eps) onehot(y) + eps / n_out (PyTorch's
    # label_smoothing): -sum_k q_k log p_k = lse - (1 - eps) z_y - eps mean(z)
    cdef Py_ssize_t k
    cdef double zmax = z[0], total = 0.0, zsum = 0.0, lse, spread = eps / n_out
    for k in range(1, n_out):
        if z[k] > zmax:
            zmax = z[k]
    for k in range(n_out):
        total += exp(z[k] - zmax)
        zsum += z[k]
    lse = zmax + log(total)
    for k in range(n_out):
        g[k] = <floating> ((exp(z[k] - lse) - spread) * scale)
    g[y] = <floating> (g[y] - (1.0 - eps) * scale)
    return lse - (1.0 - eps) * z[y] - spread * zsum


cdef double loss_gradient(int loss, const floating* Z, const floating* Y,
                          const floating* sw, double sw_sum, Py_ssize_t m,
                          Py_ssize_t n_out, const double* param,
                          floating* G) noexcept nogil:
    """Weighted mean loss over m rows; writes its gradient w.r.t. Z into G.

    IN: Z (m, n_out) raw outputs; Y (m, 1) class indices for softmax
    cross-entropy, else (m, n_out) targets; sw (m) sample weights or NULL;
    sw_sum = sum of sw (or m); param (n_out) = per output column, huber's
    delta, the label smoothing of the two classification losses (softmax
    reads param[0]) or the quantile.
    OUT: G (m, n_out), may alias Z.
    """
    cdef Py_ssize_t i
    cdef double total = 0.0
    for i in range(m):
        total += loss_row(loss, Z, Y, sw, sw_sum, i, n_out, param, G)
    return total


cdef inline double loss_row(int loss, const floating* Z, const floating* Y,
                            const floating* sw, double sw_sum, Py_ssize_t i,
                            Py_ssize_t n_out, const double* param,
                            floating* G) noexcept nogil:
    """Row i's term of ``loss_gradient`` (its weight / sw_sum times its loss),
    and its row of G. The terms are added in row order by the caller, so a
    batch's rows may be computed in any blocks."""
    cdef Py_ssize_t k
    cdef double row, s, z, y, r, e, p
    cdef const floating* zi
    cdef const floating* yi
    cdef floating* gi
    s = 1.0 if sw == NULL else sw[i]
    s = s / sw_sum
    zi = Z + i * n_out
    gi = G + i * n_out
    row = 0.0
    if loss == SOFTMAX_CROSS_ENTROPY:
        row = _softmax_row(zi, n_out, <Py_ssize_t> Y[i], s, param[0], gi)
    else:
        yi = Y + i * n_out
        for k in range(n_out):
            z = zi[k]
            y = yi[k]
            p = param[k]
            if loss == SIGMOID_LOG_LOSS:
                y = (1.0 - p) * y + 0.5 * p
                e = exp(-fabs(z))
                row += log1p(e) + (z if z > 0 else 0.0) - y * z
                # sigmoid(z) from e = exp(-|z|), stable for either sign
                r = (1.0 / (1.0 + e)) if z >= 0 else (e / (1.0 + e))
                gi[k] = <floating> ((r - y) * s)
            elif loss == SQUARED_ERROR:
                r = z - y
                row += 0.5 * r * r
                gi[k] = <floating> (r * s)
            elif loss == ABSOLUTE_ERROR:
                r = z - y
                row += fabs(r)
                gi[k] = <floating> ((r > 0) - (r < 0)) * s
            elif loss == HUBER:
                r = z - y
                if fabs(r) <= p:
                    row += 0.5 * r * r
                    gi[k] = <floating> (r * s)
                else:
                    row += p * (fabs(r) - 0.5 * p)
                    gi[k] = <floating> (p * s if r > 0 else -p * s)
            elif loss == QUANTILE:
                r = y - z
                if r > 0:
                    row += p * r
                    gi[k] = <floating> (-p * s)
                elif r < 0:
                    row += (p - 1.0) * r
                    gi[k] = <floating> ((1.0 - p) * s)
                else:
                    gi[k] = 0
            else:  # POISSON, log link
                e = exp(z if z < MAX_EXP_ARG_C else MAX_EXP_ARG_C)
                row += e - y * z - y + (y * log(y) if y > 0 else 0.0)
                gi[k] = <floating> ((e - y) * s)
    return s * row


def loss_gradient_py(int loss, const floating[:, ::1] Z, const floating[:, ::1] Y,
                     sample_weight, param, floating[:, ::1] G):
    """Python twin of ``loss_gradient``; returns the weighted mean loss.

    ``sample_weight`` is None or a 1-D array of Z's dtype; ``param`` one value
    or one per column of Z (``loss_parameters``).
    """
    cdef Py_ssize_t m = Z.shape[0], n_out = Z.shape[1]
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef double sw_sum = m
    cdef const double[::1] params = loss_parameters(loss, param, n_out)
    if (G.shape[0] != m or G.shape[1] != n_out or Y.shape[0] != m
            or Y.shape[1] != (1 if loss == SOFTMAX_CROSS_ENTROPY else n_out)
            or (sample_weight is not None and len(sample_weight) != m)):
        raise ValueError("loss_gradient_py: incompatible shapes")
    if m == 0:
        return 0.0
    if sample_weight is not None:
        sw = sample_weight
        swp = &sw[0]
        sw_sum = 0.0
        for i in range(m):
            sw_sum += sw[i]
    return loss_gradient(loss, &Z[0, 0], &Y[0, 0], swp, sw_sum, m, n_out,
                         &params[0], &G[0, 0])
