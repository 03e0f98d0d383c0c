# Block-parallel loops: one loop over the blocks of a task, for every task.
#
# Each parallel operation of the engine (a product's column blocks, a weight
# gradient's row blocks fused with their update, a pass of the optimizer, the
# gradient norm, the chunks of the prediction pass, the row blocks of a full
# batch, the gather of a shuffled batch, a batch's loss, a check of X) is a ``Task``: its operands
# and block geometry, and ``_run_block`` computes block ``t`` of it. The blocks
# depend on the shapes (and the machine's core count) only, never on the thread
# count; partial sums are kept per block and added in block order by the
# caller. So results are bit-identical whatever the number of threads.
#
# ``run_blocks`` runs one block, or one thread, without entering libgomp: the
# same loop as a ``prange(..., use_threads_if=...)`` still enters the runtime on
# every call, which made an epoch of thousands of tiny products 1.75x slower.

cdef enum TaskKind:
    TASK_FORWARD          # Z[rows, cols] = f(A[rows] @ W[:, cols] + b[cols])
    TASK_FORWARD_PART     # P_t = A[:, ks] @ W[ks, :], the rows ks of W of block t
    TASK_INPUT_GRAD       # D_prev[rows, cols] = (D[rows] @ W[cols, :]^T) * f'(A_prev)
    TASK_WEIGHT_GRAD      # dW[:, block] = A_prev^T @ D[:, block], db[block]
    TASK_BACKWARD_UPDATE  # dW[block, :] then the step on it; last block: bias
    TASK_PARAM_UPDATE     # the step on a block of the flat buffer
    TASK_GRAD_NORM        # squared norm of a block of the effective gradient
    TASK_PREDICT_CHUNK    # a chunk of rows through the whole network
    TASK_OBJECTIVE_ROWS   # loss and gradient of a block of a full batch's rows
    TASK_TEAM_SIZE        # the size of the team running the block (tests)
    TASK_GATHER           # rows index[rows] of A copied to out[rows] (no arithmetic)
    TASK_COUNT_OUTSIDE    # entries of A[block] not within [-bound, bound]
    TASK_LOSS_ROWS        # loss terms and gradient rows of a block of rows


cdef struct Task:
    int kind
    Py_ssize_t width      # of a block (columns, rows or parameters)
    Py_ssize_t extent     # what is split into blocks
    # a forward or input-gradient product may be split in rows too: block t
    # is row block t // col_blocks, column block t % col_blocks (row_width 0:
    # all rows)
    Py_ssize_t row_width
    int col_blocks
    int n_blocks          # of rows of W (TASK_BACKWARD_UPDATE; one more: bias)
    # block t always runs on thread t % team size: the rows of W a thread
    # updates stay in its cache for its share of the next forward
    bint owned
    double* partial       # per-block sums (penalty, squared norm)
    # a dense layer
    Unit unit             # of this layer (forward) or of the previous one
    bint row_invariant    # forward: rows computed independently of m
    int m, fan_in, fan_out
    const void* A         # layer input / A_prev
    const void* const* A_rows
    const SparseRows* xs  # a first layer's sparse input, or NULL
    const Py_ssize_t* index  # the rows of A a gather copies
    const void* W
    const void* b
    const void* D
    void* out             # Z, D_prev or dW
    void* db
    # the flat buffers and the step
    void* params
    void* grads
    void* state
    Py_ssize_t w_off, b_off, n_weights
    const StepRule* rule
    double l2, l1
    double bound          # of a check of X
    # a batch's loss: targets, sample weights and their sum, per-row terms
    const void* Y
    const void* sw
    double sw_sum
    double* terms
    # the prediction pass
    const Net* net
    Py_ssize_t n_rows, chunk_size, buf_width
    void* buf             # per thread: two (chunk_size, buf_width) buffers;
                          # a split-K forward's partial products
    void** acts           # per thread (prediction) or block: MAX_LAYERS slots
    # a full batch in row blocks
    const void* batches   # one Batch per block
    const Pass* ps        # the training pass each block's is made from
    void** block_grads    # one gradient buffer per block


cdef inline Py_ssize_t block_width(Py_ssize_t n, int n_blocks,
                                   Py_ssize_t align) noexcept nogil:
    """Width of each of n_blocks blocks over n, rounded up to ``align``."""
    cdef Py_ssize_t w = (n + n_blocks - 1) // n_blocks
    return ((w + align - 1) // align) * align


cdef extern from "_fpenv.h" nogil:
    # denormals flushed to zero (FTZ, DAZ) while the engine computes
    unsigned int ff_flush_denormals()
    void ff_restore_fp_mode(unsigned int mode)
    int ff_denormals_flushed()


cdef void run_blocks(const Task* task, int n_tasks, int n_threads,
                     const floating* dtype_tag) noexcept nogil:
    """Blocks 0..n_tasks-1 of ``task``, over up to n_threads OpenMP threads.

    ``dtype_tag`` (any pointer of the task's type, may be NULL) selects the
    float or double code. The ``num_threads`` clause overrides OpenMP's
    nthreads-var (OMP_NUM_THREADS, ``omp_set_num_threads`` as threadpoolctl
    calls it): the caller's count is the team size (``OMP_THREAD_LIMIT``
    still caps it).
    """
    cdef int t
    cdef unsigned int mode
    # every thread that runs a block computes with denormals flushed
    # (``_fpenv.h``), and gives its own mode back afterwards
    if n_tasks <= 1 or n_threads <= 1:
        mode = ff_flush_denormals()
        for t in range(n_tasks):
            _run_block(task, t, dtype_tag)
        ff_restore_fp_mode(mode)
        return
    if task.owned:
        for t in prange(n_tasks, schedule='static', chunksize=1,
                        num_threads=min(n_threads, n_tasks)):
            mode = ff_flush_denormals()
            _run_block(task, t, dtype_tag)
            ff_restore_fp_mode(mode)
        return
    for t in prange(n_tasks, schedule='dynamic', chunksize=1,
                    num_threads=min(n_threads, n_tasks)):
        mode = ff_flush_denormals()
        _run_block(task, t, dtype_tag)
        ff_restore_fp_mode(mode)


cdef inline void _row_block(const Task* task, int rb, int cb,
                            const floating* dtype_tag) noexcept nogil:
    """Block (rb, cb) of a forward or input-gradient product split in rows
    and columns: its rows are a batch of their own but for their place in it
    (dropout's masks, the kept pre-activations)."""
    cdef Py_ssize_t i0 = rb * task.row_width, j0 = cb * task.width
    cdef Py_ssize_t i1 = min(i0 + task.row_width, <Py_ssize_t> task.m)
    cdef Py_ssize_t j1 = min(j0 + task.width, task.extent)
    cdef Unit unit = task.unit
    cdef const floating* A = <const floating*> task.A
    cdef const floating* const* A_rows = <const floating* const*> task.A_rows
    # the rows of the unit's output: the product's (forward) or its input's
    cdef Py_ssize_t width = (task.fan_out if task.kind == TASK_FORWARD
                             else task.fan_in)
    if i1 <= i0:
        return
    unit.row0 += i0
    if unit.pre != NULL:
        unit.pre = <floating*> unit.pre + i0 * width
    if task.kind == TASK_FORWARD:
        _forward_block(&unit, A + i0 * task.fan_in if A != NULL else NULL,
                       A_rows + i0 if A_rows != NULL else NULL, NULL,
                       <const floating*> task.W, <const floating*> task.b,
                       <floating*> task.out + i0 * task.fan_out,
                       <int> (i1 - i0), task.fan_in, task.fan_out, j0, j1,
                       task.row_invariant)
    else:
        _input_grad_block(&unit, A + i0 * task.fan_in,
                          <const floating*> task.W,
                          <const floating*> task.D + i0 * task.fan_out,
                          <floating*> task.out + i0 * task.fan_in,
                          <int> (i1 - i0), task.fan_in, task.fan_out, j0, j1)


cdef inline void _forward_part(const Task* task, int t, Py_ssize_t k0,
                               Py_ssize_t k1,
                               const floating* dtype_tag) noexcept nogil:
    """Block t of a split-K forward: A[:, k0:k1] @ W[k0:k1, :], into the
    layer's output (t = 0) or the partial product t - 1 of ``task.buf``."""
    cdef const floating* A = <const floating*> task.A
    cdef Py_ssize_t size = <Py_ssize_t> task.m * task.fan_out
    cdef floating* P = (<floating*> task.out if t == 0
                        else <floating*> task.buf + (t - 1) * size)
    gemm_small(False, False, task.m, task.fan_out, <int> (k1 - k0),
               A + k0 if A != NULL else NULL, task.fan_in,
               <const floating* const*> task.A_rows, <int> k0,
               <const floating*> task.W + k0 * task.fan_out, task.fan_out, P,
               task.fan_out)


cdef inline void _gather_rows(const Task* task, Py_ssize_t lo, Py_ssize_t hi,
                              const floating* dtype_tag) noexcept nogil:
    """Rows lo..hi-1 of a gather: row index[i] of A (fan_in wide) to row i
    of out."""
    cdef const floating* A = <const floating*> task.A
    cdef floating* out = <floating*> task.out
    cdef Py_ssize_t i, w = task.fan_in
    for i in range(lo, hi):
        memcpy(out + i * w, A + task.index[i] * w, w * sizeof(floating))


cdef inline void _run_block(const Task* task, int t,
                            const floating* dtype_tag) noexcept nogil:
    cdef Py_ssize_t lo = t * task.width
    cdef Py_ssize_t hi = min(lo + task.width, task.extent)
    cdef int tid
    cdef Py_ssize_t i
    cdef SparseRows chunk_rows
    if task.row_width > 0:  # a product split in rows (forward, input gradient)
        _row_block(task, t // task.col_blocks, t % task.col_blocks, dtype_tag)
        return
    if task.kind == TASK_FORWARD_PART:
        _forward_part(task, t, lo, hi, dtype_tag)
    elif task.kind == TASK_FORWARD:
        _forward_block(&task.unit, <const floating*> task.A,
                       <const floating* const*> task.A_rows, task.xs,
                       <const floating*> task.W, <const floating*> task.b,
                       <floating*> task.out, task.m, task.fan_in, task.fan_out,
                       lo, hi, task.row_invariant)
    elif task.kind == TASK_INPUT_GRAD:
        _input_grad_block(&task.unit, <const floating*> task.A,
                          <const floating*> task.W, <const floating*> task.D,
                          <floating*> task.out, task.m, task.fan_in,
                          task.fan_out, lo, hi)
    elif task.kind == TASK_WEIGHT_GRAD:
        _weight_grad_block(<const floating*> task.A, <const floating*> task.D,
                           <floating*> task.out, <floating*> task.db, task.m,
                           task.fan_in, task.fan_out, lo, hi)
    elif task.kind == TASK_BACKWARD_UPDATE:
        task.partial[t] = _update_task(
            <const floating*> task.A, <const floating* const*> task.A_rows,
            task.xs, <const floating*> task.D, task.m, task.fan_in, task.fan_out,
            <floating*> task.params, <floating*> task.grads,
            <floating*> task.state, task.w_off, task.b_off, task.rule,
            lo if t < task.n_blocks else -1, hi)
    elif task.kind == TASK_PARAM_UPDATE:
        lo = min(lo, task.extent)
        task.partial[t] = _update_block(task.rule, <floating*> task.params,
                                        <const floating*> task.grads,
                                        <floating*> task.state, task.n_weights,
                                        lo, hi)
    elif task.kind == TASK_GRAD_NORM:
        lo = min(lo, task.extent)
        task.partial[t] = _norm_sq_block(<const floating*> task.params,
                                         <const floating*> task.grads,
                                         task.n_weights, lo, hi, task.l2,
                                         task.l1)
    elif task.kind == TASK_OBJECTIVE_ROWS:
        task.partial[t] = objective_rows(task, t, dtype_tag)
    elif task.kind == TASK_TEAM_SIZE:
        task.partial[t] = omp_get_num_threads()
    elif task.kind == TASK_GATHER:
        _gather_rows(task, lo, hi, dtype_tag)
    elif task.kind == TASK_LOSS_ROWS:
        for i in range(lo, hi):
            task.terms[i] = loss_row(
                task.net.loss, <const floating*> task.A,
                <const floating*> task.Y, <const floating*> task.sw,
                task.sw_sum, i, task.fan_out, task.net.loss_param,
                <floating*> task.out)
    elif task.kind == TASK_COUNT_OUTSIDE:
        task.partial[t] = <double> _outside_count(<const floating*> task.A, lo,
                                                  hi, task.bound)
    else:  # TASK_PREDICT_CHUNK: blocks of task.width rows; hi unused
        tid = omp_get_thread_num()
        if task.xs != NULL:
            chunk_rows = task.xs[0]
            chunk_rows.row0 += lo
        _forward_chunk(task.net, <const floating*> task.params,
                       <const floating*> task.A + lo * task.fan_in
                       if task.xs == NULL else NULL,
                       &chunk_rows if task.xs != NULL else NULL,
                       <floating*> task.out + lo * task.fan_out,
                       <int> min(task.width, task.n_rows - lo), task.chunk_size,
                       <floating*> task.buf
                       + tid * 2 * task.chunk_size * task.buf_width,
                       task.buf_width, <floating**> task.acts + tid * MAX_LAYERS)
