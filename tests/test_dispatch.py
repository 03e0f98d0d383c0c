"""Choosing the engine build: the fastest the CPU runs, or the one FASTFIT_ISA names."""

import os
import subprocess
import sys

import pytest

from fastfit import _engine


def _import_isa(value):
    env = dict(os.environ, FASTFIT_ISA=value)
    return subprocess.run(
        [sys.executable, "-c", "import fastfit._engine as e; print(e.ISA)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_default_is_the_fastest_supported_build():
    assert _engine.supported_isas(), "no engine build runs here"
    if not os.environ.get("FASTFIT_ISA"):
        assert _engine.ISA == _engine.supported_isas()[0]
    assert set(_engine.supported_isas()) <= set(_engine.built_isas())


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512", "native"])
def test_forced_build_is_loaded_or_refused_clearly(isa):
    proc = _import_isa(isa)
    if isa in _engine.supported_isas():
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == isa
    else:
        assert proc.returncode != 0
        assert f"FASTFIT_ISA={isa!r}" in proc.stderr
        assert "available here" in proc.stderr


def test_unknown_build_name_lists_the_known_ones():
    proc = _import_isa("sse9")
    assert proc.returncode != 0
    assert "FASTFIT_ISA='sse9'" in proc.stderr and "avx512" in proc.stderr
