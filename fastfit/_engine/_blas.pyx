"""Python-callable twin of the row-major gemm wrapper, for tests."""

from cython cimport floating
from fastfit._engine._blas cimport gemm, gemm_small


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
                  const floating[:, ::1] B, floating[:, ::1] C):
    """In place ``C = op(A) @ B`` through the small-batch kernel."""
    cdef int m = A.shape[1] if trans_a else A.shape[0]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    cdef int n = B.shape[1]
    if B.shape[0] != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError("gemm_small_py: incompatible shapes")
    if m == 0 or n == 0:
        return
    if k == 0:
        C[...] = 0
        return
    with nogil:
        gemm_small(trans_a, m, n, k, &A[0, 0], <int> A.shape[1], &B[0, 0],
                   <int> B.shape[1], &C[0, 0], <int> C.shape[1])
