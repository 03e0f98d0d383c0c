"""Dense layers: forward and backward over a batch, into preallocated buffers.

Layout
------
All parameters live in one flat buffer: the weight matrices of every layer first
(W_l of shape (fan_in, fan_out), C order, at offset ``w_off[l]``), then every bias
(b_l at ``b_off[l]``). Weights-first makes "regularise weights, not biases" a
single index boundary for the optimizer kernels.

Products
--------
Forward and weight-gradient products of at most SMALL_BATCH rows go to the
small-batch kernel (``_kernels.h``): no copy of W per call, and the first
layer can read a shuffled batch through row pointers. Larger ones, and the
input gradients, go to BLAS.

Training step
-------------
``dense_backward_update`` fuses the optimizer step into the backward pass:
each thread updates the rows of W whose gradient it has just computed, while
they are in cache, so no separate pass over every parameter follows.

Threads
-------
BLAS runs single-threaded (the estimator pins it with threadpoolctl) and the
engine splits each product into blocks of the output, handed to OpenMP threads
dynamically. Each thread then applies the bias + activation (forward) or the
activation derivative and bias sums (backward) to the block it just computed,
while it is in cache. The blocks depend on the matrix shapes (and the
machine's core count) only, never on the thread count, and need no reduction:
results are bit-identical whatever the number of threads.

Each block loop has a serial twin for one block or one thread: the same loop
as a ``prange(..., use_threads_if=...)`` still enters libgomp on every call,
which made the `tiny` epoch (thousands of tiny products) 1.75x slower.
"""

import os

from cython cimport floating
from cython.parallel cimport prange

from fastfit._engine._activations cimport (
    IDENTITY, LOGISTIC, RELU, TANH, bias_activation, multiply_derivative)
from fastfit._engine._blas cimport gemm, gemm_small, small_gemm_panel
from fastfit._engine._openmp cimport omp_get_thread_num
from fastfit._engine._optim cimport StepRule, update_range

ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU}

# A block holds at least this many multiply-adds (~10 microseconds of gemm),
# so scheduling it costs little next to computing it; smaller products stay
# whole and run on the calling thread.
cdef Py_ssize_t BLOCK_MIN_WORK = 1 << 18
# Blocks are at least this wide, and start on multiples of BLOCK_ALIGN (one
# AVX-512 register of floats, a whole number of the small kernel's panels).
cdef Py_ssize_t BLOCK_MIN_WIDTH = 64
cdef Py_ssize_t BLOCK_ALIGN = max(16, small_gemm_panel(True))
# At most one block per core of the machine (not per thread used: the blocking
# must not follow n_threads, see column_blocks). Every block is its own BLAS
# call, which packs the other operand whole again: on `wide`, 4 blocks instead
# of 2 on this 2-core machine packed 30 M floats per step instead of 20 M.
cdef enum:
    MAX_BLOCKS_LIMIT = 16
cdef int MAX_BLOCKS = max(2, min(os.cpu_count() or 2, MAX_BLOCKS_LIMIT))
# pointer slots per thread for the layers of the prediction pass
cdef Py_ssize_t MAX_LAYERS = 64


# Forward and weight-gradient products of at most this many rows go to the
# small-batch kernel (_kernels.h), which copies no operand whole as BLAS does
# on every call; above it, BLAS's packing pays for itself (`wide`, 512 rows:
# 4.7-4.9 s per epoch with the kernel, 4.4 s with BLAS).
cdef int SMALL_BATCH = 128


cdef bint takes_row_pointers(int m, int fan_out, bint is_float) noexcept nogil:
    """Whether a first layer of ``fan_out`` units can read a batch of m rows
    through row pointers (``A_rows``), without gathering it: the small-batch
    kernel computes every column (a whole number of its panels)."""
    cdef int panel = small_gemm_panel(is_float)
    return panel > 0 and m <= SMALL_BATCH and fan_out % panel == 0


cdef int column_blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       int n_threads) noexcept nogil:
    """Number of column blocks of an (m, n, k) gemm: a function of its shape
    (and of the machine's core count) only.

    ``n_threads`` only decides whether the blocks run in parallel; keeping the
    blocking independent of it keeps results independent of it (OpenBLAS does
    not round a column block as it rounds the same columns of a whole
    product). ``n_threads`` of 0 asks for the whole product in one call (a
    thread of the prediction pass, which splits rows instead).
    """
    if n_threads == 0:
        return 1
    cdef Py_ssize_t by_work = (m * n * k) // BLOCK_MIN_WORK
    cdef Py_ssize_t by_width = n // BLOCK_MIN_WIDTH
    cdef Py_ssize_t nb = min(by_work, by_width)
    if nb < 1:
        return 1
    return <int> min(nb, <Py_ssize_t> MAX_BLOCKS)


cdef inline Py_ssize_t _block_width(Py_ssize_t n, int n_blocks) noexcept nogil:
    cdef Py_ssize_t w = (n + n_blocks - 1) // n_blocks
    return ((w + BLOCK_ALIGN - 1) // BLOCK_ALIGN) * BLOCK_ALIGN


cdef inline void _forward_block(int activation, const floating* A,
                                const floating* const* A_rows,
                                const floating* W, const floating* b,
                                floating* Z, int m, int fan_in, int fan_out,
                                Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    if j1 <= j0:
        return
    if m <= SMALL_BATCH:
        gemm_small(False, m, <int> (j1 - j0), fan_in, A, fan_in, A_rows, 0,
                   W + j0, fan_out, Z + j0, fan_out)
    else:
        gemm(False, False, m, <int> (j1 - j0), fan_in, <floating> 1.0,
             A, fan_in, W + j0, fan_out, <floating> 0.0, Z + j0, fan_out)
    bias_activation(activation, Z, b, m, fan_out, j0, j1)


cdef void dense_forward(int activation, const floating* A,
                        const floating* const* A_rows, const floating* W,
                        const floating* b, floating* Z, int m, int fan_in,
                        int fan_out, int n_threads) noexcept nogil:
    """Z = f(A @ W + b).

    IN: A (m, fan_in), W (fan_in, fan_out), b (fan_out). OUT: Z (m, fan_out).
    A_rows: NULL, or row pointers standing for A (A unused); only for products
    that ``takes_row_pointers`` accepts.
    """
    cdef int n_blocks = column_blocks(m, fan_out, fan_in, n_threads)
    cdef Py_ssize_t width = _block_width(fan_out, n_blocks), t, j0, j1
    if n_blocks == 1 or n_threads <= 1:
        for t in range(n_blocks):
            j0 = t * width
            _forward_block(activation, A, A_rows, W, b, Z, m, fan_in, fan_out,
                           j0, min(j0 + width, <Py_ssize_t> fan_out))
        return
    for t in prange(n_blocks, schedule='dynamic', chunksize=1,
                    num_threads=min(n_threads, n_blocks)):
        j0 = t * width
        j1 = min(j0 + width, <Py_ssize_t> fan_out)
        _forward_block(activation, A, A_rows, W, b, Z, m, fan_in, fan_out, j0,
                       j1)


cdef inline void _column_sums(const floating* D, floating* db, int m,
                              int n, Py_ssize_t j0,
                              Py_ssize_t j1) noexcept nogil:
    """db[j0:j1] = column sums of D[:, j0:j1] (D is m x n): bias gradients."""
    cdef Py_ssize_t i, j
    cdef const floating* d
    for j in range(j0, j1):
        db[j] = 0
    for i in range(m):
        d = D + i * n
        for j in range(j0, j1):
            db[j] += d[j]


cdef inline void _weight_grad_block(const floating* A_prev, const floating* D,
                                    floating* dW, floating* db, int m,
                                    int fan_in, int fan_out,
                                    Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    if j1 <= j0:
        return
    gemm(True, False, fan_in, <int> (j1 - j0), m, <floating> 1.0,
         A_prev, fan_in, D + j0, fan_out, <floating> 0.0, dW + j0, fan_out)
    _column_sums(D, db, m, fan_out, j0, j1)


cdef inline void _input_grad_block(int prev_activation, const floating* A_prev,
                                   const floating* W, const floating* D,
                                   floating* D_prev, int m, int fan_in,
                                   int fan_out, Py_ssize_t j0,
                                   Py_ssize_t j1) noexcept nogil:
    if j1 <= j0:
        return
    gemm(False, True, m, <int> (j1 - j0), fan_out, <floating> 1.0,
         D, fan_out, W + j0 * fan_out, fan_out, <floating> 0.0,
         D_prev + j0, fan_in)
    multiply_derivative(prev_activation, D_prev, A_prev, m, fan_in, j0, j1)


cdef void _input_grad(int prev_activation, const floating* A_prev,
                      const floating* W, const floating* D, floating* D_prev,
                      int m, int fan_in, int fan_out, int n_threads) noexcept nogil:
    """D_prev = (D @ W^T) * f'(A_prev), in column blocks of D_prev."""
    cdef int n_blocks = column_blocks(m, fan_in, fan_out, n_threads)
    cdef Py_ssize_t width = _block_width(fan_in, n_blocks), t, j0, j1
    if n_blocks == 1 or n_threads <= 1:
        for t in range(n_blocks):
            j0 = t * width
            _input_grad_block(prev_activation, A_prev, W, D, D_prev, m, fan_in,
                              fan_out, j0, min(j0 + width, <Py_ssize_t> fan_in))
        return
    for t in prange(n_blocks, schedule='dynamic', chunksize=1,
                    num_threads=min(n_threads, n_blocks)):
        j0 = t * width
        j1 = min(j0 + width, <Py_ssize_t> fan_in)
        _input_grad_block(prev_activation, A_prev, W, D, D_prev, m,
                          fan_in, fan_out, j0, j1)


cdef void dense_backward(int prev_activation, const floating* A_prev,
                         const floating* W, const floating* D, floating* dW,
                         floating* db, floating* D_prev, int m, int fan_in,
                         int fan_out, int n_threads) noexcept nogil:
    """Gradients of one dense layer, given D = dLoss/dZ of its output.

    IN: A_prev (m, fan_in) = the layer input, W (fan_in, fan_out), D (m, fan_out).
    OUT: dW = A_prev^T @ D, db = column sums of D, and, unless D_prev is NULL,
    D_prev = (D @ W^T) * f'(A_prev), the gradient w.r.t. the previous layer's
    pre-activation (f = prev_activation).
    """
    cdef int n_blocks = column_blocks(fan_in, fan_out, m, n_threads)
    cdef Py_ssize_t width = _block_width(fan_out, n_blocks), t, j0, j1
    if n_blocks == 1 or n_threads <= 1:
        for t in range(n_blocks):
            j0 = t * width
            _weight_grad_block(A_prev, D, dW, db, m, fan_in, fan_out, j0,
                               min(j0 + width, <Py_ssize_t> fan_out))
    else:
        for t in prange(n_blocks, schedule='dynamic', chunksize=1,
                        num_threads=min(n_threads, n_blocks)):
            j0 = t * width
            j1 = min(j0 + width, <Py_ssize_t> fan_out)
            _weight_grad_block(A_prev, D, dW, db, m, fan_in, fan_out, j0, j1)
    if D_prev != NULL:
        _input_grad(prev_activation, A_prev, W, D, D_prev, m, fan_in, fan_out,
                    n_threads)


cdef inline double _update_task(const floating* A_prev,
                                const floating* const* A_rows,
                                const floating* D,
                                int m, int fan_in, int fan_out,
                                floating* params, floating* grads,
                                floating* state, Py_ssize_t w_off,
                                Py_ssize_t b_off, const StepRule* rule,
                                Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows r0:r1 of dW, then the step on those rows of W (contiguous in
    params) while they are in cache; r0 < 0 is the bias task. Returns the
    penalty over the rows."""
    if r0 < 0:
        _column_sums(D, grads + b_off, m, fan_out, 0, fan_out)
        update_range(rule, params, grads, state, b_off, b_off + fan_out, False)
        return 0.0
    if r1 <= r0:
        return 0.0
    if m <= SMALL_BATCH:
        gemm_small(True, <int> (r1 - r0), fan_out, m,
                   A_prev + r0 if A_rows == NULL else NULL, fan_in, A_rows,
                   <int> r0, D,
                   fan_out, grads + w_off + r0 * fan_out, fan_out)
    else:
        gemm(True, False, <int> (r1 - r0), fan_out, m, <floating> 1.0,
             A_prev + r0, fan_in, D, fan_out, <floating> 0.0,
             grads + w_off + r0 * fan_out, fan_out)
    return update_range(rule, params, grads, state, w_off + r0 * fan_out,
                        w_off + r1 * fan_out, True)


cdef double dense_backward_update(int prev_activation, const floating* A_prev,
                                  const floating* const* A_rows,
                                  const floating* D, floating* D_prev, int m,
                                  int fan_in, int fan_out, floating* params,
                                  floating* grads, floating* state,
                                  Py_ssize_t w_off, Py_ssize_t b_off,
                                  const StepRule* rule,
                                  int n_threads) noexcept nogil:
    """Backward through one dense layer fused with the optimizer step on it.

    As ``dense_backward`` (W = params + w_off, b = params + b_off), then
    ``rule`` applied to W and b. D_prev is computed first, from W before its
    update; then dW is computed in blocks of rows, and each thread updates the
    rows it just computed: the gradient is read back from cache instead of
    memory, and no separate pass over all parameters follows the backward.
    Returns the penalty value over W (partial sums in block order: blocks
    depend on the shapes only). A_rows: as in ``dense_forward``, for a first
    layer (D_prev NULL).
    """
    cdef int n_blocks = column_blocks(fan_out, fan_in, m, n_threads)
    cdef Py_ssize_t height = _block_width(fan_in, n_blocks), t, r0
    cdef double partial[MAX_BLOCKS_LIMIT + 1]
    cdef double penalty = 0.0
    if D_prev != NULL:
        _input_grad(prev_activation, A_prev, params + w_off, D, D_prev, m,
                    fan_in, fan_out, n_threads)
    # task t < n_blocks: rows of W; task n_blocks: the bias
    if n_blocks == 1 or n_threads <= 1:
        for t in range(n_blocks + 1):
            r0 = t * height if t < n_blocks else -1
            partial[t] = _update_task(A_prev, A_rows, D, m, fan_in, fan_out,
                                      params, grads, state, w_off, b_off, rule,
                                      r0, min(r0 + height, <Py_ssize_t> fan_in))
    else:
        for t in prange(n_blocks + 1, schedule='dynamic', chunksize=1,
                        num_threads=min(n_threads, n_blocks + 1)):
            r0 = t * height if t < n_blocks else -1
            partial[t] = _update_task(A_prev, A_rows, D, m, fan_in, fan_out,
                                      params, grads, state, w_off, b_off, rule,
                                      r0, min(r0 + height, <Py_ssize_t> fan_in))
    for t in range(n_blocks):
        penalty += partial[t]
    return penalty


cdef void forward_pass(int n_layers, const Py_ssize_t* sizes,
                       const floating* params, const Py_ssize_t* w_off,
                       const Py_ssize_t* b_off, const floating* X,
                       const floating* const* X_rows, floating** acts, int m,
                       int activation, int n_threads) noexcept nogil:
    """Forward through every layer; the last layer's output is left raw.

    IN: X (m, sizes[0]), or X_rows (m row pointers, X unused) when not NULL.
    OUT: acts[l] (m, sizes[l + 1]) for l < n_layers; the output transform
    (softmax, logistic, exp) belongs to the loss.
    """
    cdef int l
    cdef const floating* A = X
    for l in range(n_layers):
        dense_forward(activation if l < n_layers - 1 else IDENTITY, A,
                      X_rows if l == 0 else NULL,
                      params + w_off[l], params + b_off[l], acts[l], m,
                      <int> sizes[l], <int> sizes[l + 1], n_threads)
        A = acts[l]


def forward_raw(const Py_ssize_t[::1] sizes, const floating[::1] params,
                const Py_ssize_t[::1] w_off, const Py_ssize_t[::1] b_off,
                const floating[:, ::1] X, floating[:, ::1] out,
                int activation, Py_ssize_t chunk_size, int n_threads):
    """Raw network output (last pre-activation) for every row of X, in chunks.

    IN: X (n, sizes[0]). OUT: out (n, sizes[-1]). Rows are independent, so
    chunks of ``chunk_size`` rows go to the threads whole: each pushes its
    chunk through every layer with serial gemms and its own two buffers, and
    writes the last layer straight into ``out``. Memory beyond ``out`` is
    2 * chunk_size * (widest hidden layer) per thread, whatever n is.
    Shapes must have been checked by the caller.
    """
    cdef int n_layers = sizes.shape[0] - 1
    cdef Py_ssize_t n = X.shape[0], width = 1, n_chunks, c, l, start, m
    cdef int n_workers, tid
    if n == 0:
        return
    if n_layers > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS - 1} hidden layers are supported")
    if X.shape[1] != sizes[0] or out.shape[0] != n or out.shape[1] != sizes[n_layers]:
        raise ValueError("forward_raw: X, out and sizes do not match")
    for l in range(1, n_layers):
        width = max(width, sizes[l])
    chunk_size = max(1, min(chunk_size, n))
    n_chunks = (n + chunk_size - 1) // chunk_size
    n_workers = <int> max(1, min(<Py_ssize_t> n_threads, n_chunks))
    import numpy as np
    dtype = np.float32 if floating is float else np.float64
    buf_np = np.empty((n_workers, 2 * chunk_size * width), dtype=dtype)
    cdef floating[:, ::1] buf = buf_np
    acts_np = np.empty(n_workers * MAX_LAYERS, dtype=np.uintp)
    cdef size_t[::1] acts = acts_np
    with nogil:
        if n_workers == 1:
            for c in range(n_chunks):
                start = c * chunk_size
                _forward_chunk(n_layers, &sizes[0], &params[0], &w_off[0],
                               &b_off[0], &X[start, 0], &out[start, 0],
                               <int> min(chunk_size, n - start), chunk_size,
                               activation, &buf[0, 0], width,
                               <floating**> &acts[0])
        else:
            for c in prange(n_chunks, schedule='dynamic', chunksize=1,
                            num_threads=n_workers):
                tid = omp_get_thread_num()
                start = c * chunk_size
                _forward_chunk(n_layers, &sizes[0], &params[0], &w_off[0],
                               &b_off[0], &X[start, 0], &out[start, 0],
                               <int> min(chunk_size, n - start), chunk_size,
                               activation, &buf[tid, 0], width,
                               <floating**> &acts[tid * MAX_LAYERS])


cdef void _forward_chunk(int n_layers, const Py_ssize_t* sizes,
                         const floating* params, const Py_ssize_t* w_off,
                         const Py_ssize_t* b_off, const floating* X,
                         floating* out, int m, Py_ssize_t chunk_size,
                         int activation, floating* buf, Py_ssize_t width,
                         floating** acts) noexcept nogil:
    """m rows of X through the network on one thread, into m rows of out."""
    cdef Py_ssize_t l
    for l in range(n_layers - 1):
        acts[l] = buf + (l % 2) * chunk_size * width
    acts[n_layers - 1] = out
    forward_pass(n_layers, sizes, params, w_off, b_off, X, NULL, acts, m,
                 activation, 0)

