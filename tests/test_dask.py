"""fastfit under Dask: scikit-learn's searches on joblib's Dask backend, and
dask-ml's Incremental over a chunked dask array.

One two-worker LocalCluster (processes, loopback only) serves the module and
is closed by its fixture. Skipped when dask, distributed or dask-ml is
missing (``pip install 'fastfit[dask]'``).
"""

import os
import warnings

import numpy as np
import pytest

for _module in ("dask", "distributed", "dask_ml"):
    pytest.importorskip(
        _module, reason=f"{_module} is not installed (pip install 'fastfit[dask]')"
    )

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from dask_ml.wrappers import Incremental  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.experimental import enable_halving_search_cv  # noqa: E402, F401
from sklearn.model_selection import GridSearchCV, HalvingRandomSearchCV  # noqa: E402

import fastfit  # noqa: E402
from fastfit import MLPClassifier  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # the workers are fresh processes: they import fastfit from where this
    # process does (a source checkout is not necessarily the installed one)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))
    # distributed also writes its workers' settings into this process's
    # environment (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, ...), where the
    # later tests' subprocesses would inherit them: all of it is put back
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = root + (
        os.pathsep + saved["PYTHONPATH"] if saved.get("PYTHONPATH") else ""
    )
    try:
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        with Client(cluster) as dask_client:
            yield dask_client
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(saved)


def _data(n=400, seed=0, noise=0.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 8).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
    flip = rng.rand(n) < noise
    y[flip] = 1 - y[flip]
    return X, y


def _quiet():
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("ignore", ConvergenceWarning)
    return context


def _worker_threads():
    import os

    from fastfit import _engine
    from fastfit._parallel import effective_n_threads

    return (
        os.environ.get("OMP_NUM_THREADS"),
        effective_n_threads(None),
        effective_n_threads(2),
        min(2, _engine.USABLE_CORES),
        os.path.abspath(__import__("fastfit").__file__),
    )


def test_workers_run_this_fastfit_with_the_threads_asked_for(client):
    for omp, default, explicit, usable, path in client.run(_worker_threads).values():
        assert path == os.path.abspath(fastfit.__file__)
        # the nanny limits OpenMP; n_threads=None follows, an explicit count not
        assert omp == "1" and default == 1
        assert explicit == usable


def test_grid_search_on_the_dask_backend_matches_a_serial_one(client):
    X, y = _data()
    search = GridSearchCV(
        MLPClassifier(max_iter=15, random_state=0),
        {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(4,), (32,)]},
        cv=3,
    )
    context = _quiet()
    try:
        serial = search.set_params(n_jobs=1).fit(X, y)
        serial_params, serial_scores = serial.best_params_, serial.cv_results_
        with joblib.parallel_backend("dask"):
            parallel = search.set_params(n_jobs=-1).fit(X, y)
    finally:
        context.__exit__(None, None, None)
    assert parallel.best_params_ == serial_params
    # a fit is bit-identical whatever its thread count
    np.testing.assert_array_equal(
        parallel.cv_results_["mean_test_score"], serial_scores["mean_test_score"]
    )


def test_halving_search_over_max_iter_on_the_dask_backend(client):
    X, y = _data()
    search = HalvingRandomSearchCV(
        MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
        {"alpha": [1e-4, 1e-2, 1.0, 10.0], "learning_rate_init": [1e-3, 1e-2]},
        resource="max_iter",
        min_resources=4,
        max_resources=16,
        factor=2,
        cv=3,
        random_state=0,
    )
    context = _quiet()
    try:
        with joblib.parallel_backend("dask"):
            search.set_params(n_jobs=-1).fit(X, y)
    finally:
        context.__exit__(None, None, None)
    assert search.n_iterations_ >= 2
    assert search.n_resources_ == sorted(search.n_resources_)
    assert search.best_params_["max_iter"] == search.n_resources_[-1]
    assert search.best_score_ > 0.8


def test_incremental_over_four_chunks_trains_like_fit(client):
    # 10% of the labels flipped: about 0.9 is the best accuracy to expect
    X, y = _data(800, noise=0.1)
    X, y, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
    Xd = da.from_array(X, chunks=(100, X.shape[1]))
    yd = da.from_array(y, chunks=100)
    assert Xd.numblocks == (4, 1)
    passes = 10
    params = dict(
        hidden_layer_sizes=(16,), batch_size=25, learning_rate_init=1e-2,
        random_state=0,
    )  # fmt: skip
    incremental = Incremental(
        MLPClassifier(**params), scoring="accuracy", shuffle_blocks=False
    )
    for _ in range(passes):
        incremental.partial_fit(Xd, yd, classes=[0, 1])
    model = incremental.estimator_
    # the same partial_fit calls in this process: the same model, bit for bit
    local = MLPClassifier(**params)
    for _ in range(passes):
        for start in range(0, len(X), 100):
            local.partial_fit(
                X[start : start + 100], y[start : start + 100], classes=[0, 1]
            )
    for a, b in zip(model.coefs_ + model.intercepts_, local.coefs_ + local.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert model.t_ == passes * len(X)
    # against fit over as many epochs: its batches are drawn from all 400
    # rows, the chunks' from 100 rows each, so the models differ; on held-out
    # rows they score 0.83-0.84 and within 0.015 of each other (seeds 0-2 of
    # this data): allow 0.03
    context = _quiet()
    try:
        full = MLPClassifier(max_iter=passes, **params).fit(X, y)
    finally:
        context.__exit__(None, None, None)
    score = incremental.score(
        da.from_array(X_test, chunks=(100, X.shape[1])), da.from_array(y_test, 100)
    )
    full_score = full.score(X_test, y_test)
    assert score > 0.75 and full_score > 0.75
    assert abs(score - full_score) <= 0.03


def test_the_example_runs():
    """examples/dask_search.py as a user runs it (its own cluster)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    example = os.path.join(
        os.path.dirname(__file__), "..", "examples", "dask_search.py"
    )
    proc = subprocess.run(
        [sys.executable, example], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "halving search" in proc.stdout and "Incremental" in proc.stdout
