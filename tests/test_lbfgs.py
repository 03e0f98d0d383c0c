"""optimizer='lbfgs': scikit-learn's full-batch L-BFGS fit, on the engine's
objective and gradient."""

import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk_nn
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from fastfit import MLPClassifier, MLPRegressor
from fastfit._lbfgs import FullBatchObjective, _trainer
from fastfit._training import Dataset

ESTIMATORS = [MLPClassifier, MLPRegressor]


def _digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _data(cls):
    return _digits() if cls is MLPClassifier else _diabetes()


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _pair(cls, **params):
    """fastfit's and scikit-learn's estimator with the same parameters."""
    ours = cls(optimizer="lbfgs", dtype=np.float64, **params)
    theirs = getattr(sk_nn, cls.__name__)(solver="lbfgs", **params)
    return ours, theirs


# Diabetes stops at max_iter=50 before converging: equal up to rounding there,
# while over hundreds of iterations a non-convex fit amplifies last-bit
# differences of the summation order (~5e-8 at 100 iterations, ~2% at 200).
@pytest.mark.parametrize("cls, max_iter", [(MLPClassifier, 200), (MLPRegressor, 50)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_final_loss_is_sklearns(cls, max_iter, activation):
    X, y = _data(cls)
    params = dict(
        hidden_layer_sizes=(32, 16),
        activation=activation,
        random_state=0,
        max_iter=max_iter,
    )
    ours, theirs = _pair(cls, **params)
    _quiet(ours, X, y)
    _quiet(theirs, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert ours.t_ == theirs.t_ == 0
    np.testing.assert_allclose(ours.predict(X[:50]), theirs.predict(X[:50]), atol=1e-5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sample_weights_as_sklearn(cls):
    X, y = _data(cls)
    sw = np.random.default_rng(0).integers(0, 4, X.shape[0]).astype(float)
    ours, theirs = _pair(cls, hidden_layer_sizes=(16,), random_state=0, max_iter=30)
    _quiet(ours, X, y, sample_weight=sw)
    _quiet(theirs, X, y, sample_weight=sw)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_integer_weights_are_repeated_rows():
    X, y = _digits()
    X, y = X[:300], y[:300]
    sw = np.random.default_rng(1).integers(1, 3, X.shape[0])
    params = dict(hidden_layer_sizes=(8,), random_state=0, dtype=np.float64)
    weighted = _quiet(
        MLPClassifier(optimizer="lbfgs", max_iter=1, **params), X, y, sample_weight=sw
    )
    rows = np.repeat(np.arange(X.shape[0]), sw)
    # the same start: 1 iteration from the same weights on the same objective
    repeated = _quiet(
        MLPClassifier(optimizer="lbfgs", max_iter=1, **params), X[rows], y[rows]
    )
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-10)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_dtypes_fit(cls, dtype):
    X, y = _data(cls)
    params = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=40)
    est = _quiet(cls(optimizer="lbfgs", dtype=dtype, **params), X, y)
    assert est.coefs_[0].dtype == dtype
    assert np.isfinite(est.loss_)
    ref = _quiet(cls(optimizer="lbfgs", dtype=np.float64, **params), X, y)
    # float32 evaluates the same objective in lower precision
    assert est.loss_ == pytest.approx(ref.loss_, rel=0.05)


def test_record_attributes_as_sklearn():
    X, y = _digits()
    est = _quiet(MLPClassifier((8,), optimizer="adam", max_iter=2), X, y)
    assert hasattr(est, "loss_curve_")
    est.set_params(optimizer="lbfgs", max_iter=5)
    _quiet(est, X, y)
    # scikit-learn: the epoch record is only accessible for stochastic solvers
    for name in ("loss_curve_", "best_loss_", "validation_scores_"):
        assert not hasattr(est, name), name
    assert est.n_iter_ == 5


def test_warm_start_switches_between_lbfgs_and_adam():
    X, y = _digits()
    est = _quiet(
        MLPClassifier((8,), optimizer="lbfgs", max_iter=10, warm_start=True), X, y
    )
    first = est.loss_
    est.set_params(optimizer="adam", max_iter=2)
    _quiet(est, X, y)
    assert len(est.loss_curve_) == est.n_iter_ == 2
    est.set_params(optimizer="lbfgs", max_iter=10)
    _quiet(est, X, y)
    assert est.loss_ < first


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_unavailable(cls):
    assert hasattr(cls(), "partial_fit")
    est = cls(optimizer="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        est.partial_fit
    assert "lbfgs is not stochastic" in str(info.value.__cause__)
    assert hasattr(est.set_params(optimizer="sgd"), "partial_fit")


def test_partial_fit_unavailable_as_sklearns_classifier():
    # scikit-learn's MLPRegressor tests the bound method's truth (always true),
    # so only its classifier hides partial_fit; fastfit hides it on both.
    assert not hasattr(sk_nn.MLPClassifier(solver="lbfgs"), "partial_fit")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_max_fun_stops_early_with_sklearns_warning(cls):
    X, y = _data(cls)
    ours, theirs = _pair(cls, hidden_layer_sizes=(16,), random_state=0, max_fun=5)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        ours.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 5
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_max_iter_warning_suggests_more_iterations():
    X, y = _digits()
    est = MLPClassifier((8,), optimizer="lbfgs", max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Increase the number of iterations"):
        est.fit(X, y)
    assert est.n_iter_ == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("max_fun", [0, -1, 1.5, "many", None])
def test_invalid_max_fun(cls, max_fun):
    X, y = _data(cls)
    with pytest.raises(InvalidParameterError, match="max_fun"):
        cls(optimizer="lbfgs", max_fun=max_fun).fit(X[:20], y[:20])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_max_fun_in_params_and_clone(cls):
    assert cls().get_params()["max_fun"] == 15000
    est = clone(cls(optimizer="lbfgs", max_fun=7))
    assert est.get_params()["max_fun"] == 7
    assert est.optimizer == "lbfgs"


def test_objective_reuses_its_buffers():
    X, y = _digits()
    est = _quiet(
        MLPClassifier((8,), optimizer="lbfgs", max_iter=1, dtype=np.float64), X, y
    )
    data = Dataset(X, y.astype(np.float64).reshape(-1, 1), None, y)
    objective = FullBatchObjective(_trainer(est, 1), data, est._layout.n_params)
    x = est._params.copy()
    value, grad = objective(x)
    value2, grad2 = objective(x + 0.0)
    # float64: scipy's parameters are used as is, the gradient buffer reused
    assert grad is grad2 is objective.grads
    assert value == value2
    assert value == pytest.approx(est.loss_, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_objective_in_row_blocks_is_bit_identical_for_any_thread_count(dtype, sparse):
    import scipy.sparse as sp

    X, y = _digits()  # 1797 rows: the full batch is split into row blocks
    X = X.astype(dtype)
    est = _quiet(MLPClassifier((24,), optimizer="lbfgs", max_iter=1, dtype=dtype), X, y)
    est.set_params(alpha=0.0)  # the halves below add up without the penalty
    Xin = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0)) if sparse else X
    data = Dataset(Xin, y.astype(dtype).reshape(-1, 1), None, y)
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y)).astype(dtype)
    results = []
    for n_threads in (1, 2):
        trainer = _trainer(est, n_threads)
        grads = np.empty_like(est._params)
        value = trainer.objective_gradient(
            est._params, data.engine_X, data.Y, sw, grads
        )
        results.append((value, grads))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    # and the blocks add up to the gradient of the rows taken in one piece
    whole = np.zeros_like(est._params)
    halves = []
    for rows in (slice(0, 200), slice(200, None)):
        part = Dataset(Xin[rows], data.Y[rows], None, y[rows])
        g = np.empty_like(est._params)
        value = _trainer(est, 1).objective_gradient(
            est._params, part.engine_X, part.Y, sw[rows], g
        )
        halves.append((value, g, sw[rows].sum()))
    total = sum(h[2] for h in halves)
    for _value, g, weight in halves:
        whole += g * (weight / total)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(results[0][1], whole, rtol=tol, atol=tol)
