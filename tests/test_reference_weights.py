"""Fits are bit-identical to the recorded reference weights, on every code path.

``tests/data/reference_weights.npz`` holds, for a few configurations and both
dtypes, the weights a fit with a fixed ``random_state`` reached, recorded per
engine code path (``fastfit._engine.ISA``) with BLAS pinned to one kernel.
A change to the engine that alters the rounding of training shows up here;
such a change must be deliberate, and the file re-recorded with
``tests/data/make_reference_weights.py`` (its docstring says how).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastfit._engine import supported_isas, x86_64_level

DATA = Path(__file__).parent / "data"
REFERENCE = np.load(DATA / "reference_weights.npz")
RECORDED = sorted({key.split("/")[0] for key in REFERENCE.files})


@pytest.mark.skipif(
    x86_64_level() < 3, reason="BLAS is pinned to its Haswell (AVX2) kernels"
)
@pytest.mark.parametrize("isa", RECORDED)
def test_fit_weights_match_the_reference(isa, tmp_path):
    if isa not in supported_isas():
        pytest.skip(f"the {isa!r} engine is not built or not supported by this CPU")
    out = tmp_path / "weights.npz"
    env = dict(os.environ, FASTFIT_ISA=isa, OPENBLAS_CORETYPE="Haswell")
    proc = subprocess.run(
        [sys.executable, str(DATA / "make_reference_weights.py"), isa, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    expected = sorted(k for k in REFERENCE.files if k.startswith(isa + "/"))
    assert sorted(got.files) == expected
    for key in expected:
        np.testing.assert_array_equal(got[key], REFERENCE[key], err_msg=key)
