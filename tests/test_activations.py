"""The hidden activations beyond scikit-learn's four, against torch and NumPy.

Every engine activation also goes through the finite-difference gradient
checks of ``tests/test_engine.py`` (parametrized over ``ACTIVATIONS``).
"""

import numpy as np
import pytest
import reference as ref
from sklearn.datasets import load_diabetes

from fastfit import MLPRegressor
from fastfit._engine import ACTIVATIONS, LOSS_KINDS, Network
from fastfit._layout import Layout

NEW = ["leaky_relu", "elu", "selu", "softplus"]


def _hidden_output(activation, Z, dtype):
    """f(Z) by the engine: a one-layer network with identity weights."""
    n = Z.shape[1]
    layout = Layout([n, n, n])
    network = Network(
        layout.sizes,
        [ACTIVATIONS[activation], ACTIVATIONS["identity"]],
        LOSS_KINDS["squared_error"],
    )
    params = np.zeros(layout.n_params, dtype)
    coefs, _ = layout.views(params)
    coefs[0][...] = np.eye(n)
    coefs[1][...] = np.eye(n)
    out = np.empty_like(Z, dtype=dtype)
    network.forward(params, np.ascontiguousarray(Z, dtype=dtype), out, 64, 1)
    return out


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
    fn = {"leaky_relu": F.leaky_relu, "elu": F.elu, "selu": F.selu,
          "softplus": F.softplus}[activation]  # fmt: skip
    Z = np.linspace(-8, 8, 161).reshape(-1, 1)
    z = torch.tensor(Z, requires_grad=True)
    a = fn(z)
    a.sum().backward()
    np.testing.assert_allclose(
        _hidden_output(activation, Z, np.float64), a.detach().numpy(), rtol=1e-13,
        atol=1e-15,
    )  # fmt: skip
    # the engine's derivative is written through the output
    derivative = ref.DERIVATIVES[activation](a.detach().numpy())
    np.testing.assert_allclose(derivative, z.grad.numpy(), rtol=1e-12, atol=1e-15)


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
