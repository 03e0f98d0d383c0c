"""The safety battery on an engine built with AddressSanitizer.

A release build reads and writes raw pointers with no checks; an
out-of-bounds access there is silent until it corrupts something. The
``FASTFIT_ASAN=1`` build instruments every access of the engine, and the
sanitizer's runtime (preloaded: Python itself is not instrumented) redzones
every ``malloc``, so NumPy's arrays too. This test builds the package copy
once (about 20 s), checks that the sanitizer really reports (a deliberate
overflow through ``ctypes.memmove``), then runs ``tests/safety_battery.py``
with a sweep of random valid configurations, and fails on any report.

It runs when ``FASTFIT_TEST_SANITIZER=1`` (CI sets it) and the compiler
ships the runtime::

    FASTFIT_TEST_SANITIZER=1 python -m pytest tests/test_sanitizer.py
"""

import os
import subprocess
import sys

import pytest
from engine_builds import build_copy
from test_memory_safety import run_battery, unclean


def _asan_runtime():
    try:
        path = subprocess.run(
            ["gcc", "-print-file-name=libasan.so"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except OSError:
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


RUNTIME = _asan_runtime()
pytestmark = [
    pytest.mark.skipif(
        os.environ.get("FASTFIT_TEST_SANITIZER") != "1",
        reason="builds the engine with AddressSanitizer (slow); set "
        "FASTFIT_TEST_SANITIZER=1 to run it",
    ),
    pytest.mark.skipif(RUNTIME is None, reason="gcc's libasan.so is not installed"),
]


@pytest.fixture(scope="module")
def asan_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("fastfit-asan")
    log = build_copy(root, FASTFIT_ASAN="1")
    assert "-fsanitize=address" in log, "the build was not instrumented"
    return root


def _env(root):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["LD_PRELOAD"] = RUNTIME
    # Python's own allocations live until exit; only memory errors matter
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=99"
    env["FASTFIT_ISA"] = "baseline"
    return env


def test_the_sanitizer_reports_an_overflow(asan_copy):
    code = (
        "import ctypes, numpy as np\n"
        "a, b = np.zeros(8), np.zeros(16)\n"
        "ctypes.memmove(a.ctypes.data, b.ctypes.data, b.nbytes)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(asan_copy), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 99
    assert "AddressSanitizer: heap-buffer-overflow" in proc.stderr


def test_the_battery_runs_without_a_sanitizer_report(asan_copy):
    proc, results = run_battery(
        "--import-from", str(asan_copy), "--sweep", "40",
        env=_env(asan_copy), timeout=1800,
    )  # fmt: skip
    assert "AddressSanitizer" not in proc.stderr, proc.stderr[-6000:]
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import fastfit._engine as e; print(e.ISA, e.address_sanitized())",
         str(asan_copy)],
        env=_env(asan_copy), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.stdout.split() == ["baseline", "True"], probe.stderr[-3000:]
    assert len(results) > 70
    assert not unclean(results), results
    assert {v for k, v in results.items() if k.startswith("sweep-")} == {"ok"}
