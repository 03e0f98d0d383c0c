# Row-major gemm over scipy's BLAS, one fused entry point for float and double.
#
# NumPy arrays here are C-ordered while BLAS is column-major. A row-major matrix
# read as column-major is its transpose, so  C = op(A) @ op(B)  (row-major) is
# C^T = op(B)^T @ op(A)^T  (column-major): swap the operands, keep the flags.


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* A, int lda,
                      const floating* B, int ldb, floating beta,
                      floating* C, int ldc) noexcept nogil:
    """C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C, all row-major.

    lda, ldb, ldc are row strides (elements) of A, B, C as stored.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*> B, &ldb,
              <float*> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*> B, &ldb,
              <double*> A, &lda, &beta, C, &ldc)



cdef extern from "_kernels.h" nogil:
    bint FF_HAVE_SMALL_GEMM
    const int ff_panel_float
    const int ff_panel_double
    const int ff_tile_rows
    int ff_sgemm_small(int trans_a, int trans_b, int m, int n, int k, const float* A,
                       int lda, const float* const* A_rows, int a_col,
                       const float* B, int ldb, float* C, int ldc)
    int ff_dgemm_small(int trans_a, int trans_b, int m, int n, int k, const double* A,
                       int lda, const double* const* A_rows, int a_col,
                       const double* B, int ldb, double* C, int ldc)


cdef inline void gemm_small(bint trans_a, bint trans_b, int m, int n, int k,
                            const floating* A, int lda,
                            const floating* const* A_rows, int a_col,
                            const floating* B, int ldb, floating* C,
                            int ldc) noexcept nogil:
    """C[m, n] = op(A)[m, k] @ op(B)[k, n], row-major (lda, ldb, ldc as in
    ``gemm``), with the small-batch kernel of ``_kernels.h``: B is not packed,
    only copied panel by panel (transposed, for B^T). If ``A_rows`` is not
    NULL, row r of the stored A is ``A_rows[r] + a_col`` (A and lda unused): a
    shuffled batch is read where it lies, without gathering it first. The
    kernel takes A^T or B^T, not both: A^T @ B^T goes to BLAS whole.

    The kernel leaves the last n % panel columns of a contiguous A to BLAS;
    with ``A_rows`` it computes every column. A build without vector
    extensions (``small_gemm_panel`` 0) leaves them all to BLAS, or, with
    ``A_rows``, to a plain loop.
    """
    cdef int done, i, j, p
    cdef double acc
    if m <= 0 or n <= 0:
        return
    if trans_a and trans_b:
        done = 0
    elif floating is float:
        done = ff_sgemm_small(trans_a, trans_b, m, n, k, A, lda, A_rows, a_col,
                              B, ldb, C, ldc)
    else:
        done = ff_dgemm_small(trans_a, trans_b, m, n, k, A, lda, A_rows, a_col,
                              B, ldb, C, ldc)
    if done == n:
        return
    if A_rows == NULL:
        gemm(trans_a, trans_b, m, n - done, k, <floating> 1.0, A, lda,
             B + done * (ldb if trans_b else 1), ldb, <floating> 0.0,
             C + done, ldc)
        return
    for i in range(m):
        for j in range(done, n):
            acc = 0.0
            for p in range(k):
                acc += ((A_rows[p][a_col + i] if trans_a
                         else A_rows[i][a_col + p])
                        * (B[j * ldb + p] if trans_b else B[p * ldb + j]))
            C[i * ldc + j] = <floating> acc


cdef inline int small_gemm_panel(bint is_float) noexcept nogil:
    """Columns per panel of the small-batch kernel; 0 if it is not built."""
    if not FF_HAVE_SMALL_GEMM:
        return 0
    return ff_panel_float if is_float else ff_panel_double


cdef inline int small_gemm_tile_rows() noexcept nogil:
    """Rows of the small-batch kernel's register tile (1 if it is not built)."""
    return ff_tile_rows


cdef enum:
    ROW_TAIL = 32  # columns of C per pass of gemm_rows' remainder loop


cdef void gemm_rows(int m, int n, int k, const floating* A, int lda,
                    const floating* B, int ldb, floating* C,
                    int ldc) noexcept nogil:
    """C[m, n] = A @ B[k, n], row-major, each row of C a function of the same
    row of A only (not of m, nor of the rows beside it).

    The small-batch kernel computes whole panels so (its sums run over k in
    order, in k blocks that depend on k only); the last n % panel columns, a
    loop whose sums run over k in order too. BLAS is not used: its kernels
    for few rows sum in another order than for many, so a prediction would
    depend on the batch it is part of.
    """
    cdef int done, i, j, j0, w, p
    cdef floating a
    cdef floating acc[ROW_TAIL]
    cdef const floating* b
    if m <= 0 or n <= 0:
        return
    if floating is float:
        done = ff_sgemm_small(0, 0, m, n, k, A, lda, NULL, 0, B, ldb, C, ldc)
    else:
        done = ff_dgemm_small(0, 0, m, n, k, A, lda, NULL, 0, B, ldb, C, ldc)
    j0 = done
    while j0 < n:
        w = min(<int> ROW_TAIL, n - j0)
        for i in range(m):
            for j in range(w):
                acc[j] = 0
            for p in range(k):
                a = A[i * lda + p]
                b = B + p * ldb + j0
                for j in range(w):
                    acc[j] += a * b[j]
            for j in range(w):
                C[i * ldc + j0 + j] = acc[j]
        j0 += w


# Python-callable twins, for tests.


def gemm_py(bint trans_a, bint trans_b, double alpha,
            const floating[:, ::1] A, const floating[:, ::1] B,
            double beta, floating[:, ::1] C):
    """In place ``C = alpha * op(A) @ op(B) + beta * C`` (C-contiguous arrays)."""
    cdef int m = A.shape[1] if trans_a else A.shape[0]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    cdef int kb = B.shape[1] if trans_b else B.shape[0]
    cdef int n = B.shape[0] if trans_b else B.shape[1]
    if kb != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError("gemm_py: incompatible shapes")
    if m == 0 or n == 0:
        return
    if k == 0:
        # BLAS with k=0 only scales C; keep that explicit.
        for i in range(m):
            for j in range(n):
                C[i, j] = beta * C[i, j]
        return
    gemm(trans_a, trans_b, m, n, k, <floating> alpha, &A[0, 0], <int> A.shape[1],
         &B[0, 0], <int> B.shape[1], <floating> beta, &C[0, 0], <int> C.shape[1])


def gemm_small_py(bint trans_a, const floating[:, ::1] A,
                  const floating[:, ::1] B, floating[:, ::1] C,
                  const Py_ssize_t[::1] row_index=None, int a_col=0,
                  bint trans_b=False):
    """In place ``C = op(S) @ op(B)`` through the small-batch kernel, for
    tests.

    S = A, or, given ``row_index``, the rows ``A[row_index, a_col:]`` read in
    place through row pointers (the engine's gather-free path for a shuffled
    batch). op(B) = B.T when ``trans_b``.
    """
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = B.shape[1] if trans_b else B.shape[0], r
    cdef Py_ssize_t n_rows = A.shape[0]
    if (B.shape[0] if trans_b else B.shape[1]) != n:
        raise ValueError("gemm_small_py: incompatible shapes")
    if row_index is not None:
        n_rows = row_index.shape[0]
        for r in range(n_rows):
            if not 0 <= row_index[r] < A.shape[0]:
                raise ValueError("gemm_small_py: row index out of range")
    if (n_rows != (k if trans_a else m) or a_col < 0
            or A.shape[1] - a_col < (m if trans_a else k)
            or (row_index is None and A.shape[1] != (m if trans_a else k))):
        raise ValueError("gemm_small_py: incompatible shapes")
    if m == 0 or n == 0:
        return
    if k == 0:
        C[...] = 0
        return
    ptrs_np = np.empty(max(n_rows, 1), dtype=np.uintp)
    cdef size_t[::1] ptrs = ptrs_np
    if row_index is not None:
        for r in range(n_rows):
            ptrs[r] = <size_t> &A[row_index[r], 0]
    with nogil:
        gemm_small(trans_a, trans_b, m, n, k, &A[0, 0], <int> A.shape[1],
                   <const floating* const*> &ptrs[0] if row_index is not None else NULL,
                   a_col, &B[0, 0], <int> B.shape[1], &C[0, 0], <int> C.shape[1])


def small_gemm_panel_py(dtype):
    """Columns per panel of the small-batch kernel for ``dtype`` (0: not built)."""
    return small_gemm_panel(np.dtype(dtype) == np.float32)
