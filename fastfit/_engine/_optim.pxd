from cython cimport floating

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
    long t            # 1-based step count
    double l2         # coupled penalty coefficients (weights only)
    double l1
    double gscale     # gradient clipping factor
    Py_ssize_t stride # distance between the state buffers (n_params)

cdef double update_range(const StepRule* rule, floating* params,
                         const floating* grads, floating* state, Py_ssize_t lo,
                         Py_ssize_t hi, bint weights) noexcept nogil

cdef double optimizer_step(const StepRule* rule, floating* params,
                           const floating* grads, floating* state,
                           Py_ssize_t n, Py_ssize_t n_weights,
                           int n_threads) noexcept nogil

cdef double gradient_norm_sq(const floating* params, const floating* grads,
                             Py_ssize_t n, Py_ssize_t n_weights, double l2,
                             double l1, int n_threads) noexcept nogil
