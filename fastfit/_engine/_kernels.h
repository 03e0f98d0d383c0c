/* Small-batch gemm: C[m, n] = op(A) @ B[k, n], row-major, op(A) = A or A^T.
 *
 * BLAS copies ("packs") both operands into its own layout on every call. For a
 * training step's forward product, A is the batch (m rows, a few dozen) and B
 * the weight matrix (k x n, hundreds of KB): packing B costs as much as the
 * product itself when m is small (b=32: a quarter of the epoch in OpenBLAS's
 * copy routines). This kernel reads B where it lies instead: each step of the
 * k loop loads one row segment of B (2 vectors, one cache line) and
 * multiplies it with MR broadcast elements of A into an MR x NR tile of C held
 * in registers. The tile is written once: no zeroing pass, no read of C.
 *
 * Loop order: column panels of NR outer, row tiles inner, so the panel of B
 * (k x NR) is read from memory once and then from cache for every row tile.
 * Each element of C is a sum over k in order with one rounding per
 * multiply-add, whatever the panel or tile it falls in: results do not depend
 * on how a caller splits C into blocks.
 *
 * Written with GCC/Clang vector extensions, so one source serves float and
 * double and whatever vector width the build targets (-march). The kernel
 * covers the first n - n % NR columns and returns that count; the caller
 * computes the rest (BLAS). Without vector extensions it covers none.
 */
#ifndef FASTFIT_KERNELS_H
#define FASTFIT_KERNELS_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)

#if defined(__AVX512F__)
#define FF_VBYTES 64
#elif defined(__AVX__)
#define FF_VBYTES 32
#else
#define FF_VBYTES 16
#endif

/* rows per tile: MR x 2 accumulators + 2 loads of B + 1 broadcast fit the 16
   vector registers of AVX2 (15 used) */
#define FF_MR 6
/* depth of a k block: its B panel (FF_KC x 2 vectors, 16 KiB in float on
   AVX2) stays in L1 while every row tile of A runs over it */
#define FF_KC 256

#define FF_DEFINE_SMALL_GEMM(T, NAME)                                          \
typedef T NAME##_vec __attribute__((vector_size(FF_VBYTES)));                  \
                                                                               \
static inline __attribute__((always_inline)) void NAME##_tile(                 \
        const int mr, const int trans_a, const int k, const T* A,              \
        const int lda, const T* B, const int ldb, T* C, const int ldc,         \
        const int accumulate)                                                  \
{                                                                              \
    const int vl = FF_VBYTES / (int) sizeof(T);                                \
    NAME##_vec c0[FF_MR], c1[FF_MR], b0, b1;                                   \
    T a;                                                                       \
    int i, p;                                                                  \
    for (i = 0; i < mr; i++) {                                                 \
        if (accumulate) {                                                      \
            memcpy(&c0[i], C + (size_t) i * ldc, sizeof c0[i]);                \
            memcpy(&c1[i], C + (size_t) i * ldc + vl, sizeof c1[i]);           \
        } else {                                                               \
            c0[i] = (NAME##_vec){0};                                           \
            c1[i] = (NAME##_vec){0};                                           \
        }                                                                      \
    }                                                                          \
    for (p = 0; p < k; p++) {                                                  \
        memcpy(&b0, B + (size_t) p * ldb, sizeof b0);                          \
        memcpy(&b1, B + (size_t) p * ldb + vl, sizeof b1);                     \
        for (i = 0; i < mr; i++) {                                             \
            /* broadcast by the vector ops */                                  \
            a = trans_a ? A[(size_t) p * lda + i] : A[(size_t) i * lda + p];   \
            c0[i] += b0 * a;                                                   \
            c1[i] += b1 * a;                                                   \
        }                                                                      \
    }                                                                          \
    for (i = 0; i < mr; i++) {                                                 \
        memcpy(C + (size_t) i * ldc, &c0[i], sizeof c0[i]);                    \
        memcpy(C + (size_t) i * ldc + vl, &c1[i], sizeof c1[i]);               \
    }                                                                          \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) int NAME##_body(                  \
        const int trans_a, const int m, const int n, const int k, const T* A,  \
        const int lda, const T* B, const int ldb, T* C, const int ldc)         \
{                                                                              \
    const int nr = 2 * (FF_VBYTES / (int) sizeof(T));                          \
    const int n_done = n - n % nr;                                             \
    int i, j, p, q, kc;                                                        \
    T panel[FF_KC * 2 * (FF_VBYTES / sizeof(T))]                               \
        __attribute__((aligned(64)));                                          \
    const T* a;                                                                \
    const T* b;                                                                \
    T* c;                                                                      \
    for (j = 0; j < n_done; j += nr) {                                         \
        for (p = 0; p == 0 || p < k; p += FF_KC) {                             \
            kc = k - p < FF_KC ? k - p : FF_KC;                                \
            /* the panel's rows lie a page or more apart in B: copied      */  \
            /* together, the row tiles walk 4 pages instead of kc / 4      */  \
            for (q = 0; q < kc; q++)                                           \
                memcpy(panel + (size_t) q * nr,                                \
                       B + (size_t) (p + q) * ldb + j, nr * sizeof(T));        \
            for (i = 0; i < m; i += FF_MR) {                                   \
                a = trans_a ? A + (size_t) p * lda + i : A + (size_t) i * lda + p; \
                c = C + (size_t) i * ldc + j;                                  \
                switch (m - i < FF_MR ? m - i : FF_MR) {                       \
                case 6: NAME##_tile(6, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                case 5: NAME##_tile(5, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                case 4: NAME##_tile(4, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                case 3: NAME##_tile(3, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                case 2: NAME##_tile(2, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                default: NAME##_tile(1, trans_a, kc, a, lda, panel, nr, c, ldc, p > 0); break; \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    return n_done;                                                             \
}                                                                              \
                                                                               \
/* trans_a = 0: C = A @ B with A (m, k); 1: C = A^T @ B with A (k, m) */       \
static int NAME(const int trans_a, const int m, const int n, const int k,      \
                const T* A, const int lda, const T* B, const int ldb, T* C,    \
                const int ldc)                                                 \
{                                                                              \
    if (trans_a)                                                               \
        return NAME##_body(1, m, n, k, A, lda, B, ldb, C, ldc);                \
    return NAME##_body(0, m, n, k, A, lda, B, ldb, C, ldc);                    \
}

FF_DEFINE_SMALL_GEMM(float, ff_sgemm_small)
FF_DEFINE_SMALL_GEMM(double, ff_dgemm_small)

#else  /* no vector extensions: the caller's BLAS does all the work */

static int ff_sgemm_small(int trans_a, int m, int n, int k, const float* A,
                          int lda, const float* B, int ldb, float* C, int ldc)
{ (void) trans_a; (void) m; (void) n; (void) k; (void) A; (void) lda; (void) B; (void) ldb;
  (void) C; (void) ldc; return 0; }
static int ff_dgemm_small(int trans_a, int m, int n, int k, const double* A,
                          int lda, const double* B, int ldb, double* C, int ldc)
{ (void) trans_a; (void) m; (void) n; (void) k; (void) A; (void) lda; (void) B; (void) ldb;
  (void) C; (void) ldc; return 0; }

#endif
#endif  /* FASTFIT_KERNELS_H */
