# fastfit's compiled engine, built once per instruction-set level
# (``setup.py``) and chosen at import (``fastfit/_engine/__init__.py``).
#
# One Cython module made of one include file per concept:
#
# =================  ===========================================================
# _openmp.pxi        the OpenMP runtime, or its serial stand-ins
# _blas.pxi          row-major gemm over SciPy's BLAS; the small-batch kernel
# _dropout.pxi       dropout masks from a counter-based hash
# _activations.pxi   hidden activations, fused with the bias add / derivative
# _losses.pxi        output losses: value and gradient w.r.t. the raw output
# _optim.pxi         the optimizer update rules (PyTorch's formulas)
# _sparse.pxi        a sparse (CSR) input's first-layer products
# _blocks.pxi        the one block-parallel loop every parallel task goes through
# _network.pxi       dense layers, forward and backward passes
# _trainer.pxi       the engine objects: Network and Trainer
# _checks.pxi        one-pass checks of a fit's input X
# =================  ===========================================================
#
# Every kernel is written once over Cython's fused ``floating`` (float32 and
# float64).

import numpy as np

from fastfit._layout import Layout, aligned_empty

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport (erf, erff, exp, expf, expm1, expm1f, fabs, fabsf,
                       isfinite, log, log1p, log1pf, NAN, pow, sqrt, sqrtf, tanh, tanhf)
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

include "_openmp.pxi"
include "_blas.pxi"
include "_dropout.pxi"
include "_activations.pxi"
include "_losses.pxi"
include "_optim.pxi"
include "_sparse.pxi"
include "_blocks.pxi"
include "_network.pxi"
include "_trainer.pxi"
include "_checks.pxi"


def openmp_enabled():
    """Return True if the engine was compiled with OpenMP support."""
    return bool(FASTFIT_HAVE_OPENMP)


def openmp_max_threads():
    """Return ``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return omp_get_max_threads()


def denormals_flushed_py():
    """Whether the calling thread computes with denormals flushed to zero
    (FTZ and DAZ): never outside the engine's calls (tests)."""
    return bool(ff_denormals_flushed())


def openmp_team_size(int n_threads):
    """The number of threads the engine's block loop (``run_blocks``) runs
    for ``n_threads``, as ``omp_get_num_threads()`` reports it inside the
    loop: the observable that an explicit thread count is honoured (tests)."""
    cdef double partial[MAX_COLUMN_BLOCKS]
    cdef Task task
    cdef int t
    memset(&task, 0, sizeof(Task))
    task.kind = TASK_TEAM_SIZE
    task.partial = partial
    with nogil:
        run_blocks(&task, MAX_COLUMN_BLOCKS, n_threads, <const double*> NULL)
    return int(max([partial[t] for t in range(MAX_COLUMN_BLOCKS)]))


cdef extern from *:
    """
    #if defined(__SANITIZE_ADDRESS__)
    #define FASTFIT_ASAN 1
    #elif defined(__has_feature)
    #if __has_feature(address_sanitizer)
    #define FASTFIT_ASAN 1
    #endif
    #endif
    #ifndef FASTFIT_ASAN
    #define FASTFIT_ASAN 0
    #endif
    """
    bint FASTFIT_ASAN


def address_sanitized():
    """Whether this build is instrumented by AddressSanitizer
    (``FASTFIT_ASAN=1``)."""
    return bool(FASTFIT_ASAN)


def bounds_checked():
    """Whether this build checks memoryview bounds (the ``FASTFIT_DEBUG=1``
    build does); reads inside allocated memory either way."""
    cdef double[::1] view = np.zeros(2)[:1]
    cdef Py_ssize_t i = 1
    try:
        view[i] = 0.0
    except IndexError:
        return True
    return False
