from cython cimport floating

cdef enum OptimizerKind:
    SGD = 0
    ADAGRAD = 1
    RMSPROP = 2
    ADAM = 3
    ADAMW = 4

cdef double optimizer_step(int kind, floating* params, const floating* grads,
                           floating* state, Py_ssize_t n, Py_ssize_t n_weights,
                           const double* hyper, double lr, long t, double l2,
                           double l1, double gscale,
                           int n_threads) noexcept nogil

cdef double gradient_norm_sq(const floating* params, const floating* grads,
                             Py_ssize_t n, Py_ssize_t n_weights, double l2,
                             double l1, int n_threads) noexcept nogil
