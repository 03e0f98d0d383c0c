"""Python-callable twin of the row-major gemm wrapper, for tests."""

from cython cimport floating
from fastfit._engine._blas cimport gemm, gemm_small, small_gemm_panel


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
                  const Py_ssize_t[::1] row_index=None, int a_col=0):
    """In place ``C = op(S) @ B`` through the small-batch kernel, for tests.

    S = A, or, given ``row_index``, the rows ``A[row_index, a_col:]`` read in
    place through row pointers (the engine's gather-free path for a shuffled
    batch).
    """
    import numpy as np
    cdef int m = C.shape[0], n = C.shape[1], k = B.shape[0], r
    cdef Py_ssize_t n_rows = A.shape[0]
    if B.shape[1] != n:
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
        gemm_small(trans_a, m, n, k, &A[0, 0], <int> A.shape[1],
                   <const floating* const*> &ptrs[0] if row_index is not None else NULL,
                   a_col, &B[0, 0], <int> B.shape[1], &C[0, 0], <int> C.shape[1])


def small_gemm_panel_py(dtype):
    """Columns per panel of the small-batch kernel for ``dtype`` (0: not built)."""
    import numpy as np
    return small_gemm_panel(np.dtype(dtype) == np.float32)
