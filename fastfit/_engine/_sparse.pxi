# Sparse input: the first layer's products with a CSR matrix, never densified.
#
# A sparse X only ever meets the first layer: its forward product Z = X @ W and
# its weight gradient dW = X^T @ D (the input gradient of the first layer is
# never needed). Both are written as loops over the stored entries of each
# row, so
#
# - a batch is a list of row numbers into the CSR matrix (a shuffled batch is
#   read in place, not gathered);
# - each output element sums its terms in the order the entries are stored,
#   whatever the batch, the blocking or the thread count: the forward pass is
#   row-invariant by construction, and results are bit-identical for any
#   ``n_threads``;
# - the work is proportional to the stored entries times the layer width.
#
# Threads split the forward product by columns of Z and the weight gradient by
# rows of dW (input features), so no two threads write the same element and no
# reduction is needed. Entries need not be sorted within a row, and duplicates
# add up, as in scipy.


cdef struct SparseRows:
    # m rows of a CSR matrix: row i of the batch is matrix row rows[i], or
    # row0 + i when rows is NULL. indptr NULL: no sparse input (dense X).
    const void* data
    const int* indices
    const Py_ssize_t* indptr
    const Py_ssize_t* rows
    Py_ssize_t row0


cdef inline const SparseRows* sparse_or_null(const SparseRows* xs) noexcept nogil:
    """``xs`` if it describes sparse rows, else NULL (the dense path)."""
    return xs if xs != NULL and xs.indptr != NULL else NULL


cdef inline Py_ssize_t _matrix_row(const SparseRows* xs, Py_ssize_t i) noexcept nogil:
    return xs.rows[i] if xs.rows != NULL else xs.row0 + i


cdef void sparse_forward_block(const SparseRows* xs, const floating* W,
                               floating* Z, int m, int fan_out,
                               Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Z[:, j0:j1] = X[rows] @ W[:, j0:j1] (no bias, no activation).

    IN: the m rows of xs, W (fan_in, fan_out). OUT: Z (m, fan_out).
    """
    cdef const floating* data = <const floating*> xs.data
    cdef const floating* w
    cdef floating* z
    cdef floating v
    cdef Py_ssize_t i, j, p, r
    for i in range(m):
        z = Z + i * fan_out
        for j in range(j0, j1):
            z[j] = 0
        r = _matrix_row(xs, i)
        for p in range(xs.indptr[r], xs.indptr[r + 1]):
            v = data[p]
            w = W + <Py_ssize_t> xs.indices[p] * fan_out
            for j in range(j0, j1):
                z[j] += v * w[j]


cdef void sparse_weight_grad_rows(const SparseRows* xs, const floating* D,
                                  floating* dW, int m, int fan_out,
                                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows r0:r1 of dW = X[rows]^T @ D (the others untouched).

    IN: the m rows of xs, D (m, fan_out). OUT: dW (fan_in, fan_out). Each
    element adds its terms in batch-row order.
    """
    cdef const floating* data = <const floating*> xs.data
    cdef const floating* d
    cdef floating* g
    cdef floating v
    cdef Py_ssize_t i, j, p, r, c
    memset(dW + r0 * fan_out, 0, (r1 - r0) * fan_out * sizeof(floating))
    for i in range(m):
        d = D + i * fan_out
        r = _matrix_row(xs, i)
        for p in range(xs.indptr[r], xs.indptr[r + 1]):
            c = xs.indices[p]
            if c < r0 or c >= r1:
                continue
            v = data[p]
            g = dW + c * fan_out
            for j in range(fan_out):
                g[j] += v * d[j]


cdef class CSRInput:
    """A CSR matrix as the engine reads it, checked once.

    The engine's entry points take it wherever they take a dense X. Built by
    :func:`fastfit._sparse.engine_input` from any scipy sparse matrix or array.

    Parameters
    ----------
    data : ndarray of float32 or float64, shape (nnz,)
    indices : ndarray of int32, shape (nnz,)
        Column of each entry, in ``[0, n_cols)``; any order within a row.
    indptr : ndarray of intp, shape (n_rows + 1,)
        Row ``i`` holds entries ``indptr[i]:indptr[i + 1]``.
    shape : (int, int)

    Raises
    ------
    ValueError
        If the arrays do not describe a CSR matrix of that shape (their
        dtypes, lengths, a decreasing ``indptr``, a column outside the
        matrix): the kernels trust them.
    """
    cdef readonly object data, indices, indptr, shape, dtype
    cdef SparseRows rows

    def __cinit__(self, data, indices, indptr, shape):
        n_rows, n_cols = (int(s) for s in shape)
        self.data = np.ascontiguousarray(data)
        self.indices = np.ascontiguousarray(indices)
        self.indptr = np.ascontiguousarray(indptr)
        self.shape, self.dtype = (n_rows, n_cols), self.data.dtype
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"sparse data must be float32 or float64, not {self.dtype}")
        if self.indices.dtype != np.int32 or self.indptr.dtype != np.intp:
            raise ValueError("CSR indices must be int32 and indptr intp")
        if not (0 <= n_rows and 0 < n_cols <= np.iinfo(np.int32).max):
            raise ValueError(f"invalid sparse shape {shape}")
        nnz = self.data.shape[0]
        if (self.data.ndim != 1 or self.indices.shape != (nnz,)
                or self.indptr.shape != (n_rows + 1,)):
            raise ValueError("CSR arrays: data and indices of one length, "
                             "indptr of n_rows + 1")
        if self.indptr[0] != 0 or self.indptr[n_rows] != nnz or (
                n_rows and np.any(np.diff(self.indptr) < 0)):
            raise ValueError("CSR indptr must rise from 0 to the number of entries")
        if nnz and not (0 <= self.indices.min() and self.indices.max() < n_cols):
            raise ValueError(f"CSR column indices must lie in [0, {n_cols})")
        cdef const int[::1] idx = self.indices
        cdef const Py_ssize_t[::1] ptr = self.indptr
        memset(&self.rows, 0, sizeof(SparseRows))
        self.rows.data = <const void*> <Py_ssize_t> self.data.ctypes.data
        self.rows.indices = &idx[0] if nnz else NULL
        self.rows.indptr = &ptr[0]

    @property
    def nnz(self):
        return self.data.shape[0]

    def __reduce__(self):
        return CSRInput, (self.data, self.indices, self.indptr, self.shape)


cdef SparseRows sparse_rows_of(X, const floating* tag) except *:
    """The SparseRows of X if it is a CSRInput of the dtype of ``tag`` (its
    rows from 0, in order); of indptr NULL when X is dense."""
    cdef SparseRows rows
    memset(&rows, 0, sizeof(SparseRows))
    if isinstance(X, CSRInput):
        if floating is float:
            dtype = np.float32
        else:
            dtype = np.float64
        if (<CSRInput> X).dtype != dtype:
            raise ValueError(f"sparse X is {(<CSRInput> X).dtype}, the "
                             f"parameters {np.dtype(dtype)}")
        rows = (<CSRInput> X).rows
    return rows
