# Hidden-layer activations, fused with the bias add (forward) and applied as a
# derivative expressed through the activation's output (backward), over a block
# of columns [j0, j1) of a row-major (m, ld) matrix. The column-block form lets a
# thread finish exactly the block its gemm just wrote.


cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3


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
        else:  # LOGISTIC
            for j in range(j0, j1):
                d[j] = d[j] * a[j] * (1 - a[j])
