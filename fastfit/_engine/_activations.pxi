# Hidden-layer activations, fused with the bias add (forward) and applied as a
# derivative expressed through the activation's output (backward), over a block
# of columns [j0, j1) of a row-major (m, ld) matrix. The column-block form lets a
# thread finish exactly the block its gemm just wrote.
#
# Each is torch.nn.functional's with its default constants:
#
# ============  ==========================================  =======================
# activation    a = f(z)                                    f'(z) through a
# ============  ==========================================  =======================
# leaky_relu    z if z > 0 else slope z (default 0.01)      1 if a > 0 else slope
# elu           z if z > 0 else exp(z) - 1                  1 if a > 0 else a + 1
# selu          s z if z > 0 else s c (exp(z) - 1)          s if a > 0 else a + s c
#               (s = 1.0507009873554805, c = 1.6732632423543772)
# softplus      log(1 + exp(z))                             1 - exp(-a)
# ============  ==========================================  =======================
#
# Three are not monotonic, so their derivative needs z itself: a training pass
# keeps their pre-activations (``Unit.pre``), a prediction pass does not.
#
# ============  ==========================================  =======================
# activation    a = f(z)                                    f'(z)
# ============  ==========================================  =======================
# gelu          z Phi(z) (Phi: the normal CDF, by erf)       Phi(z) + z phi(z)
# gelu_tanh     z (1 + tanh(u)) / 2,                        (1 + t) / 2 + z (1 - t^2)
#               u = k (z + 0.044715 z^3), k = sqrt(2 / pi)    k (1 + 3 0.044715 z^2) / 2
# silu          z sigmoid(z)                                s (1 + z (1 - s))
# mish          z tanh(softplus(z))                         t + z s (1 - t^2)
# ============  ==========================================  =======================
#
# Dropout (``_dropout.pxi``) follows the activation in the forward, and its
# mask and scale the derivative in the backward; through-the-output
# derivatives read the output unscaled (a * keep).


cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5
    SELU = 6
    SOFTPLUS = 7
    GELU = 8
    GELU_TANH = 9
    SILU = 10
    MISH = 11


# the activations' constants, as C literals: globals would be loaded per
# element (a store to the output may alias them)
cdef extern from *:
    """
    #define FF_LEAKY_SLOPE 0.01
    #define FF_SELU_SCALE 1.0507009873554805
    #define FF_SELU_ALPHA 1.6732632423543772
    #define FF_SQRT_HALF 0.7071067811865476
    #define FF_INV_SQRT_2PI 0.3989422804014327
    #define FF_GELU_K 0.7978845608028654
    #define FF_GELU_C 0.044715
    """
    const double LEAKY_SLOPE "FF_LEAKY_SLOPE"  # torch's leaky_relu default
    const double SELU_SCALE "FF_SELU_SCALE"
    const double SELU_ALPHA "FF_SELU_ALPHA"
    const double SQRT_HALF "FF_SQRT_HALF"
    const double INV_SQRT_2PI "FF_INV_SQRT_2PI"
    const double GELU_K "FF_GELU_K"  # sqrt(2 / pi)
    const double GELU_C "FF_GELU_C"


cdef inline bint needs_pre(int activation) noexcept nogil:
    """Whether the derivative needs the pre-activation, not the output."""
    return activation >= GELU


cdef struct Unit:
    # what a layer applies to its product (bias, activation, dropout), and
    # what its backward needs of it
    int activation
    double slope          # leaky_relu's negative slope
    double keep           # probability that dropout keeps a unit; 1: no dropout
    uint32_t key          # the layer's dropout key in this step
    Py_ssize_t row0       # the number of the first row within the step's batch
    void* pre             # (m, ld) pre-activations kept for the backward, or NULL


cdef struct Pass:
    # what a training pass adds to a prediction pass
    void** pres          # each layer's pre-activation buffer, NULL where unneeded
    bint dropout         # apply the network's dropout
    uint32_t key         # the step's dropout key
    Py_ssize_t row0      # the number of the pass's first row within the batch
    void* partials       # room for a split-K forward's partial products, or
                         # NULL: no split (``dense_forward``)
    Py_ssize_t partials_room  # elements of that room


cdef extern from "_math.h" nogil:
    double ff_expm1_neg(double z)
    float ff_expm1_negf(float z)


cdef inline floating _expm1(floating z) noexcept nogil:
    if floating is float:
        return expm1f(z)
    else:
        return expm1(z)


cdef inline floating _expm1_neg(floating z) noexcept nogil:
    # exp(z) - 1 for z <= 0 (z > 0 reads as 0), vectorisable (_math.h)
    if floating is float:
        return ff_expm1_negf(z)
    else:
        return ff_expm1_neg(z)


cdef inline floating _softplus(floating z) noexcept nogil:
    # log1p(exp(-|z|)) + max(z, 0): no overflow for large z
    cdef floating e
    if floating is float:
        e = log1pf(expf(-fabsf(z)))
    else:
        e = log1p(exp(-fabs(z)))
    return e + (z if z > 0 else 0)


cdef inline floating _logistic(floating z) noexcept nogil:
    # exp(-z) overflows to inf for very negative z, giving exactly 0: no NaN.
    if floating is float:
        return 1.0 / (1.0 + expf(-z))
    else:
        return 1.0 / (1.0 + exp(-z))


cdef inline floating _tanh(floating z) noexcept nogil:
    if floating is float:
        return tanhf(z)
    else:
        return tanh(z)


cdef inline floating _phi_cdf(floating z) noexcept nogil:
    if floating is float:
        return 0.5 * (1 + erff(z * <float> SQRT_HALF))
    else:
        return 0.5 * (1 + erf(z * SQRT_HALF))


cdef inline floating _phi_pdf(floating z) noexcept nogil:
    if floating is float:
        return <float> INV_SQRT_2PI * expf(-0.5 * z * z)
    else:
        return INV_SQRT_2PI * exp(-0.5 * z * z)


cdef inline floating _gelu_tanh_arg(floating z) noexcept nogil:
    return <floating> GELU_K * (z + <floating> GELU_C * z * z * z)


cdef inline floating _mish(floating z) noexcept nogil:
    return z * _tanh(_softplus(z))


cdef inline void bias_activation(const Unit* u, floating* Z, const floating* b,
                                 Py_ssize_t m, Py_ssize_t ld,
                                 Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Z[i, j] = f(Z[i, j] + b[j]), then dropout, for rows i < m, columns
    j0 <= j < j1; the pre-activations into ``u.pre`` when it is set.
    # INOUT Z, OUT u.pre"""
    cdef Py_ssize_t i, j
    cdef floating* row
    cdef floating* p
    cdef floating z, t
    cdef int activation = u.activation
    cdef floating slope = <floating> u.slope
    cdef floating scale = <floating> (1.0 / u.keep)
    # constants as locals of the kernel's type: a global could alias Z, and
    # float math in double would convert every element
    cdef floating selu_scale = <floating> SELU_SCALE
    cdef floating selu_neg = <floating> (SELU_SCALE * SELU_ALPHA)
    cdef uint32_t threshold = keep_threshold(u.keep)
    for i in range(m):
        row = Z + i * ld
        if u.pre != NULL:
            # keep z for the backward of the activations that need it
            p = <floating*> u.pre + i * ld
            for j in range(j0, j1):
                p[j] = row[j] + b[j]
        if activation == RELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z if z > 0 else 0
        elif activation == TANH:
            for j in range(j0, j1):
                row[j] = _tanh(row[j] + b[j])
        elif activation == LOGISTIC:
            for j in range(j0, j1):
                row[j] = _logistic(row[j] + b[j])
        elif activation == LEAKY_RELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z if z > 0 else slope * z
        elif activation == ELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z if z > 0 else _expm1_neg(z)
        elif activation == SELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = selu_scale * z if z > 0 else selu_neg * _expm1_neg(z)
        elif activation == SOFTPLUS:
            for j in range(j0, j1):
                row[j] = _softplus(row[j] + b[j])
        elif activation == GELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z * _phi_cdf(z)
        elif activation == GELU_TANH:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = <floating> 0.5 * z * (1 + _tanh(_gelu_tanh_arg(z)))
        elif activation == SILU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z * _logistic(z)
        elif activation == MISH:
            for j in range(j0, j1):
                row[j] = _mish(row[j] + b[j])
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j]
        if u.keep < 1:
            apply_mask(row, mix_key(u.key, u.row0 + i), threshold, scale, j0, j1)


cdef inline void multiply_derivative(const Unit* u, floating* D, const floating* A,
                                     Py_ssize_t m, Py_ssize_t ld,
                                     Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """D[i, j] *= the derivative of the unit's output at (i, j): f'(z), through
    a = f(z) = A[i, j] * keep or through z = u.pre[i, j], then dropout's mask
    and scale.  # INOUT D, IN A, u.pre"""
    cdef Py_ssize_t i, j
    cdef floating* d
    cdef const floating* a
    cdef const floating* p
    cdef floating q = <floating> u.keep, x, s, t
    cdef floating slope = <floating> u.slope
    cdef floating scale = <floating> (1.0 / u.keep)
    cdef floating selu_scale = <floating> SELU_SCALE
    cdef floating selu_neg = <floating> (SELU_SCALE * SELU_ALPHA)
    cdef uint32_t threshold = keep_threshold(u.keep)
    cdef int activation = u.activation
    if activation == IDENTITY and u.keep == 1:
        return
    for i in range(m):
        d = D + i * ld
        a = A + i * ld
        p = <const floating*> u.pre + i * ld if u.pre != NULL else NULL
        if activation == RELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = 0
        elif activation == TANH:
            for j in range(j0, j1):
                x = a[j] * q
                d[j] = d[j] * (1 - x * x)
        elif activation == LEAKY_RELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = d[j] * slope
        elif activation == ELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = d[j] * (a[j] * q + 1)
        elif activation == SELU:
            for j in range(j0, j1):
                d[j] = d[j] * (selu_scale if a[j] > 0 else a[j] * q + selu_neg)
        elif activation == SOFTPLUS:
            for j in range(j0, j1):
                # sigmoid(z) = 1 - exp(-a), accurate for small a
                d[j] = d[j] * -_expm1(-a[j] * q)
        elif activation == LOGISTIC:
            for j in range(j0, j1):
                x = a[j] * q
                d[j] = d[j] * x * (1 - x)
        elif activation == GELU:
            for j in range(j0, j1):
                x = p[j]
                d[j] = d[j] * (_phi_cdf(x) + x * _phi_pdf(x))
        elif activation == GELU_TANH:
            for j in range(j0, j1):
                x = p[j]
                t = _tanh(_gelu_tanh_arg(x))
                d[j] = d[j] * <floating> 0.5 * (
                    1 + t + x * (1 - t * t) * <floating> GELU_K
                    * (1 + <floating> (3 * GELU_C) * x * x))
        elif activation == SILU:
            for j in range(j0, j1):
                x = p[j]
                s = _logistic(x)
                d[j] = d[j] * s * (1 + x * (1 - s))
        elif activation == MISH:
            for j in range(j0, j1):
                x = p[j]
                t = _tanh(_softplus(x))
                d[j] = d[j] * (t + x * _logistic(x) * (1 - t * t))
        if u.keep < 1:
            apply_mask(d, mix_key(u.key, u.row0 + i), threshold, scale, j0, j1)
