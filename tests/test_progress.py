"""Progress output and interruption of fit."""

import warnings

import numpy as np
import pytest

import fastfit._training as training
from fastfit import MLPClassifier, MLPRegressor


def _data(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 6)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_verbose_2_shows_progress_within_long_epochs_and_changes_nothing(
    capsys, monkeypatch
):
    # no tqdm: the plain line is printed
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    X, y = _data()
    kw = dict(hidden_layer_sizes=(5,), batch_size=16, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = MLPClassifier(**kw).fit(X, y)
        loud = MLPClassifier(**kw, verbose=2).fit(X, y)
    out = capsys.readouterr().out
    n_batches = -(-X.shape[0] // 16)
    assert f"epoch 1: {n_batches}/{n_batches} batches" in out
    assert f"epoch 2: {n_batches}/{n_batches} batches" in out
    assert out.count("Iteration ") == 2
    for a, b in zip(quiet.coefs_ + quiet.intercepts_, loud.coefs_ + loud.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(quiet.loss_curve_, loud.loss_curve_, rtol=1e-12)


def test_verbose_2_without_shuffle_matches_verbose_0():
    rng = np.random.RandomState(1)
    X = rng.randn(2000, 4)
    y = X @ rng.randn(4)
    kw = dict(
        hidden_layer_sizes=(3,), batch_size=8, max_iter=2, shuffle=False, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPRegressor(**kw).fit(X, y)
        b = MLPRegressor(**kw, verbose=2).fit(X, y)
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(u, v)


def test_keyboard_interrupt_keeps_the_last_finished_epoch(monkeypatch):
    X, y = _data(400)
    kw = dict(
        hidden_layer_sizes=(5,),
        batch_size=50,
        random_state=0,
        tol=0,
        n_iter_no_change=10**6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two_epochs = MLPClassifier(**kw, max_iter=2).fit(X, y)

    real = training.EpochLoop._run

    def interrupted_in_third_epoch(self, *args):
        result = real(self, *args)  # some batches run, then Ctrl-C arrives
        if self.model.n_iter_ == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(training.EpochLoop, "_run", interrupted_in_third_epoch)
    est = MLPClassifier(**kw, max_iter=10)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X, y)
    assert est.n_iter_ == 2
    assert est.loss_curve_ == two_epochs.loss_curve_
    for a, b in zip(
        est.coefs_ + est.intercepts_, two_epochs.coefs_ + two_epochs.intercepts_
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.predict(X), two_epochs.predict(X))
