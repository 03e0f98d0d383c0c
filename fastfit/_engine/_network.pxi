# Dense layers: forward and backward over a batch, into preallocated buffers.
#
# Layout
# ------
# All parameters live in one flat buffer: the weight matrices of every layer first
# (W_l of shape (fan_in, fan_out), C order, at offset ``w_off[l]``), then every bias
# (b_l at ``b_off[l]``). Weights-first makes "regularise weights, not biases" a
# single index boundary for the optimizer kernels.
#
# Products
# --------
# Forward and input-gradient products of at most SMALL_FORWARD rows (of a row
# block, see ``row_blocks``) and weight-gradient products of at most
# SMALL_BATCH go to the small-batch kernel (``_kernels.h``): no packing of W
# per call, and the first layer can read a shuffled batch through row
# pointers. Larger ones go to BLAS.
#
# Training step
# -------------
# ``dense_backward_update`` fuses the optimizer step into the backward pass:
# each thread updates the rows of W whose gradient it has just computed, while
# they are in cache, so no separate pass over every parameter follows.
#
# Threads
# -------
# BLAS runs single-threaded (the estimator pins it with threadpoolctl) and the
# engine splits each product into blocks of the output, handed to OpenMP threads
# dynamically. Each thread then applies the bias + activation (forward) or the
# activation derivative and bias sums (backward) to the block it just computed,
# while it is in cache. The blocks depend on the matrix shapes (and the
# machine's core count) only, never on the thread count, and need no reduction:
# results are bit-identical whatever the number of threads (``_blocks.pxi``).
#
# A training step's layer of small batches is split by the rows of W instead
# ("split-K", ``split_k_blocks``; unless that leaves cores idle that column
# and row blocks would use): block t computes A[:, ks] @ W[ks, :] for its rows
# ks of W, the partial products are added in block order, and the update's
# blocks are the same rows. Both run block t on thread t % team size
# (``Task.owned``), so a thread's rows of W, their gradient and their optimizer
# state stay in its own cache from one step to the next, instead of moving
# between the cores twice a step (column blocks in the forward, row blocks in
# the update).

ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "leaky_relu": LEAKY_RELU, "elu": ELU,
               "selu": SELU, "softplus": SOFTPLUS, "gelu": GELU,
               "gelu_tanh": GELU_TANH, "silu": SILU, "mish": MISH}

# A block holds at least this many multiply-adds (~10 microseconds of gemm),
# so scheduling it costs little next to computing it; smaller products stay
# whole and run on the calling thread.
cdef Py_ssize_t BLOCK_MIN_WORK = 1 << 18
# Blocks are at least this wide, and start on multiples of BLOCK_ALIGN (one
# AVX-512 register of floats, a whole number of the small kernel's panels).
cdef Py_ssize_t BLOCK_MIN_WIDTH = 64
cdef Py_ssize_t BLOCK_ALIGN = max(16, small_gemm_panel(True))
# Row blocks of a product (``row_blocks``) hold at least this many rows; their
# heights are rounded up to whole tiles of the small-batch kernel.
cdef Py_ssize_t ROW_BLOCK_MIN = 16
# At most one block per core of the machine (not per thread used: the blocking
# must not follow n_threads, see column_blocks). Every block is its own BLAS
# call, which packs the other operand whole again: on `wide`, 4 blocks instead
# of 2 on a 2-core machine packed 30 M floats per step instead of 20 M.
cdef enum:
    MAX_COLUMN_BLOCKS = 64
cdef int max_column_blocks = 2
# Layers of a network (weight matrices); the prediction pass keeps this many
# pointer slots per thread.
cdef enum:
    MAX_LAYERS = 64
LAYER_LIMIT = MAX_LAYERS

# Weight-gradient products of at most this many rows go to the small-batch
# kernel (_kernels.h), which copies no operand whole as BLAS does on every
# call; above it, BLAS's packing pays for itself (the kernel reads A^T in
# strided pieces: 121 against 150 GFLOP/s for one core's 784 x 256 dW of 256
# rows). A batch of up to this many rows can be read through row pointers.
cdef int SMALL_BATCH = 128
# Forward and input-gradient products of at most this many rows go to the
# kernel: it reads A's rows whole and keeps ahead of BLAS longer (one core,
# 784 -> 256: 165 against 144 GFLOP/s at 256 rows, 163 against 155 at 384;
# `wide`, 512 rows: 4.7-4.9 s per epoch with the kernel, 4.4 s with BLAS).
# An input gradient's W^T is copied into the kernel's panels transposed.
cdef int SMALL_FORWARD = 384


def set_machine_cores(int n_cores):
    """Set the core count the column blocking follows (at most one block per
    core); the loader calls it once, with the cores this process may use."""
    global max_column_blocks
    max_column_blocks = max(2, min(n_cores, <int> MAX_COLUMN_BLOCKS))


cdef struct Net:
    # a dense network over the flat parameter buffer
    int n_layers
    const Py_ssize_t* sizes       # n_layers + 1 widths, input first
    const Py_ssize_t* w_off       # offset of each layer's W in the buffer
    const Py_ssize_t* b_off       # offset of each layer's b
    const int* activations        # of each layer; the last one's is IDENTITY
    const double* slopes          # of each layer's leaky_relu
    const double* dropout         # rate of each layer's outputs; the last one's 0
    int loss
    const double* loss_param      # one per output column (loss_parameters)


cdef inline Unit layer_unit(const Net* net, int l, const Pass* ps) noexcept nogil:
    """Layer l's unit in a pass (``ps`` NULL: a prediction pass); l = -1, the
    input, is the identity."""
    cdef Unit u
    memset(&u, 0, sizeof(Unit))
    u.activation, u.keep = IDENTITY, 1.0
    if l < 0:
        return u
    u.activation, u.slope = net.activations[l], net.slopes[l]
    if ps != NULL:
        if ps.pres != NULL:
            u.pre = ps.pres[l]
        if ps.dropout and net.dropout[l] > 0:
            u.keep = 1.0 - net.dropout[l]
            u.key = mix_key(ps.key, <uint64_t> l)
            u.row0 = ps.row0
    return u


cdef bint takes_row_pointers(int m, bint is_float) noexcept nogil:
    """Whether a first layer can read a batch of m rows through row pointers
    (``A_rows``), without gathering it: the small-batch kernel is built and
    takes the batch."""
    return small_gemm_panel(is_float) > 0 and m <= SMALL_BATCH


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
    return _column_blocks(m, n, k, max_column_blocks)


cdef inline int _column_blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               int cores) noexcept nogil:
    cdef Py_ssize_t by_work = (m * n * k) // BLOCK_MIN_WORK
    cdef Py_ssize_t by_width = n // BLOCK_MIN_WIDTH
    cdef Py_ssize_t nb = min(by_work, by_width)
    if nb < 1:
        return 1
    return <int> min(nb, <Py_ssize_t> cores)


cdef inline int weight_row_blocks(Py_ssize_t m, Py_ssize_t fan_in,
                                  Py_ssize_t fan_out,
                                  int n_threads) noexcept nogil:
    """Blocks of rows of W for a layer's batch of m rows: the update's blocks
    (each thread's dW rows and their step) and a split-K forward's:
    ``column_blocks`` over the fan_in rows, for the m * fan_in * fan_out
    multiply-adds of dW."""
    return column_blocks(fan_out, fan_in, m, n_threads)


cdef inline void own_weight_rows(Task* task, int n_blocks) noexcept nogil:
    """Cut ``task`` (a layer's) into ``n_blocks`` blocks of rows of W, block
    t on thread t % team size: the split-K forward and the update take the
    same rows, so each thread keeps its rows in its cache between them."""
    task.width = block_width(task.fan_in, n_blocks, BLOCK_ALIGN)
    task.extent = task.fan_in
    task.owned = True


cdef int row_blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int col_blocks,
                    int n_threads) noexcept nogil:
    """Row blocks of an (m, n, k) product already cut into ``col_blocks``
    column blocks: the cores the columns leave idle (a layer narrower than
    BLOCK_MIN_WIDTH per core) take rows, while a block keeps BLOCK_MIN_WORK.
    A function of the shape and the machine's core count only, as
    ``column_blocks``."""
    if n_threads == 0:
        return 1
    return _row_blocks(m, n, k, col_blocks, max_column_blocks)


cdef inline int _row_blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            int col_blocks, int cores) noexcept nogil:
    cdef Py_ssize_t spare = cores // col_blocks
    cdef Py_ssize_t by_work = (m * n * k) // (BLOCK_MIN_WORK * col_blocks)
    cdef Py_ssize_t nb = min(min(spare, by_work), m // ROW_BLOCK_MIN)
    return <int> max(1, nb)


cdef int split_k_blocks(Py_ssize_t m, Py_ssize_t fan_in, Py_ssize_t fan_out,
                        int n_threads) noexcept nogil:
    """Row blocks of W a training forward of m rows is split-K into, or 1:
    for a batch of at most SMALL_BATCH rows, the update's blocks
    (``weight_row_blocks``), unless they are fewer than the forward's own
    column and row blocks (many cores: the split would cost parallelism). A
    function of the shape and the machine's core count only, as
    ``column_blocks``."""
    if n_threads == 0:
        return 1
    return _split_k_blocks(m, fan_in, fan_out, max_column_blocks)


cdef inline int _split_k_blocks(Py_ssize_t m, Py_ssize_t fan_in,
                                Py_ssize_t fan_out, int cores) noexcept nogil:
    cdef int n_k = _column_blocks(fan_out, fan_in, m, cores)
    cdef int cols = _column_blocks(m, fan_out, fan_in, cores)
    if m > SMALL_BATCH or n_k < cols * _row_blocks(m, fan_out, fan_in, cols,
                                                   cores):
        return 1
    return n_k


def blocking_plan(sizes, int batch_size, int cores):
    """The blocks each product of a training step is cut into, for a network
    of widths ``sizes`` (input first), batches of ``batch_size`` rows and a
    machine of ``cores`` cores (capped at MAX_COLUMN_BLOCKS): the blocking
    rules of the engine, for performance models and tests.

    Returns one dict per layer: ``forward`` (column blocks, row blocks),
    ``forward_split`` (row blocks of W of a split-K forward; 1: not split),
    ``weight_grad`` (blocks of rows of dW, each updated by its thread),
    ``input_grad`` (column blocks, row blocks; (0, 0) for the first layer),
    and the (m, n, k) of each product.
    """
    cdef int cap = max(1, min(cores, <int> MAX_COLUMN_BLOCKS))
    cdef Py_ssize_t m = batch_size, fan_in, fan_out
    cdef int c
    plan = []
    for l in range(len(sizes) - 1):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        c = _column_blocks(m, fan_out, fan_in, cap)
        forward = (c, _row_blocks(m, fan_out, fan_in, c, cap))
        weight = _column_blocks(fan_out, fan_in, m, cap)
        split = _split_k_blocks(m, fan_in, fan_out, cap)
        inputs = (0, 0)
        if l > 0:
            c = _column_blocks(m, fan_in, fan_out, cap)
            inputs = (c, _row_blocks(m, fan_in, fan_out, c, cap))
        plan.append(dict(
            forward=forward, forward_split=split, weight_grad=weight,
            input_grad=inputs,
            forward_mnk=(m, fan_out, fan_in), weight_mnk=(fan_in, fan_out, m),
            input_mnk=(m, fan_in, fan_out),
        ))
    return plan


cdef int _cut_product(Task* task, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      int n_threads, bint by_rows) noexcept nogil:
    """Set the block geometry of ``task``, an (m, n, k) product whose output
    columns are its extent: column blocks, and row blocks (``by_rows``) where
    the columns leave cores idle. Returns the number of blocks."""
    cdef int cols = column_blocks(m, n, k, n_threads)
    cdef int rows = row_blocks(m, n, k, cols, n_threads) if by_rows else 1
    task.width = block_width(n, cols, BLOCK_ALIGN)
    task.extent = n
    if rows > 1:
        task.row_width = block_width(m, rows, small_gemm_tile_rows())
        task.col_blocks = cols
    return cols * rows


cdef inline Task _layer_task(int kind, const Unit* unit, int m, int fan_in,
                             int fan_out) noexcept nogil:
    cdef Task task
    memset(&task, 0, sizeof(Task))
    task.kind = kind
    task.unit = unit[0]
    task.m, task.fan_in, task.fan_out = m, fan_in, fan_out
    return task


cdef inline void _forward_block(const Unit* unit, const floating* A,
                                const floating* const* A_rows,
                                const SparseRows* xs,
                                const floating* W, const floating* b,
                                floating* Z, int m, int fan_in, int fan_out,
                                Py_ssize_t j0, Py_ssize_t j1,
                                bint row_invariant) noexcept nogil:
    if j1 <= j0:
        return
    if xs != NULL:
        sparse_forward_block(xs, W, Z, m, fan_out, j0, j1)
    elif row_invariant:
        gemm_rows(m, <int> (j1 - j0), fan_in, A, fan_in, W + j0, fan_out,
                  Z + j0, fan_out)
    elif m <= SMALL_FORWARD:
        gemm_small(False, False, m, <int> (j1 - j0), fan_in, A, fan_in, A_rows, 0,
                   W + j0, fan_out, Z + j0, fan_out)
    else:
        gemm(False, False, m, <int> (j1 - j0), fan_in, <floating> 1.0,
             A, fan_in, W + j0, fan_out, <floating> 0.0, Z + j0, fan_out)
    bias_activation(unit, Z, b, m, fan_out, j0, j1)


cdef void dense_forward(const Unit* unit, const floating* A,
                        const floating* const* A_rows, const SparseRows* xs,
                        const floating* W, const floating* b, floating* Z,
                        int m, int fan_in, int fan_out, int n_threads,
                        bint row_invariant, floating* partials,
                        Py_ssize_t room) noexcept nogil:
    """Z = f(A @ W + b), then dropout (as ``unit`` says).

    IN: A (m, fan_in), W (fan_in, fan_out), b (fan_out). OUT: Z (m, fan_out).
    A_rows: NULL, or row pointers standing for A (A unused); only for products
    that ``takes_row_pointers`` accepts. xs: NULL, or the sparse rows standing
    for A (``_sparse.pxi``). ``row_invariant``: each row of Z computed
    independently of m (``gemm_rows``), as predictions need; sparse rows
    always are. ``partials``: NULL, or ``room`` elements for the partial
    products of a split-K product, which a dense training forward then is
    where ``split_k_blocks`` says and they fit (``split_k_blocks`` - 1 of
    (m, fan_out)).
    """
    cdef Task task = _layer_task(TASK_FORWARD, unit, m, fan_in, fan_out)
    cdef int n_k = 1
    task.A, task.A_rows, task.W, task.b, task.out = A, <const void* const*> A_rows, W, b, Z
    if partials != NULL and xs == NULL and not row_invariant:
        n_k = split_k_blocks(m, fan_in, fan_out, n_threads)
        if (n_k - 1) * <Py_ssize_t> m * fan_out > room:
            n_k = 1
    if n_k > 1:
        _split_k_forward(&task, partials, n_k, n_threads)
        return
    task.xs = xs
    task.row_invariant = row_invariant
    # a sparse first layer reads its rows by number: columns only
    run_blocks(&task, _cut_product(&task, m, fan_out, fan_in, n_threads,
                                   xs == NULL), n_threads, W)


cdef void _split_k_forward(Task* task, floating* partials, int n_k,
                           int n_threads) noexcept nogil:
    """Z = f(sum_t A[:, ks_t] @ W[ks_t, :] + b) over the row blocks ks_t of W,
    the partial products added in block order; ``task`` is the layer's
    TASK_FORWARD."""
    cdef floating* Z = <floating*> task.out
    cdef const floating* P
    cdef Py_ssize_t size = <Py_ssize_t> task.m * task.fan_out, i
    cdef int t
    task.kind = TASK_FORWARD_PART
    own_weight_rows(task, n_k)
    task.buf = partials
    run_blocks(task, n_k, n_threads, Z)
    for t in range(1, n_k):
        P = partials + (t - 1) * size
        for i in range(size):
            Z[i] += P[i]
    bias_activation(&task.unit, Z, <const floating*> task.b, task.m,
                    task.fan_out, 0, task.fan_out)


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
    # the same product as the fused path's (``_update_task``), so that a step
    # taken on the whole gradient first (clipping) equals the fused step
    if m <= SMALL_BATCH:
        gemm_small(True, False, fan_in, <int> (j1 - j0), m, A_prev, fan_in, NULL, 0,
                   D + j0, fan_out, dW + j0, fan_out)
    else:
        gemm(True, False, fan_in, <int> (j1 - j0), m, <floating> 1.0,
             A_prev, fan_in, D + j0, fan_out, <floating> 0.0, dW + j0, fan_out)
    _column_sums(D, db, m, fan_out, j0, j1)


cdef inline void _input_grad_block(const Unit* prev, const floating* A_prev,
                                   const floating* W, const floating* D,
                                   floating* D_prev, int m, int fan_in,
                                   int fan_out, Py_ssize_t j0,
                                   Py_ssize_t j1) noexcept nogil:
    if j1 <= j0:
        return
    if m <= SMALL_FORWARD:
        gemm_small(False, True, m, <int> (j1 - j0), fan_out, D, fan_out, NULL,
                   0, W + j0 * fan_out, fan_out, D_prev + j0, fan_in)
    else:
        gemm(False, True, m, <int> (j1 - j0), fan_out, <floating> 1.0,
             D, fan_out, W + j0 * fan_out, fan_out, <floating> 0.0,
             D_prev + j0, fan_in)
    multiply_derivative(prev, D_prev, A_prev, m, fan_in, j0, j1)


cdef void _input_grad(const Unit* prev, const floating* A_prev,
                      const floating* W, const floating* D, floating* D_prev,
                      int m, int fan_in, int fan_out, int n_threads) noexcept nogil:
    """D_prev = (D @ W^T) * f'(A_prev), in column blocks of D_prev (and row
    blocks, as ``dense_forward``)."""
    cdef Task task = _layer_task(TASK_INPUT_GRAD, prev, m, fan_in, fan_out)
    task.A, task.W, task.D, task.out = A_prev, W, D, D_prev
    run_blocks(&task, _cut_product(&task, m, fan_in, fan_out, n_threads, True),
               n_threads, W)


cdef void dense_backward(const Unit* prev, const floating* A_prev,
                         const floating* W, const floating* D, floating* dW,
                         floating* db, floating* D_prev, int m, int fan_in,
                         int fan_out, int n_threads) noexcept nogil:
    """Gradients of one dense layer, given D = dLoss/dZ of its output.

    IN: A_prev (m, fan_in) = the layer input, W (fan_in, fan_out), D (m, fan_out).
    OUT: dW = A_prev^T @ D, db = column sums of D, and, unless D_prev is NULL,
    D_prev = (D @ W^T) * f'(A_prev), the gradient w.r.t. the previous layer's
    pre-activation (f and dropout: the previous layer's unit ``prev``).
    """
    cdef int n_blocks = column_blocks(fan_in, fan_out, m, n_threads)
    cdef Task task = _layer_task(TASK_WEIGHT_GRAD, prev, m, fan_in, fan_out)
    task.A, task.D, task.out, task.db = A_prev, D, dW, db
    task.width = block_width(fan_out, n_blocks, BLOCK_ALIGN)
    task.extent = fan_out
    run_blocks(&task, n_blocks, n_threads, W)
    if D_prev != NULL:
        _input_grad(prev, A_prev, W, D, D_prev, m, fan_in, fan_out, n_threads)


cdef inline double _update_task(const floating* A_prev,
                                const floating* const* A_rows,
                                const SparseRows* xs, const floating* D,
                                int m, int fan_in, int fan_out,
                                floating* params, floating* grads,
                                floating* state, Py_ssize_t w_off,
                                Py_ssize_t b_off, const StepRule* rule,
                                Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows r0:r1 of dW, then the step on those rows of W (contiguous in
    params) while they are in cache; r0 < 0 is the bias task. Returns the
    penalty over the rows. Without a rule (NULL), only the gradient."""
    if r0 < 0:
        _column_sums(D, grads + b_off, m, fan_out, 0, fan_out)
        if rule != NULL:
            # 0, or NaN for a non-finite update
            return update_range(rule, params, grads, state, b_off,
                                b_off + fan_out, False)
        return 0.0
    if r1 <= r0:
        return 0.0
    if xs != NULL:
        sparse_weight_grad_rows(xs, D, grads + w_off, m, fan_out, r0, r1)
    elif m <= SMALL_BATCH:
        gemm_small(True, False, <int> (r1 - r0), fan_out, m,
                   A_prev + r0 if A_rows == NULL else NULL, fan_in, A_rows,
                   <int> r0, D,
                   fan_out, grads + w_off + r0 * fan_out, fan_out)
    else:
        gemm(True, False, <int> (r1 - r0), fan_out, m, <floating> 1.0,
             A_prev + r0, fan_in, D, fan_out, <floating> 0.0,
             grads + w_off + r0 * fan_out, fan_out)
    if rule == NULL:
        return 0.0
    return update_range(rule, params, grads, state, w_off + r0 * fan_out,
                        w_off + r1 * fan_out, True)


cdef double dense_backward_update(const Unit* prev, const floating* A_prev,
                                  const floating* const* A_rows,
                                  const SparseRows* xs, const floating* D, floating* D_prev, int m,
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
    depend on the shapes only), NaN if an updated parameter is not finite.
    A_rows, xs: as in ``dense_forward``, for a first layer (D_prev NULL).
    ``rule`` NULL: the gradient only, no step.
    """
    cdef int n_blocks = weight_row_blocks(m, fan_in, fan_out, n_threads), t
    cdef double partial[MAX_COLUMN_BLOCKS + 1]
    cdef double penalty = 0.0
    cdef Task task = _layer_task(TASK_BACKWARD_UPDATE, prev, m, fan_in, fan_out)
    if D_prev != NULL:
        _input_grad(prev, A_prev, params + w_off, D, D_prev, m, fan_in, fan_out,
                    n_threads)
    task.A, task.A_rows, task.xs, task.D = A_prev, <const void* const*> A_rows, xs, D
    task.params, task.grads, task.state = params, grads, state
    task.w_off, task.b_off, task.rule = w_off, b_off, rule
    own_weight_rows(&task, n_blocks)
    task.n_blocks = n_blocks
    task.partial = partial
    # blocks t < n_blocks: rows of W; block n_blocks: the bias
    run_blocks(&task, n_blocks + 1, n_threads if n_blocks > 1 else 1, params)
    for t in range(n_blocks + 1):
        penalty += partial[t]
    return penalty


cdef void forward_pass(const Net* net, const floating* params,
                       const floating* X, const floating* const* X_rows,
                       const SparseRows* xs, floating** acts, int m,
                       int n_threads, bint row_invariant,
                       const Pass* ps) noexcept nogil:
    """Forward through every layer; the last layer's output is left raw.

    IN: X (m, sizes[0]), or X_rows (m row pointers, X unused) when not NULL,
    or xs (sparse rows, X unused) when not NULL.
    OUT: acts[l] (m, sizes[l + 1]) for l < n_layers; the output transform
    (softmax, logistic, exp) belongs to the loss. ``row_invariant``: see
    ``dense_forward``. ``ps``: a training pass (pre-activations kept,
    dropout, room for split-K products), or NULL for a prediction.
    """
    cdef int l
    cdef const floating* A = X
    cdef Unit unit
    cdef floating* partials = (<floating*> ps.partials if ps != NULL
                               else NULL)
    cdef Py_ssize_t room = ps.partials_room if ps != NULL else 0
    for l in range(net.n_layers):
        unit = layer_unit(net, l, ps)
        dense_forward(&unit, A, X_rows if l == 0 else NULL,
                      xs if l == 0 else NULL, params + net.w_off[l], params + net.b_off[l], acts[l], m,
                      <int> net.sizes[l], <int> net.sizes[l + 1], n_threads,
                      row_invariant, partials, room)
        A = acts[l]


ctypedef void (*LayerDone)(void* data, int layer) noexcept nogil


cdef void backward_pass(const Net* net, const floating* params,
                        floating* grads, const floating* X,
                        const SparseRows* xs, int m, floating** acts,
                        floating** deltas, int n_threads,
                        const Pass* ps, LayerDone done=NULL,
                        void* done_data=NULL) noexcept nogil:
    """Gradients of the data loss w.r.t. every parameter into grads, from
    deltas[n_layers - 1] = dLoss/d(raw output) and the forward's acts (of
    the training pass ``ps``). The input is X, or the sparse rows xs when not
    NULL.

    ``done``, when not NULL, is called with each layer's index as soon as its
    weight and bias gradients are final (last layer first), before the
    gradient flows on to the layer below: the place to start communicating
    them while the rest of the backward runs."""
    cdef int l
    cdef Unit prev
    for l in range(net.n_layers - 1, -1, -1):
        prev = layer_unit(net, l - 1, ps)
        if l == 0 and xs != NULL:
            # the sparse weight gradient comes in rows of dW, without a step
            dense_backward_update(&prev, NULL, NULL, xs, deltas[0], NULL, m,
                                  <int> net.sizes[0], <int> net.sizes[1],
                                  <floating*> params, grads, NULL,
                                  net.w_off[0], net.b_off[0], NULL, n_threads)
            if done != NULL:
                done(done_data, 0)
            break
        dense_backward(&prev, X if l == 0 else acts[l - 1],
                       params + net.w_off[l], deltas[l],
                       grads + net.w_off[l], grads + net.b_off[l],
                       NULL if l == 0 or done != NULL else deltas[l - 1], m,
                       <int> net.sizes[l], <int> net.sizes[l + 1], n_threads)
        if done != NULL:
            done(done_data, l)
            if l > 0:
                _input_grad(&prev, acts[l - 1], params + net.w_off[l], deltas[l],
                            deltas[l - 1], m, <int> net.sizes[l],
                            <int> net.sizes[l + 1], n_threads)


cdef double backward_update_pass(const Net* net, floating* params,
                                 floating* grads, floating* state,
                                 const floating* X,
                                 const floating* const* X_rows,
                                 const SparseRows* xs, int m,
                                 floating** acts, floating** deltas,
                                 const StepRule* rule, int n_threads,
                                 const Pass* ps) noexcept nogil:
    """Backward with each layer's optimizer step fused in; returns the penalty.

    Valid when the step needs nothing global of the gradient (no clipping).
    """
    cdef int l
    cdef double penalty = 0.0
    cdef Unit prev
    for l in range(net.n_layers - 1, -1, -1):
        prev = layer_unit(net, l - 1, ps)
        penalty += dense_backward_update(
            &prev, X if l == 0 else acts[l - 1], X_rows if l == 0 else NULL,
            xs if l == 0 else NULL, deltas[l], NULL if l == 0 else deltas[l - 1], m,
            <int> net.sizes[l], <int> net.sizes[l + 1], params, grads, state,
            net.w_off[l], net.b_off[l], rule, n_threads)
    return penalty


cdef void forward_rows(const Net* net, const floating* params,
                       const floating* X, const SparseRows* xs,
                       floating* out, Py_ssize_t n,
                       Py_ssize_t chunk_size, floating* buf,
                       Py_ssize_t buf_width, void** acts,
                       int n_workers) noexcept nogil:
    """Raw output of n rows of X (or of the sparse rows xs, when not NULL)
    into out, in chunks of chunk_size rows.

    Rows are independent, and each is computed independently of the others
    (a prediction does not depend on the batch it is part of), so chunks go
    to the threads whole: each pushes its
    chunk through every layer with serial gemms and its own two buffers of
    ``buf`` (n_workers x 2 x chunk_size x buf_width) and its MAX_LAYERS slots
    of ``acts``, and writes the last layer straight into ``out``.
    """
    cdef Task task
    memset(&task, 0, sizeof(Task))
    task.kind = TASK_PREDICT_CHUNK
    task.net, task.params, task.A, task.out = net, <void*> params, X, out
    task.xs = xs
    task.fan_in, task.fan_out = <int> net.sizes[0], <int> net.sizes[net.n_layers]
    task.n_rows, task.chunk_size, task.width = n, chunk_size, chunk_size
    task.buf, task.buf_width, task.acts = buf, buf_width, acts
    run_blocks(&task, <int> ((n + chunk_size - 1) // chunk_size), n_workers, X)


cdef void _forward_chunk(const Net* net, const floating* params,
                         const floating* X, const SparseRows* xs,
                         floating* out, int m, Py_ssize_t chunk_size,
                         floating* buf, Py_ssize_t width,
                         floating** acts) noexcept nogil:
    """m rows of X (or xs) through the network on one thread, into m rows
    of out."""
    cdef Py_ssize_t l
    for l in range(net.n_layers - 1):
        acts[l] = buf + (l % 2) * chunk_size * width
    acts[net.n_layers - 1] = out
    forward_pass(net, params, X, NULL, xs, acts, m, 0, True, NULL)
