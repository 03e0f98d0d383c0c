# Checks of a fit's input that read all of X: one pass, in blocks per core.
#
# X can be hundreds of MB, and a continued fit (``warm_start``,
# ``partial_fit`` on large chunks) checks it on every call: NumPy's
# ``X.min()`` and ``X.max()`` are two passes on one thread. The count of
# entries outside a bound is one pass, in blocks that run on every thread;
# a count is exact in any order, so the blocks may follow the thread count.

# blocks hold at least this many values (a few tens of microseconds of reading)
cdef Py_ssize_t CHECK_BLOCK_MIN = 1 << 16


cdef inline Py_ssize_t _outside_count(const floating* x, Py_ssize_t lo,
                                      Py_ssize_t hi,
                                      double bound) noexcept nogil:
    """Entries of x[lo:hi] not within [-bound, bound]; NaN is not within."""
    cdef Py_ssize_t i, count = 0
    cdef floating b = <floating> bound, v
    for i in range(lo, hi):
        v = x[i]
        # bitwise, not ``or``: no branch, so the loop vectorises
        count += <int> (v > b) | <int> (v < -b) | <int> (v != v)
    return count


def count_outside(const floating[::1] x, double bound, int n_threads):
    """Number of entries of ``x`` not within ``[-bound, bound]``, NaN
    included (one pass over ``x``, on up to ``n_threads`` threads).

    ``bound`` must be representable in x's dtype (it is compared in it).
    """
    cdef Py_ssize_t n = x.shape[0], total = 0
    cdef int n_blocks = <int> max(1, min(n // CHECK_BLOCK_MIN, <Py_ssize_t> min(
        n_threads, <int> MAX_COLUMN_BLOCKS))), t
    cdef double partial[MAX_COLUMN_BLOCKS]
    cdef Task task
    if n == 0:
        return 0
    memset(&task, 0, sizeof(Task))
    task.kind, task.A, task.extent = TASK_COUNT_OUTSIDE, &x[0], n
    task.width = block_width(n, n_blocks, 16)
    task.bound = bound
    task.partial = partial
    with nogil:
        run_blocks(&task, n_blocks, n_threads, &x[0])
    for t in range(n_blocks):
        total += <Py_ssize_t> partial[t]
    return total
