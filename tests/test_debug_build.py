"""The engine built with Cython bounds checks on.

The release engine is compiled with ``boundscheck=False, wraparound=False``:
an index error in a kernel is silent memory corruption. ``FASTFIT_DEBUG=1``
makes setup.py compile with bounds/wraparound/initialized checks on and
``-O0 -g``. This test copies the package source to a temporary directory,
builds it there in debug mode, and runs fit / predict / partial_fit of both
estimators in both dtypes through every engine path in a subprocess that
imports the debug copy first. Any ``IndexError`` (a bounds check firing) or
crash fails the test. It also checks that the debug build's predictions agree
with the release build's.

It compiles the whole engine (about 20 s on 2 cores, more on a slow runner),
so it only runs when asked::

    FASTFIT_TEST_DEBUG_BUILD=1 python -m pytest tests/test_debug_build.py
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from engine_builds import REPO, build_copy

pytestmark = pytest.mark.skipif(
    os.environ.get("FASTFIT_TEST_DEBUG_BUILD") != "1",
    reason="compiles the engine with bounds checks (slow); "
    "set FASTFIT_TEST_DEBUG_BUILD=1 to run it",
)

# Runs every engine path; prints one JSON line of predictions at the end.
# argv[1] is the directory to import fastfit from.
SCRIPT = textwrap.dedent(r"""
    import io, json, pickle, sys, warnings, contextlib
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import fastfit
    from fastfit import MLPClassifier, MLPRegressor
    from fastfit.optimizers import OPTIMIZER_NAMES, Adam, RMSprop, SGD
    from fastfit.schedules import SCHEDULE_NAMES

    assert fastfit.__file__.startswith(sys.argv[1]), fastfit.__file__
    debug = sys.argv[2] == "debug"
    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    X = rng.randn(97, 5)
    yc = rng.randint(0, 3, 97)
    yb = (X[:, 0] > 0).astype(int)
    yml = (X[:, :3] > 0).astype(int)
    yr = X @ rng.randn(5)
    yr2 = np.c_[yr, -yr]
    sw = rng.uniform(0.0, 2.0, 97)
    out = {}

    def record(key, values):
        out[key] = np.asarray(values, dtype=float).ravel().tolist()

    if debug:
        # This build must really check bounds.
        from fastfit._engine import bounds_checked
        if not bounds_checked():
            raise SystemExit("the debug build does not check bounds")

    for dtype in (np.float32, np.float64):
        d = dtype.__name__
        common = dict(hidden_layer_sizes=(4, 3), max_iter=3, random_state=0,
                      dtype=dtype, batch_size=16)
        # every optimizer, shuffled mini-batches, weights, clipping, elastic net
        for opt in OPTIMIZER_NAMES:
            est = MLPClassifier(optimizer=opt, clip_norm=1.0, penalty="elasticnet",
                                **common).fit(X, yc, sample_weight=sw)
            record(f"clf-{opt}-{d}", est.predict_proba(X))
        for opt in (Adam(amsgrad=True), RMSprop(centered=True, momentum=0.5),
                    SGD(momentum=0.5, dampening=0.2)):
            est = MLPRegressor(optimizer=opt, **common).fit(X, yr)
            record(f"reg-{type(opt).__name__}-{d}", est.predict(X))
        # every schedule, early stopping (validation split, best-weights restore)
        for sched in SCHEDULE_NAMES:
            est = MLPRegressor(schedule=sched, early_stopping=True,
                               **common).fit(X, yr2)
            record(f"reg-{sched}-{d}", est.predict(X))
        # every loss and activation
        for loss in ("squared_error", "absolute_error", "huber", "poisson",
                     "quantile"):
            for act in ("identity", "logistic", "tanh", "relu", "leaky_relu",
                        "elu", "selu", "softplus"):
                y = np.abs(yr) if loss == "poisson" else yr
                est = MLPRegressor(loss=loss, activation=act, **common).fit(X, y)
                record(f"reg-{loss}-{act}-{d}", est.predict(X))
        # several quantiles of one target (one output each), weighted; and
        # through the full-batch objective (L-BFGS)
        est = MLPRegressor(loss="quantile", quantile=(0.1, 0.5, 0.9),
                           **common).fit(X, yr, sample_weight=sw)
        record(f"reg-quantiles-{d}", est.predict(X))
        est = MLPRegressor(loss="quantile", quantile=(0.2, 0.8), optimizer="lbfgs",
                           **common).fit(X, yr, sample_weight=sw)
        record(f"reg-quantiles-lbfgs-{d}", est.predict(X))
        # binary, multilabel, string labels, class weights, no shuffle, full batch
        est = MLPClassifier(class_weight="balanced", shuffle=False, **common).fit(X, yb)
        record(f"clf-binary-{d}", est.predict_proba(X))
        est = MLPClassifier(**{**common, "batch_size": "full"}).fit(X, yml)
        record(f"clf-multilabel-{d}", est.predict_proba(X))
        est = MLPClassifier(**common).fit(X, np.array(["a", "b", "c"])[yc])
        record(f"clf-strings-{d}", est.predict_proba(X))
        # batch of one, batch larger than n, a single sample, no hidden layer
        MLPRegressor(**{**common, "batch_size": 1}).fit(X[:7], yr[:7]).predict(X)
        MLPRegressor(**{**common, "batch_size": 500}).fit(X, yr).predict(X)
        MLPRegressor(**common).fit(X[:1], yr[:1]).predict(X)
        MLPClassifier(**{**common, "hidden_layer_sizes": ()}).fit(X, yc).predict(X)
        # partial_fit, warm start, pickling in between
        for Est, y, kw in ((MLPClassifier, yc, {"classes": [0, 1, 2]}),
                           (MLPRegressor, yr, {})):
            est = Est(**common)
            est.partial_fit(X[:50], y[:50], **kw)
            est.partial_fit(X[50:], y[50:], sample_weight=sw[50:])
            est = pickle.loads(pickle.dumps(est))
            est.partial_fit(X, y)
            est.set_params(warm_start=True).fit(X, y)
            record(f"{Est.__name__}-partial-{d}", est.predict(X))
        # verbose=2: the epoch run in pieces with a progress bar (>= 50 batches)
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            est = MLPRegressor(**{**common, "batch_size": 1, "verbose": 2,
                                  "max_iter": 1}).fit(X[:60], yr[:60])
        record(f"reg-verbose2-{d}", est.predict(X))
        # prediction in several chunks (chunk = 2**20 // 2048 = 512 rows)
        est = MLPRegressor(hidden_layer_sizes=(2048,), max_iter=1, random_state=0,
                           dtype=dtype).fit(X, yr)
        Xp = rng.randn(1100, 5)
        record(f"reg-chunked-{d}", est.predict(Xp))
        # the threaded paths: gemm >= 2**22 multiply-adds, >= 2**15 parameters
        Xb = rng.randn(300, 512)
        yb3 = rng.randint(0, 4, 300)
        for nt in (1, 2):
            est = MLPClassifier(hidden_layer_sizes=(256,), batch_size=256, max_iter=1,
                                random_state=0, dtype=dtype, n_threads=nt,
                                clip_norm=1.0).fit(Xb, yb3)
            record(f"clf-threads{nt}-{d}", est.predict_proba(Xb))
            # small batches read through row pointers (first layer a whole
            # number of kernel panels, no clipping), the fused layer updates
            est = MLPClassifier(hidden_layer_sizes=(64, 16), batch_size=32,
                                max_iter=1, random_state=0, dtype=dtype,
                                n_threads=nt, alpha=1e-3).fit(Xb, yb3)
            record(f"clf-rows{nt}-{d}", est.predict_proba(Xb))
    print("RESULT " + json.dumps(out))
""")


def _run(import_dir, mode, timeout):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(import_dir), mode],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(import_dir),
    )
    assert proc.returncode >= 0, (
        f"{mode} build: killed by signal {-proc.returncode}\n{proc.stderr[-5000:]}"
    )
    assert proc.returncode == 0, f"{mode} build failed:\n{proc.stderr[-5000:]}"
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.fixture(scope="module")
def debug_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("fastfit-debug")
    log = build_copy(root, FASTFIT_DEBUG="1")
    assert "-O0" in log, "the build did not use -O0"
    return root


def test_debug_build_runs_every_engine_path(debug_copy):
    debug = _run(debug_copy, "debug", timeout=1800)
    release = _run(REPO, "release", timeout=600)
    assert debug.keys() == release.keys()
    for key in debug:
        d, r = np.asarray(debug[key]), np.asarray(release[key])
        assert np.isfinite(d).all(), key
        # -O0 and -O3 may round differently (contraction, vectorised sums);
        # after a few epochs of a tiny network the models still agree closely.
        np.testing.assert_allclose(
            d,
            r,
            rtol=1e-3,
            atol=1e-4,
            err_msg=f"{key}: debug and release builds disagree (if the engine "
            "sources changed since the in-place release build, rebuild it)",
        )
