"""Self-checks of the NumPy oracles in ``reference.py``.

The oracles are only worth something if they are right, so this file proves them:

- every loss gradient and the whole of ``backprop`` against central finite
  differences (float64, relative error < 1e-6);
- loss values against scikit-learn's public metrics;
- when PyTorch is importable: every reference optimizer against ``torch.optim``
  (single-tensor path) over 20 steps, and ``backprop`` / ``train_full_batch``
  against torch autograd.

Nothing here imports fastfit.
"""

import zlib

import numpy as np
import pytest

try:  # tests/ as a package, or tests/ on sys.path (pytest's default "prepend" mode)
    from tests import reference as ref
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref

LOSS_NAMES = list(ref.LOSSES)
FD_RTOL = 1e-6


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _rel_err(a, b):
    a = np.concatenate([np.ravel(x) for x in a]) if isinstance(a, list) else np.ravel(a)
    b = np.concatenate([np.ravel(x) for x in b]) if isinstance(b, list) else np.ravel(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def _fd_grad(f, arrays, h=1e-6):
    """Central differences of the scalar f() w.r.t. every element of every array."""
    grads = []
    for A in arrays:
        G = np.zeros_like(A)
        flat, gflat = A.reshape(-1), G.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + h
            fp = f()
            flat[j] = old - h
            fm = f()
            flat[j] = old
            gflat[j] = (fp - fm) / (2 * h)
        grads.append(G)
    return grads


def _targets(loss, rng, n, k, Z):
    """Targets for `loss`, built so that no |r| sits within 0.1 of a kink."""
    if loss == "softmax_cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "sigmoid_log_loss":
        return (rng.random((n, k)) < 0.5).astype(np.float64)
    if loss == "poisson":
        return rng.poisson(1.5, size=(n, k)).astype(np.float64)
    sign = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0)
    if loss == "huber":  # both branches of the huber loss, away from |r| = 1
        mag = np.where(
            rng.random((n, k)) < 0.5,
            rng.uniform(0.1, 0.9, (n, k)),
            rng.uniform(1.1, 3.0, (n, k)),
        )
    else:
        mag = rng.uniform(0.1, 2.0, (n, k))
    return Z - sign * mag  # r = z - y = sign * mag


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_loss_gradient_finite_differences(loss, k, weighted):
    if loss == "softmax_cross_entropy" and k == 1:
        k = 2
    rng = np.random.default_rng(0)
    n = 9
    Z = rng.normal(0, 1.5, (n, k))
    Y = _targets(loss, rng, n, k, Z)
    sw = rng.uniform(0.2, 3.0, n) if weighted else None
    fn = ref.LOSSES[loss][0]
    value, grad = fn(Z, Y, sample_weight=sw)
    assert grad.shape == Z.shape
    assert np.isfinite(value)
    (fd,) = _fd_grad(lambda: fn(Z, Y, sample_weight=sw)[0], [Z])
    assert _rel_err(grad, fd) < FD_RTOL


def test_losses_against_definitions_and_sklearn_metrics():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    n = 40
    sw = rng.uniform(0.5, 2.0, n)

    Z = rng.normal(0, 2, (n, 4))
    y = rng.integers(0, 4, n)
    P = ref.softmax(Z)
    v, _ = ref.softmax_cross_entropy(Z, y, sample_weight=sw)
    assert np.isclose(
        v, metrics.log_loss(y, P, sample_weight=sw, labels=range(4)), rtol=1e-12
    )

    z = rng.normal(0, 3, (n, 1))
    yb = (rng.random((n, 1)) < 0.4).astype(float)
    p = ref.logistic(z)
    v, _ = ref.sigmoid_log_loss(z, yb, sample_weight=sw)
    assert np.isclose(
        v, metrics.log_loss(yb[:, 0], p[:, 0], sample_weight=sw), rtol=1e-10
    )

    Yr = rng.normal(size=(n, 1))
    v, _ = ref.squared_error(z, Yr, sample_weight=sw)
    assert np.isclose(
        v, 0.5 * metrics.mean_squared_error(Yr, z, sample_weight=sw), rtol=1e-12
    )
    v, _ = ref.absolute_error(z, Yr, sample_weight=sw)
    assert np.isclose(
        v, metrics.mean_absolute_error(Yr, z, sample_weight=sw), rtol=1e-12
    )

    yc = rng.poisson(2.0, (n, 1)).astype(float)
    v, _ = ref.poisson(z, yc, sample_weight=sw)
    dev = metrics.mean_poisson_deviance(yc[:, 0], np.exp(z[:, 0]), sample_weight=sw)
    assert np.isclose(v, 0.5 * dev, rtol=1e-10)

    # huber: both branches by hand, delta != 1
    r = np.array([[0.5], [-2.0], [3.0]])
    v, g = ref.huber(r, np.zeros_like(r), delta=1.5)
    assert np.isclose(v, (0.125 + 1.5 * (2.0 - 0.75) + 1.5 * (3.0 - 0.75)) / 3)
    np.testing.assert_allclose(g, np.array([[0.5], [-1.5], [1.5]]) / 3)

    # quantile: scikit-learn's pinball loss, per column with its own tau
    for tau in (0.1, 0.5, 0.85):
        v, _ = ref.quantile(z, Yr, tau, sample_weight=sw)
        want = metrics.mean_pinball_loss(Yr, z, alpha=tau, sample_weight=sw)
        assert np.isclose(v, want, rtol=1e-12)
    Z3, Y3, taus = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), [0.1, 0.5, 0.9]
    v, _ = ref.quantile(Z3, Y3, taus, sample_weight=sw)
    want = sum(
        metrics.mean_pinball_loss(Y3[:, k], Z3[:, k], alpha=t, sample_weight=sw)
        for k, t in enumerate(taus)
    )
    assert np.isclose(v, want, rtol=1e-12)

    # multi-column losses sum over the columns, mean over the rows
    Z2, Y2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    v, _ = ref.squared_error(Z2, Y2)
    assert np.isclose(v, 0.5 * ((Z2 - Y2) ** 2).sum() / n)


def test_softmax_and_sigmoid_losses_stable_for_large_logits():
    Z = np.array([[1000.0, 0.0, -1000.0], [-800.0, 800.0, 0.0]])
    v, g = ref.softmax_cross_entropy(Z, np.array([0, 1]))
    assert np.isfinite(v) and np.all(np.isfinite(g))
    assert v == pytest.approx(0.0, abs=1e-300)
    z = np.array([[800.0], [-800.0]])
    v, g = ref.sigmoid_log_loss(z, np.array([[0.0], [1.0]]))
    assert v == pytest.approx(800.0)
    np.testing.assert_allclose(g, [[0.5], [-0.5]])


# ---------------------------------------------------------------------------
# activations, forward, penalty, backprop
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ref.HIDDEN_ACTIVATIONS)
def test_activation_derivative_from_output(name):
    z = np.linspace(-3, 3, 13) + 0.01  # avoid relu's kink at 0
    f = ref.ACTIVATIONS[name]
    h = 1e-6
    fd = (f(z + h) - f(z - h)) / (2 * h)
    if name in ref.DERIVATIVES_Z:  # not monotonic: through z
        assert _rel_err(ref.DERIVATIVES_Z[name](z), fd) < FD_RTOL
    else:
        assert _rel_err(ref.DERIVATIVES[name](f(z)), fd) < FD_RTOL


def test_forward_shapes_and_output_activations():
    rng = np.random.default_rng(2)
    sizes = [4, 6, 5, 3]
    coefs = [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    ints = [rng.normal(size=b) for b in sizes[1:]]
    X = rng.normal(size=(7, 4))
    acts = ref.forward(coefs, ints, X, "tanh", "softmax")
    assert [a.shape for a in acts] == [(7, 4), (7, 6), (7, 5), (7, 3)]
    np.testing.assert_allclose(acts[-1].sum(axis=1), 1.0)
    h1 = np.tanh(X @ coefs[0] + ints[0])
    np.testing.assert_allclose(acts[1], h1)
    z = np.tanh(h1 @ coefs[1] + ints[1]) @ coefs[2] + ints[2]
    np.testing.assert_allclose(
        ref.forward(coefs, ints, X, "tanh", "exp")[-1], np.exp(z)
    )
    np.testing.assert_allclose(ref.forward(coefs, ints, X, "tanh", "identity")[-1], z)
    np.testing.assert_allclose(
        ref.forward(coefs, ints, X, "tanh", "logistic")[-1], 1 / (1 + np.exp(-z))
    )


def test_penalty_value_and_gradient():
    rng = np.random.default_rng(3)
    coefs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    v, g = ref.penalty(coefs, alpha=0.3, l1_ratio=0.25, sw_sum=5.0)
    sq = sum((W**2).sum() for W in coefs)
    ab = sum(np.abs(W).sum() for W in coefs)
    assert np.isclose(v, 0.3 * (0.75 * 0.5 * sq + 0.25 * ab) / 5.0)
    fd = _fd_grad(lambda: ref.penalty(coefs, 0.3, 0.25, 5.0)[0], coefs)
    assert _rel_err(g, fd) < FD_RTOL


def _network(rng, n_in, k, hidden=(5, 3)):
    sizes = [n_in, *hidden, k]
    coefs = [rng.normal(0, 0.7, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    ints = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    return coefs, ints


def _problem(loss, seed=0, n=8, n_in=4):
    rng = np.random.default_rng(seed)
    k = 3 if loss != "sigmoid_log_loss" else 2
    coefs, ints = _network(rng, n_in, k)
    X = rng.normal(size=(n, n_in))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, k, n)
    elif loss == "sigmoid_log_loss":
        y = (rng.random((n, k)) < 0.5).astype(float)
    elif loss == "poisson":
        y = rng.poisson(1.0, (n, k)).astype(float)
    else:
        y = rng.normal(0, 2.0, (n, k))
    return rng, coefs, ints, X, y


@pytest.mark.parametrize("reg", ["none", "weighted+elasticnet"])
@pytest.mark.parametrize("activation", ref.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_backprop_finite_differences(loss, activation, reg):
    rng, coefs, ints, X, y = _problem(loss)
    if reg == "none":
        kw = {}
    else:
        kw = dict(
            sample_weight=rng.uniform(0.2, 2.0, X.shape[0]), alpha=0.2, l1_ratio=0.4
        )
    value, cg, ig = ref.backprop(coefs, ints, X, y, activation, loss, **kw)
    assert [g.shape for g in cg] == [W.shape for W in coefs]
    assert [g.shape for g in ig] == [b.shape for b in ints]

    def f():
        return ref.backprop(coefs, ints, X, y, activation, loss, **kw)[0]

    fd = _fd_grad(f, coefs + ints)
    assert _rel_err(cg + ig, fd) < FD_RTOL
    # the value is the data loss plus the penalty
    out = ref.LOSSES[loss][1]
    Zlin = ref._forward_raw(coefs, ints, X, activation, out)[1]
    data, _ = ref.LOSSES[loss][0](Zlin, y, sample_weight=kw.get("sample_weight"))
    sw_sum = X.shape[0] if reg == "none" else kw["sample_weight"].sum()
    pen, _ = ref.penalty(coefs, kw.get("alpha", 0.0), kw.get("l1_ratio", 0.0), sw_sum)
    assert np.isclose(value, data + pen, rtol=1e-14)


def test_unit_sample_weight_equals_unweighted():
    _, coefs, ints, X, y = _problem("softmax_cross_entropy", seed=5)
    a = ref.backprop(coefs, ints, X, y, "relu", "softmax_cross_entropy", alpha=0.1)
    b = ref.backprop(
        coefs,
        ints,
        X,
        y,
        "relu",
        "softmax_cross_entropy",
        alpha=0.1,
        sample_weight=np.ones(X.shape[0]),
    )
    assert np.isclose(a[0], b[0], rtol=1e-14)
    np.testing.assert_allclose(
        np.concatenate([g.ravel() for g in a[1] + a[2]]),
        np.concatenate([g.ravel() for g in b[1] + b[2]]),
        rtol=1e-13,
    )


def test_flatten_roundtrip():
    rng = np.random.default_rng(4)
    coefs, ints = _network(rng, 4, 3)
    flat, nw = ref.flatten(coefs, ints)
    assert nw == sum(W.size for W in coefs)
    np.testing.assert_array_equal(flat[:20], coefs[0].ravel())
    c2, i2 = ref.unflatten(flat, [4, 5, 3, 3])
    for a, b in zip(coefs + ints, c2 + i2):
        np.testing.assert_array_equal(a, b)


def test_train_full_batch_decreases_loss_and_leaves_inputs():
    _, coefs, ints, X, y = _problem("squared_error", seed=6, n=20)
    c0 = [W.copy() for W in coefs]
    c, i, losses = ref.train_full_batch(
        coefs, ints, X, y, "tanh", "squared_error", ref.Adam(), [0.01] * 30, alpha=1e-3
    )
    assert len(losses) == 30
    assert losses[-1] < losses[0]
    for a, b in zip(coefs, c0):
        np.testing.assert_array_equal(a, b)
    # losses[k] is computed before step k
    assert (
        losses[0]
        == ref.backprop(c0, ints, X, y, "tanh", "squared_error", alpha=1e-3)[0]
    )


# ---------------------------------------------------------------------------
# optimizers: plain-NumPy sanity checks (always run)
# ---------------------------------------------------------------------------


def test_sgd_first_momentum_step_has_no_dampening():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    opt = ref.SGD(momentum=0.9, dampening=0.5)
    opt.step([p], [g], lr=0.1)
    np.testing.assert_allclose(p, [1.0 - 0.05, -2.0 - 0.025])
    opt.step([p], [g], lr=0.1)  # buf = 0.9 * g + 0.5 * g = 1.4 g
    np.testing.assert_allclose(p, [1.0 - 0.05 - 0.07, -2.0 - 0.025 - 0.035])


def test_adam_first_step_is_sign_times_lr():
    p = np.array([1.0, -2.0, 3.0])
    g = np.array([0.5, -0.25, 4.0])
    ref.Adam(eps=0.0).step([p], [g], lr=0.1)
    np.testing.assert_allclose(p, [0.9, -1.9, 2.9], rtol=1e-14)


def test_adamw_decay_mask():
    W, b = np.ones(3), np.ones(2)
    ref.AdamW(weight_decay=0.5).step(
        [W, b], [np.zeros(3), np.zeros(2)], lr=0.1, decay_mask=[True, False]
    )
    np.testing.assert_array_equal(W, 0.95)
    np.testing.assert_array_equal(b, 1.0)


def test_reference_optimizers_do_not_modify_grads():
    rng = np.random.default_rng(0)
    for opt in [
        ref.SGD(momentum=0.9, nesterov=True),
        ref.Adagrad(),
        ref.RMSprop(momentum=0.5, centered=True),
        ref.Adam(amsgrad=True),
        ref.AdamW(),
    ]:
        p, g = rng.normal(size=5), rng.normal(size=5)
        g0 = g.copy()
        for _ in range(3):
            opt.step([p], [g], lr=0.01)
        np.testing.assert_array_equal(g, g0)


# ---------------------------------------------------------------------------
# against PyTorch (skipped when torch is not importable)
# ---------------------------------------------------------------------------

# (reference factory, torch factory(param_groups, lr), has weight decay)
OPTIMIZER_CASES = {
    "sgd": (lambda: ref.SGD(), lambda t, g: t.optim.SGD(g, lr=0.1, foreach=False)),
    "sgd-momentum": (
        lambda: ref.SGD(momentum=0.9),
        lambda t, g: t.optim.SGD(g, lr=0.1, momentum=0.9, foreach=False),
    ),
    "sgd-dampening": (
        lambda: ref.SGD(momentum=0.8, dampening=0.3),
        lambda t, g: t.optim.SGD(g, lr=0.1, momentum=0.8, dampening=0.3, foreach=False),
    ),
    "sgd-nesterov": (
        lambda: ref.SGD(momentum=0.9, nesterov=True),
        lambda t, g: t.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True, foreach=False),
    ),
    "adagrad": (
        lambda: ref.Adagrad(),
        lambda t, g: t.optim.Adagrad(g, lr=0.1, foreach=False),
    ),
    "adagrad-init-acc": (
        lambda: ref.Adagrad(eps=1e-6, initial_accumulator_value=0.1),
        lambda t, g: t.optim.Adagrad(
            g, lr=0.1, eps=1e-6, initial_accumulator_value=0.1, foreach=False
        ),
    ),
    "rmsprop": (
        lambda: ref.RMSprop(),
        lambda t, g: t.optim.RMSprop(g, lr=0.1, foreach=False),
    ),
    "rmsprop-centered": (
        lambda: ref.RMSprop(alpha=0.9, centered=True),
        lambda t, g: t.optim.RMSprop(
            g, lr=0.1, alpha=0.9, centered=True, foreach=False
        ),
    ),
    "rmsprop-momentum": (
        lambda: ref.RMSprop(momentum=0.7),
        lambda t, g: t.optim.RMSprop(g, lr=0.1, momentum=0.7, foreach=False),
    ),
    "rmsprop-centered-momentum": (
        lambda: ref.RMSprop(alpha=0.95, eps=1e-6, momentum=0.5, centered=True),
        lambda t, g: t.optim.RMSprop(
            g, lr=0.1, alpha=0.95, eps=1e-6, momentum=0.5, centered=True, foreach=False
        ),
    ),
    "adam": (lambda: ref.Adam(), lambda t, g: t.optim.Adam(g, lr=0.1, foreach=False)),
    "adam-betas": (
        lambda: ref.Adam(beta_1=0.3, beta_2=0.9, eps=1e-6),  # lerp weight > .5
        lambda t, g: t.optim.Adam(g, lr=0.1, betas=(0.3, 0.9), eps=1e-6, foreach=False),
    ),
    "adam-amsgrad": (
        lambda: ref.Adam(amsgrad=True),
        lambda t, g: t.optim.Adam(g, lr=0.1, amsgrad=True, foreach=False),
    ),
    "adamw": (
        lambda: ref.AdamW(weight_decay=0.05),
        lambda t, g: t.optim.AdamW(g, lr=0.1, weight_decay=0.05, foreach=False),
    ),
    "adamw-amsgrad": (
        lambda: ref.AdamW(weight_decay=0.1, amsgrad=True),
        lambda t, g: t.optim.AdamW(
            g, lr=0.1, weight_decay=0.1, amsgrad=True, foreach=False
        ),
    ),
}


def _grad_sequence(rng, shapes, n_steps):
    """Random gradients whose scale jumps from step to step (so amsgrad's max matters)."""
    out = []
    for _ in range(n_steps):
        scale = np.exp(rng.normal(0, 1.0))
        out.append([scale * rng.normal(size=s) for s in shapes])
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_optimizer_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    make_ref, make_torch = OPTIMIZER_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    W0, b0 = rng.normal(size=(6, 4)), rng.normal(size=4)
    n_steps = 20
    grads = _grad_sequence(rng, [W0.shape, b0.shape], n_steps)
    lrs = 0.05 * (1.0 + 0.5 * np.sin(np.arange(n_steps)))

    # torch: weights in a decayed group, biases in an undecayed one (AdamW)
    tW = torch.tensor(W0.astype(dtype), requires_grad=True)
    tb = torch.tensor(b0.astype(dtype), requires_grad=True)
    opt_t = make_torch(torch, [{"params": [tW]}, {"params": [tb], "weight_decay": 0.0}])
    assert all(not g.get("foreach") and not g.get("fused") for g in opt_t.param_groups)
    # reference in float64 from the same starting values
    W, b = W0.astype(dtype).astype(np.float64), b0.astype(dtype).astype(np.float64)
    opt_r = make_ref()
    worst = 0.0
    for k in range(n_steps):
        gW, gb = (g.astype(dtype) for g in grads[k])
        for group in opt_t.param_groups:
            group["lr"] = float(lrs[k])
        tW.grad, tb.grad = torch.tensor(gW), torch.tensor(gb)
        opt_t.step()
        opt_r.step(
            [W, b],
            [gW.astype(np.float64), gb.astype(np.float64)],
            lr=lrs[k],
            decay_mask=[True, False],
        )
        got = np.concatenate([tW.detach().numpy().ravel(), tb.detach().numpy().ravel()])
        want = np.concatenate([W.ravel(), b.ravel()])
        worst = max(
            worst, float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-3)))
        )
        if dtype == "float64":
            np.testing.assert_allclose(
                got, want, rtol=1e-12, atol=1e-15, err_msg=f"{case} step {k + 1}"
            )
        else:
            np.testing.assert_allclose(
                got, want, rtol=1e-5, atol=1e-6, err_msg=f"{case} step {k + 1}"
            )
    print(f"{case} {dtype}: max rel diff vs torch over {n_steps} steps = {worst:.3e}")


def _torch_objective(
    torch, params, X, y, activation, loss, sample_weight, alpha, l1_ratio
):
    F = torch.nn.functional
    n_layers = len(params) // 2
    coefs, ints = params[:n_layers], params[n_layers:]
    act = {
        "identity": lambda z: z,
        "logistic": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": torch.nn.functional.leaky_relu,
        "elu": torch.nn.functional.elu,
        "selu": torch.nn.functional.selu,
        "softplus": torch.nn.functional.softplus,
        "gelu": torch.nn.functional.gelu,
        "gelu_tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh"),
        "silu": torch.nn.functional.silu,
        "mish": torch.nn.functional.mish,
    }[activation]
    a = torch.tensor(X)
    for i in range(n_layers):
        z = a @ coefs[i] + ints[i]
        a = act(z) if i < n_layers - 1 else z
    Z = a
    if loss == "softmax_cross_entropy":
        li = F.cross_entropy(Z, torch.tensor(y), reduction="none")
    else:
        Y = torch.tensor(y)
        if loss == "sigmoid_log_loss":
            li = F.binary_cross_entropy_with_logits(Z, Y, reduction="none").sum(1)
        elif loss == "squared_error":
            li = 0.5 * ((Z - Y) ** 2).sum(1)
        elif loss == "absolute_error":
            li = (Z - Y).abs().sum(1)
        elif loss == "huber":
            li = F.huber_loss(Z, Y, reduction="none", delta=1.0).sum(1)
        elif loss == "quantile":  # the pinball loss of ref.quantile's default tau
            U = Y - Z
            li = torch.maximum(0.5 * U, -0.5 * U).sum(1)
        else:  # poisson, torch's "full=False" NLL plus the constant xlogy(y, y) - y
            li = (
                F.poisson_nll_loss(Z, Y, log_input=True, full=False, reduction="none")
                + torch.xlogy(Y, Y)
                - Y
            ).sum(1)
    s = (
        torch.ones(X.shape[0], dtype=torch.float64)
        if sample_weight is None
        else torch.tensor(sample_weight)
    )
    sw_sum = s.sum()
    pen = sum(
        alpha * ((1 - l1_ratio) * 0.5 * (W**2).sum() + l1_ratio * W.abs().sum())
        for W in coefs
    )
    return (s * li).sum() / sw_sum + pen / sw_sum


@pytest.mark.parametrize("activation", ref.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_backprop_matches_torch_autograd(loss, activation):
    torch = pytest.importorskip("torch")
    rng, coefs, ints, X, y = _problem(loss, seed=11, n=10)
    sw = rng.uniform(0.2, 2.0, X.shape[0])
    value, cg, ig = ref.backprop(
        coefs, ints, X, y, activation, loss, sample_weight=sw, alpha=0.1, l1_ratio=0.3
    )
    params = [torch.tensor(p, requires_grad=True) for p in coefs + ints]
    obj = _torch_objective(torch, params, X, y, activation, loss, sw, 0.1, 0.3)
    obj.backward()
    assert np.isclose(value, obj.item(), rtol=1e-12)
    for mine, p in zip(cg + ig, params):
        np.testing.assert_allclose(mine, p.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "loss,optimizer",
    [
        ("softmax_cross_entropy", "sgd-nesterov"),
        ("sigmoid_log_loss", "rmsprop-centered-momentum"),
        ("squared_error", "adamw-amsgrad"),
        ("huber", "adagrad"),
        ("poisson", "adam"),
    ],
)
def test_train_full_batch_matches_torch(loss, optimizer):
    torch = pytest.importorskip("torch")
    rng, coefs, ints, X, y = _problem(loss, seed=12, n=16)
    lrs = list(0.02 * (1.0 + 0.5 * np.cos(np.arange(15))))
    make_ref, make_torch = OPTIMIZER_CASES[optimizer]
    c, i, losses = ref.train_full_batch(
        coefs, ints, X, y, "tanh", loss, make_ref(), lrs, alpha=0.05, l1_ratio=0.2
    )
    params = [torch.tensor(p, requires_grad=True) for p in coefs + ints]
    opt = make_torch(
        torch,
        [
            {"params": params[: len(coefs)]},
            {"params": params[len(coefs) :], "weight_decay": 0.0},
        ],
    )
    t_losses = []
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        obj = _torch_objective(torch, params, X, y, "tanh", loss, None, 0.05, 0.2)
        obj.backward()
        t_losses.append(obj.item())
        opt.step()
    np.testing.assert_allclose(losses, t_losses, rtol=1e-10)
    for mine, p in zip(c + i, params):
        np.testing.assert_allclose(mine, p.detach().numpy(), rtol=1e-9, atol=1e-12)
