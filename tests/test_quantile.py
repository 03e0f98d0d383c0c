"""The quantile (pinball) loss: the fused kernel, the per-output loss
parameter, and MLPRegressor(loss='quantile')."""

import pickle
import warnings
from functools import partial

import numpy as np
import pytest
import reference as ref
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_pinball_loss, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_estimator
from test_engine import _finite_difference, _network, _objective, _problem

from fastfit import MLPRegressor
from fastfit._engine import LOSS_KINDS, loss_gradient_py
from fastfit.optimizers import SGD

QUANTILE = LOSS_KINDS["quantile"]
TAUS = (0.1, 0.5, 0.9)
DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _pinball(Z, Y, taus, sw=None):
    """The objective, transcribed: sum over columns of max(tau u, (tau - 1) u),
    u = y - z, weighted mean over rows."""
    U = np.asarray(Y, np.float64) - np.asarray(Z, np.float64)
    taus = np.broadcast_to(np.asarray(taus, np.float64), U.shape[1:])
    per_row = np.maximum(taus * U, (taus - 1) * U).sum(axis=1)
    sw = np.ones(len(U)) if sw is None else np.asarray(sw, np.float64)
    return float((sw * per_row).sum() / sw.sum())


# ------------------------------------------------------------------- kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_is_the_pinball_loss(dtype, weighted):
    rng = np.random.RandomState(0)
    Z = rng.randn(11, 3).astype(dtype)
    Y = rng.randn(11, 3).astype(dtype)
    Y[2, 1], Y[5, 0] = Z[2, 1], Z[5, 0]  # zero residuals: subgradient 0
    sw = rng.uniform(0.2, 3.0, 11).astype(dtype) if weighted else None
    G = np.empty_like(Z)
    value = loss_gradient_py(QUANTILE, Z, Y, sw, np.array(TAUS), G)
    want, want_grad = ref.quantile(Z, Y, TAUS, sample_weight=sw)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value, _pinball(Z, Y, TAUS, sw), rtol=rtol)
    np.testing.assert_allclose(value, want, rtol=rtol)
    np.testing.assert_allclose(G, want_grad, rtol=rtol, atol=1e-15)
    assert G[2, 1] == 0 and G[5, 0] == 0
    # one column: scikit-learn's mean_pinball_loss
    for k, tau in enumerate(TAUS):
        z, y = Z[:, [k]], Y[:, [k]]
        v = loss_gradient_py(QUANTILE, z, y, sw, tau, np.empty_like(z))
        want = mean_pinball_loss(y, z, alpha=tau, sample_weight=sw)
        np.testing.assert_allclose(v, want, rtol=rtol)


def test_one_value_is_every_column_and_half_is_half_absolute_error():
    rng = np.random.RandomState(1)
    Z, Y = rng.randn(8, 4), rng.randn(8, 4)
    Y[0, 0] = Z[0, 0]
    G1, G2, Ga = (np.empty_like(Z) for _ in range(3))
    v1 = loss_gradient_py(QUANTILE, Z, Y, None, 0.3, G1)
    v2 = loss_gradient_py(QUANTILE, Z, Y, None, [0.3] * 4, G2)
    assert v1 == v2 and np.array_equal(G1, G2)
    vh = loss_gradient_py(QUANTILE, Z, Y, None, 0.5, G1)
    va = loss_gradient_py(LOSS_KINDS["absolute_error"], Z, Y, None, 0.0, Ga)
    assert vh == 0.5 * va and np.array_equal(G1, 0.5 * Ga)


def _quantile_problem(seed, n_out=3):
    layout, params, X, Y, _ = _problem("quantile", n=9, n_out=n_out, seed=seed)
    # no residual near 0, where the loss has its kink
    raw = np.empty((X.shape[0], n_out))
    _network(layout, "tanh", "quantile", 0.5).forward(params, X, raw, 64, 1)
    assert np.abs(Y - raw).min() > 1e-3
    return layout, params, X, Y


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_network_gradient_matches_finite_differences(activation):
    layout, params, X, Y = _quantile_problem(seed=4)
    sw = np.random.RandomState(2).uniform(0.2, 3.0, X.shape[0])
    kw = dict(sw=sw, alpha=0.1, l1_ratio=0.3, delta=np.array(TAUS))
    value, grads = _objective(layout, params, X, Y, activation, "quantile", **kw)
    fd = _finite_difference(
        lambda p: _objective(layout, p, X, Y, activation, "quantile", **kw)[0], params
    )
    rel = np.linalg.norm(fd - grads) / (np.linalg.norm(fd) + np.linalg.norm(grads))
    assert np.isfinite(value)
    assert rel < 1e-6, rel


def test_network_objective_matches_reference_backprop(monkeypatch):
    monkeypatch.setitem(
        ref.LOSSES, "quantile", (partial(ref.quantile, quantile=TAUS), "identity")
    )
    layout, params, X, Y = _quantile_problem(seed=6)
    sw = np.random.RandomState(3).uniform(0.5, 2.0, X.shape[0])
    value, grads = _objective(
        layout, params, X, Y, "tanh", "quantile", sw=sw, alpha=0.2, delta=TAUS
    )
    coefs, intercepts = layout.views(params)
    want, cg, ig = ref.backprop(
        coefs, intercepts, X, Y, "tanh", "quantile", sample_weight=sw, alpha=0.2
    )
    np.testing.assert_allclose(value, want, rtol=1e-12)
    np.testing.assert_allclose(grads, ref.flatten(cg, ig)[0], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "param, match",
    [
        ([0.1, 0.5], "one per output"),
        (np.ones((3, 1)) * 0.5, "one per output"),
        (0.0, r"\(0, 1\)"),
        (1.0, r"\(0, 1\)"),
        ([0.1, 0.5, 1.2], r"\(0, 1\)"),
        ([0.1, np.nan, 0.9], "finite"),
        (np.inf, "finite"),
    ],
)
def test_network_checks_the_quantiles(param, match):
    layout = _problem("quantile")[0]
    with pytest.raises(ValueError, match=match):
        _network(layout, "relu", "quantile", param)
    G = np.empty((2, 3))
    with pytest.raises(ValueError, match=match):
        loss_gradient_py(QUANTILE, np.zeros((2, 3)), np.zeros((2, 3)), None, param, G)


def test_network_keeps_one_read_only_value_per_output():
    layout = _problem("quantile")[0]
    taus = np.array(TAUS)
    network = _network(layout, "relu", "quantile", taus)
    taus[0] = 0.7  # the network has its own copy
    np.testing.assert_array_equal(network.loss_param, TAUS)
    with pytest.raises(ValueError):
        network.loss_param[0] = 2.0
    np.testing.assert_array_equal(
        _network(layout, "relu", "quantile", 0.25).loss_param, [0.25] * 3
    )


@pytest.mark.parametrize(
    "loss, param, match",
    [
        ("huber", [1.0, 0.0, 1.0], "delta"),
        ("softmax_cross_entropy", [0.1, 0.2, 0.1], "one label smoothing"),
        ("sigmoid_log_loss", 1.5, "label smoothing"),
    ],
)
def test_network_checks_the_other_loss_parameters(loss, param, match):
    layout = _problem(loss)[0]
    with pytest.raises(ValueError, match=match):
        _network(layout, "relu", loss, param)


# ---------------------------------------------------------------- estimator
def _heteroscedastic(n, seed):
    """y = sin(2x) + (0.1 + 0.4 |x|) * noise: the spread grows with |x|."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, 1))
    y = np.sin(2 * X[:, 0]) + (0.1 + 0.4 * np.abs(X[:, 0])) * rng.randn(n)
    return X, y


def _model(**kw):
    # the pinball gradient does not shrink near the optimum: a decaying rate
    # settles where a constant one keeps stepping across it
    return MLPRegressor(
        **{
            "hidden_layer_sizes": (32,),
            "loss": "quantile",
            "learning_rate_init": 0.01,
            "schedule": "cosine",
            "batch_size": 64,
            "max_iter": 60,
            "n_iter_no_change": np.inf,
            "random_state": 0,
            **kw,
        }
    )


@pytest.fixture(scope="module")
def data():
    # coverage of 5000 held-out rows: standard error <= 0.007
    return _heteroscedastic(4000, 0), _heteroscedastic(5000, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", TAUS)
def test_coverage_of_one_quantile(data, dtype, tau):
    (X, y), (Xt, yt) = data
    est = _model(quantile=tau, dtype=dtype).fit(X, y)
    pred = est.predict(Xt)
    assert pred.shape == (len(Xt),) and est.n_outputs_ == 1
    assert abs(np.mean(yt <= pred) - tau) < 0.025
    # the spread is heteroscedastic: so is the fitted quantile's distance to
    # the median, larger where |x| is
    if tau != 0.5:
        median = _model(quantile=0.5, dtype=dtype).fit(X, y).predict(Xt)
        gap = np.abs(pred - median)
        wide = np.abs(Xt[:, 0]) > 1.5
        narrow = np.abs(Xt[:, 0]) < 0.5
        assert gap[wide].mean() > 2 * gap[narrow].mean()


@pytest.mark.parametrize("dtype", DTYPES)
def test_several_quantiles_in_one_model(data, dtype):
    (X, y), (Xt, yt) = data
    est = _model(quantile=TAUS, dtype=dtype).fit(X, y)
    pred = est.predict(Xt)
    assert pred.shape == (len(Xt), 3)
    assert est.n_outputs_ == 3 and est.coefs_[-1].shape == (32, 3)
    for k, tau in enumerate(TAUS):  # column k is quantile k
        assert abs(np.mean(yt <= pred[:, k]) - tau) < 0.025
    # nothing forbids crossing, but a fitted model seldom crosses
    assert np.mean((pred[:, 0] <= pred[:, 1]) & (pred[:, 1] <= pred[:, 2])) > 0.95
    # score: R^2 of each quantile's predictions, averaged
    want = np.mean([r2_score(yt, pred[:, k]) for k in range(3)])
    assert est.score(Xt, yt) == pytest.approx(want, rel=1e-6)
    # the order of the quantiles is the order of the columns
    swapped = _model(quantile=TAUS[::-1], dtype=dtype).fit(X, y).predict(Xt)
    assert np.mean(yt <= swapped[:, 0]) > 0.85
    # pickling, partial_fit
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(Xt), pred)
    copy.partial_fit(X, y)
    assert copy.predict(Xt[:5]).shape == (5, 3)


def test_one_quantile_in_a_sequence_is_that_float(data):
    (X, y), _ = data
    a = _model(quantile=0.3, max_iter=3).fit(X, y)
    b = _model(quantile=[0.3], max_iter=3).fit(X, y)
    assert b.predict(X).shape == (len(X),)
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


def test_several_targets_share_one_quantile():
    X, y = _heteroscedastic(300, 2)
    Y = np.c_[y, -y]
    est = _model(quantile=0.8, max_iter=5).fit(X, Y)
    assert est.predict(X).shape == (300, 2)
    with pytest.raises(ValueError, match="quantile.*single target"):
        _model(quantile=(0.2, 0.8)).fit(X, Y)


def test_median_is_half_the_absolute_error():
    # the gradient is exactly half absolute error's, so plain SGD at twice
    # the rate takes the same steps
    X, y = _heteroscedastic(200, 3)
    kw = dict(optimizer=SGD(), batch_size=16, alpha=0.0, dtype=np.float64, max_iter=4)
    q = _model(quantile=0.5, learning_rate_init=0.02, **kw).fit(X, y)
    a = _model(loss="absolute_error", learning_rate_init=0.01, **kw).fit(X, y)
    for cq, ca in zip(q.coefs_ + q.intercepts_, a.coefs_ + a.intercepts_):
        np.testing.assert_allclose(cq, ca, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(q.loss_curve_, 0.5 * np.array(a.loss_curve_))


def test_sample_weight_is_repeated_rows():
    # full-batch steps: integer weights and repeated rows give one objective
    X, y = _heteroscedastic(60, 4)
    w = np.random.RandomState(0).randint(0, 4, 60)
    kw = dict(
        quantile=(0.2, 0.7), optimizer=SGD(), batch_size="full", shuffle=False,
        dtype=np.float64, max_iter=6, hidden_layer_sizes=(5,),
    )  # fmt: skip
    weighted = _model(**kw).fit(X, y, sample_weight=w)
    repeated = _model(**kw).fit(np.repeat(X, w, 0), np.repeat(y, w))
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # a constant input: the fitted median is the sample's (weighted) median
    Xc, yc = np.zeros((400, 1)), np.random.RandomState(1).randn(400)
    sw = np.where(yc > 0, 3.0, 1.0)  # weighted median ~ Phi^-1(2/3) = 0.43
    kw = dict(hidden_layer_sizes=(), max_iter=300, learning_rate_init=0.05)
    plain = _model(**kw).fit(Xc, yc).predict(Xc[:1])[0]
    heavy = _model(**kw).fit(Xc, yc, sample_weight=sw).predict(Xc[:1])[0]
    order = np.argsort(yc)
    cum = np.cumsum(sw[order])
    weighted_median = yc[order][np.searchsorted(cum, cum[-1] / 2)]
    assert abs(plain - np.median(yc)) < 0.02
    assert abs(heavy - weighted_median) < 0.02


@pytest.mark.parametrize(
    "quantile",
    [
        0.0,
        1.0,
        -0.1,
        1.5,
        np.nan,
        np.inf,
        None,
        "0.5",
        True,
        [],
        [0.1, 1.0],
        [0.2, -0.3],
        [[0.1, 0.5]],
        [0.5, "a"],
    ],  # fmt: skip
)
def test_bad_quantile_raises_value_error_naming_it(quantile):
    X, y = _heteroscedastic(50, 5)
    with pytest.raises(ValueError, match="quantile"):
        _model(quantile=quantile, max_iter=1).fit(X, y)
    # checked whatever the loss, as huber_delta is
    with pytest.raises(ValueError, match="quantile"):
        _model(loss="squared_error", quantile=quantile, max_iter=1).fit(X, y)


def test_partial_fit_with_another_number_of_quantiles_raises():
    X, y = _heteroscedastic(80, 6)
    est = _model(quantile=TAUS, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="quantile 2 values.*fitted with 3"):
        est.set_params(quantile=(0.2, 0.8)).partial_fit(X, y)
    with pytest.raises(ValueError, match="quantile 2 values.*fitted with 3"):
        est.set_params(warm_start=True).fit(X, y)
    # the same count of quantiles: training continues towards the new ones
    est.set_params(quantile=(0.2, 0.5, 0.8), warm_start=False).partial_fit(X, y)
    assert est._loss_fn.param == (0.2, 0.5, 0.8)


def test_tampered_loss_is_a_value_error():
    from fastfit.losses import regressor_loss

    X, y = _heteroscedastic(80, 7)
    est = _model(quantile=TAUS, max_iter=2).fit(X, y)
    est._loss_fn = regressor_loss("quantile", quantile=(0.1, 0.9))
    with pytest.raises(ValueError, match="_loss_fn has 2 quantiles"):
        est.predict(X)
    est._loss_fn = regressor_loss("quantile", quantile=TAUS)
    est._loss_fn.param = (0.1, 2.0, 0.9)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        est.predict(X)


@pytest.mark.parametrize("monitor", ["loss", "score"])
def test_early_stopping_and_lbfgs(data, monitor):
    (X, y), (Xt, yt) = data
    est = _model(
        quantile=TAUS, early_stopping=True, early_stopping_monitor=monitor
    ).fit(X, y)
    assert np.isfinite(est.validation_scores_).all()
    assert np.isfinite(est.validation_loss_curve_).all()
    lbfgs = _model(quantile=TAUS, optimizer="lbfgs", max_iter=200).fit(X, y)
    pred = lbfgs.predict(Xt)
    for k, tau in enumerate(TAUS):
        assert abs(np.mean(yt <= pred[:, k]) - tau) < 0.06


def test_grid_search_over_quantile():
    X, y = _heteroscedastic(300, 8)
    est = _model(max_iter=5)
    assert clone(est).get_params()["quantile"] == 0.5
    search = GridSearchCV(est, {"quantile": [0.3, (0.2, 0.8)]}, cv=2).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.cv_results_["params"][1]["quantile"] == (0.2, 0.8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sklearn_estimator_checks(dtype):
    est = MLPRegressor(loss="quantile", quantile=0.3, max_iter=30, random_state=0,
                       dtype=dtype)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = check_estimator(est, on_fail=None)
    # float32 rounding is above these checks' rtol (tests/test_sklearn_contract.py)
    excused = {
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    }
    failed = [
        (r["check_name"], str(r["exception"])[:300])
        for r in results
        if r["status"] == "failed"
        and not (dtype == np.float32 and r["check_name"] in excused)
    ]
    assert not failed, failed
