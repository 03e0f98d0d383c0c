from cython cimport floating

cdef enum LossKind:
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_LOG_LOSS = 1
    SQUARED_ERROR = 2
    ABSOLUTE_ERROR = 3
    HUBER = 4
    POISSON = 5

cdef double loss_gradient(int loss, const floating* Z, const floating* Y,
                          const floating* sw, double sw_sum, Py_ssize_t m,
                          Py_ssize_t n_out, double param,
                          floating* G) noexcept nogil
