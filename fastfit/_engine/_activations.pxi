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
# leaky_relu    z if z > 0 else 0.01 z                      1 if a > 0 else 0.01
# elu           z if z > 0 else exp(z) - 1                  1 if a > 0 else a + 1
# selu          s z if z > 0 else s c (exp(z) - 1)          s if a > 0 else a + s c
#               (s = 1.0507009873554805, c = 1.6732632423543772)
# softplus      log(1 + exp(z))                             1 - exp(-a)
# ============  ==========================================  =======================


cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5
    SELU = 6
    SOFTPLUS = 7


cdef double LEAKY_SLOPE = 0.01
cdef double SELU_SCALE = 1.0507009873554805
cdef double SELU_ALPHA = 1.6732632423543772


cdef inline floating _expm1(floating z) noexcept nogil:
    if floating is float:
        return expm1f(z)
    else:
        return expm1(z)


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


cdef inline void bias_activation(int activation, floating* Z, const floating* b,
                                 Py_ssize_t m, Py_ssize_t ld,
                                 Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Z[i, j] = f(Z[i, j] + b[j]) for rows i < m, columns j0 <= j < j1.  # INOUT Z"""
    cdef Py_ssize_t i, j
    cdef floating* row
    cdef floating z
    for i in range(m):
        row = Z + i * ld
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
                row[j] = z if z > 0 else <floating> LEAKY_SLOPE * z
        elif activation == ELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = z if z > 0 else _expm1(z)
        elif activation == SELU:
            for j in range(j0, j1):
                z = row[j] + b[j]
                row[j] = <floating> (SELU_SCALE * z if z > 0
                                     else SELU_SCALE * SELU_ALPHA * _expm1(z))
        elif activation == SOFTPLUS:
            for j in range(j0, j1):
                row[j] = _softplus(row[j] + b[j])
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j]


cdef inline void multiply_derivative(int activation, floating* D, const floating* A,
                                     Py_ssize_t m, Py_ssize_t ld,
                                     Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """D[i, j] *= f'(z) written through a = f(z) = A[i, j].  # INOUT D, IN A"""
    cdef Py_ssize_t i, j
    cdef floating* d
    cdef const floating* a
    if activation == IDENTITY:
        return
    for i in range(m):
        d = D + i * ld
        a = A + i * ld
        if activation == RELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = 0
        elif activation == TANH:
            for j in range(j0, j1):
                d[j] = d[j] * (1 - a[j] * a[j])
        elif activation == LEAKY_RELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = d[j] * <floating> LEAKY_SLOPE
        elif activation == ELU:
            for j in range(j0, j1):
                if a[j] <= 0:
                    d[j] = d[j] * (a[j] + 1)
        elif activation == SELU:
            for j in range(j0, j1):
                d[j] = d[j] * <floating> (SELU_SCALE if a[j] > 0
                                          else a[j] + SELU_SCALE * SELU_ALPHA)
        elif activation == SOFTPLUS:
            for j in range(j0, j1):
                # sigmoid(z) = 1 - exp(-a), accurate for small a
                d[j] = d[j] * -_expm1(-a[j])
        else:  # LOGISTIC
            for j in range(j0, j1):
                d[j] = d[j] * a[j] * (1 - a[j])
