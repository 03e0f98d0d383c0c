"""Data-parallel training over MPI: fits launched on 2 local processes.

Each test launches ``mpiexec`` once (on loopback: shared memory only, no
listening socket) with a timeout, so a deadlock fails the test instead of
hanging it; the checks themselves run on every rank (``tests/mpi_worker.py``).
Skipped without mpi4py or an MPICH ``mpiexec`` (``pip install -e .[mpi]``).
"""

import importlib.util
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastfit import MLPClassifier, MLPRegressor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_TIMEOUT = 120


def _mpiexec():
    """MPICH's fork-based launcher: the mpich wheel's, beside this Python,
    else one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec.gforker")
    return here if os.path.exists(here) else shutil.which("mpiexec.gforker")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="data-parallel tests need mpi4py and MPICH's mpiexec.gforker "
    "(pip install -e .[mpi])",
)


def launch(*args, n=2):
    """Run ``python args`` on n local processes; returns stdout, after
    checking the launch succeeded within LAUNCH_TIMEOUT."""
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        UCX_TLS="self,sm",
        UCX_NET_DEVICES="lo",
        OMP_NUM_THREADS="1",
    )
    try:
        res = subprocess.run(
            [MPIEXEC, "-n", str(n), sys.executable, *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec did not finish in {LAUNCH_TIMEOUT}s (deadlock?): {exc}")
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@needs_mpi
def test_data_parallel_fits():
    """Every check of tests/mpi_worker.py in one launch: 2 ranks equal one
    process on the whole batch (float64, rtol 1e-10), bit-identical replicas
    (blocking and overlapped reductions), classes missing from a shard,
    predict/pickle/clone/partial_fit, early stopping at the same epoch,
    local SGD with sync_every=1 equal to synchronous SGD, a loss overflowing
    on one rank rolled back on every rank, a bad input on one rank a
    ValueError on every rank."""
    checks = [
        "equivalence", "replicas", "early_stopping", "local_sgd", "divergence",
        "bad_input",
    ]  # fmt: skip
    out = launch(os.path.join("tests", "mpi_worker.py"), *checks)
    assert out.split() == [w for c in checks for w in ("ok", c)], out


@needs_mpi
def test_example_script(tmp_path):
    """examples/mpi_train.py runs as the README gives it (with fewer epochs)
    and saves a model that predicts alone."""
    path = tmp_path / "model.pkl"
    out = launch(
        os.path.join("examples", "mpi_train.py"), "--max-iter", "2", "--save", str(path)
    )
    assert "test accuracy" in out
    with open(path, "rb") as f:
        model = pickle.load(f)
    assert model.communicator is None
    assert model.predict(np.zeros((3, model.n_features_in_))).shape == (3,)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_no_communicator_needs_no_mpi(Estimator):
    """A communicator that is not one is refused before any collective
    call."""
    X = np.random.RandomState(0).randn(40, 3)
    y = np.arange(40) % 2
    assert Estimator(max_iter=2).fit(X, y).communicator is None
    with pytest.raises(ValueError, match="communicator"):
        Estimator(communicator="world").fit(X, y)


def test_fit_imports_no_mpi():
    """fastfit works without mpi4py: a fit without a communicator imports
    none of it."""
    code = (
        "import sys, numpy as np; from fastfit import MLPClassifier; "
        "MLPClassifier(max_iter=1).fit(np.eye(4), [0, 1, 0, 1]); "
        "assert 'mpi4py' not in sys.modules"
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, check=True,
                   timeout=LAUNCH_TIMEOUT)  # fmt: skip
