"""Dropout: inverted dropout on hidden outputs, masks from a counter-based hash.

The engine's masks are checked against ``dropout_mask`` (the same draw, from
Python) through the NumPy reference backprop, their statistics directly, and
the estimators' fits for the properties a user relies on: no dropout is the
plain fit, the thread count changes nothing, predictions use no mask.
"""

import numpy as np
import pytest
import reference as ref
from sklearn.datasets import load_digits, make_regression

from fastfit import MLPClassifier, MLPRegressor
from fastfit._engine import (
    ACTIVATIONS,
    LOSS_KINDS,
    OPTIMIZER_KINDS,
    Network,
    Trainer,
    dropout_mask,
    openmp_enabled,
)
from fastfit._layout import Layout


def _problem(seed=0, n=40, sizes=(5, 7, 6, 3)):
    rng = np.random.RandomState(seed)
    layout = Layout(list(sizes))
    params = rng.normal(0, 0.6, layout.n_params)
    X = rng.normal(size=(n, sizes[0]))
    Y = rng.normal(size=(n, sizes[-1]))
    return layout, params, X, Y


def _trainer(layout, activation, rates, seed, slope=0.01):
    n_hidden = layout.n_layers - 1
    network = Network(
        layout.sizes,
        [ACTIVATIONS[activation]] * n_hidden + [ACTIVATIONS["identity"]],
        LOSS_KINDS["squared_error"],
        0.0,
        list(rates) + [0.0],
        [slope] * layout.n_layers,
    )
    return Trainer(
        network,
        OPTIMIZER_KINDS["sgd"],
        [0.0, 0.0, 0.0],
        np.zeros((1, layout.n_params)),
        8,
        dropout_seed=seed,
    )


def _reference(layout, params, X, Y, activation, rates, seed, step):
    """NumPy backprop with the masks the engine draws for ``step``."""
    masks = [
        (dropout_mask(seed, step, l, X.shape[0], int(layout.sizes[l + 1]), r), 1 - r)
        for l, r in enumerate(rates)
    ]
    coefs, intercepts = layout.views(params)
    value, cg, ig = ref.backprop(
        coefs, intercepts, X, Y, activation, "squared_error", masks=masks
    )
    return value, ref.flatten(cg, ig)[0]


def _objective(trainer, params, X, Y, step):
    grads = np.zeros_like(params)
    value = trainer.objective_gradient(params, X, Y, np.empty(0), grads, step)
    return value, grads


@pytest.mark.parametrize("activation", ["relu", "tanh", "selu", "gelu", "mish"])
def test_engine_gradient_equals_the_reference_with_the_same_masks(activation):
    layout, params, X, Y = _problem()
    rates = (0.3, 0.5)
    trainer = _trainer(layout, activation, rates, seed=1234)
    step = 17
    value, grads = _objective(trainer, params, X, Y, step)
    want, want_grads = _reference(layout, params, X, Y, activation, rates, 1234, step)
    np.testing.assert_allclose(value, want, rtol=1e-12)
    np.testing.assert_allclose(grads, want_grads, rtol=1e-10, atol=1e-13)
    # the masks do drop units: without them the objective differs
    plain, _ = _objective(trainer, params, X, Y, -1)
    assert plain != value


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_a_step_whose_products_are_split_in_rows_equals_the_reference(activation):
    # 128 rows through 64-wide layers: too narrow for two column blocks, so
    # the training step's forward splits the batch's rows between blocks;
    # each block must use its own rows' masks and pre-activations
    layout, params, X, Y = _problem(seed=4, n=128, sizes=(64, 64, 64, 2))
    rates = (0.2, 0.35)
    network = _trainer(layout, activation, rates, seed=77).network
    trainer = Trainer(
        network, OPTIMIZER_KINDS["sgd"], [0.0, 0.0, 0.0],
        np.zeros((1, layout.n_params)), 128, dropout_seed=77, n_threads=2,
    )  # fmt: skip
    lr, step = 0.05, 9
    _, grads = _reference(layout, params, X, Y, activation, rates, 77, step)
    want = params - lr * grads
    got = params.copy()
    trainer.run_batches(
        got, X, Y, np.empty(0), np.empty(0, np.intp), 0, 1, np.array([lr]), step - 1
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "elu", "silu", "gelu_tanh"])
def test_gradient_with_dropout_matches_finite_differences(activation):
    layout, params, X, Y = _problem(seed=3)
    trainer = _trainer(layout, activation, (0.25, 0.4), seed=99)
    _, grads = _objective(trainer, params, X, Y, 5)
    eps = 1e-6
    fd = np.empty_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        fd[i] = (
            _objective(trainer, up, X, Y, 5)[0] - _objective(trainer, down, X, Y, 5)[0]
        ) / (2 * eps)
    rel = np.linalg.norm(fd - grads) / (np.linalg.norm(fd) + np.linalg.norm(grads))
    assert rel < 1e-6, rel


@pytest.mark.parametrize("rate", [0.1, 0.15, 0.5, 0.9])
def test_the_dropped_fraction_is_the_rate(rate):
    m, n = 512, 384
    kept = dropout_mask(7, 3, 1, m, n, rate)
    dropped = 1 - kept.mean()
    se = np.sqrt(rate * (1 - rate) / (m * n))
    assert abs(dropped - rate) < 3 * se
    # rows and units of a layer, and steps and layers, draw unrelated masks
    for other in (
        dropout_mask(7, 4, 1, m, n, rate),
        dropout_mask(7, 3, 2, m, n, rate),
        dropout_mask(8, 3, 1, m, n, rate),
    ):
        agree = (other == kept).mean()
        expected = rate**2 + (1 - rate) ** 2
        assert abs(agree - expected) < 4 * np.sqrt(expected * (1 - expected) / (m * n))
    assert abs(kept[:, 0].mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / m)
    assert abs(kept[0].mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / n)


def test_a_forward_drops_the_rate_of_units_and_scales_the_rest():
    # a training pass on an identity network: the output is the input masked
    # and scaled by 1 / keep (read back through the gradient of a linear loss)
    n, width, rate = 256, 64, 0.15
    layout = Layout([width, width, width])
    params = np.zeros(layout.n_params)
    coefs, _ = layout.views(params)
    coefs[0][...] = np.eye(width)
    coefs[1][...] = np.eye(width)
    X = np.random.RandomState(0).uniform(1, 2, (n, width))
    trainer = _trainer(layout, "identity", (rate,), seed=5)
    _, grads = _objective(trainer, params, X, np.zeros((n, width)), 11)
    # squared error: dL/db_out = (output - 0) / n summed, output = masked X / keep
    mask = dropout_mask(5, 11, 0, n, width, rate)
    want = (np.where(mask, X / (1 - rate), 0.0)).sum(axis=0) / n
    np.testing.assert_allclose(grads[-width:], want, rtol=1e-12)
    dropped = 1 - mask.mean()
    assert abs(dropped - rate) < 3 * np.sqrt(rate * (1 - rate) / mask.size)


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_zero_dropout_is_exactly_the_fit_without_it():
    X, y = _digits()
    kw = dict(hidden_layer_sizes=(32, 16), max_iter=3, random_state=0)
    plain = MLPClassifier(**kw).fit(X, y)
    for dropout in (0.0, [0.0, 0.0], (0, 0.0)):
        zero = MLPClassifier(dropout=dropout, **kw).fit(X, y)
        for a, b in zip(
            plain.coefs_ + plain.intercepts_, zero.coefs_ + zero.intercepts_
        ):
            np.testing.assert_array_equal(a, b)
        assert zero.loss_curve_ == plain.loss_curve_


@pytest.mark.skipif(not openmp_enabled(), reason="needs OpenMP threads")
@pytest.mark.parametrize("activation", ["relu", "selu", "gelu"])
def test_a_fit_with_dropout_is_the_same_for_any_thread_count(activation):
    X, y = make_regression(3000, 64, random_state=0)
    y = (y - y.mean()) / y.std()
    kw = dict(
        hidden_layer_sizes=(256, 128), activation=activation, dropout=[0.15, 0.3],
        batch_size=256, max_iter=2, random_state=0, dtype=np.float32,
    )  # fmt: skip
    one = MLPRegressor(n_threads=1, **kw).fit(X, y)
    two = MLPRegressor(n_threads=2, **kw).fit(X, y)
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_dropout_fits_are_reproducible_and_differ_by_seed():
    X, y = _digits()
    kw = dict(hidden_layer_sizes=(32,), dropout=0.2, max_iter=2)
    a = MLPClassifier(random_state=1, **kw).fit(X, y)
    b = MLPClassifier(random_state=1, **kw).fit(X, y)
    c = MLPClassifier(random_state=1, hidden_layer_sizes=(32,), max_iter=2).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_predictions_use_no_mask_and_are_deterministic():
    X, y = _digits()
    clf = MLPClassifier(
        hidden_layer_sizes=(32, 16), dropout=0.5, max_iter=5, random_state=0,
        dtype=np.float64,
    ).fit(X, y)  # fmt: skip
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))
    want = ref.forward(clf.coefs_, clf.intercepts_, X, "relu", "softmax")[-1]
    np.testing.assert_allclose(proba, want, rtol=1e-10, atol=1e-12)


def test_partial_fit_draws_new_masks_each_step():
    X, y = _digits()
    kw = dict(hidden_layer_sizes=(32,), dropout=0.3, random_state=0, shuffle=False)
    a = MLPClassifier(**kw)
    a.partial_fit(X, y, classes=np.unique(y))
    seed = a._dropout_seed
    a.partial_fit(X, y)
    assert a._dropout_seed == seed
    # two epochs of partial_fit are the two epochs of fit
    b = MLPClassifier(max_iter=2, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_dropout_learns():
    X, y = _digits()
    clf = MLPClassifier(
        hidden_layer_sizes=(64,), dropout=0.2, max_iter=60, random_state=0
    ).fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.9


@pytest.mark.parametrize(
    "dropout, match",
    [
        (1.0, "dropout"),
        (-0.1, "dropout"),
        ([0.1], "one per hidden layer"),
        ([0.1, 1.0], r"\[0, 1\)"),
        (["a", 0.1], "one per hidden layer"),
        ([True, 0.1], "one per hidden layer"),
    ],
)
def test_bad_dropout_is_refused(dropout, match):
    X, y = _digits()
    with pytest.raises(ValueError, match=match):
        MLPClassifier(hidden_layer_sizes=(8, 8), dropout=dropout, max_iter=1).fit(X, y)


def test_lbfgs_refuses_dropout():
    X, y = _digits()
    with pytest.raises(ValueError, match="stochastic optimizer"):
        MLPClassifier(hidden_layer_sizes=(8,), dropout=0.1, optimizer="lbfgs").fit(X, y)


def test_a_tampered_dropout_seed_is_refused():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(8,), dropout=0.1, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))
    clf._dropout_seed = 2**40
    with pytest.raises(ValueError, match="_dropout_seed"):
        clf.partial_fit(X, y)


def test_the_network_checks_its_rates():
    layout = Layout([3, 4, 2])
    ids = [ACTIVATIONS["relu"], ACTIVATIONS["identity"]]
    kind = LOSS_KINDS["squared_error"]
    for rates in ([0.5, 0.1], [1.0, 0.0], [-0.1, 0.0], [0.1], [np.nan, 0.0]):
        with pytest.raises(ValueError, match="dropout"):
            Network(layout.sizes, ids, kind, 0.0, rates)
