"""State a user can set after a fit ends in a clear exception, never in a
crash, a wrong answer or an allocation the machine cannot hold."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

from fastfit import MLPClassifier, MLPRegressor


def _iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def _fitted(cls=MLPClassifier, **kw):
    X, y = _iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(hidden_layer_sizes=(4,), max_iter=2, **kw).fit(X, y)


def test_partial_fit_after_fit_validates_parameters_set_since():
    est = _fitted()
    est.set_params(batch_size=0)
    X, y = _iris()
    with pytest.raises(ValueError, match="batch_size"):
        est.partial_fit(X, y)


def _partial_fitted(**kw):
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0, **kw)
    return est.partial_fit(X, y, classes=np.unique(y))


@pytest.mark.parametrize(
    "change",
    [
        lambda est: est.set_params(alpha=-1.0),
        lambda est: setattr(est, "learning_rate_init", 0.0),
        # mutated in place: the same object as the value that passed
        lambda est: est.activation.__setitem__(0, "bogus"),
        lambda est: est.dropout.__setitem__(0, 1.5),
        lambda est: setattr(est.optimizer, "beta_1", 2.0),
    ],
)
def test_partial_fit_validates_every_call_whatever_changed(change):
    from fastfit.optimizers import Adam

    est = _partial_fitted(activation=["relu"], dropout=[0.1], optimizer=Adam())
    X, y = _iris()
    est.partial_fit(X, y)  # the parameters that passed are not checked again
    change(est)
    with pytest.raises(ValueError):
        est.partial_fit(X, y)


def test_partial_fit_input_fast_path_changes_nothing():
    """ndarrays take a short path through the checks (integer labels, float X
    of the fitted width); lists take scikit-learn's: the same fits, the same
    errors."""
    X, y = _iris()
    a, b = _partial_fitted(), _partial_fitted()
    for _ in range(3):
        a.partial_fit(X, y)  # float64 X, int y: the short path
        b.partial_fit(X.tolist(), y.tolist())
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(ca, cb)
    for bad_X, bad_y, match in [
        (np.where(X == X[0, 0], np.nan, X), y, "NaN"),
        (np.where(X == X[0, 0], np.inf, X), y, "infinity"),
        (X * 1e20, y, "in magnitude"),
        (X[:, :3], y, "features"),
        (X, np.where(y == 2, 7, y), r"not seen .*\[7\]"),
        (X, y + 0.5, "Unknown label type"),
        (X[:0], y[:0], "0 sample"),
    ]:
        with pytest.raises(ValueError, match=match):
            a.partial_fit(bad_X, bad_y)


def test_classes_given_again_must_be_the_fitted_ones():
    X, y = _iris()
    est = _partial_fitted()
    for same in ([0, 1, 2], np.array([2, 0, 1]), (0, 1, 2, 2)):
        est.partial_fit(X, y, classes=same)
    for other in ([0, 1], [0, 1, 3], ["a", "b", "c"]):
        with pytest.raises(ValueError, match="not the same as on the first call"):
            est.partial_fit(X, y, classes=other)
    with pytest.raises(ValueError, match="Unknown label type"):
        est.partial_fit(X, y, classes=np.array([0.0, 1.0, 2.5]))


def test_pickling_leaves_the_model_as_it_was():
    import pickle

    est = _fitted()
    params, coefs = est._params, est.coefs_
    clone = pickle.loads(pickle.dumps(est))
    assert est._params is params and est.coefs_ is coefs
    np.testing.assert_array_equal(
        clone.predict_proba(_iris()[0]), est.predict_proba(_iris()[0])
    )


@pytest.mark.parametrize("width", [2**31, 2**63, 2**80])
def test_absurd_layer_widths_are_a_value_error(width):
    X, y = _iris()
    with pytest.raises(ValueError, match="at most 2147483647 units"):
        MLPClassifier(hidden_layer_sizes=(width,)).fit(X, y)


def test_a_network_beyond_the_machines_memory_is_refused_at_once():
    X, y = _iris()
    # 3 x 10^10 weights: hundreds of GiB, refused before anything is allocated
    est = MLPRegressor(hidden_layer_sizes=(100_000, 300_000), max_iter=1)
    with pytest.raises(MemoryError, match=r"needs \d+\.\d GiB .* has \d+\.\d GiB"):
        est.fit(X, y.astype(float))


def test_warm_start_with_another_dtype_is_refused():
    est = _fitted(warm_start=True)
    est.set_params(dtype=np.float64)
    X, y = _iris()
    with pytest.raises(ValueError, match="dtype changed since the last fit"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="dtype changed"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("value", ["garbage", "identity", None])
def test_tampered_out_activation_is_refused(value):
    est = _fitted()
    est.out_activation_ = value
    X, _ = _iris()
    for method in (est.predict, est.predict_proba, est.predict_log_proba):
        with pytest.raises(ValueError, match="out_activation_ is"):
            method(X)


def test_early_stopping_with_a_weightless_validation_set_raises():
    # scikit-learn raises rather than score a set of zero weight; fastfit
    # returned an untrained model with a "diverged" warning
    X, y = _iris()
    sw = np.zeros(len(y))
    sw[[0, 50, 100]] = 1  # the 30 validation rows (random_state=0) miss these
    est = MLPClassifier(
        hidden_layer_sizes=(4,), early_stopping=True, validation_fraction=0.2,
        random_state=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="validation set drawn for early stopping"):
        est.fit(X, y, sample_weight=sw)


def test_a_regressor_whose_first_epoch_diverges_still_has_loss_():
    from fastfit.optimizers import SGD

    rng = np.random.RandomState(0)
    X = rng.randn(100, 3)
    est = MLPRegressor(
        optimizer=SGD(), learning_rate_init=1e30, max_iter=3, random_state=0
    )
    with pytest.warns(Warning, match="diverged in epoch 1"):
        est.fit(X, X.sum(1) * 1e3)
    # scikit-learn keeps the diverged epoch's loss; the weights are the last
    # finite ones (here the initial weights)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert isinstance(est.loss_, float) and est.loss_ > 0
    assert all(np.isfinite(c).all() for c in est.coefs_)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_sample_weights_beyond_float32_are_named(scale):
    X, y = _iris()
    sw = np.full(len(y), scale)
    with pytest.raises(ValueError, match="sample_weight does not fit float32"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, y, sample_weight=sw)
    # float64 holds them; only relative weights matter to the loss
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=sw)
    assert np.isfinite(est.loss_)
