"""Build the compiled engine: ``fastfit/_engine/_core.pxi``, once per code path.

The same sources are compiled once per instruction-set level, as NumPy and
OpenBLAS ship kernels per CPU generation: on x86-64 ``baseline`` (any x86-64
CPU), ``avx2`` (``-march=x86-64-v3``: AVX2, FMA) and ``avx512``
(``-march=x86-64-v4``); elsewhere ``baseline`` only, with the compiler's default
target. ``fastfit._engine`` loads the fastest one the CPU runs, so a wheel built
here runs on any x86-64 machine and still uses its vector units.

Environment variables:

``FASTFIT_NATIVE=1``
    Build one engine, for the CPU that builds it (``-march=native``).
``FASTFIT_DEBUG=1``
    Build one engine with Cython bounds checks on and ``-O0 -g``, for hunting
    memory errors.
``FASTFIT_ASAN=1``
    Build one engine with AddressSanitizer (``-fsanitize=address -O1 -g``),
    Cython's checks off as in a release build, to see the memory errors a
    release build hides. Python is not built with it: load the runtime first
    (``LD_PRELOAD=$(gcc -print-file-name=libasan.so)
    ASAN_OPTIONS=detect_leaks=0``); ``tests/test_sanitizer.py`` does.
``FASTFIT_NO_OPENMP=1``
    Build the engine serial. It is also serial when the compiler does not take
    ``-fopenmp`` (``cython.parallel.prange`` then compiles to a plain loop).
"""

import glob
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

ENGINE = os.path.join("fastfit", "_engine")
# where the one-line module of each code path is written
GENERATED = os.path.join("build", "engine")


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
        res = subprocess.run(
            cc + flags + [path, "-o", os.path.join(tmp, "t")], capture_output=True
        )
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sources_digest():
    digest = hashlib.sha256()
    for path in sorted(
        glob.glob(os.path.join(ENGINE, "*.pxi"))
        + glob.glob(os.path.join(ENGINE, "*.h"))
    ):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def code_paths(single, native):
    """(name, compiler flags) of each engine build (``single``: one baseline
    build, as the debug and sanitizer builds are)."""
    if single:
        return [("baseline", [])]
    if native and _compiler_takes(["-march=native"]):
        return [("native", ["-march=native"])]
    paths = [("baseline", [])]
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, flag in (
            ("avx2", "-march=x86-64-v3"),
            ("avx512", "-march=x86-64-v4"),
        ):
            if _compiler_takes([flag]):
                paths.append((name, [flag]))
    return paths


DEBUG = _env_flag("FASTFIT_DEBUG")
ASAN = _env_flag("FASTFIT_ASAN")
OPENMP = not _env_flag("FASTFIT_NO_OPENMP") and _compiler_takes(
    ["-fopenmp"],
    "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n",
)
if not OPENMP:
    print(
        "fastfit: compiler does not take -fopenmp; building the engine serial",
        file=sys.stderr,
    )

# -fno-math-errno: libm's sqrt may set errno, which stops gcc from vectorising
# the optimizer loops; the engine never reads errno.
base_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]
link_args = ["-fopenmp"] if OPENMP else []
if ASAN:
    sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer"]
    base_args = ["-O1", "-g", "-fno-math-errno"] + sanitize
    link_args += sanitize
if OPENMP:
    base_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}


def _engine_extension(name, flags):
    os.makedirs(GENERATED, exist_ok=True)
    source = os.path.join(GENERATED, f"_core_{name}.pyx")
    # the digest of the sources makes any change to them rebuild the engine
    text = (
        f"# The engine built for the {name!r} code path (written by setup.py).\n"
        f"# sources: {_sources_digest()}\n"
        'include "_core.pxi"\n'
    )
    if not os.path.exists(source) or open(source).read() != text:
        with open(source, "w") as f:
            f.write(text)
    return Extension(
        f"fastfit._engine._core_{name}",
        [source],
        include_dirs=[np.get_include(), ENGINE],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=base_args + flags,
        extra_link_args=link_args,
    )


extensions = [
    _engine_extension(name, flags)
    for name, flags in code_paths(DEBUG or ASAN, _env_flag("FASTFIT_NATIVE"))
]
# the CPU probe that chooses between them runs on any CPU: baseline flags
extensions.append(
    Extension(
        "fastfit._engine._cpu",
        [os.path.join(ENGINE, "_cpu.pyx")],
        extra_compile_args=["-O2"],
    )
)

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=[ENGINE],
    ),
)
