"""Fork safety: a process forked after a multi-threaded fit can fit and predict;
and the thread count a fit runs with, whatever OMP_NUM_THREADS says.

GNU OpenMP cannot run a parallel region in a child forked after the parent ran
one (the child waits forever for the parent's pool threads), so such a child
must run the engine on one thread. Every case runs in its own interpreter, in
its own process group, so that a hang or a crash fails the test (and every
process it forked is killed) instead of stopping the run.
"""

import os
import signal
import subprocess
import sys
import textwrap

import joblib
import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or joblib.cpu_count() < 2,
    reason="needs os.fork and two cores (one core never enters OpenMP)",
)

TIMEOUT = 60

# Large enough for the engine to split the products into column blocks and run
# them in an OpenMP region: 256 x 256 x 64 is 16 times BLOCK_MIN_WORK, and 256
# columns are 4 blocks of BLOCK_MIN_WIDTH (column_blocks, _network.pxi).
PRELUDE = """
import hashlib, os, sys, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
import fastfit
from fastfit._parallel import SingleThreadedBlas, effective_n_threads

warnings.simplefilter("ignore", ConvergenceWarning)
rng = np.random.RandomState(0)
X = rng.randn(2000, 64)
y = (X[:, 0] + X[:, 1] > 0).astype(int)


def fit(n_threads=None):
    return fastfit.MLPClassifier(
        hidden_layer_sizes=(256,), batch_size=256, max_iter=2,
        n_threads=n_threads, random_state=0,
    ).fit(X, y)


def digest(model):
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2), proba.shape
    accuracy = float((model.predict(X) == y).mean())
    assert accuracy > 0.7, accuracy
    return hashlib.sha256(proba.tobytes()).hexdigest()[:16]


def work(n_threads):
    return digest(fit(n_threads))


def os_threads():
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None


def threaded_fit():
    # The fit starts libgomp's pool, whose threads outlive the region: check
    # that it did, or this test could not catch the hang.
    before = os_threads()
    result = work(2)
    after = os_threads()
    assert before is None or after > before, (before, after)
    return result


def in_fork(child, timeout=45):
    # child() run in a forked process: what it returns (a str), or exit
    import time, traceback
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(write, child().encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + timeout
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit(f"forked child still running after {timeout} s: hung")
        time.sleep(0.05)
    result = os.read(read, 10000).decode()
    if not result:
        sys.exit("forked child failed")
    return result
"""


def run(code, env=None):
    """Run PRELUDE + code in a fresh interpreter; its stdout's last line."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "2", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"hung for {TIMEOUT} s\nstdout:\n{out}\nstderr:\n{err}")
    finally:
        # workers a failed run left behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def single_threaded():
    """Predictions' digest of the fit with n_threads=1 in a fresh process."""
    return run("print(work(1))")


def test_os_fork_after_threaded_fit(single_threaded):
    out = run(
        """
        parent = threaded_fit()

        def child():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                default = work(None)
                assert effective_n_threads(None) == 1
                assert not caught, "n_threads=None is cut to 1 silently"
                explicit = [work(2), work(-1)]
                assert len(caught) == 1, [str(w.message) for w in caught]
                assert "forked" in str(caught[0].message)
            return " ".join([default, *explicit])

        children = in_fork(child).split()
        # the parent keeps its threads
        assert effective_n_threads(2) == 2
        print(parent, *children, work(2))
        """
    )
    assert out.split() == [single_threaded] * 5


def test_fork_before_any_threads_keeps_threads(single_threaded):
    out = run(
        """
        one = work(1)  # never enters OpenMP

        def child():
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                assert effective_n_threads(2) == 2
                return threaded_fit()

        print(one, in_fork(child))
        """
    )
    assert out.split() == [single_threaded] * 2


def test_multiprocessing_fork_pool(single_threaded):
    out = run(
        """
        import multiprocessing
        parent = threaded_fit()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(work, [None, 2, None, 2]).get(timeout=45)
        print(parent, *results, work(2))
        """
    )
    assert out.split() == [single_threaded] * 6


def test_joblib_multiprocessing_backend(single_threaded):
    out = run(
        """
        from joblib import Parallel, delayed
        parent = threaded_fit()
        results = Parallel(n_jobs=2, backend="multiprocessing", timeout=45)(
            delayed(work)(n) for n in [None, 2, None, 2]
        )
        print(parent, *results, work(2))
        """,
        env={"JOBLIB_START_METHOD": "fork"},
    )
    assert out.split() == [single_threaded] * 6


def test_fork_during_fit_in_another_thread(single_threaded):
    """A fit another thread was running at fork does not run on in the child:
    neither its lock nor its BLAS pin may stay behind there."""
    out = run(
        """
        from threadpoolctl import threadpool_info, threadpool_limits

        def blas_threads():
            return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

        def child():
            assert blas_threads() == unpinned, blas_threads()
            with threadpool_limits(limits=1):
                pass
            result = work(None)
            assert blas_threads() == unpinned, blas_threads()
            return result

        parent = threaded_fit()
        unpinned = blas_threads()
        with SingleThreadedBlas():  # as a fit in another thread would
            pinned = blas_threads()
            with SingleThreadedBlas._lock:
                forked = in_fork(child)
        print(parent, forked, "pinned" if pinned != unpinned else "not-pinned")
        """
    )
    assert out.split() == [single_threaded] * 2 + ["pinned"]


def test_explicit_n_threads_overrides_omp_num_threads(single_threaded):
    """A Dask worker's nanny sets OMP_NUM_THREADS=1: n_threads=None follows it
    (and threadpoolctl's OpenMP limit), an explicit count does not."""
    out = run(
        """
        from threadpoolctl import threadpool_limits
        from fastfit import _engine

        assert _engine.openmp_max_threads() == 1
        assert effective_n_threads(None) == 1
        assert effective_n_threads(-1) == 1
        assert effective_n_threads(2) == 2
        assert effective_n_threads(10**6) == _engine.USABLE_CORES
        before = os_threads()
        default = work(None)  # one thread: libgomp starts no pool
        assert before is None or os_threads() == before, (before, os_threads())
        threaded = threaded_fit()  # n_threads=2 starts it
        # the team the engine's block loop runs
        assert _engine.openmp_team_size(1) == 1
        assert _engine.openmp_team_size(2) == 2
        with threadpool_limits(limits=1, user_api="openmp"):
            assert effective_n_threads(None) == 1
            assert effective_n_threads(2) == 2
            assert _engine.openmp_team_size(2) == 2
        print(default, threaded)
        """,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert out.split() == [single_threaded] * 2
