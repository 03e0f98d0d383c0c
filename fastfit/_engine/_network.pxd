from cython cimport floating

from fastfit._engine._optim cimport StepRule

cdef int column_blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       int n_threads) noexcept nogil

cdef bint takes_row_pointers(int m, int fan_out, bint is_float) noexcept nogil

cdef void dense_forward(int activation, const floating* A,
                        const floating* const* A_rows, const floating* W,
                        const floating* b, floating* Z, int m, int fan_in,
                        int fan_out, int n_threads) noexcept nogil

cdef void dense_backward(int prev_activation, const floating* A_prev,
                         const floating* W, const floating* D, floating* dW,
                         floating* db, floating* D_prev, int m, int fan_in,
                         int fan_out, int n_threads) noexcept nogil

cdef double dense_backward_update(int prev_activation, const floating* A_prev,
                                  const floating* const* A_rows,
                                  const floating* D, floating* D_prev, int m,
                                  int fan_in, int fan_out, floating* params,
                                  floating* grads, floating* state,
                                  Py_ssize_t w_off, Py_ssize_t b_off,
                                  const StepRule* rule,
                                  int n_threads) noexcept nogil

cdef void forward_pass(int n_layers, const Py_ssize_t* sizes,
                       const floating* params, const Py_ssize_t* w_off,
                       const Py_ssize_t* b_off, const floating* X,
                       const floating* const* X_rows, floating** acts, int m,
                       int activation, int n_threads) noexcept nogil
