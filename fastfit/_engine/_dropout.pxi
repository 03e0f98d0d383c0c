# Inverted dropout with masks from a counter-based generator.
#
# A unit's mask bit is a hash of (the fit's seed, the optimizer step, the
# layer, the row's number in the batch, the column): nothing is stored, the
# backward regenerates the bits the forward used, and the masks depend on
# neither the thread count nor the blocking. The hash is MurmurHash3's 32-bit
# finaliser, which vectorises with 32-bit multiplies (AVX2 has no 64-bit
# one); a row's key is mixed once and its columns step along a Weyl sequence.
#
# A unit is kept when its 32 bits fall below keep * 2**32, and kept outputs
# are scaled by 1 / keep (torch.nn.Dropout's convention: no scaling at
# prediction).

from libc.stdint cimport uint32_t, uint64_t

cdef uint32_t WEYL = 0x9E3779B9u


cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    h ^= h >> 16
    h *= 0x85EBCA6Bu
    h ^= h >> 13
    h *= 0xC2B2AE35u
    h ^= h >> 16
    return h


cdef inline uint32_t mix_key(uint32_t key, uint64_t counter) noexcept nogil:
    """A key for ``counter`` under ``key``: distinct counters, unrelated keys."""
    return fmix32(key ^ fmix32(<uint32_t> counter + WEYL)
                  ^ fmix32(<uint32_t> (counter >> 32) * WEYL))


cdef inline uint32_t keep_threshold(double keep) noexcept nogil:
    """Bits below this keep a unit: keep * 2**32 for keep < 1. Without
    dropout (keep 1) nothing reads it: 2**32 - 1, for a value that converts
    in range (2**32 does not fit, and C leaves that conversion undefined)."""
    if keep >= 1:
        return 0xFFFFFFFFu
    return <uint32_t> (keep * 4294967296.0)


cdef inline void apply_mask(floating* row, uint32_t row_key, uint32_t threshold,
                            floating scale, Py_ssize_t j0,
                            Py_ssize_t j1) noexcept nogil:
    """row[j] *= scale where unit j is kept, 0 where it is dropped, j0 <= j < j1.
    # INOUT row"""
    cdef Py_ssize_t j
    cdef uint32_t h
    for j in range(j0, j1):
        h = fmix32(row_key + <uint32_t> j * WEYL)
        row[j] = row[j] * scale if h < threshold else 0


def dropout_mask(uint32_t seed, uint64_t step, int layer, Py_ssize_t m,
                 Py_ssize_t n, double rate, Py_ssize_t row0=0):
    """The (m, n) keep mask (bool) of layer ``layer``'s outputs, rows
    row0..row0+m-1 of the batch of optimizer step ``step`` (counted from 1) of
    a Trainer with ``dropout_seed`` ``seed``: the kernels' draw, for tests."""
    out = np.ones((m, n), dtype=np.float64)
    cdef double[:, ::1] view = out
    cdef Py_ssize_t i
    cdef uint32_t key = mix_key(mix_key(seed, step), <uint64_t> layer)
    if not 0 <= rate < 1:
        raise ValueError("rate must be in [0, 1)")
    if rate > 0:
        for i in range(m):
            apply_mask(&view[i, 0], mix_key(key, row0 + i),
                       keep_threshold(1.0 - rate), 1.0, 0, n)
    return out != 0
