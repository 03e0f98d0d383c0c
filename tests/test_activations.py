"""The hidden activations beyond scikit-learn's four, against torch and NumPy.

Every engine activation also goes through the finite-difference gradient
checks of ``tests/test_engine.py`` (parametrized over ``ACTIVATIONS``).
"""

import numpy as np
import pytest
import reference as ref
from sklearn.datasets import load_diabetes

from fastfit import MLPRegressor
from fastfit._engine import ACTIVATIONS, LOSS_KINDS, OPTIMIZER_KINDS, Network, Trainer
from fastfit._layout import Layout

NEW = ["leaky_relu", "elu", "selu", "softplus", "gelu", "gelu_tanh", "silu", "mish"]


def _torch_functions(F):
    return {
        "leaky_relu": F.leaky_relu, "elu": F.elu, "selu": F.selu,
        "softplus": F.softplus, "gelu": F.gelu,
        "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"), "silu": F.silu,
        "mish": F.mish,
    }  # fmt: skip


def _identity_network(activation, n, dtype, slope):
    """(layout, network, params): n units of ``activation`` between identity
    weight matrices, zero biases, squared error."""
    layout = Layout([n, n, n])
    network = Network(
        layout.sizes,
        [ACTIVATIONS[activation], ACTIVATIONS["identity"]],
        LOSS_KINDS["squared_error"],
        0.0,
        None,
        [slope, slope],
    )
    params = np.zeros(layout.n_params, dtype)
    coefs, _ = layout.views(params)
    coefs[0][...] = np.eye(n)
    coefs[1][...] = np.eye(n)
    return layout, network, params


def _hidden_output(activation, Z, dtype, slope=0.01):
    """f(Z) by the engine: a one-layer network with identity weights."""
    _, network, params = _identity_network(activation, Z.shape[1], dtype, slope)
    out = np.empty_like(Z, dtype=dtype)
    network.forward(params, np.ascontiguousarray(Z, dtype=dtype), out, 64, 1)
    return out


def _hidden_derivative(activation, Z, slope=0.01):
    """f'(z) by the engine's backward, for one row of z (each unit its own
    value): the hidden bias gradient of an identity network whose squared
    error has dL/d(output) = 1."""
    layout, network, params = _identity_network(
        activation, Z.shape[1], np.float64, slope
    )
    trainer = Trainer(
        network, OPTIMIZER_KINDS["sgd"], [0.0, 0.0, 0.0],
        np.zeros((1, layout.n_params)), 1,
    )  # fmt: skip
    assert Z.shape[0] == 1
    out = _hidden_output(activation, Z, np.float64, slope)
    grads = np.zeros_like(params)
    trainer.objective_gradient(
        params, np.ascontiguousarray(Z), out - 1, np.empty(0), grads
    )
    return grads[layout.b_off[0] : layout.b_off[0] + Z.shape[1]]


@pytest.mark.parametrize("activation", NEW)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_the_reference(activation, dtype):
    Z = np.linspace(-30, 30, 601).reshape(-1, 1) * np.ones((1, 3))
    got = _hidden_output(activation, Z, dtype)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, ref.ACTIVATIONS[activation](Z), rtol=rtol,
                               atol=rtol)  # fmt: skip


@pytest.mark.parametrize("activation", NEW)
def test_forward_and_derivative_match_torch(activation):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    fn = _torch_functions(F)[activation]
    Z = np.linspace(-8, 8, 161).reshape(-1, 1)
    z = torch.tensor(Z, requires_grad=True)
    a = fn(z)
    a.sum().backward()
    np.testing.assert_allclose(
        _hidden_output(activation, Z, np.float64), a.detach().numpy(), rtol=1e-13,
        atol=1e-15,
    )  # fmt: skip
    # the engine's derivative is written through the output, or through z
    if activation in ref.DERIVATIVES_Z:
        derivative = ref.DERIVATIVES_Z[activation](Z)
    else:
        derivative = ref.DERIVATIVES[activation](a.detach().numpy())
    # (atol: 1 + tanh(u) cancels in GELU's left tail)
    np.testing.assert_allclose(derivative, z.grad.numpy(), rtol=1e-12, atol=1e-14)
    # and the engine's own backward: the gradient of sum(f(z)) w.r.t. z
    np.testing.assert_allclose(
        _hidden_derivative(activation, Z.reshape(1, -1)),
        z.grad.numpy().ravel(),
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize("activation", NEW)
def test_estimators_train_with_each(activation):
    X, y = load_diabetes(return_X_y=True)
    est = MLPRegressor(
        hidden_layer_sizes=(32,), activation=activation, learning_rate_init=1e-2,
        max_iter=200, random_state=0, dtype=np.float64,
    )  # fmt: skip
    est.fit(X, (y - y.mean()) / y.std())
    assert est.score(X, (y - y.mean()) / y.std()) > 0.4
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_leaky_relu_takes_its_slope():
    torch = pytest.importorskip("torch")
    Z = np.linspace(-4, 4, 81).reshape(1, -1)
    z = torch.tensor(Z, requires_grad=True)
    a = torch.nn.functional.leaky_relu(z, negative_slope=0.2)
    a.sum().backward()
    np.testing.assert_allclose(
        _hidden_output("leaky_relu", Z, np.float64, 0.2), a.detach().numpy()
    )
    np.testing.assert_allclose(
        _hidden_derivative("leaky_relu", Z, 0.2), z.grad.numpy().ravel()
    )
    X, y = load_diabetes(return_X_y=True)
    kw = dict(hidden_layer_sizes=(16,), activation="leaky_relu", max_iter=3,
              random_state=0, dtype=np.float64)  # fmt: skip
    a = MLPRegressor(negative_slope=0.2, **kw).fit(X, y)
    b = MLPRegressor(**kw).fit(X, y)
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])
    want = ref.leaky_relu(X @ a.coefs_[0] + a.intercepts_[0], 0.2) @ a.coefs_[1]
    np.testing.assert_allclose(a.predict(X), (want + a.intercepts_[1]).ravel())


@pytest.mark.parametrize("activation", NEW)
def test_full_batch_training_matches_the_reference(activation):
    # five full-batch SGD steps of the estimator from given weights, step by
    # step the NumPy reference's (penalty included)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 5)), rng.normal(size=40)
    est = MLPRegressor(
        hidden_layer_sizes=(8, 6), activation=activation, optimizer="sgd",
        momentum=0.0, batch_size="full", learning_rate_init=0.05, alpha=1e-3,
        max_iter=5, shuffle=False, dtype=np.float64, tol=0,
        n_iter_no_change=np.inf, warm_start=True,
    )  # fmt: skip
    est.fit(X, y)
    coefs = [rng.normal(0, 0.5, c.shape) for c in est.coefs_]
    intercepts = [rng.normal(0, 0.5, b.shape) for b in est.intercepts_]
    est.coefs_, est.intercepts_ = (
        [c.copy() for c in coefs],
        [b.copy() for b in intercepts],
    )
    est.fit(X, y)
    for _ in range(5):
        _, cg, ig = ref.backprop(
            coefs, intercepts, X, y.reshape(-1, 1), activation, "squared_error",
            alpha=1e-3,
        )  # fmt: skip
        coefs = [c - 0.05 * g for c, g in zip(coefs, cg)]
        intercepts = [b - 0.05 * g for b, g in zip(intercepts, ig)]
    for got, want in zip(est.coefs_ + est.intercepts_, coefs + intercepts):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_one_activation_per_layer():
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    names = ["mish", "selu", "gelu_tanh"]
    est = MLPRegressor(
        hidden_layer_sizes=(7, 6, 5), activation=names, max_iter=4,
        random_state=0, dtype=np.float64,
    ).fit(X, y)  # fmt: skip
    assert est._activation == tuple(names)
    F = torch.nn.functional
    fns = _torch_functions(F)
    a = torch.tensor(X)
    for W, b, name in zip(est.coefs_[:-1], est.intercepts_[:-1], names):
        a = fns[name](a @ torch.tensor(W) + torch.tensor(b))
    want = a @ torch.tensor(est.coefs_[-1]) + torch.tensor(est.intercepts_[-1])
    np.testing.assert_allclose(est.predict(X), want.numpy().ravel(), rtol=1e-12)
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLPRegressor(hidden_layer_sizes=(7, 6), activation=names).fit(X, y)
    with pytest.raises(ValueError, match="'swish' is not one of"):
        MLPRegressor(hidden_layer_sizes=(7,), activation=["swish"]).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_and_selu_exponential_is_within_an_ulp_or_two(dtype):
    # the kernels' own exp(z) - 1 for z <= 0 (vectorised), against NumPy's
    rng = np.random.default_rng(0)
    z = np.concatenate(
        [-np.logspace(-30, 2, 4000), rng.uniform(-60, 0, 4000), np.zeros(96)]
    ).reshape(-1, 16)
    got = _hidden_output("elu", z.astype(dtype), dtype).astype(np.float64)
    want = np.expm1(z.astype(dtype).astype(np.float64)).astype(dtype)
    ulp = np.spacing(np.abs(want)).astype(np.float64)
    assert (np.abs(got - want) <= 2 * ulp).all()
    got = _hidden_output("selu", z.astype(dtype), dtype).astype(np.float64)
    want = ref.selu(z.astype(dtype).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
