"""State a user, a pickle or a second thread can hand the engine ends in a
clear exception, never in memory corruption.

The cases of ``tests/safety_battery.py`` (unsorted or short ``classes_``,
tampered fitted attributes and pickles, quantile losses whose quantiles do
not match the network's outputs, optimizer subclasses with the wrong
state or hyperparameters, two threads fitting one estimator, predictions
during refits, a fork after a threaded fit, an epoch cut short by an
overflowing row) run in a subprocess of their own, so a crash fails a test
instead of the run. ``tests/test_sanitizer.py`` runs the same battery on an
AddressSanitizer build.
"""

import json
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from fastfit import MLPClassifier
from fastfit._concurrency import fit_count

BATTERY = os.path.join(os.path.dirname(__file__), "safety_battery.py")
# InvalidParameterError: scikit-learn's ValueError
CLEAN = (
    "ValueError",
    "TypeError",
    "RuntimeError",
    "MemoryError",
    "InvalidParameterError",
)


def run_battery(*args, env=None, timeout=600):
    """Run the battery; returns (process, results by case)."""
    proc = subprocess.run(
        [sys.executable, BATTERY, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    running = [l for l in proc.stdout.splitlines() if l.startswith("RUNNING ")]
    last = running[-1][len("RUNNING ") :] if running else "<none>"
    assert proc.returncode == 0, (
        f"the battery died (code {proc.returncode}) in case {last!r}:\n"
        f"{proc.stderr[-5000:]}"
    )
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULTS ")][-1]
    return proc, json.loads(line[len("RESULTS ") :])


def unclean(results):
    """Cases that ended in anything but "ok" or a clear exception."""
    return {k: v for k, v in results.items() if v != "ok" and not v.startswith(CLEAN)}


@pytest.fixture(scope="module")
def results():
    return run_battery("--sweep", "20")[1]


def test_every_case_ends_cleanly(results):
    assert len(results) > 50
    assert not unclean(results), json.dumps(unclean(results), indent=1)


@pytest.mark.parametrize(
    "case",
    [
        "classes-unsorted-partial_fit",
        "classes-unsorted-warm_start",
        "classes-unsorted-predict",
        "classes-fewer-than-outputs",
        "optimizer-state-too-small",
        "optimizer-hyper-too-short",
        "optimizer-sgd-claiming-adam",
        "optimizer-unknown-rule",
        "out_activation-garbage",
        "n_layers-changed",
        "layout-other-sizes",
        "optimizer-state-wrong-shape",
        "opt-steps-negative",
        "pickle-classes-unsorted",
        "pickle-layout-sizes",
        "pickle-optimizer-state",
        "quantiles-fewer-than-outputs",
        "quantiles-more-than-outputs",
        "quantiles-out-of-range",
        "quantiles-garbage",
        "quantiles-n_outputs-changed",
        "quantiles-several-targets",
        "dropout-seed-garbage",
        "weight-average-garbage",
        "activation-tuple-short",
    ],
)
def test_inconsistent_state_is_a_value_error(results, case):
    assert results[case].startswith("ValueError"), results[case]


@pytest.mark.parametrize(
    "case",
    [
        "race-two-fits",
        "race-predict-during-refits",
        "fork-after-threaded-fit",
        "overflowing-row-named",
        "pickle-intact",
        "quantiles-intact",
        "toolbox-intact",
    ],
)
def test_supported_uses_work(results, case):
    assert results[case] == "ok"


def test_valid_configurations_all_work(results):
    sweep = {k: v for k, v in results.items() if k.startswith("sweep-")}
    assert len(sweep) == 20
    assert set(sweep.values()) == {"ok"}, sweep


def _fit_in_background(est, X, y):
    done = threading.Event()

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 30
    while fit_count(est) % 2 == 0 and time.time() < deadline:
        time.sleep(0.001)
    return thread, done


def test_a_second_fit_or_a_prediction_during_a_fit_raises_runtime_error():
    rng = np.random.RandomState(0)
    X, y = rng.randn(20_000, 50), rng.randint(0, 3, 20_000)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    est.fit(X[:100], y[:100])
    est.set_params(hidden_layer_sizes=(256,), max_iter=30, batch_size=8)
    thread, done = _fit_in_background(est, X, y)
    try:
        assert not done.is_set(), "the background fit ended too soon to test"
        with pytest.raises(RuntimeError, match="another thread is fitting"):
            est.fit(X[:100], y[:100])
        with pytest.raises(RuntimeError, match="another thread is fitting"):
            est.partial_fit(X[:100], y[:100])
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            est.predict(X[:10])
    finally:
        thread.join(120)
    assert done.is_set()
    # the one fit that ran left a consistent model
    assert est.predict_proba(X[:10]).shape == (10, 3)
    assert est.coefs_[0].shape == (50, 256)


def test_the_fit_guard_is_not_pickled_or_cloned():
    import pickle

    from sklearn.base import clone

    rng = np.random.RandomState(0)
    X, y = rng.randn(20_000, 50), rng.randint(0, 3, 20_000)
    est = MLPClassifier(hidden_layer_sizes=(256,), max_iter=30, batch_size=8)
    thread, _ = _fit_in_background(est, X, y)
    try:
        clone(est).fit(X[:50], y[:50])  # a clone is another estimator
    finally:
        thread.join(120)
    copy = pickle.loads(pickle.dumps(est))
    assert fit_count(copy) == 0
    copy.partial_fit(X[:50], y[:50])
