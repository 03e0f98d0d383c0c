/* Small-batch gemm: C[m, n] = op(A) @ op(B), row-major, op(X) = X or X^T.
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
 * B^T (an input gradient's D @ W^T) is copied into the same panel layout,
 * transposed: column c of a panel is a row of B, read contiguously.
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
 * computes the rest (BLAS: a few columns cost it little, while a padded tile
 * pays for a whole vector of broadcasts). Rows given by pointers have no
 * contiguous A for BLAS: then the kernel covers every column, the last panel
 * padded with zeros to whole vectors (one vector when it fits in one), its
 * tiles computed in a buffer and their valid columns stored. Without vector
 * extensions it covers none.
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
#define FF_HAVE_SMALL_GEMM 1

/* rows per tile: MR x 2 accumulators + 2 loads of B + 1 broadcast fit the
   vector registers: 16 on AVX2 (MR 6: 15 used), 32 on AVX-512 (MR 8: 19
   used; a batch of 32 or 128 rows is then whole tiles, and the forward of
   32 rows ran 4-5 % faster) */
#if defined(__AVX512F__)
#define FF_MR 8
#else
#define FF_MR 6
#endif
#define FF_TILE_ROWS FF_MR
/* depth of a k block: its B panel (FF_KC x 2 vectors, 16 KiB in float on
   AVX2) stays in L1 while every row tile of A runs over it */
#define FF_KC 256

/* columns of B per panel: 2 vectors (16 floats / 8 doubles on AVX2) */
#define FF_PANEL(T) (2 * (FF_VBYTES / (int) sizeof(T)))

#define FF_DEFINE_SMALL_GEMM(T, NAME)                                          \
typedef T NAME##_vec __attribute__((vector_size(FF_VBYTES)));                  \
                                                                               \
/* An mr x (nv vectors) tile of C over k of the panel (nv 1 or 2). Not         \
   transposed: row i of the tile reads rows[i][0:k]; transposed: step q reads  \
   rows[q][0:mr]. */                                                           \
static inline __attribute__((always_inline)) void NAME##_tile(                 \
        const int mr, const int nv, const int trans_a, const int k,            \
        const T* const* rows, const int col, const T* B, T* C,                 \
        const int ldc, const int accumulate)                                   \
{                                                                              \
    const int vl = FF_VBYTES / (int) sizeof(T);                                \
    NAME##_vec c0[FF_MR], c1[FF_MR], b0, b1 = {0};                             \
    T a;                                                                       \
    int i, q;                                                                  \
    for (i = 0; i < mr; i++) {                                                 \
        if (accumulate) {                                                      \
            memcpy(&c0[i], C + (size_t) i * ldc, sizeof c0[i]);                \
            if (nv == 2)                                                       \
                memcpy(&c1[i], C + (size_t) i * ldc + vl, sizeof c1[i]);       \
        } else {                                                               \
            c0[i] = (NAME##_vec){0};                                           \
            c1[i] = (NAME##_vec){0};                                           \
        }                                                                      \
    }                                                                          \
    for (q = 0; q < k; q++) {                                                  \
        memcpy(&b0, B + (size_t) q * 2 * vl, sizeof b0);                       \
        if (nv == 2)                                                           \
            memcpy(&b1, B + (size_t) q * 2 * vl + vl, sizeof b1);              \
        for (i = 0; i < mr; i++) {                                             \
            /* broadcast by the vector ops */                                  \
            a = trans_a ? rows[q][col + i] : rows[i][col + q];                 \
            c0[i] += b0 * a;                                                   \
            if (nv == 2)                                                       \
                c1[i] += b1 * a;                                               \
        }                                                                      \
    }                                                                          \
    for (i = 0; i < mr; i++) {                                                 \
        memcpy(C + (size_t) i * ldc, &c0[i], sizeof c0[i]);                    \
        if (nv == 2)                                                           \
            memcpy(C + (size_t) i * ldc + vl, &c1[i], sizeof c1[i]);           \
    }                                                                          \
}                                                                              \
                                                                               \
/* the tile of mr rows (a constant in each case, so each is unrolled; cases    \
   above FF_MR never run, and are clamped so they compile within the arrays) */ \
static inline __attribute__((always_inline)) void NAME##_tiles(                \
        const int mr, const int nv, const int trans_a, const int k,            \
        const T* const* rows, const int col, const T* B, T* C,                 \
        const int ldc, const int accumulate)                                   \
{                                                                              \
    switch (mr) {                                                              \
    case 8: NAME##_tile(FF_MR < 8 ? FF_MR : 8, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 7: NAME##_tile(FF_MR < 7 ? FF_MR : 7, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 6: NAME##_tile(6, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 5: NAME##_tile(5, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 4: NAME##_tile(4, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 3: NAME##_tile(3, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    case 2: NAME##_tile(2, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    default: NAME##_tile(1, nv, trans_a, k, rows, col, B, C, ldc, accumulate); break; \
    }                                                                          \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) int NAME##_body(                  \
        const int trans_a, const int trans_b, const int m, const int n,        \
        const int k, const T* A,                                               \
        const int lda, const T* const* A_rows, const int a_col, const T* B,    \
        const int ldb, T* C, const int ldc)                                    \
{                                                                              \
    const int nr = FF_PANEL(T), vl = nr / 2;                                   \
    int i, j, p, q, r, kc, mr, w, nv;                                          \
    /* k blocks of equal depth: 784 = 4 x 196, not 3 x 256 + 16 (a short     \
       block pays the tile's load and store of C for little work) */          \
    const int n_kb = (k + FF_KC - 1) / FF_KC;                                  \
    const int kb = n_kb > 0 ? (k + n_kb - 1) / n_kb : 0;                       \
    T panel[FF_KC * FF_PANEL(T)] __attribute__((aligned(64)));                 \
    T tail[FF_MR * FF_PANEL(T)] __attribute__((aligned(64)));                  \
    const T* rows[FF_KC > FF_MR ? FF_KC : FF_MR];                              \
    T* c;                                                                      \
    /* a narrower last panel only for rows given by pointers: with A in    */  \
    /* one piece the caller's BLAS computes those columns for less         */  \
    const int n_end = A_rows ? n : n - n % nr;                                 \
    for (j = 0; j < n_end; j += nr) {                                          \
        /* the last panel may be narrower: its columns are padded with     */  \
        /* zeros to whole vectors, its tiles go through ``tail``           */  \
        w = n - j < nr ? n - j : nr;                                           \
        nv = w > vl ? 2 : 1;                                                   \
        for (p = 0; p == 0 || p < k; p += kb) {                                \
            kc = k - p < kb ? k - p : kb;                                      \
            /* the panel's rows lie a page or more apart in B: copied      */  \
            /* together, the row tiles walk 4 pages instead of kc / 4      */  \
            if (trans_b) { /* B^T: column c of the panel is row j + c of B */  \
                if (w < nr)                                                    \
                    memset(panel, 0, (size_t) kc * nr * sizeof(T));            \
                for (r = 0; r < w; r++)                                        \
                    for (q = 0; q < kc; q++)                                   \
                        panel[(size_t) q * nr + r] =                           \
                            B[(size_t) (j + r) * ldb + p + q];                 \
            } else if (w == nr) /* a constant size: the copy is inlined */   \
                for (q = 0; q < kc; q++)                                       \
                    memcpy(panel + (size_t) q * nr,                            \
                           B + (size_t) (p + q) * ldb + j, nr * sizeof(T));    \
            else                                                               \
                for (q = 0; q < kc; q++) {                                     \
                    memcpy(panel + (size_t) q * nr,                            \
                           B + (size_t) (p + q) * ldb + j, w * sizeof(T));     \
                    memset(panel + (size_t) q * nr + w, 0,                     \
                           (nv * vl - w) * sizeof(T));                         \
                }                                                              \
            if (trans_a)                                                       \
                for (q = 0; q < kc; q++)                                       \
                    rows[q] = A_rows ? A_rows[p + q] + a_col                   \
                                     : A + (size_t) (p + q) * lda;             \
            for (i = 0; i < m; i += mr) {                                      \
                mr = m - i < FF_MR ? m - i : FF_MR;                            \
                if (!trans_a)                                                  \
                    for (q = 0; q < mr; q++)                                   \
                        rows[q] = (A_rows ? A_rows[i + q] + a_col              \
                                          : A + (size_t) (i + q) * lda) + p;   \
                c = C + (size_t) i * ldc + j;                                  \
                if (w == nr) {                                                 \
                    NAME##_tiles(mr, 2, trans_a, kc, rows, trans_a ? i : 0,    \
                                 panel, c, ldc, p > 0);                        \
                    continue;                                                  \
                }                                                              \
                memset(tail, 0, sizeof tail);                                  \
                if (p > 0)                                                     \
                    for (r = 0; r < mr; r++)                                   \
                        memcpy(tail + r * nr, c + (size_t) r * ldc,            \
                               w * sizeof(T));                                 \
                if (nv == 2)                                                   \
                    NAME##_tiles(mr, 2, trans_a, kc, rows, trans_a ? i : 0,    \
                                 panel, tail, nr, p > 0);                      \
                else                                                           \
                    NAME##_tiles(mr, 1, trans_a, kc, rows, trans_a ? i : 0,    \
                                 panel, tail, nr, p > 0);                      \
                for (r = 0; r < mr; r++)                                       \
                    memcpy(c + (size_t) r * ldc, tail + r * nr, w * sizeof(T)); \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    return n_end;                                                              \
}                                                                              \
                                                                               \
/* C[:, :n_done] = op(A) @ op(B)[:, :n_done]; returns n_done: n with A_rows,  \
   else n - n % panel. trans_a = 0: op(A) = A, (m, k); 1: op(A) = A^T, A       \
   (k, m). trans_b = 0: op(B) = B, (k, n); 1: op(B) = B^T, B (n, k) (not with  \
   trans_a).                                                                   \
   Row r of the stored A is A_rows[r] + a_col if A_rows is given (rows         \
   gathered from anywhere, e.g. a shuffled batch of X), else A + r * lda. */   \
static int NAME(const int trans_a, const int trans_b, const int m,            \
                const int n, const int k, const T* A, const int lda,           \
                const T* const* A_rows, const int a_col, const T* B,           \
                const int ldb, T* C, const int ldc)                            \
{                                                                              \
    if (trans_a)                                                               \
        return NAME##_body(1, 0, m, n, k, A, lda, A_rows, a_col, B, ldb, C,    \
                           ldc);                                               \
    if (trans_b)                                                               \
        return NAME##_body(0, 1, m, n, k, A, lda, A_rows, a_col, B, ldb, C,    \
                           ldc);                                               \
    return NAME##_body(0, 0, m, n, k, A, lda, A_rows, a_col, B, ldb, C, ldc);  \
}

FF_DEFINE_SMALL_GEMM(float, ff_sgemm_small)
FF_DEFINE_SMALL_GEMM(double, ff_dgemm_small)

#else  /* no vector extensions: the caller's BLAS does all the work */

#define FF_HAVE_SMALL_GEMM 0
#define FF_PANEL(T) 1
#define FF_TILE_ROWS 1

#define FF_DEFINE_NO_SMALL_GEMM(T, NAME)                                       \
static int NAME(int trans_a, int trans_b, int m, int n, int k, const T* A,    \
                int lda, const T* const* A_rows, int a_col, const T* B,        \
                int ldb, T* C, int ldc)                                        \
{ (void) trans_a; (void) trans_b; (void) m; (void) n; (void) k; (void) A;      \
  (void) lda;                                                                  \
  (void) A_rows; (void) a_col; (void) B; (void) ldb; (void) C; (void) ldc;     \
  return 0; }

FF_DEFINE_NO_SMALL_GEMM(float, ff_sgemm_small)
FF_DEFINE_NO_SMALL_GEMM(double, ff_dgemm_small)

#endif

/* columns per panel and rows per tile, for callers that align their blocks
   to them */
static const int ff_panel_float = FF_PANEL(float);
static const int ff_panel_double = FF_PANEL(double);
static const int ff_tile_rows = FF_TILE_ROWS;

#endif  /* FASTFIT_KERNELS_H */
