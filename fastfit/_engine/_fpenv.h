/* Denormals flushed to zero while the engine computes.
 *
 * A float below 2^-126 (2^-1022 in double) is denormal, and on x86 every
 * arithmetic instruction that reads or produces one takes a slow microcode
 * path, tens to a hundred times slower. Training makes them: weights, Adam's
 * moments and gradients decay towards zero, and an epoch that gathers a few
 * per cent of denormal weights slows down many times over. So the engine's
 * threads compute with FTZ (a denormal result is written as 0) and DAZ (a
 * denormal input is read as 0) set in the SSE/AVX control register MXCSR,
 * as TensorFlow's and XLA's CPU threads do, and restore the caller's mode
 * when they are done: NumPy and the rest of the process keep IEEE gradual
 * underflow. Every thread sets the same mode, so results stay the same for
 * any thread count. Elsewhere than x86 these are no-ops.
 */
#ifndef FASTFIT_FPENV_H
#define FASTFIT_FPENV_H

#if defined(__SSE__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>

#define FF_MXCSR_FTZ_DAZ 0x8040u

static inline unsigned int ff_flush_denormals(void) {
    unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | FF_MXCSR_FTZ_DAZ);
    return mode;
}

static inline void ff_restore_fp_mode(unsigned int mode) {
    _mm_setcsr(mode);
}

static inline int ff_denormals_flushed(void) {
    return (_mm_getcsr() & FF_MXCSR_FTZ_DAZ) == FF_MXCSR_FTZ_DAZ;
}
#else
static inline unsigned int ff_flush_denormals(void) { return 0u; }
static inline void ff_restore_fp_mode(unsigned int mode) { (void) mode; }
static inline int ff_denormals_flushed(void) { return 0; }
#endif

#endif  /* FASTFIT_FPENV_H */
