"""Which engine builds the CPU can run (compiled for the baseline target)."""

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    static int ff_cpu_x86_64_level(void) {
        __builtin_cpu_init();
        /* the levels of the x86-64 psABI: v3 = AVX2, FMA, BMI1/2, F16C,
           MOVBE, LZCNT; v4 = v3 + AVX-512 F, BW, CD, DQ, VL */
        if (__builtin_cpu_supports("x86-64-v4")) return 4;
        if (__builtin_cpu_supports("x86-64-v3")) return 3;
        return 1;
    }
    #else
    static int ff_cpu_x86_64_level(void) { return 0; }
    #endif
    """
    int ff_cpu_x86_64_level() noexcept nogil


def x86_64_level():
    """The x86-64 microarchitecture level of this CPU (1 to 4), 0 elsewhere."""
    return ff_cpu_x86_64_level()
