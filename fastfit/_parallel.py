"""Threads: how many the engine uses, and BLAS kept to one while it runs.

The engine parallelises with its own OpenMP threads, over blocks that depend on
the shapes only. BLAS threads on top would fight them for the cores and change
the rounding, so every engine call runs inside :class:`SingleThreadedBlas`.
"""

import ctypes
import os
import threading

import scipy
from threadpoolctl import ThreadpoolController

from fastfit._engine import openmp_max_threads


def effective_n_threads(n_threads):
    """Threads for the engine: ``n_threads``, or what OpenMP allows (None).

    OpenMP's limit honours OMP_NUM_THREADS, threadpoolctl and joblib (which sets
    it in its workers so that parallel fits do not oversubscribe the cores).
    Negative values count back from that limit (-1: all of it).
    """
    if n_threads == 0:
        raise ValueError(
            "n_threads must be a positive int, a negative int "
            "(counting back from all cores) or None"
        )
    max_threads = openmp_max_threads()
    if n_threads is None:
        return max(1, max_threads)
    if n_threads < 0:
        return max(1, max_threads + 1 + n_threads)
    return max(1, min(int(n_threads), max_threads) if max_threads > 1 else 1)


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
