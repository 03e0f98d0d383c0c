"""Weight averaging (EMA over steps, SWA over epochs) against NumPy
transcriptions of the average over a short fit."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fastfit import MLPClassifier, MLPRegressor
from fastfit._layout import Layout


def _data(n=240):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


KW = dict(
    hidden_layer_sizes=(16,), shuffle=False, random_state=0, dtype=np.float64,
    learning_rate_init=0.01,
)  # fmt: skip


def _flat(est):
    return np.concatenate(
        [a.ravel() for a in est.coefs_] + [b.ravel() for b in est.intercepts_]
    )


def _steps_of_plain_fit(X, y, batch, n_epochs):
    """The weights after every optimizer step of a fit without averaging, by
    partial_fit on one batch at a time (the fit's batches, shuffle off)."""
    plain = MLPClassifier(batch_size=batch, **KW)
    weights, classes = [], np.unique(y)
    for _ in range(n_epochs):
        for start in range(0, X.shape[0], batch):
            plain.partial_fit(
                X[start : start + batch], y[start : start + batch], classes=classes
            )
            weights.append(_flat(plain))
    return weights


def test_ema_is_the_transcription_of_its_formula():
    X, y = _data()
    decay, batch, n_epochs = 0.8, 60, 3
    steps = _steps_of_plain_fit(X, y, batch, n_epochs)
    est = MLPClassifier(batch_size=batch, max_iter=n_epochs, ema_decay=decay, **KW)
    est.fit(X, y)
    average = steps[0].copy()  # Keras: the first step copies
    for w in steps[1:]:
        average = decay * average + (1 - decay) * w
    np.testing.assert_allclose(_flat(est), average, rtol=1e-12, atol=1e-14)
    # averaging changes what is predicted with, not what is trained (the flat
    # buffer's order, weights then biases, is _flat's)
    np.testing.assert_array_equal(est._weight_average.weights, steps[-1])


def test_swa_is_the_mean_of_the_epochs_from_swa_start():
    X, y = _data()
    batch, n_epochs, start = 80, 6, 3
    steps = _steps_of_plain_fit(X, y, batch, n_epochs)
    per_epoch = steps[X.shape[0] // batch - 1 :: X.shape[0] // batch]
    est = MLPClassifier(batch_size=batch, max_iter=n_epochs, swa_start=start, **KW)
    est.fit(X, y)
    np.testing.assert_allclose(
        _flat(est), np.mean(per_epoch[start - 1 :], axis=0), rtol=1e-12, atol=1e-14
    )
    # before swa_start the trained weights are predicted with
    early = MLPClassifier(batch_size=batch, max_iter=start - 1, swa_start=start, **KW)
    np.testing.assert_allclose(
        _flat(early.fit(X, y)), per_epoch[start - 2], rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("averaging", [dict(ema_decay=0.9), dict(swa_start=2)])
def test_partial_fit_continues_the_average(averaging):
    X, y = _data()
    kw = dict(batch_size=50, **averaging, **KW)
    fitted = MLPClassifier(max_iter=4, **kw).fit(X, y)
    stream = MLPClassifier(**kw)
    for _ in range(4):
        stream.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_array_equal(_flat(stream), _flat(fitted))
    restored = pickle.loads(pickle.dumps(stream))
    stream.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(_flat(stream), _flat(restored))


def test_predictions_and_early_stopping_use_the_average():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    kw = dict(
        hidden_layer_sizes=(32,), ema_decay=0.95, early_stopping=True,
        validation_fraction=0.2, max_iter=15, n_iter_no_change=100,
        random_state=0, dtype=np.float64,
    )  # fmt: skip
    est = MLPClassifier(**kw).fit(X, y)
    # the split the fit drew (after the initial weights)
    rs = np.random.RandomState(0)
    est._initial_params(Layout([64, 32, 10]), rs, np.float64)
    _, idx_val = train_test_split(
        np.arange(len(y)), random_state=rs, test_size=0.2, stratify=y
    )
    # the restored weights are the best epoch's average: their score is the best
    assert est.score(X[idx_val], y[idx_val]) == pytest.approx(
        est.best_validation_score_
    )
    assert est.best_validation_score_ == max(est.validation_scores_)
    plain = MLPClassifier(**{**kw, "ema_decay": None}).fit(X, y)
    assert plain.validation_scores_ != est.validation_scores_


def test_averaging_regressor_and_float32():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = X @ rng.normal(size=5)
    est = MLPRegressor(
        hidden_layer_sizes=(8,), ema_decay=0.99, batch_size=20, max_iter=60,
        learning_rate_init=0.01, random_state=0,
    )  # fmt: skip
    est.fit(X, y)
    assert est.coefs_[0].dtype == np.float32
    assert est.score(X, y) > 0.5


def test_bad_averaging_settings_are_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="set one of them"):
        MLPClassifier(ema_decay=0.9, swa_start=3, max_iter=2).fit(X, y)
    for bad in (dict(ema_decay=1.0), dict(ema_decay=0.0), dict(swa_start=0)):
        with pytest.raises(ValueError):
            MLPClassifier(max_iter=2, **bad).fit(X, y)
    with pytest.raises(ValueError, match="L-BFGS"):
        MLPClassifier(optimizer="lbfgs", ema_decay=0.9).fit(X, y)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda a: setattr(a, "average", a.average[:-1]),
        lambda a: setattr(a, "weights", a.weights.astype(np.float32)),
        lambda a: a.average.__setitem__(0, np.nan),
        lambda a: setattr(a, "count", -1),
        lambda a: setattr(a, "ema_decay", 2.0),
    ],
)
def test_a_tampered_average_is_refused(tamper):
    X, y = _data()
    est = MLPClassifier(ema_decay=0.9, **KW)
    est.partial_fit(X, y, classes=np.unique(y))
    tamper(est._weight_average)
    with pytest.raises(ValueError, match="_weight_average"):
        est.partial_fit(X, y)
    est._weight_average = "not an average"
    with pytest.raises(ValueError, match="_weight_average"):
        est.partial_fit(X, y)
