"""What the OpenMP runtime the engine was built with allows."""

from fastfit._engine._openmp cimport FASTFIT_HAVE_OPENMP, omp_get_max_threads


def openmp_enabled():
    """Return True if the engine was compiled with OpenMP support."""
    return bool(FASTFIT_HAVE_OPENMP)


def openmp_max_threads():
    """Return ``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return omp_get_max_threads()
