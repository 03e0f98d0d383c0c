# Optimizer updates, in place, over ranges of the flat parameter / gradient /
# state buffers.
#
# ``update_range`` is the one entry to the rules. The training step calls it
# per block of a layer's weight rows, right after their gradient is computed
# and while it is in cache (``dense_backward_update``); when the step needs the
# whole gradient first (clipping, a gradient hook), ``optimizer_step`` calls it
# per block of the whole buffer instead. The coupled penalty (``l2 * w + l1 *
# sign(w)``, weights only) is folded into the gradient in the same pass, which
# also returns the penalty's value ``l2/2 * ||w||^2 + l1 * ||w||_1`` measured
# before the update. Blocks are a function of the lengths only and partial sums
# are added in block order, so the result depends neither on timing nor on the
# number of threads.
#
# Every rule is PyTorch's ``torch.optim`` single-tensor update (maximize=False),
# with ``g`` the effective gradient ``gscale * (grad + l2 * w + l1 * sign(w))``
# and ``t`` the 1-based step count since the state was created:
#
# SGD (hyper = momentum mu, dampening, nesterov; state = buf)
#     b = g if t == 1 else mu * b + (1 - dampening) * g
#     g = g + mu * b if nesterov else b          (only when mu != 0)
#     p = p - lr * g
# Adagrad (hyper = eps, initial_accumulator_value; state = sum)
#     sum = sum + g^2;  p = p - lr * g / (sqrt(sum) + eps)
# RMSprop (hyper = rho, eps, momentum, centered; state = v, g_avg, buf)
#     v = rho * v + (1 - rho) * g^2
#     g_avg = rho * g_avg + (1 - rho) * g;  avg = sqrt(v - g_avg^2) + eps   (centered)
#     avg = sqrt(v) + eps                                                    (otherwise)
#     buf = momentum * buf + g / avg;  p = p - lr * buf                      (momentum > 0)
#     p = p - lr * g / avg                                                   (otherwise)
# Adam (hyper = beta1, beta2, eps, amsgrad, weight_decay; state = m, v, v_max)
#     m = m + (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g^2
#     v_max = max(v_max, v)                                                  (amsgrad)
#     denom = sqrt(v or v_max) / sqrt(1 - beta2^t) + eps
#     p = p - lr / (1 - beta1^t) * m / denom
# AdamW
#     p = p * (1 - lr * weight_decay)   (weights only), then Adam


cdef enum OptimizerKind:
    SGD = 0
    ADAGRAD = 1
    RMSPROP = 2
    ADAM = 3
    ADAMW = 4


cdef struct StepRule:
    # the scalars of one optimizer step, shared by every range it updates
    int kind
    const double* hyper
    double lr
    long t             # 1-based step count
    double l2          # coupled penalty coefficients (weights only)
    double l1
    double gscale      # gradient clipping factor
    Py_ssize_t stride  # distance between the state buffers (n_params)
    void* average      # the exponential moving average of the parameters, or NULL
    double ema_decay


OPTIMIZER_KINDS = {"sgd": SGD, "adagrad": ADAGRAD, "rmsprop": RMSPROP,
                   "adam": ADAM, "adamw": ADAMW}
# Number of state buffers (each of the parameters' length) per rule.
STATE_BUFFERS = {SGD: 1, ADAGRAD: 1, RMSPROP: 3, ADAM: 3, ADAMW: 3}
# Number of hyperparameters each rule reads.
HYPER_LENGTHS = {SGD: 3, ADAGRAD: 2, RMSPROP: 4, ADAM: 5, ADAMW: 5}


def check_rule(int kind, hyper, state, Py_ssize_t n_params):
    """Raise ValueError unless ``hyper`` and ``state`` are what rule ``kind``
    reads for n_params parameters (the kernels trust them)."""
    if kind not in STATE_BUFFERS:
        raise ValueError(f"unknown optimizer id {kind}")
    if np.ndim(hyper) != 1 or np.shape(hyper)[0] != HYPER_LENGTHS[kind]:
        raise ValueError(f"optimizer id {kind} takes {HYPER_LENGTHS[kind]} "
                         f"hyperparameters, got shape {np.shape(hyper)}")
    if not np.isfinite(hyper).all():
        raise ValueError("optimizer hyperparameters must be finite")
    if (np.ndim(state) != 2 or np.shape(state)[0] != STATE_BUFFERS[kind]
            or np.shape(state)[1] != n_params):
        raise ValueError(f"optimizer state must have shape "
                         f"({STATE_BUFFERS[kind]}, {n_params}), got "
                         f"{np.shape(state)}")

# The pass is cut into blocks of at least this many parameters, at most
# MAX_PARAM_BLOCKS of them, 16-aligned: the blocking depends on n only, so the
# penalty's partial sums (added in block order) do not depend on the thread
# count.
cdef Py_ssize_t BLOCK_MIN_PARAMS = 1 << 14
cdef enum:
    MAX_PARAM_BLOCKS = 64
    PARAM_BLOCK_ALIGN = 16


cdef enum:
    LANES = 16


cdef inline double _lane_sum(const floating* x, Py_ssize_t n,
                            bint squares) noexcept nogil:
    """sum x^2 (squares) or sum |x|, in LANES partial sums added in a fixed order.

    The lanes let the compiler vectorise without reordering a reduction, and the
    result depends on n and the values only (not on alignment, unlike BLAS).
    """
    cdef double acc[LANES]
    cdef Py_ssize_t i, j, stop = n - n % LANES
    cdef double total = 0.0, v
    for j in range(LANES):
        acc[j] = 0.0
    for i in range(stop // LANES):
        for j in range(LANES):
            v = x[i * LANES + j]
            acc[j] += v * v if squares else fabs(v)
    for i in range(stop, n):
        v = x[i]
        total += v * v if squares else fabs(v)
    for j in range(LANES):
        total += acc[j]
    return total


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _sign(floating w) noexcept nogil:
    return (w > 0) - (w < 0)


cdef inline bint _all_finite(const floating* x, Py_ssize_t lo,
                             Py_ssize_t hi) noexcept nogil:
    # x - x is NaN for inf and NaN; an integer AND of it vectorises, unlike a
    # floating-point sum. A pass of its own: inside the update loops it stops
    # gcc from vectorising them. The range was just written, so it is in cache.
    cdef Py_ssize_t i
    cdef bint finite = True
    for i in range(lo, hi):
        finite &= (x[i] - x[i]) == 0
    return finite


cdef inline floating _effective_grad(floating g, floating w, floating l2,
                                    floating l1, floating gscale) noexcept nogil:
    # the gradient with the coupled penalty, clipped
    return (g + l2 * w + l1 * _sign(w)) * gscale


cdef inline void _sgd_range(const StepRule* rule, floating* p,
                            const floating* grad, floating* s0, Py_ssize_t lo,
                            Py_ssize_t hi, floating l2, floating l1) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating w, g, b
    # complements like 1 - beta are taken in double, before rounding to the
    # parameters' type: 1 - float32(0.999) is off by 1e-5 relative
    cdef floating mu = <floating> rule.hyper[0]
    cdef floating damp_c = <floating> (1.0 - rule.hyper[1])
    cdef bint nesterov = rule.hyper[2] != 0.0
    cdef floating gscale = <floating> rule.gscale, lr = <floating> rule.lr
    for i in range(lo, hi):
        w = p[i]
        g = _effective_grad(grad[i], w, l2, l1, gscale)
        if mu != 0:
            if rule.t == 1:
                b = g
            else:
                b = mu * s0[i] + damp_c * g
            s0[i] = b
            g = g + mu * b if nesterov else b
        p[i] = w - lr * g


cdef inline void _adagrad_range(const StepRule* rule, floating* p,
                                const floating* grad, floating* s0,
                                Py_ssize_t lo, Py_ssize_t hi, floating l2,
                                floating l1) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating w, g, a
    cdef floating eps = <floating> rule.hyper[0]
    cdef floating gscale = <floating> rule.gscale, lr = <floating> rule.lr
    for i in range(lo, hi):
        w = p[i]
        g = _effective_grad(grad[i], w, l2, l1, gscale)
        a = s0[i] + g * g
        s0[i] = a
        p[i] = w - lr * g / (_sqrt(a) + eps)


cdef inline void _rmsprop_range(const StepRule* rule, floating* p,
                                const floating* grad, floating* state,
                                Py_ssize_t lo, Py_ssize_t hi, floating l2,
                                floating l1) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating w, g, v, m, a, b
    cdef floating* s0 = state
    cdef floating* s1 = state + rule.stride
    cdef floating* s2 = state + 2 * rule.stride
    cdef floating rho = <floating> rule.hyper[0]
    cdef floating rho_c = <floating> (1.0 - rule.hyper[0])
    cdef floating eps = <floating> rule.hyper[1], mu = <floating> rule.hyper[2]
    cdef bint centered = rule.hyper[3] != 0.0
    cdef floating gscale = <floating> rule.gscale, lr = <floating> rule.lr
    for i in range(lo, hi):
        w = p[i]
        g = _effective_grad(grad[i], w, l2, l1, gscale)
        v = rho * s0[i] + rho_c * g * g
        s0[i] = v
        if centered:
            m = rho * s1[i] + rho_c * g
            s1[i] = m
            a = _sqrt(v - m * m) + eps
        else:
            a = _sqrt(v) + eps
        if mu > 0:
            b = mu * s2[i] + g / a
            s2[i] = b
            p[i] = w - lr * b
        else:
            p[i] = w - lr * g / a


cdef inline void _adam_range(const StepRule* rule, floating* p,
                             const floating* grad, floating* state,
                             Py_ssize_t lo, Py_ssize_t hi, floating l2,
                             floating l1, bint decay) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating w, g, m, v, vhat, denom
    cdef floating* s0 = state
    cdef floating* s1 = state + rule.stride
    cdef floating* s2 = state + 2 * rule.stride
    cdef const double* hyper = rule.hyper
    cdef floating b1_c = <floating> (1.0 - hyper[0]), b2 = <floating> hyper[1]
    cdef floating b2_c = <floating> (1.0 - hyper[1]), eps = <floating> hyper[2]
    cdef bint amsgrad = hyper[3] != 0.0
    cdef floating shrink = (<floating> (1.0 - rule.lr * hyper[4])
                            if (rule.kind == ADAMW and decay) else 1)
    cdef floating step_size = <floating> (rule.lr / (1.0 - pow(hyper[0], <double> rule.t)))
    # a multiply by the reciprocal: the divider is this loop's bottleneck
    cdef floating inv_bc2_sqrt = <floating> (1.0 / sqrt(1.0 - pow(hyper[1], <double> rule.t)))
    cdef floating gscale = <floating> rule.gscale
    for i in range(lo, hi):
        w = p[i]
        g = _effective_grad(grad[i], w, l2, l1, gscale)
        w = w * shrink
        m = s0[i] + b1_c * (g - s0[i])
        s0[i] = m
        v = b2 * s1[i] + b2_c * g * g
        s1[i] = v
        vhat = v
        if amsgrad:
            if s2[i] > v:
                vhat = s2[i]
            s2[i] = vhat
        denom = _sqrt(vhat) * inv_bc2_sqrt + eps
        p[i] = w - step_size * (m / denom)


cdef double update_range(const StepRule* rule, floating* params,
                         const floating* grads, floating* state, Py_ssize_t lo,
                         Py_ssize_t hi, bint weights) noexcept nogil:
    """Update params[lo:hi] by ``rule``; the penalty and decoupled decay apply
    when the range holds weights. Returns the penalty value
    ``l2/2 * sum(w^2) + l1 * sum(|w|)`` over the range, before the update, or
    NaN if an updated parameter is not finite: the step's objective then
    says the step failed (a batch's loss can be finite while its gradient
    overflows).

    The one entry to the rules: ``optimizer_step`` calls it per block of the
    flat buffer, and the fused backward per block of a layer's rows, right
    after their gradient is computed, while it is in cache.
    """
    cdef double l2 = rule.l2 if weights else 0.0, l1 = rule.l1 if weights else 0.0
    cdef double penalty_l2 = 0.0, penalty_l1 = 0.0
    if hi <= lo:
        return 0.0
    if l2 != 0.0:
        penalty_l2 = _lane_sum(params + lo, hi - lo, True)
    if l1 != 0.0:
        penalty_l1 = _lane_sum(params + lo, hi - lo, False)
    if rule.kind == SGD:
        _sgd_range(rule, params, grads, state, lo, hi, <floating> l2, <floating> l1)
    elif rule.kind == ADAGRAD:
        _adagrad_range(rule, params, grads, state, lo, hi, <floating> l2,
                       <floating> l1)
    elif rule.kind == RMSPROP:
        _rmsprop_range(rule, params, grads, state, lo, hi, <floating> l2,
                       <floating> l1)
    else:  # ADAM, ADAMW
        _adam_range(rule, params, grads, state, lo, hi, <floating> l2,
                    <floating> l1, weights)
    if not _all_finite(params, lo, hi):
        return NAN
    if rule.average != NULL:
        _ema_range(<floating*> rule.average, params, lo, hi,
                   rule.ema_decay if rule.t > 1 else 0.0)
    return 0.5 * l2 * penalty_l2 + l1 * penalty_l1


cdef inline void _ema_range(floating* average, const floating* params,
                            Py_ssize_t lo, Py_ssize_t hi,
                            double decay) noexcept nogil:
    """average = decay * average + (1 - decay) * params over [lo, hi), after
    the step (Keras's ``use_ema``: decay 0 at the first step, which copies)."""
    cdef Py_ssize_t i
    cdef floating d = <floating> decay, e = <floating> (1.0 - decay)
    for i in range(lo, hi):
        average[i] = d * average[i] + e * params[i]


cdef inline double _update_block(const StepRule* rule, floating* params,
                                 const floating* grads, floating* state,
                                 Py_ssize_t n_weights, Py_ssize_t lo,
                                 Py_ssize_t hi) noexcept nogil:
    # Split the block at the weights / biases boundary: biases are not penalised.
    cdef Py_ssize_t mid = min(max(lo, n_weights), hi)
    # the biases' "penalty" is 0, or NaN for a non-finite update
    return (update_range(rule, params, grads, state, lo, mid, True)
            + update_range(rule, params, grads, state, mid, hi, False))


cdef inline int _param_blocks(Py_ssize_t n) noexcept nogil:
    return <int> max(1, min(n // BLOCK_MIN_PARAMS, <Py_ssize_t> MAX_PARAM_BLOCKS))


cdef inline Task _param_task(int kind, Py_ssize_t n, Py_ssize_t n_weights,
                             int n_blocks, double* partial) noexcept nogil:
    cdef Task task
    memset(&task, 0, sizeof(Task))
    task.kind, task.extent, task.n_weights = kind, n, n_weights
    task.width = block_width(n, n_blocks, PARAM_BLOCK_ALIGN)
    task.partial = partial
    return task


cdef double optimizer_step(const StepRule* rule, floating* params,
                           const floating* grads, floating* state,
                           Py_ssize_t n, Py_ssize_t n_weights,
                           int n_threads) noexcept nogil:
    """One update of all n parameters in place; returns the penalty value.

    IN: grads (n), rule (the step's scalars; rule.stride must be n).
    INOUT: params (n), state (n_state * n, one buffer after another).
    """
    cdef int n_blocks = _param_blocks(n), blk
    cdef double partial[MAX_PARAM_BLOCKS]
    cdef double penalty = 0.0
    cdef Task task = _param_task(TASK_PARAM_UPDATE, n, n_weights, n_blocks,
                                 partial)
    task.rule, task.params, task.grads, task.state = rule, params, grads, state
    run_blocks(&task, n_blocks, n_threads, params)
    for blk in range(n_blocks):
        penalty += partial[blk]
    return penalty


cdef inline double _norm_sq_range(const floating* params, const floating* grads,
                                  Py_ssize_t lo, Py_ssize_t hi, double l2,
                                  double l1) noexcept nogil:
    cdef Py_ssize_t i
    cdef double total = 0.0, g
    for i in range(lo, hi):
        g = grads[i] + l2 * params[i] + l1 * _sign(params[i])
        total += g * g
    return total


cdef inline double _norm_sq_block(const floating* params,
                                  const floating* grads, Py_ssize_t n_weights,
                                  Py_ssize_t lo, Py_ssize_t hi, double l2,
                                  double l1) noexcept nogil:
    # the penalty's gradient applies to the weights only
    cdef Py_ssize_t mid = min(max(lo, n_weights), hi)
    return (_norm_sq_range(params, grads, lo, mid, l2, l1)
            + _norm_sq_range(params, grads, mid, hi, 0.0, 0.0))


cdef double gradient_norm_sq(const floating* params, const floating* grads,
                             Py_ssize_t n, Py_ssize_t n_weights, double l2,
                             double l1, int n_threads) noexcept nogil:
    """Squared global norm of the effective gradient (penalty included)."""
    cdef int n_blocks = _param_blocks(n), blk
    cdef double partial[MAX_PARAM_BLOCKS]
    cdef double total = 0.0
    cdef Task task = _param_task(TASK_GRAD_NORM, n, n_weights, n_blocks,
                                 partial)
    task.params, task.grads, task.l2, task.l1 = <void*> params, <void*> grads, l2, l1
    run_blocks(&task, n_blocks, n_threads, params)
    for blk in range(n_blocks):
        total += partial[blk]
    return total


def optimizer_step_py(int kind, floating[::1] params, const floating[::1] grads,
                      floating[:, ::1] state, const double[::1] hyper,
                      double lr, long t, Py_ssize_t n_weights, double l2=0.0,
                      double l1=0.0, double gscale=1.0, int n_threads=1):
    """Python entry to ``optimizer_step``; returns the penalty value.

    ``state`` has shape (n_state, n).
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef StepRule rule
    check_rule(kind, hyper, state, n)
    if grads.shape[0] != n or not 0 <= n_weights <= n or t < 1:
        raise ValueError("grads must match params, 0 <= n_weights <= n, t >= 1")
    if n == 0:
        return 0.0
    rule.kind, rule.hyper, rule.lr, rule.t = kind, &hyper[0], lr, t
    rule.l2, rule.l1, rule.gscale, rule.stride = l2, l1, gscale, n
    rule.average, rule.ema_decay = NULL, 0.0
    with nogil:
        penalty = optimizer_step(&rule, &params[0], &grads[0], &state[0, 0], n,
                                 n_weights, n_threads)
    return penalty


def gradient_norm_sq_py(const floating[::1] params, const floating[::1] grads,
                        Py_ssize_t n_weights, double l2=0.0, double l1=0.0,
                        int n_threads=1):
    """Python entry to ``gradient_norm_sq``."""
    if grads.shape[0] != params.shape[0] or not 0 <= n_weights <= params.shape[0]:
        raise ValueError("grads must match params, 0 <= n_weights <= n")
    if params.shape[0] == 0:
        return 0.0
    return gradient_norm_sq(&params[0], &grads[0], params.shape[0], n_weights,
                            l2, l1, n_threads)
