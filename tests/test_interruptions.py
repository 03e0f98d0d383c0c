"""An epoch the engine cannot finish is reported, and Ctrl-C is answered
within about a mini-batch.

The engine runs an epoch as calls of about ``CALL_SECONDS`` each, so Python
gets control between them; a batch whose loss is not finite ends the call, and
the epoch loop names the epoch and the batch instead of accepting a prefix of
the epoch as the whole.
"""

import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastfit import MLPRegressor
from fastfit.optimizers import resolve_optimizer


def _overflowing_row_data():
    # valid input, but with these initial weights row 280's Poisson output
    # exp(raw) overflows: the loss of its batch (15 of 15) is not finite
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5).astype(np.float32)
    X[280] = 1e5
    return X, np.abs(rng.randn(300))


def _regressor(**kw):
    return MLPRegressor(
        **{"hidden_layer_sizes": (8,), "loss": "poisson", "batch_size": 20,
           "random_state": 2, **kw}
    )  # fmt: skip


def test_a_row_whose_squares_overflow_is_refused_at_validation():
    X, y = _overflowing_row_data()
    X[280] = 3e38  # finite in float32; squared, it is not
    with pytest.raises(ValueError, match=r"up to 3e\+38 in magnitude.*1.84e\+19"):
        MLPRegressor().fit(X, y)
    # float64 has the room
    MLPRegressor(dtype=np.float64, max_iter=1, hidden_layer_sizes=(2,)).fit(
        X.astype(np.float64) / 1e30, y
    )


def test_a_batch_that_overflows_is_named_and_nothing_of_the_epoch_is_kept():
    X, y = _overflowing_row_data()
    est = _regressor(shuffle=False, max_iter=5)
    with pytest.warns(ConvergenceWarning, match=r"epoch 1 at batch 15 of 15"):
        est.fit(X, y)
    # the epoch was not accepted as trained: no epoch, no sample counted
    assert est.n_iter_ == 0 and est.t_ == 0
    assert np.isfinite(est.coefs_[0]).all()


def test_later_epochs_keep_what_was_trained_before_the_bad_batch():
    X, y = _overflowing_row_data()
    X_good, y_good = X[:280], y[:280]
    est = _regressor(shuffle=False, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_good, y_good)
    trained = [c.copy() for c in est.coefs_]
    t_before = est.t_
    est.set_params(warm_start=True)
    with pytest.warns(ConvergenceWarning, match="at batch 15 of 15"):
        est.fit(X, y)
    assert est.t_ == t_before  # the diverged epoch counts no samples
    for a, b in zip(est.coefs_, trained):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
@pytest.mark.parametrize("where", ["weight", "bias"])
def test_an_update_that_leaves_a_parameter_non_finite_fails_the_step(name, where):
    # a batch's loss can be finite while its gradient overflows; the update
    # pass then returns a NaN penalty, which ends the engine call at that
    # batch like a non-finite loss
    opt = resolve_optimizer(name)
    n, n_weights = 5000, 4000
    params = np.ones(n, np.float32)
    grads = np.zeros(n, np.float32)
    state = opt._init_state(n, np.float32)
    step = dict(lr=1e-3, t=1, n_weights=n_weights, l2=1e-4, n_threads=2)
    assert np.isfinite(opt._step(params, grads, state, **step))
    grads[n_weights - 7 if where == "weight" else n - 3] = np.inf
    assert np.isnan(opt._step(params, grads, state, **{**step, "t": 2}))


def test_shuffled_epochs_are_not_silently_truncated():
    X, y = _overflowing_row_data()
    with pytest.warns(ConvergenceWarning, match=r"epoch 1 at batch \d+ of 15"):
        _regressor(max_iter=3).fit(X, y)


_LONG_FIT = textwrap.dedent(
    """
    import sys, time, warnings
    import numpy as np
    from fastfit import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60_000)
    est = MLPClassifier(hidden_layer_sizes=(1024, 1024), batch_size=32,
                        max_iter=1, random_state=0)
    print("fitting", flush=True)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    print("done", time.perf_counter() - start, est.n_iter_,
          any("interrupted" in str(w.message) for w in caught), flush=True)
    """
)


def test_ctrl_c_is_answered_within_a_fraction_of_an_epoch():
    """SIGINT 2 s into an epoch of several seconds: fit returns within about
    a mini-batch plus one engine call, keeping the last finished epoch."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _LONG_FIT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "fitting"
        time.sleep(2.0)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().split()
        latency = time.perf_counter() - sent
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    assert line[0] == "done", line
    fit_seconds, n_iter, warned = float(line[1]), int(line[2]), line[3] == "True"
    assert warned and n_iter == 0
    # an epoch of this fit is several seconds even on a fast machine; the
    # answer comes within one engine call (~0.1 s) plus a batch
    assert latency < 1.5, (latency, fit_seconds)
    print(f"Ctrl-C answered in {latency:.3f} s")
