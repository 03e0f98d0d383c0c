"""One whole epoch of mini-batch training in a single call, without the GIL.

Per mini-batch: gather the rows of the batch (when the order is shuffled) into
a contiguous buffer, forward through the dense layers, fused loss gradient,
backward, then one optimizer pass over the flat parameter buffer. All buffers
are allocated once per call; nothing is allocated and no Python object is
touched per batch.
"""

import numpy as np

from cython cimport floating
from libc.math cimport isfinite, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from fastfit._engine._losses cimport loss_gradient
from fastfit._engine._network cimport (
    dense_backward, dense_backward_update, forward_pass, takes_row_pointers)
from fastfit._engine._optim cimport StepRule, gradient_norm_sq, optimizer_step


cdef struct Net:
    int n_layers
    const Py_ssize_t* sizes
    const Py_ssize_t* w_off
    const Py_ssize_t* b_off
    int activation
    int loss
    double loss_param
    int n_threads


cdef Net _net(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
              const Py_ssize_t[::1] b_off, int activation, int loss,
              double loss_param, int n_threads):
    cdef Net net
    net.n_layers = sizes.shape[0] - 1
    net.sizes = &sizes[0]
    net.w_off = &w_off[0]
    net.b_off = &b_off[0]
    net.activation = activation
    net.loss = loss
    net.loss_param = loss_param
    net.n_threads = n_threads
    return net


cdef double _forward_loss(Net* net, const floating* params,
                          const floating* Xb, const floating* const* X_rows,
                          const floating* Yb,
                          const floating* swb, double sw_sum, int m,
                          floating** acts, floating** deltas) noexcept nogil:
    """Data loss of the batch; its gradient w.r.t. the raw output into deltas[L-1]."""
    cdef int L = net.n_layers
    forward_pass(L, net.sizes, params, net.w_off, net.b_off, Xb, X_rows, acts,
                 m, net.activation, net.n_threads)
    return loss_gradient(net.loss, acts[L - 1], Yb, swb, sw_sum, m,
                         net.sizes[L], net.loss_param, deltas[L - 1])


cdef void _backward(Net* net, const floating* params, floating* grads,
                    const floating* Xb, int m, floating** acts,
                    floating** deltas) noexcept nogil:
    """Gradients of the data loss w.r.t. every parameter into grads."""
    cdef int l
    for l in range(net.n_layers - 1, -1, -1):
        dense_backward(net.activation, Xb if l == 0 else acts[l - 1],
                       params + net.w_off[l], deltas[l],
                       grads + net.w_off[l], grads + net.b_off[l],
                       NULL if l == 0 else deltas[l - 1], m,
                       <int> net.sizes[l], <int> net.sizes[l + 1],
                       net.n_threads)


cdef double _backward_update(Net* net, floating* params, floating* grads,
                             floating* state, const floating* Xb,
                             const floating* const* X_rows, int m,
                             floating** acts, floating** deltas,
                             const StepRule* rule) noexcept nogil:
    """Backward with each layer's optimizer step fused in; returns the penalty.

    Valid when the step needs nothing global of the gradient (no clipping).
    """
    cdef int l
    cdef double penalty = 0.0
    for l in range(net.n_layers - 1, -1, -1):
        penalty += dense_backward_update(
            net.activation, Xb if l == 0 else acts[l - 1],
            X_rows if l == 0 else NULL, deltas[l],
            NULL if l == 0 else deltas[l - 1], m, <int> net.sizes[l],
            <int> net.sizes[l + 1], params, grads, state, net.w_off[l],
            net.b_off[l], rule, net.n_threads)
    return penalty


cdef class _Buffers:
    """Per-layer activation and delta buffers for batches of up to `rows` rows."""
    cdef object storage
    cdef void** acts
    cdef void** deltas

    def __cinit__(self, const Py_ssize_t[::1] sizes, Py_ssize_t rows, dtype):
        cdef Py_ssize_t L = sizes.shape[0] - 1, l, total = 0, off
        cdef char* base
        cdef Py_ssize_t itemsize = np.dtype(dtype).itemsize
        for l in range(1, L + 1):
            total += 2 * rows * sizes[l]
        self.storage = np.empty(max(total, 1), dtype=dtype)
        self.acts = <void**> malloc(L * sizeof(void*))
        self.deltas = <void**> malloc(L * sizeof(void*))
        if self.acts == NULL or self.deltas == NULL:
            raise MemoryError()
        base = <char*> <Py_ssize_t> self.storage.ctypes.data
        off = 0
        for l in range(L):
            self.acts[l] = base + off * itemsize
            off += rows * sizes[l + 1]
            self.deltas[l] = base + off * itemsize
            off += rows * sizes[l + 1]

    def __dealloc__(self):
        free(self.acts)
        free(self.deltas)


def train_epoch(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                const Py_ssize_t[::1] b_off, floating[::1] params,
                floating[::1] grads, floating[:, ::1] state,
                const floating[:, ::1] X, const floating[:, ::1] Y,
                const floating[::1] sample_weight, const Py_ssize_t[::1] order,
                Py_ssize_t batch_size, int activation, int loss,
                double loss_param, int optimizer, const double[::1] hyper,
                const double[::1] lrs, long t0, double alpha, double l1_ratio,
                double clip_norm, int n_threads):
    """Run every mini-batch of one epoch; parameters and state updated in place.

    Parameters
    ----------
    sizes, w_off, b_off : layer widths (n_layers + 1) and the offsets of each
        layer's W and b in ``params``.
    params, grads : flat parameter and gradient buffers (INOUT, OUT).
    state : optimizer state, shape (n_state, n_params) (INOUT).
    X, Y : inputs (n, sizes[0]) and encoded targets: (n, 1) class indices for
        softmax cross-entropy, else (n, sizes[-1]).
    sample_weight : (n,) or empty for unit weights.
    order : rows to visit, in order (any subset of X's rows, e.g. a
        permutation), or empty for every row in turn.
    batch_size : rows per step (the last batch may be smaller).
    lrs : learning rate of each step, length ceil(n / batch_size).
    t0 : optimizer steps taken before this epoch.
    alpha, l1_ratio : penalty ``alpha * ((1 - l1_ratio) / 2 ||W||^2 +
        l1_ratio ||W||_1) / sw_batch`` on weights only (scikit-learn's scaling).
    clip_norm : clip the global gradient norm to this value (0 = off).

    Returns
    -------
    objective_sum : sum over steps of (batch objective * batch weight sum).
    weight_sum : sum of the batch weight sums of the steps taken.
    n_steps : steps taken; fewer than planned when the objective stopped
        being finite (that step is not applied).
    """
    cdef bint gather = order.shape[0] > 0, weighted = sample_weight.shape[0] > 0
    cdef Py_ssize_t n = order.shape[0] if gather else X.shape[0]
    cdef Py_ssize_t n_in = X.shape[1], ky = Y.shape[1]
    cdef Py_ssize_t n_params = params.shape[0], n_weights = b_off[0]
    cdef Py_ssize_t n_batches = (n + batch_size - 1) // batch_size
    cdef Net net = _net(sizes, w_off, b_off, activation, loss, loss_param,
                        n_threads)

    cdef Py_ssize_t rows = min(batch_size, n)
    bufs = _Buffers(sizes, rows, np.float32 if floating is float else np.float64)
    cdef _Buffers b = bufs
    # A shuffled batch small enough for the small-batch kernel is read from X
    # through row pointers instead of being copied (a serial memcpy of the
    # whole batch per step: 5% of an mnist-shaped epoch).
    cdef bint direct = (gather and clip_norm == 0 and takes_row_pointers(
        <int> rows, <int> sizes[1], floating is float))
    cdef Py_ssize_t x_cols = 0 if direct else n_in
    gathered = np.empty(rows * (x_cols + ky + 1) if gather else 1,
                        dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] gbuf = gathered
    cdef floating* Xg = &gbuf[0]
    cdef floating* Yg = Xg + rows * x_cols
    cdef floating* swg = Yg + rows * ky
    row_ptrs = np.empty(rows if direct else 1, dtype=np.uintp)
    cdef size_t[::1] rp = row_ptrs
    cdef const floating* const* Xrows = NULL

    cdef Py_ssize_t step, start, m, i, r
    cdef const floating* Xb
    cdef const floating* Yb
    cdef const floating* swb
    cdef double sw_sum, data_loss, penalty, objective, norm
    cdef StepRule rule
    rule.kind = optimizer
    rule.hyper = &hyper[0]
    rule.gscale = 1.0
    rule.stride = n_params
    cdef double objective_sum = 0.0, weight_sum = 0.0
    cdef Py_ssize_t n_steps = 0
    if n == 0 or lrs.shape[0] < n_batches:
        raise ValueError("train_epoch: empty data or too few learning rates")

    with nogil:
        for step in range(n_batches):
            start = step * batch_size
            m = min(batch_size, n - start)
            if gather:
                for i in range(m):
                    r = order[start + i]
                    if direct:
                        rp[i] = <size_t> &X[r, 0]
                    else:
                        memcpy(Xg + i * n_in, &X[r, 0], n_in * sizeof(floating))
                    memcpy(Yg + i * ky, &Y[r, 0], ky * sizeof(floating))
                    swg[i] = sample_weight[r] if weighted else 1
                Xb, Yb, swb = Xg, Yg, (swg if weighted else NULL)
                if direct:
                    Xb, Xrows = NULL, <const floating* const*> &rp[0]
            else:
                Xb, Yb = &X[start, 0], &Y[start, 0]
                swb = &sample_weight[start] if weighted else NULL
            sw_sum = m
            if weighted:
                sw_sum = 0.0
                for i in range(m):
                    sw_sum += swb[i]
                if not sw_sum > 0:
                    continue  # a batch of zero weight carries no gradient
            data_loss = _forward_loss(&net, &params[0], Xb, Xrows, Yb, swb, sw_sum,
                                      <int> m, <floating**> b.acts,
                                      <floating**> b.deltas)
            if not isfinite(data_loss):
                break  # the step is not applied
            rule.lr = lrs[step]
            rule.t = t0 + n_steps + 1
            rule.l2 = alpha * (1.0 - l1_ratio) / sw_sum
            rule.l1 = alpha * l1_ratio / sw_sum
            if clip_norm > 0:
                # clipping needs the whole gradient before any update
                _backward(&net, &params[0], &grads[0], Xb, <int> m,
                          <floating**> b.acts, <floating**> b.deltas)
                norm = sqrt(gradient_norm_sq(&params[0], &grads[0], n_params,
                                             n_weights, rule.l2, rule.l1,
                                             n_threads))
                rule.gscale = clip_norm / (norm + 1e-6) if norm > clip_norm else 1.0
                penalty = optimizer_step(&rule, &params[0], &grads[0],
                                         &state[0, 0], n_params, n_weights,
                                         n_threads)
            else:
                penalty = _backward_update(&net, &params[0], &grads[0],
                                           &state[0, 0], Xb, Xrows, <int> m,
                                           <floating**> b.acts,
                                           <floating**> b.deltas, &rule)
            objective = data_loss + penalty
            n_steps += 1
            objective_sum += objective * sw_sum
            weight_sum += sw_sum
            if not isfinite(objective):
                break
    return objective_sum, weight_sum, n_steps


def objective_gradient(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                       const Py_ssize_t[::1] b_off, const floating[::1] params,
                       floating[::1] grads, const floating[:, ::1] X,
                       const floating[:, ::1] Y, const floating[::1] sample_weight,
                       int activation, int loss, double loss_param,
                       double alpha, double l1_ratio, int n_threads=1):
    """Objective of one batch (all of X) and its full gradient into ``grads``.

    The same code path as a training step, without the update: the tests
    check it against finite differences.
    """
    cdef Py_ssize_t n = X.shape[0], i, n_weights = b_off[0]
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef double sw_sum = n, data_loss, penalty = 0.0, l2, l1
    cdef Net net = _net(sizes, w_off, b_off, activation, loss, loss_param,
                        n_threads)
    bufs = _Buffers(sizes, n, np.float32 if floating is float else np.float64)
    cdef _Buffers b = bufs
    if weighted:
        sw_sum = 0.0
        for i in range(n):
            sw_sum += sample_weight[i]
    with nogil:
        data_loss = _forward_loss(&net, &params[0], &X[0, 0], NULL, &Y[0, 0],
                                  &sample_weight[0] if weighted else NULL,
                                  sw_sum, <int> n, <floating**> b.acts,
                                  <floating**> b.deltas)
        _backward(&net, &params[0], &grads[0], &X[0, 0], <int> n,
                  <floating**> b.acts, <floating**> b.deltas)
    l2 = alpha * (1.0 - l1_ratio) / sw_sum
    l1 = alpha * l1_ratio / sw_sum
    for i in range(n_weights):
        penalty += 0.5 * l2 * params[i] * params[i] + l1 * abs(params[i])
        grads[i] += l2 * params[i] + l1 * ((params[i] > 0) - (params[i] < 0))
    return data_loss + penalty
