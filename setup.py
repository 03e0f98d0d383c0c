"""Build the compiled engine: every ``fastfit/_engine/*.pyx`` becomes an extension.

OpenMP is used when the compiler accepts ``-fopenmp``; otherwise the engine is built
serial (``cython.parallel.prange`` then compiles to a plain loop).

The engine is compiled for the CPU that builds it (``-march=native``: AVX2 /
AVX-512 for the elementwise and optimizer loops) since ``pip install`` from source
builds where it runs. ``FASTFIT_PORTABLE=1`` builds for baseline x86-64 instead,
for a wheel meant for other machines. ``FASTFIT_DEBUG=1`` builds with Cython
bounds checks on and ``-O0 -g``, for hunting memory errors.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

def _env_flag(name):
    return os.environ.get(name, "0") not in ("", "0")


def _compiler_takes(flags, src="int main(void){return 0;}\n"):
    """Return True if the C compiler builds and links ``src`` with ``flags``."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        res = subprocess.run(cc + flags + [path, "-o", os.path.join(tmp, "t")],
                             capture_output=True)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DEBUG = _env_flag("FASTFIT_DEBUG")
OPENMP = not _env_flag("FASTFIT_NO_OPENMP") and _compiler_takes(
    ["-fopenmp"],
    "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
NATIVE = not _env_flag("FASTFIT_PORTABLE") and not DEBUG and _compiler_takes(
    ["-march=native"])
if not OPENMP:
    print("fastfit: compiler does not take -fopenmp; building the engine serial",
          file=sys.stderr)

# -fno-math-errno: libm's sqrt may set errno, which stops gcc from vectorising
# the optimizer loops; the engine never reads errno.
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]
if NATIVE:
    compile_args.append("-march=native")
link_args = []
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "fastfit._engine." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[np.get_include(), os.path.join("fastfit", "_engine")],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob(os.path.join("fastfit", "_engine", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
    ),
)
