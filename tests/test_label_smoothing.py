"""Label smoothing of the classifier's log loss, inside the fused loss kernel."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from test_engine import _finite_difference, _objective, _problem

from fastfit import MLPClassifier
from fastfit._engine import LOSS_KINDS, loss_gradient_py

KERNELS = ["softmax_cross_entropy", "sigmoid_log_loss"]


def _reference(kernel, Z, Y, eps):
    """Cross-entropy against the smoothed targets (PyTorch's definition)."""
    if kernel == "softmax_cross_entropy":
        K = Z.shape[1]
        q = np.full(Z.shape, eps / K)
        q[np.arange(len(Z)), Y[:, 0].astype(int)] += 1 - eps
        logp = Z - np.log(np.exp(Z - Z.max(1, keepdims=True)).sum(1, keepdims=True))
        logp -= Z.max(1, keepdims=True)
        return -(q * logp).sum(1).mean(), np.exp(logp) - q
    t = (1 - eps) * Y + eps / 2
    p = 1 / (1 + np.exp(-Z))
    loss = -(t * np.log(p) + (1 - t) * np.log1p(-p)).sum(1).mean()
    return loss, p - t


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_the_kernel_is_the_smoothed_cross_entropy(kernel, eps):
    rng = np.random.RandomState(0)
    Z = rng.randn(7, 4) * 2
    Y = (
        rng.randint(0, 4, (7, 1)).astype(float)
        if kernel == "softmax_cross_entropy"
        else rng.randint(0, 2, (7, 4)).astype(float)
    )
    G = np.empty_like(Z)
    value = loss_gradient_py(LOSS_KINDS[kernel], Z, Y, None, eps, G)
    loss, grad = _reference(kernel, Z, Y, eps)
    np.testing.assert_allclose(value, loss, rtol=1e-12)
    np.testing.assert_allclose(G, grad / len(Z), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
def test_network_gradient_with_label_smoothing_matches_finite_differences(kernel):
    layout, params, X, Y, _ = _problem(kernel, seed=2)
    _, grads = _objective(layout, params, X, Y, "tanh", kernel, delta=0.1)
    fd = _finite_difference(
        lambda p: _objective(layout, p, X, Y, "tanh", kernel, delta=0.1)[0], params
    )
    rel = np.linalg.norm(fd - grads) / (np.linalg.norm(fd) + np.linalg.norm(grads))
    assert rel < 1e-6, rel


@pytest.mark.parametrize("kernel", KERNELS)
def test_matches_torch(kernel):
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(1)
    Z = rng.randn(9, 3)
    if kernel == "softmax_cross_entropy":
        Y = rng.randint(0, 3, (9, 1)).astype(float)
        z = torch.tensor(Z, requires_grad=True)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(
            z, torch.tensor(Y[:, 0], dtype=torch.long)
        )
    else:
        Y = rng.randint(0, 2, (9, 3)).astype(float)
        z = torch.tensor(Z, requires_grad=True)
        t = torch.tensor(Y * 0.8 + 0.1)
        loss = torch.nn.BCEWithLogitsLoss(reduction="sum")(z, t) / 9
    loss.backward()
    G = np.empty_like(Z)
    value = loss_gradient_py(LOSS_KINDS[kernel], Z, Y, None, 0.2, G)
    np.testing.assert_allclose(value, loss.item(), rtol=1e-12)
    np.testing.assert_allclose(G, z.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_estimator_label_smoothing():
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    with pytest.warns(Warning):
        base = MLPClassifier(**kw).fit(X, y)
    with pytest.warns(Warning):
        zero = MLPClassifier(label_smoothing=0.0, **kw).fit(X, y)
    with pytest.warns(Warning):
        smooth = MLPClassifier(label_smoothing=0.2, **kw).fit(X, y)
    np.testing.assert_array_equal(base.coefs_[0], zero.coefs_[0])
    assert not np.array_equal(base.coefs_[0], smooth.coefs_[0])
    with pytest.raises(ValueError, match="label_smoothing"):
        MLPClassifier(label_smoothing=1.0).fit(X, y)


def test_a_converged_smoothed_model_is_as_sure_as_its_targets():
    # at the optimum the softmax matches q: its largest probability tends to
    # 1 - eps + eps / K (0.8667 here), where the plain loss drives it to 1
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(16,), optimizer="lbfgs", alpha=0.0,
              max_iter=2000, random_state=0, dtype=np.float64)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = MLPClassifier(**kw).fit(X, y)
        smooth = MLPClassifier(label_smoothing=0.2, **kw).fit(X, y)
    assert np.median(base.predict_proba(X).max(1)) > 0.99
    sure = smooth.predict_proba(X).max(1)
    assert abs(np.median(sure) - (1 - 0.2 + 0.2 / 3)) < 0.02
    assert sure.max() < 0.95
    assert smooth.score(X, y) > 0.95
