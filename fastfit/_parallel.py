"""Threads: how many the engine uses, and BLAS kept to one while it runs.

The engine parallelises with its own OpenMP threads, over blocks that depend on
the shapes only. BLAS threads on top would fight them for the cores and change
the rounding, so every engine call runs inside :class:`SingleThreadedBlas`.

A process forked after the engine may have run threads trains and predicts on
one thread (see :func:`effective_n_threads`).
"""

import ctypes
import os
import threading
import warnings

import scipy
from threadpoolctl import ThreadpoolController

from fastfit._engine import USABLE_CORES, openmp_enabled, openmp_max_threads

_OPENMP = openmp_enabled()

# Why: GNU OpenMP (libgomp) keeps the threads of its first parallel region for
# the life of the process, and a forked child inherits that pool's state but not
# its threads: the child's first parallel region waits for them forever, and
# the child cannot reset the pool. A single thread never enters libgomp
# (run_blocks runs the blocks in a plain loop), so such a child is safe on one
# thread. Before the first multi-threaded engine call there is no pool and a
# child may use threads. An at-fork hook marks a child forked after it, as
# OpenBLAS and PyTorch do for their own pools. Only fastfit's own calls are
# tracked: a pool that other code started in the same libgomp is not seen.
_threads_started = False  # this process (or a parent before fork) ran > 1 thread
_forked_after_threads = False  # forked after that: engine limited to one thread
_fork_warned = False


def effective_n_threads(n_threads):
    """Threads for the engine's next fit or predict call.

    Parameters
    ----------
    n_threads : int or None
        The estimator's ``n_threads``. None: OpenMP's limit, which honours
        OMP_NUM_THREADS, threadpoolctl and joblib (which sets it in its
        workers so that parallel fits do not oversubscribe the cores). A
        negative count counts back from that limit (-1: all of it). A
        positive count is used as given, capped only by the cores this
        process may use (affinity and cgroup quotas, ``joblib.cpu_count``),
        not by OMP_NUM_THREADS: a Dask worker's nanny sets that to 1, and an
        explicit count is the user's decision for that worker.

    Returns
    -------
    int
        At least 1; 1 in an engine built without OpenMP. Always 1 in a
        process forked (``os.fork``, ``multiprocessing``'s "fork" start
        method) after its parent, or an earlier ancestor, was given more than
        one here: GNU OpenMP cannot run threads in such a child. A
        :class:`RuntimeWarning` says so, once per process, when an explicit
        ``n_threads`` is cut to 1 this way.
    """
    global _threads_started, _fork_warned
    if n_threads == 0:
        raise ValueError(
            "n_threads must be a positive int, a negative int "
            "(counting back from all cores) or None"
        )
    if not _OPENMP:
        n = 1
    elif n_threads is None:
        n = max(1, openmp_max_threads())
    elif n_threads < 0:
        n = max(1, openmp_max_threads() + 1 + n_threads)
    else:
        # the engine's parallel loops pass the count in OpenMP's num_threads
        # clause, which overrides OMP_NUM_THREADS
        n = max(1, min(int(n_threads), USABLE_CORES))
    if n > 1:
        if _forked_after_threads:
            if n_threads is not None and not _fork_warned:
                _fork_warned = True
                warnings.warn(
                    f"n_threads={n_threads!r}: this process was forked after "
                    "fastfit may have run OpenMP threads, and GNU OpenMP cannot "
                    "start threads in a forked child, so fastfit uses one "
                    "thread here. For multi-threaded workers start them with "
                    "'spawn' or 'forkserver' (joblib's default backend, loky, "
                    "starts fresh processes).",
                    RuntimeWarning,
                )
            return 1
        # set before the engine can enter a parallel region
        _threads_started = True
    return n


def _after_fork_in_child():
    """os.register_at_fork hook: mark the child, reset per-process state."""
    global _forked_after_threads, _fork_warned
    if _threads_started:
        _forked_after_threads = True
    _fork_warned = False
    SingleThreadedBlas._after_fork_in_child()


def _engine_blas_controllers():
    """threadpoolctl controllers of the BLAS the engine calls: SciPy's (through
    ``scipy.linalg.cython_blas``), or every BLAS if it cannot be told apart."""
    blas = [
        lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"
    ]
    # SciPy's wheels vendor their OpenBLAS in site-packages/scipy.libs
    scipy_libs = os.path.join(
        os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs"
    )
    own = [
        lc for lc in blas if os.path.dirname(os.path.abspath(lc.filepath)) == scipy_libs
    ]
    return own or blas


def _thread_setter(controller):
    """(get, set) of a BLAS library's thread count.

    With SciPy's OpenBLAS (pthreads), ``openblas_set_num_threads`` (what
    threadpoolctl calls) has no effect when called from a thread other than the
    main one; ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) does, from
    any thread, so it is used when present.
    """
    try:
        fn = ctypes.CDLL(controller.filepath).openblas_set_num_threads_local
    except (OSError, AttributeError):
        return controller.get_num_threads, controller.set_num_threads
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return controller.get_num_threads, fn


class SingleThreadedBlas:
    """While any fit or predict runs, in any thread, the engine's BLAS uses one thread.

    The setting is process-wide, so overlapping fits in Python threads share it:
    the first user pins, the last one restores, and :meth:`pin` re-applies it
    (every epoch) in case other code changed it meanwhile.
    """

    _lock = threading.Lock()
    _users = 0
    _saved = ()
    _setters = None  # one (get, set) pair per engine BLAS library

    @classmethod
    def _setup(cls):
        if cls._setters is None:
            cls._setters = [_thread_setter(lc) for lc in _engine_blas_controllers()]

    @classmethod
    def pin(cls):
        """(Re-)apply the one-thread setting."""
        cls._setup()
        for _, set_threads in cls._setters:
            set_threads(1)

    def __enter__(self):
        cls = type(self)
        cls._setup()
        with cls._lock:
            if cls._users == 0:
                cls._saved = [get() for get, _ in cls._setters]
            cls._users += 1
            cls.pin()
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                for (_, set_threads), n in zip(cls._setters, cls._saved):
                    set_threads(n)
                cls._saved = ()
        return False

    @classmethod
    def _after_fork_in_child(cls):
        """Forget fits that other threads were running at fork: they do not go
        on in the child, so their lock and count would block or pin it."""
        cls._lock = threading.Lock()
        if cls._users:
            for (_, set_threads), n in zip(cls._setters, cls._saved):
                set_threads(n)
        cls._users, cls._saved = 0, ()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
