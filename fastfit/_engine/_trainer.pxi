# The engine objects: a Network (what is computed) and a Trainer (the buffers
# and the step that train it).
#
# A training step, for the batch at hand: forward through the layers, the
# fused loss gradient, then backward. Without clipping or a gradient hook each
# layer's optimizer update runs inside its backward, right after its weight
# gradient (``dense_backward_update``); otherwise the whole gradient is
# computed first, clipped, and one optimizer pass updates every parameter.
# With a gradient hook the step is collective (``_collective_step``): the
# hook sums the gradient, the weight and the loss of every process's share of
# the batch, and the step applies the gradient of the whole batch. A shuffled batch is gathered into a buffer of the
# Trainer, or, when it fits the small-batch kernel, read from X in place
# through row pointers; the rows of a sparse X are always read in place
# (``_sparse.pxi``). Everything a step touches is allocated when the
# Trainer is built (the gather buffer on the first call that needs it):
# nothing is allocated and no Python object is touched per batch, and a range
# of batches runs without the GIL.


# The hook of a collective step: ``layer`` >= 0 when that layer's (scaled)
# gradient is final, with per-layer events on; -1 when the whole buffer
# (gradient and tail) is ready and must come back summed over the processes.
# Returns 0, or -1 if it failed (the step then stops, nothing applied).
ctypedef int (*GradientHook)(void* data, int layer, void* grads, Py_ssize_t n,
                             bint is_float) noexcept nogil

# After the gradient, the buffer of a collective step holds these three values
# of the process's share of the batch: its weight sum, its loss * weight sum,
# and 1 if its loss was not finite (else 0).
cdef enum:
    REDUCE_TAIL = 3

cdef enum StepStatus:
    STEP_APPLIED
    STEP_EMPTY      # the whole batch has no weight: nothing to apply
    STEP_STOPPED    # a loss was not finite, or the hook failed: not applied


cdef struct Batch:
    # one mini-batch as the step reads it
    const void* X             # (m, n_in), or NULL when read through X_rows or xs
    const void* const* X_rows
    SparseRows xs             # the batch's rows of a sparse X (indptr NULL: dense)
    const void* Y
    const void* sw            # NULL for unit weights
    double sw_sum
    int m
    Py_ssize_t row0           # the number of its first row in the step's batch


cdef struct Epoch:
    # the data of one call to Trainer.run_batches, and the Trainer's buffers
    const void* X             # dense X, or NULL for a sparse one
    SparseRows xs             # a sparse X, all rows (indptr NULL: dense)
    const void* Y
    const void* sw
    const Py_ssize_t* order   # rows to visit, or NULL for every row in turn
    Py_ssize_t n, n_in, ky, batch_size
    bint direct               # shuffled batches read through row pointers
    void* Xg
    void* Yg
    void* swg
    size_t* row_ptrs


cdef struct StepContext:
    # what every step of a Trainer shares
    const Net* net
    StepRule rule
    void* params
    void* grads
    void* state
    Py_ssize_t n_params
    double alpha, l1_ratio, clip_norm
    int n_threads
    void** acts
    void** deltas
    void** pres               # pre-activations of the layers that need them
    void* partials            # split-K partial products (LayerBuffers)
    Py_ssize_t partials_room
    double* loss_terms        # each row's term of a batch's loss
    bint dropout              # the network has dropout
    uint32_t seed             # of the dropout masks
    GradientHook gradient_hook  # set: every step is collective
    void* hook_data
    bint layer_events         # call the hook as each layer's gradient is final
    int hook_failed           # a per-layer call of the hook failed
    double local_sw           # the weight of this process's share of the step
    bint is_float
    Py_ssize_t row_offset     # of this process's rows in the whole batch


# A gather of at least this many elements is cut into a block per core: its
# rows lie anywhere in X, and a single thread waits on memory for each.
cdef Py_ssize_t GATHER_PARALLEL_MIN = 1 << 15


cdef void _gather_x(const Epoch* d, Py_ssize_t start, Py_ssize_t m,
                    int n_threads, const floating* tag) noexcept nogil:
    """The batch's m rows of a dense X into the gather buffer; a copy, so
    its blocks change no result."""
    cdef Task task
    cdef int parts = 1
    memset(&task, 0, sizeof(Task))
    task.kind, task.A, task.out = TASK_GATHER, d.X, d.Xg
    task.index, task.fan_in, task.extent = d.order + start, <int> d.n_in, m
    if m * d.n_in >= GATHER_PARALLEL_MIN:
        parts = <int> min(<Py_ssize_t> max_column_blocks, m)
    task.width = block_width(m, parts, 1)
    run_blocks(&task, parts, n_threads, tag)


cdef void _load_batch(const Epoch* d, Py_ssize_t step, Batch* b,
                      int n_threads, const floating* tag) noexcept nogil:
    """Batch ``step`` of the epoch: gathered, read through row pointers, or a
    slice of X when the rows are visited in order; a sparse X's rows are
    named, not copied."""
    cdef Py_ssize_t start = step * d.batch_size, i, r
    # past the end of the data (a process whose share ran out in a
    # collective epoch): an empty batch
    cdef Py_ssize_t m = max(0, min(d.batch_size, d.n - start))
    cdef const floating* X = <const floating*> d.X
    cdef const floating* Y = <const floating*> d.Y
    cdef const floating* sw = <const floating*> d.sw
    cdef floating* Xg = <floating*> d.Xg
    cdef floating* Yg = <floating*> d.Yg
    cdef floating* swg = <floating*> d.swg
    cdef bint sparse = d.xs.indptr != NULL
    b.m, b.X_rows, b.xs, b.row0 = <int> m, NULL, d.xs, 0
    if sparse:
        b.xs.rows = d.order + start if d.order != NULL else NULL
        b.xs.row0 = start
    if m == 0:
        b.X, b.Y, b.sw, b.sw_sum = NULL, NULL, NULL, 0.0
        return
    if d.order != NULL:
        if not d.direct and not sparse:
            _gather_x(d, start, m, n_threads, tag)
        for i in range(m):
            r = d.order[start + i]
            if d.direct:
                d.row_ptrs[i] = <size_t> (X + r * d.n_in)
            memcpy(Yg + i * d.ky, Y + r * d.ky, d.ky * sizeof(floating))
            swg[i] = sw[r] if sw != NULL else 1
        b.X, b.Y, b.sw = Xg, Yg, (swg if sw != NULL else NULL)
        if d.direct:
            b.X, b.X_rows = NULL, <const void* const*> d.row_ptrs
    else:
        b.X, b.Y = X + start * d.n_in if not sparse else NULL, Y + start * d.ky
        b.sw = sw + start if sw != NULL else NULL
    b.sw_sum = _weight_sum(<const floating*> b.sw, m)


cdef inline double _weight_sum(const floating* sw, Py_ssize_t m) noexcept nogil:
    """Sum of m sample weights, in order; m for unit weights (sw NULL)."""
    cdef double total = 0.0
    cdef Py_ssize_t i
    if sw == NULL:
        return m
    for i in range(m):
        total += sw[i]
    return total


cdef double _forward_loss(const StepContext* c, const Batch* b,
                          const floating* params, const Pass* ps) noexcept nogil:
    """Data loss of the batch; its gradient w.r.t. the raw output into the
    last layer's deltas."""
    cdef const Net* net = c.net
    cdef int L = net.n_layers
    cdef floating** acts = <floating**> c.acts
    cdef floating** deltas = <floating**> c.deltas
    forward_pass(net, params, <const floating*> b.X,
                 <const floating* const*> b.X_rows, sparse_or_null(&b.xs), acts,
                 b.m, c.n_threads, False, ps)
    return _batch_loss(c, b, acts[L - 1], deltas[L - 1])


# A batch's loss is computed in row blocks when it has at least this many
# outputs: the softmax's exp and log cost ~0.15 us per row of 10 classes, on
# the calling thread while the other threads wait.
cdef Py_ssize_t LOSS_PARALLEL_MIN = 1 << 10


cdef double _batch_loss(const StepContext* c, const Batch* b, const floating* Z,
                        floating* G) noexcept nogil:
    """``loss_gradient`` of the batch's raw outputs Z into G, in row blocks.

    Each row's term is computed alone (``loss_row``) and the terms are added
    in row order here, so the loss has the same bits for any blocks: the
    blocks may follow the thread count."""
    cdef Py_ssize_t n_out = c.net.sizes[c.net.n_layers], i
    cdef double total = 0.0
    cdef int parts = 1
    cdef Task task
    memset(&task, 0, sizeof(Task))
    task.kind, task.net, task.A, task.out = TASK_LOSS_ROWS, c.net, Z, G
    task.Y, task.sw, task.sw_sum = b.Y, b.sw, b.sw_sum
    task.fan_out, task.extent, task.terms = <int> n_out, b.m, c.loss_terms
    if b.m * n_out >= LOSS_PARALLEL_MIN:
        parts = <int> min(<Py_ssize_t> min(c.n_threads, max_column_blocks), b.m)
    task.width = block_width(b.m, parts, 1)
    run_blocks(&task, parts, c.n_threads, Z)
    for i in range(b.m):
        total += c.loss_terms[i]
    return total


cdef double _whole_gradient_update(StepContext* c, const Batch* b,
                                   floating* params, const Pass* ps) noexcept nogil:
    """The step when it needs the whole gradient before any update: backward,
    clipping, one optimizer pass. Returns the penalty."""
    cdef floating* grads = <floating*> c.grads
    backward_pass(c.net, params, grads, <const floating*> b.X,
                  sparse_or_null(&b.xs), b.m, <floating**> c.acts,
                  <floating**> c.deltas, c.n_threads, ps)
    return _clipped_update(c, params, grads)


cdef double _clipped_update(StepContext* c, floating* params,
                            floating* grads) noexcept nogil:
    """Clip the whole gradient (``clip_norm``), then one optimizer pass;
    returns the penalty."""
    cdef Py_ssize_t n_weights = c.net.b_off[0]
    cdef double norm
    c.rule.gscale = 1.0
    if c.clip_norm > 0:
        norm = sqrt(gradient_norm_sq(params, grads, c.n_params, n_weights,
                                     c.rule.l2, c.rule.l1, c.n_threads))
        if norm > c.clip_norm:
            c.rule.gscale = c.clip_norm / (norm + 1e-6)
    return optimizer_step(&c.rule, params, grads, <floating*> c.state,
                          c.n_params, n_weights, c.n_threads)


cdef bint _train_step(StepContext* c, const Batch* b, double lr, long t,
                      double* objective, const floating* tag) noexcept nogil:
    """One optimizer step on the batch; False (nothing applied) when its
    loss is not finite. ``objective`` gets loss + penalty before the step."""
    cdef floating* params = <floating*> c.params
    cdef Pass ps
    ps.pres, ps.dropout, ps.row0 = c.pres, c.dropout, 0
    ps.partials, ps.partials_room = c.partials, c.partials_room
    # the masks of step t: a fit reproduces them, whatever the threads
    ps.key = mix_key(c.seed, <uint64_t> t)
    cdef double data_loss = _forward_loss(c, b, params, &ps), penalty
    if not isfinite(data_loss):
        return False
    c.rule.lr, c.rule.t = lr, t
    c.rule.l2 = c.alpha * (1.0 - c.l1_ratio) / b.sw_sum
    c.rule.l1 = c.alpha * c.l1_ratio / b.sw_sum
    if c.clip_norm > 0:
        penalty = _whole_gradient_update(c, b, params, &ps)
    else:
        c.rule.gscale = 1.0
        penalty = backward_update_pass(
            c.net, params, <floating*> c.grads, <floating*> c.state,
            <const floating*> b.X, <const floating* const*> b.X_rows,
            sparse_or_null(&b.xs), b.m, <floating**> c.acts, <floating**> c.deltas,
            &c.rule, c.n_threads, &ps)
    objective[0] = data_loss + penalty
    return True


cdef inline void _scale(floating* x, Py_ssize_t n, double factor) noexcept nogil:
    """x *= factor (nothing for 1: exact either way)."""
    cdef Py_ssize_t i
    cdef floating f = <floating> factor
    if factor != 1.0:
        for i in range(n):
            x[i] *= f


cdef void _layer_done(void* data, int l) noexcept nogil:
    """``backward_pass``'s ``done`` in a collective step with per-layer
    events (``data``: the StepContext): hand layer l's gradient to the hook."""
    cdef StepContext* c = <StepContext*> data
    if c.gradient_hook(c.hook_data, l, c.grads, c.n_params + REDUCE_TAIL,
                       c.is_float) != 0:
        c.hook_failed = 1


cdef StepStatus _collective_step(StepContext* c, const Batch* b, double lr,
                                 long t, double* objective, double* weight,
                                 const floating* tag) noexcept nogil:
    """One step of data-parallel training: this process's share ``b`` of the
    batch (possibly empty), the gradient of the whole batch, one update.

    The share's loss and gradient are its weighted sums (the loss kernel
    divides by 1, not by the share's weight sum); with that weight sum, the
    loss and a flag for a loss that is not finite (the buffer's tail), the
    hook sums them over the processes; the sum divided by the whole batch's
    weight is the gradient of the whole batch's loss (the division is the
    update's gradient scale, or a pass before clipping). The penalty is
    scaled by the whole batch's weight, so every process applies the same
    update to the same parameters. Every process calls the hook the same
    number of times in every step, whatever its share held: the decisions to
    skip (no weight anywhere) or stop (a loss not finite anywhere) are taken
    from the sums. ``objective`` and ``weight`` get the whole batch's
    objective (before the update) and weight."""
    cdef floating* params = <floating*> c.params
    cdef floating* grads = <floating*> c.grads
    cdef floating* tail = grads + c.n_params
    cdef const Net* net = c.net
    cdef int L = net.n_layers
    cdef double data_loss = 0.0, sw, penalty
    cdef bint finite = True
    cdef int l
    cdef Pass ps
    ps.pres, ps.dropout, ps.row0 = c.pres, c.dropout, c.row_offset
    ps.partials, ps.partials_room = c.partials, c.partials_room
    # the masks of step t with the rows numbered within the whole batch: those
    # of one process training on the whole batch
    ps.key = mix_key(c.seed, <uint64_t> t)
    c.local_sw, c.hook_failed = (b.sw_sum if b.m > 0 else 0.0), 0
    if c.local_sw > 0:
        forward_pass(net, params, <const floating*> b.X,
                     <const floating* const*> b.X_rows, sparse_or_null(&b.xs),
                     <floating**> c.acts, b.m, c.n_threads, False, &ps)
        # the weighted sum: the loss and its gradient times the share's weight
        data_loss = loss_gradient(net.loss, (<floating**> c.acts)[L - 1],
                                  <const floating*> b.Y, <const floating*> b.sw,
                                  1.0, b.m, net.sizes[L], net.loss_param,
                                  (<floating**> c.deltas)[L - 1])
        finite = isfinite(data_loss)
    if c.local_sw > 0 and finite:
        if c.layer_events:
            backward_pass(net, params, grads, <const floating*> b.X,
                          sparse_or_null(&b.xs), b.m, <floating**> c.acts,
                          <floating**> c.deltas, c.n_threads, &ps,
                          _layer_done, c)
        else:
            backward_pass(net, params, grads, <const floating*> b.X,
                          sparse_or_null(&b.xs), b.m, <floating**> c.acts,
                          <floating**> c.deltas, c.n_threads, &ps)
    else:
        # nothing to contribute, but the same hook calls as every process
        memset(grads, 0, c.n_params * sizeof(floating))
        data_loss = 0.0
        if c.layer_events:
            for l in range(c.net.n_layers - 1, -1, -1):
                _layer_done(c, l)
    tail[0] = <floating> c.local_sw
    tail[1] = <floating> data_loss
    tail[2] = 0 if finite else 1
    if (c.gradient_hook(c.hook_data, -1, grads, c.n_params + REDUCE_TAIL,
                        c.is_float) != 0 or c.hook_failed):
        return STEP_STOPPED
    sw = tail[0]
    if tail[2] != 0 or not isfinite(sw):
        return STEP_STOPPED
    if not sw > 0:
        return STEP_EMPTY
    c.rule.lr, c.rule.t = lr, t
    if c.clip_norm > 0:
        _scale(grads, c.n_params, 1.0 / sw)
        c.rule.l2 = c.alpha * (1.0 - c.l1_ratio) / sw
        c.rule.l1 = c.alpha * c.l1_ratio / sw
        penalty = _clipped_update(c, params, grads)
    else:
        # (sum + alpha w) / W: the update divides, no pass over the gradient
        c.rule.l2 = c.alpha * (1.0 - c.l1_ratio)
        c.rule.l1 = c.alpha * c.l1_ratio
        c.rule.gscale = 1.0 / sw
        penalty = optimizer_step(&c.rule, params, grads, <floating*> c.state,
                                 c.n_params, net.b_off[0], c.n_threads) / sw
    objective[0] = tail[1] / sw + penalty
    weight[0] = sw
    return STEP_APPLIED


cdef Py_ssize_t _run_steps(StepContext* c, const Epoch* d, Py_ssize_t first,
                           Py_ssize_t last, const double* lrs, long t0,
                           double* sums, Py_ssize_t* stopped,
                           const floating* tag) noexcept nogil:
    """Batches first..last-1 of the epoch; returns the steps taken and adds
    objective * weight and weight of each into sums[0], sums[1]. A batch whose
    objective is not finite ends the run: ``stopped`` gets its index (else
    -1), so the caller knows the rest of the range was not trained."""
    cdef Py_ssize_t step, n_steps = 0
    cdef Batch b
    cdef double objective, weight
    cdef StepStatus status
    stopped[0] = -1
    for step in range(first, last):
        _load_batch(d, step, &b, c.n_threads, tag)
        if c.gradient_hook != NULL:
            # every process steps, whatever its share holds
            status = _collective_step(c, &b, lrs[step], t0 + n_steps + 1,
                                      &objective, &weight, tag)
        elif not b.sw_sum > 0:
            status = STEP_EMPTY  # a batch of zero weight carries no gradient
        elif _train_step(c, &b, lrs[step], t0 + n_steps + 1, &objective, tag):
            status, weight = STEP_APPLIED, b.sw_sum
        else:
            status = STEP_STOPPED
        if status == STEP_EMPTY:
            continue
        if status == STEP_STOPPED:
            stopped[0] = step
            break
        n_steps += 1
        sums[0] += objective * weight
        sums[1] += weight
        if not isfinite(objective):
            stopped[0] = step
            break
    return n_steps


# A full batch (``Trainer.objective_gradient``) is split into blocks of at
# least this many rows, at most one per core: each block's forward, loss and
# backward run on one thread into the block's own gradient buffer, and the
# buffers are added in block order. Column blocks alone would leave one thread
# idle on the narrow layers full-batch fits are used for.
cdef Py_ssize_t OBJECTIVE_MIN_ROWS = 256


cdef double objective_rows(const Task* task, int t,
                           const floating* tag) noexcept nogil:
    """Block t of a full batch: its loss, and its gradient into the
    block's buffer (``TASK_OBJECTIVE_ROWS``)."""
    cdef const Batch* b = (<const Batch*> task.batches) + t
    cdef const Net* net = task.net
    cdef const floating* params = <const floating*> task.params
    cdef floating** acts = <floating**> task.acts + 3 * t * MAX_LAYERS
    cdef floating** deltas = acts + MAX_LAYERS
    cdef int L = net.n_layers
    cdef double loss
    cdef Pass ps = task.ps[0]
    ps.pres, ps.row0 = <void**> (acts + 2 * MAX_LAYERS), b.row0
    forward_pass(net, params, <const floating*> b.X, NULL,
                 sparse_or_null(&b.xs), acts, b.m, 0, False, &ps)
    loss = loss_gradient(net.loss, acts[L - 1], <const floating*> b.Y,
                         <const floating*> b.sw, b.sw_sum, b.m, net.sizes[L],
                         net.loss_param, deltas[L - 1])
    backward_pass(net, params, <floating*> task.block_grads[t],
                  <const floating*> b.X, sparse_or_null(&b.xs), b.m, acts,
                  deltas, 0, &ps)
    return loss


cdef int _bind_input(X, const floating** dense, SparseRows* xs,
                     const floating* tag) except -1:
    """Point ``dense`` at the rows of a C-contiguous X of ``tag``'s dtype
    (NULL when it has none), or ``xs`` at the rows of a CSRInput (``dense``
    NULL then). X must outlive the pointers."""
    cdef const floating[:, ::1] view
    xs[0] = sparse_rows_of(X, tag)
    dense[0] = NULL
    if xs.indptr == NULL:
        view = X
        if view.shape[0]:
            dense[0] = &view[0, 0]
    return 0


cdef class LayerBuffers:
    """Activation and delta buffers of every layer for up to ``rows`` rows,
    pre-activation buffers for the layers whose activation needs them
    (``pres[l]`` NULL for the others), a batch's per-row loss terms, and
    room for the partial products of a split-K forward (NULL when no layer
    is split at ``rows`` rows)."""
    cdef object storage
    cdef void** acts
    cdef void** deltas
    cdef void** pres
    cdef void* partials
    cdef Py_ssize_t partials_room
    cdef object partials_storage
    cdef double* loss_terms     # a batch's per-row loss terms (rows)
    cdef object terms_storage
    cdef readonly Py_ssize_t rows

    def __cinit__(self, const Py_ssize_t[::1] sizes, Py_ssize_t rows, dtype,
                  const int[::1] activations):
        cdef Py_ssize_t L = sizes.shape[0] - 1, l, total = 0, off = 0
        cdef char* base
        cdef Py_ssize_t itemsize = np.dtype(dtype).itemsize
        cdef Py_ssize_t split = 0
        self.rows = rows
        for l in range(L):
            total += (3 if needs_pre(activations[l]) else 2) * rows * sizes[l + 1]
            if rows <= SMALL_BATCH:
                split = max(split, (weight_row_blocks(rows, sizes[l], sizes[l + 1], 1)
                                    - 1) * rows * sizes[l + 1])
        self.partials, self.partials_room = NULL, split
        if split > 0:
            self.partials_storage = aligned_empty(split, dtype)
            self.partials = <void*> <Py_ssize_t> self.partials_storage.ctypes.data
        self.storage = np.empty(max(total, 1), dtype=dtype)
        self.terms_storage = np.empty(max(rows, 1), dtype=np.float64)
        self.loss_terms = <double*> <Py_ssize_t> self.terms_storage.ctypes.data
        self.acts = <void**> calloc(L, sizeof(void*))
        self.deltas = <void**> calloc(L, sizeof(void*))
        self.pres = <void**> calloc(L, sizeof(void*))
        if self.acts == NULL or self.deltas == NULL or self.pres == NULL:
            raise MemoryError()
        base = <char*> <Py_ssize_t> self.storage.ctypes.data
        for l in range(L):
            self.acts[l] = base + off * itemsize
            off += rows * sizes[l + 1]
            self.deltas[l] = base + off * itemsize
            off += rows * sizes[l + 1]
            if needs_pre(activations[l]):
                self.pres[l] = base + off * itemsize
                off += rows * sizes[l + 1]

    def __dealloc__(self):
        free(self.acts)
        free(self.deltas)
        free(self.pres)


cdef class Network:
    """A dense network over one flat parameter buffer.

    Every weight matrix comes first (``W_l`` of shape ``(sizes[l],
    sizes[l + 1])``, C order), then every bias; ``w_off``/``b_off`` are their
    offsets. The last layer is linear: its output is the raw input of the
    loss, which owns the output transform.

    Parameters
    ----------
    sizes : array of intp, shape (n_layers + 1,)
        Layer widths, input first.
    activations : array of int32, shape (n_layers,)
        Activation id (``ACTIVATIONS``) of each layer; the last must be
        ``'identity'``.
    loss : int
        Loss id (``LOSS_KINDS``).
    loss_param : float or array of float, shape (sizes[-1],), default=0
        The loss's parameter, one value or one per output column
        (``loss_parameters``): Huber's delta, the label smoothing, the quantile.
    dropout : array of float64, shape (n_layers,), default=None
        Dropout rate of each layer's outputs in training, in [0, 1); the last
        must be 0. None: no dropout.
    slopes : array of float64, shape (n_layers,), default=None
        Negative slope of each ``leaky_relu`` layer (others ignore theirs).
        None: 0.01 everywhere.

    Raises
    ------
    ValueError
        If the widths, activations, loss, loss parameter, dropout rates or
        slopes are not a network's.
    """
    cdef Net net
    cdef readonly object sizes, w_off, b_off, activations, dropout, slopes
    cdef readonly Py_ssize_t n_params, n_weights, n_layers
    cdef readonly int loss
    cdef readonly object loss_param

    def __cinit__(self, sizes, activations, int loss, loss_param=0.0,
                  dropout=None, slopes=None):
        self.sizes = np.array(sizes, dtype=np.intp)
        self.activations = np.array(activations, dtype=np.intc)
        if self.sizes.ndim != 1 or not 2 <= self.sizes.shape[0] <= MAX_LAYERS + 1:
            raise ValueError(f"a network has 1 to {MAX_LAYERS} layers")
        if (self.sizes < 1).any():
            raise ValueError(f"layer widths must be positive, got {self.sizes}")
        self.n_layers = self.sizes.shape[0] - 1
        if (self.activations.shape != (self.n_layers,)
                or not set(self.activations.tolist()) <= set(ACTIVATIONS.values())
                or self.activations[self.n_layers - 1] != IDENTITY):
            raise ValueError("activations: one known id per layer, the last "
                             "one 'identity'")
        if loss not in LOSS_KINDS.values():
            raise ValueError(f"unknown loss id {loss}")
        self.dropout = np.zeros(self.n_layers) if dropout is None else (
            np.array(dropout, dtype=np.float64))
        if (self.dropout.shape != (self.n_layers,)
                or not ((self.dropout >= 0) & (self.dropout < 1)).all()
                or self.dropout[self.n_layers - 1] != 0):
            raise ValueError("dropout: one rate in [0, 1) per layer, the last "
                             "one 0")
        self.slopes = np.full(self.n_layers, LEAKY_SLOPE) if slopes is None else (
            np.array(slopes, dtype=np.float64))
        if self.slopes.shape != (self.n_layers,) or not np.isfinite(self.slopes).all():
            raise ValueError("slopes: one finite slope per layer")
        # the flat buffer's layout has one definition
        layout = Layout(self.sizes)
        self.w_off, self.b_off = layout.w_off, layout.b_off
        self.n_weights, self.n_params = layout.n_weights, layout.n_params
        self.loss = loss
        self.loss_param = loss_parameters(loss, loss_param, self.sizes[self.n_layers])
        # immutable, so that one Network may serve many estimators and threads
        for array in (self.sizes, self.activations, self.dropout, self.slopes,
                      self.w_off, self.b_off):
            array.flags.writeable = False
        self._point_net()

    cdef void _point_net(self):
        cdef const Py_ssize_t[::1] sizes = self.sizes, w_off = self.w_off
        cdef const Py_ssize_t[::1] b_off = self.b_off
        cdef const int[::1] acts = self.activations
        cdef const double[::1] dropout = self.dropout, slopes = self.slopes
        cdef const double[::1] loss_param = self.loss_param
        self.net.n_layers = <int> self.n_layers
        self.net.dropout, self.net.slopes = &dropout[0], &slopes[0]
        self.net.sizes, self.net.w_off, self.net.b_off = &sizes[0], &w_off[0], &b_off[0]
        self.net.activations = &acts[0]
        self.net.loss, self.net.loss_param = self.loss, &loss_param[0]

    @property
    def has_dropout(self):
        """Whether any layer drops units in training."""
        return bool((self.dropout > 0).any())

    @property
    def n_targets(self):
        """Columns of the encoded targets: 1 (class index) for softmax
        cross-entropy, else the output width."""
        return 1 if self.loss == SOFTMAX_CROSS_ENTROPY else int(self.sizes[-1])

    def check_params(self, params):
        """Raise ValueError unless ``params`` is a flat buffer of this network."""
        if params.ndim != 1 or params.shape[0] != self.n_params:
            raise ValueError(f"the parameter buffer has {params.shape} entries, "
                             f"the network needs ({self.n_params},)")

    def check_data(self, X, Y=None, sample_weight=None):
        """Raise ValueError unless X (and Y, sample_weight) fit this network."""
        if X.shape[1] != self.sizes[0]:
            raise ValueError(f"X has {X.shape[1]} columns, the network "
                             f"{self.sizes[0]} inputs")
        if Y is None:
            return
        if Y.shape[0] != X.shape[0] or Y.shape[1] != self.n_targets:
            raise ValueError(f"Y has shape {Y.shape}, expected "
                             f"({X.shape[0]}, {self.n_targets})")
        if sample_weight is not None and sample_weight.shape[0] not in (0, X.shape[0]):
            raise ValueError("sample_weight must be empty or have one entry per row")
        if self.loss == SOFTMAX_CROSS_ENTROPY and Y.shape[0]:
            # the kernel indexes the output row by the class index
            classes = np.asarray(Y[:, 0])
            if not ((classes >= 0) & (classes < self.sizes[-1])
                    & (classes == np.floor(classes))).all():
                raise ValueError(f"class indices must be integers in "
                                 f"[0, {self.sizes[-1]})")

    def forward(self, const floating[::1] params, X, floating[:, ::1] out,
                Py_ssize_t chunk_size, int n_threads):
        """Raw output (before the loss's output transform) for every row of X.

        IN: X (n, sizes[0]), C-contiguous or a CSRInput. OUT: out (n, sizes[-1]). Chunks of
        ``chunk_size`` rows go to the threads whole; memory beyond ``out`` is
        2 * chunk_size * (widest hidden layer) per thread, whatever n is.
        """
        cdef unsigned int mode
        cdef Py_ssize_t n = X.shape[0], width = 1, n_chunks, l
        cdef int n_workers
        cdef const floating* X_dense
        cdef SparseRows xs
        self.check_params(params)
        _bind_input(X, &X_dense, &xs, &params[0])
        self.check_data(X)
        if out.shape[0] != n or out.shape[1] != self.sizes[self.n_layers]:
            raise ValueError("out must have shape (n_rows, n_outputs)")
        if n == 0:
            return
        for l in range(1, self.n_layers):
            width = max(width, <Py_ssize_t> self.sizes[l])
        chunk_size = max(1, min(chunk_size, n))
        n_chunks = (n + chunk_size - 1) // chunk_size
        n_workers = <int> max(1, min(<Py_ssize_t> n_threads, n_chunks))
        buf_np = np.empty((n_workers, 2 * chunk_size * width), dtype=np.asarray(params).dtype)
        cdef floating[:, ::1] buf = buf_np
        slots_np = np.empty(n_workers * MAX_LAYERS, dtype=np.uintp)
        cdef size_t[::1] slots = slots_np
        with nogil:
            mode = ff_flush_denormals()
            forward_rows(&self.net, &params[0], X_dense, sparse_or_null(&xs),
                         &out[0, 0], n,
                         chunk_size, &buf[0, 0], width, <void**> &slots[0],
                         n_workers)
            ff_restore_fp_mode(mode)


cdef class Trainer:
    """The buffers and the step that train a Network, built once per fit.

    Owns the gradient buffer, the activation and delta buffers of a batch,
    the gather buffer of shuffled batches and the optimizer state; the
    parameters stay with the caller (the estimator's flat buffer), passed to
    every call.

    Parameters
    ----------
    network : Network
    optimizer : int
        Update rule id (``OPTIMIZER_KINDS``).
    hyper : array of float64
        The rule's hyperparameters, in the order of ``_optim.pxi``.
    state : ndarray of shape (n_state, n_params)
        Optimizer state (fresh or resumed), of the parameters' dtype; the
        Trainer updates it in place (``trainer.state``).
    batch_size : int
        Rows of the largest batch a call will see.
    alpha, l1_ratio : float
        Penalty ``alpha * ((1 - l1_ratio) / 2 ||W||^2 + l1_ratio ||W||_1) /
        sw_batch`` on weights only (scikit-learn's scaling).
    clip_norm : float
        Clip the global gradient norm to this value (0 = off).
    n_threads : int
    dropout_seed : int
        Key of the dropout masks (32 bits): with the step number, the layer,
        the row's place in the batch and the unit, it decides every mask.
    ema_decay : float
        Decay of an exponential moving average of the parameters, updated
        after every step in the optimizer pass (0: none).
    average : ndarray of shape (n_params,), or None
        The moving average (fresh or resumed), of the parameters' dtype;
        updated in place (``trainer.average``). Needed when ``ema_decay`` > 0.

    Notes
    -----
    Gradient hook: ``StepContext.gradient_hook``, when set, makes every step
    collective (``_collective_step``, the unfused path): it runs after the
    gradient of the process's share of the batch is computed and before any
    update, and must leave in ``reduce_buffer`` its sum over the processes.
    ``set_reducer`` sets it to call a Python object with the GIL.
    """
    cdef readonly Network network
    cdef readonly object state, dtype, grads, hyper, average
    cdef readonly Py_ssize_t batch_size
    cdef readonly double alpha, l1_ratio, clip_norm
    cdef readonly int optimizer, n_threads
    cdef readonly uint32_t dropout_seed
    cdef readonly double ema_decay
    cdef LayerBuffers batch_buffers, full_buffers
    cdef object gathered, row_ptrs, block_grads
    cdef readonly object reduce_buffer, reducer
    cdef readonly Py_ssize_t epoch_batches
    cdef object reducer_error
    cdef StepContext ctx

    def __cinit__(self, Network network, int optimizer, hyper, state,
                  Py_ssize_t batch_size, double alpha=0.0, double l1_ratio=0.0,
                  double clip_norm=0.0, int n_threads=1, uint32_t dropout_seed=0,
                  double ema_decay=0.0, average=None):
        self.network = network
        self.hyper = np.array(hyper, dtype=np.float64)
        self.state = state
        self.dtype = np.asarray(state).dtype
        if self.dtype not in (np.float32, np.float64):
            raise ValueError("state must be float32 or float64")
        check_rule(optimizer, self.hyper, state, network.n_params)
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        if not (alpha >= 0 and 0 <= l1_ratio <= 1 and clip_norm >= 0):
            raise ValueError("alpha and clip_norm must be >= 0, l1_ratio in [0, 1]")
        self.optimizer, self.batch_size = optimizer, batch_size
        self.alpha, self.l1_ratio, self.clip_norm = alpha, l1_ratio, clip_norm
        self.n_threads = max(1, n_threads)
        self.dropout_seed = dropout_seed
        if not 0 <= ema_decay < 1:
            raise ValueError("ema_decay must be in [0, 1)")
        if ema_decay > 0 and not (
                isinstance(average, np.ndarray) and average.dtype == self.dtype
                and average.shape == (network.n_params,)
                and average.flags.c_contiguous and average.flags.writeable):
            raise ValueError(f"average must be a writeable ({network.n_params},) "
                             f"array of {self.dtype} when ema_decay > 0")
        self.ema_decay, self.average = ema_decay, (average if ema_decay > 0 else None)
        # 64-byte aligned as the parameters: the kernels write rows of dW.
        # A collective step appends its tail (REDUCE_TAIL) to the gradient.
        self.reduce_buffer = aligned_empty(network.n_params + REDUCE_TAIL, self.dtype)
        self.reduce_buffer[...] = 0
        self.grads = self.reduce_buffer[:network.n_params]
        self.batch_buffers = LayerBuffers(network.sizes, batch_size, self.dtype,
                                          network.activations)
        self.row_ptrs = np.empty(batch_size, dtype=np.uintp)
        self._init_context()

    cdef void _init_context(self):
        cdef const double[::1] hyper = self.hyper
        memset(&self.ctx, 0, sizeof(StepContext))
        self.ctx.net = &self.network.net
        self.ctx.rule.kind, self.ctx.rule.hyper = self.optimizer, &hyper[0]
        self.ctx.rule.gscale, self.ctx.rule.stride = 1.0, self.network.n_params
        self.ctx.n_params = self.network.n_params
        self.ctx.alpha, self.ctx.l1_ratio = self.alpha, self.l1_ratio
        self.ctx.clip_norm, self.ctx.n_threads = self.clip_norm, self.n_threads
        self.ctx.dropout, self.ctx.seed = self.network.has_dropout, self.dropout_seed
        self.ctx.is_float = self.dtype == np.float32

    def set_reducer(self, reducer, Py_ssize_t row_offset=0,
                    Py_ssize_t epoch_batches=0, bint layer_events=False):
        """Make every step collective, for data-parallel training: the step
        calls ``reducer(layer)`` with the GIL.

        Parameters
        ----------
        reducer : callable or None
            Called with -1 when ``reduce_buffer`` (the gradient of this
            process's share of the batch times its weight sum, then that
            weight sum, the loss times it and 1 if the loss was not finite)
            is complete: it must replace the buffer with its sum over the
            processes. With ``layer_events``, first called with each layer's
            index as soon as that layer's part of the buffer is final (last
            layer first; the layer's slices of the buffer are given by the
            network's ``w_off`` and ``b_off``). Every process must call it the
            same number of times: the step does, whatever its share holds.
            An exception it raises stops the call (nothing of that step is
            applied) and is raised again by ``run_batches``. None: back to
            single-process steps.
        row_offset : int
            The number of this process's first row within the whole batch:
            the dropout masks of its rows.
        epoch_batches : int
            Batches in an epoch of every process: ``run_batches`` takes ranges
            up to it, the batches past this process's rows being empty (also
            without a reducer: local steps of a data-parallel fit).
        layer_events : bool
        """
        if row_offset < 0 or epoch_batches < 0:
            raise ValueError("row_offset and epoch_batches must be >= 0")
        self.reducer, self.reducer_error = reducer, None
        self.epoch_batches = epoch_batches
        self.ctx.gradient_hook = NULL
        if reducer is not None:
            self.ctx.gradient_hook = _python_reducer
        self.ctx.hook_data = <void*> self
        self.ctx.row_offset = row_offset if reducer is not None else 0
        self.ctx.layer_events = layer_events and reducer is not None

    def scale_penalty(self, double factor):
        """Train with the penalty ``alpha * factor`` (the local steps of a
        data-parallel fit: ``1 / processes``)."""
        if not factor >= 0:
            raise ValueError("the penalty's factor must be >= 0")
        self.ctx.alpha = self.alpha * factor

    cdef int _call_reducer(self, int layer) noexcept:
        try:
            self.reducer(layer)
        except BaseException as exc:
            self.reducer_error = exc
            return -1
        return 0

    def run_batches(self, floating[::1] params, X, const floating[:, ::1] Y, const floating[::1] sample_weight,
                    const Py_ssize_t[::1] order, Py_ssize_t first,
                    Py_ssize_t last, const double[::1] lrs, long t0,
                    double objective_sum=0.0, double weight_sum=0.0):
        """Train on batches ``first..last-1`` of one epoch; parameters and
        state are updated in place.

        Parameters
        ----------
        params : the flat parameter buffer (INOUT).
        X, Y : inputs (n, sizes[0]), C-contiguous or a CSRInput, and encoded
            targets (n, n_targets).
        sample_weight : (n,), or empty for unit weights.
        order : rows to visit, in order (e.g. a permutation), or empty for
            every row in turn. The epoch's batches are consecutive runs of
            ``batch_size`` of them.
        first, last : the range of batches of the epoch to run.
        lrs : learning rate of each batch of the epoch (indexed by batch).
        t0 : optimizer steps taken before this call.
        objective_sum, weight_sum : the sums of the epoch's earlier calls,
            which this call goes on adding to: the epoch's sums are then the
            same additions in the same order however it is cut into calls.

        Returns
        -------
        objective_sum : objective_sum plus, over the steps of this call, batch
            objective * batch weight sum.
        weight_sum : weight_sum plus the batch weight sums of its steps.
        n_steps : steps taken (batches of zero weight take none).
        stopped_at : -1 if every batch of the range ran; else the batch whose
            objective was not finite, where the call stopped (its step is not
            applied when its loss was not finite; the batches after it are
            not run).
        """
        cdef unsigned int mode
        cdef Epoch d
        cdef double sums[2]
        cdef Py_ssize_t n_steps, stopped
        self._bind(params, X, Y, sample_weight, order, &d)
        if not 0 <= first <= last <= max(self.epoch_batches,
                                         (d.n + self.batch_size - 1) // self.batch_size):
            raise ValueError(f"batches {first}..{last} are not within the epoch")
        if lrs.shape[0] < last or t0 < 0:
            raise ValueError("one learning rate per batch of the epoch, t0 >= 0")
        sums[0], sums[1] = objective_sum, weight_sum
        with nogil:
            # the calling thread's part of the step (loss, batch loads)
            # computes with denormals flushed too, as every block does
            mode = ff_flush_denormals()
            n_steps = _run_steps(&self.ctx, &d, first, last, &lrs[0], t0, sums,
                                 &stopped, &params[0])
            ff_restore_fp_mode(mode)
        if self.reducer_error is not None:
            error, self.reducer_error = self.reducer_error, None
            raise error
        return sums[0], sums[1], n_steps, stopped

    cdef int _bind(self, floating[::1] params, X, const floating[:, ::1] Y, const floating[::1] sample_weight,
                   const Py_ssize_t[::1] order, Epoch* d) except -1:
        """Check one call's arrays and point the step and the epoch at them."""
        cdef floating[:, ::1] state = self.state
        cdef floating[::1] grads = self.grads, gathered, average
        cdef size_t[::1] row_ptrs = self.row_ptrs
        cdef Network net = self.network
        cdef Py_ssize_t rows, x_width, size
        cdef const floating* X_dense
        cdef SparseRows xs
        net.check_params(np.asarray(params))
        _bind_input(X, &X_dense, &xs, &params[0])
        net.check_data(X, np.asarray(Y), np.asarray(sample_weight))
        if order.shape[0] and not (0 <= np.min(order) and np.max(order) < X.shape[0]):
            raise ValueError("order holds rows outside X")
        rows = order.shape[0] if order.shape[0] else X.shape[0]
        if rows == 0:
            raise ValueError("no rows to train on")
        memset(d, 0, sizeof(Epoch))
        d.X, d.xs, d.Y = X_dense, xs, &Y[0, 0]
        d.sw = &sample_weight[0] if sample_weight.shape[0] else NULL
        d.order = &order[0] if order.shape[0] else NULL
        d.n, d.n_in, d.ky, d.batch_size = rows, X.shape[1], Y.shape[1], self.batch_size
        d.direct = (d.order != NULL and X_dense != NULL and self.ctx.clip_norm == 0
                    and self.ctx.gradient_hook == NULL
                    and takes_row_pointers(<int> min(self.batch_size, rows),
                                           floating is float))
        # shuffled batches are gathered here (X only when dense and not read
        # in place), allocated on first need: a sparse X may be 10^5 wide
        x_width = 0 if d.direct or X_dense == NULL else d.n_in
        size = self.batch_size * (x_width + d.ky + 1)
        if self.gathered is None or self.gathered.shape[0] < size:
            self.gathered = np.empty(size, dtype=self.dtype)
        gathered = self.gathered
        d.Xg = &gathered[0]
        d.Yg = &gathered[0] + self.batch_size * x_width
        d.swg = <floating*> d.Yg + self.batch_size * d.ky
        d.row_ptrs = &row_ptrs[0]
        self.ctx.params, self.ctx.grads, self.ctx.state = &params[0], &grads[0], &state[0, 0]
        if self.average is not None:
            average = self.average
            self.ctx.rule.average, self.ctx.rule.ema_decay = &average[0], self.ema_decay
        self.ctx.acts, self.ctx.deltas = self.batch_buffers.acts, self.batch_buffers.deltas
        self.ctx.pres = self.batch_buffers.pres
        self.ctx.partials = self.batch_buffers.partials
        self.ctx.partials_room = self.batch_buffers.partials_room
        self.ctx.loss_terms = self.batch_buffers.loss_terms
        return 0

    def objective_gradient(self, const floating[::1] params, X,
                           const floating[:, ::1] Y,
                           const floating[::1] sample_weight,
                           floating[::1] grads, long dropout_step=-1):
        """Objective of all of X (C-contiguous or a CSRInput) as one batch
        (data loss + penalty) and its full gradient into ``grads``; nothing is
        updated.

        Without dropout unless ``dropout_step`` >= 0: then with the masks of
        that optimizer step for a batch of all of X (rows in order).

        The forward, loss and backward of a training step, over blocks of rows
        (``OBJECTIVE_MIN_ROWS``) that run in parallel; their gradients are
        added in block order, so the result does not depend on the thread
        count. For full-batch optimizers and gradient checks.
        """
        cdef unsigned int mode
        cdef Py_ssize_t n = X.shape[0], n_params = self.network.n_params
        cdef Py_ssize_t width, r0, i, l, k
        cdef int t, n_blocks, L = self.network.n_layers
        cdef const floating* X_dense
        cdef SparseRows xs
        cdef double sw_sum, data_loss = 0.0
        cdef double partial[MAX_COLUMN_BLOCKS]
        cdef Task task
        net = self.network
        net.check_params(np.asarray(params))
        net.check_params(np.asarray(grads))
        _bind_input(X, &X_dense, &xs, &params[0])
        net.check_data(X, np.asarray(Y), np.asarray(sample_weight))
        if n == 0:
            raise ValueError("no rows")
        if self.full_buffers is None or self.full_buffers.rows < n:
            self.full_buffers = LayerBuffers(net.sizes, n, self.dtype,
                                             net.activations)
        n_blocks = <int> max(1, min(<Py_ssize_t> max_column_blocks, n // OBJECTIVE_MIN_ROWS))
        width = (n + n_blocks - 1) // n_blocks
        if self.block_grads is None or self.block_grads.shape[0] < n_blocks - 1:
            self.block_grads = aligned_empty((n_blocks - 1) * n_params, self.dtype).reshape(
                n_blocks - 1, n_params)
        batches_np = np.zeros(n_blocks * sizeof(Batch), dtype=np.uint8)
        slots_np = np.zeros(n_blocks * (3 * MAX_LAYERS + 1), dtype=np.uintp)
        cdef Batch* batches = <Batch*> <Py_ssize_t> batches_np.ctypes.data
        cdef size_t* slots = <size_t*> <Py_ssize_t> slots_np.ctypes.data
        cdef void** block_grads = <void**> (slots + n_blocks * 3 * MAX_LAYERS)
        cdef Pass ps
        memset(&ps, 0, sizeof(Pass))
        if dropout_step >= 0 and net.has_dropout:
            ps.dropout, ps.key = True, mix_key(self.dropout_seed, <uint64_t> dropout_step)
        cdef floating[:, ::1] more_grads = self.block_grads
        cdef const floating* sw = (&sample_weight[0] if sample_weight.shape[0]
                                   else NULL)
        cdef Py_ssize_t ky = Y.shape[1], n_in = X.shape[1]
        sw_sum = _weight_sum(sw, n)
        for t in range(n_blocks):
            r0 = t * width
            batches[t].m = <int> min(width, n - r0)
            batches[t].X = X_dense + r0 * n_in if X_dense != NULL else NULL
            batches[t].xs = xs
            batches[t].xs.row0 = r0
            batches[t].row0 = r0
            batches[t].Y = &Y[0, 0] + r0 * ky
            batches[t].sw = sw + r0 if sw != NULL else NULL
            batches[t].sw_sum = sw_sum
            for l in range(L):
                k = net.sizes[l + 1]
                slots[3 * t * MAX_LAYERS + l] = (
                    <size_t> self.full_buffers.acts[l] + r0 * k * sizeof(floating))
                slots[(3 * t + 1) * MAX_LAYERS + l] = (
                    <size_t> self.full_buffers.deltas[l] + r0 * k * sizeof(floating))
                if self.full_buffers.pres[l] != NULL:
                    slots[(3 * t + 2) * MAX_LAYERS + l] = (
                        <size_t> self.full_buffers.pres[l] + r0 * k * sizeof(floating))
            block_grads[t] = <void*> (&grads[0] if t == 0 else &more_grads[t - 1, 0])
        memset(&task, 0, sizeof(Task))
        task.kind = TASK_OBJECTIVE_ROWS
        task.net, task.params = &self.network.net, <void*> &params[0]
        task.batches, task.acts, task.block_grads = batches, <void**> slots, block_grads
        task.ps = &ps
        task.partial = partial
        with nogil:
            mode = ff_flush_denormals()
            run_blocks(&task, n_blocks, self.n_threads, &params[0])
            for t in range(n_blocks):
                data_loss += partial[t]
            for t in range(1, n_blocks):
                for i in range(n_params):
                    grads[i] += more_grads[t - 1, i]
            ff_restore_fp_mode(mode)
        return data_loss + _add_penalty(params, grads, self.network.n_weights,
                                        self.alpha * (1.0 - self.l1_ratio) / sw_sum,
                                        self.alpha * self.l1_ratio / sw_sum)


cdef int _python_reducer(void* data, int layer, void* grads, Py_ssize_t n,
                         bint is_float) noexcept nogil:
    """The gradient hook of ``Trainer.set_reducer`` (data: the Trainer)."""
    with gil:
        return (<Trainer> data)._call_reducer(layer)


cdef double _add_penalty(const floating[::1] params, floating[::1] grads,
                         Py_ssize_t n_weights, double l2, double l1):
    """Add the penalty's gradient to grads; return its value."""
    cdef double penalty = 0.0
    cdef Py_ssize_t i
    for i in range(n_weights):
        penalty += 0.5 * l2 * params[i] * params[i] + l1 * abs(params[i])
        grads[i] += l2 * params[i] + l1 * ((params[i] > 0) - (params[i] < 0))
    return penalty
