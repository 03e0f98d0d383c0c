"""The compiled core of fastfit (Cython, fused float/double kernels)."""
