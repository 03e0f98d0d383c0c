"""Plain NumPy reference implementations: the test oracles of fastfit.

Everything here is deliberately simple, float64 and independent of fastfit (no
fastfit import), so that the compiled engine can be checked against it:

- activations and their derivatives (derivatives from the activation *output*,
  as scikit-learn's MLP writes them);
- :func:`forward` over a dense network;
- the losses, each returning the objective value and its gradient with respect to
  the raw output ``Z`` (the last pre-activation), with optional sample weights;
- :func:`penalty` (elastic-net on the weights, scikit-learn's MLP scaling);
- :func:`backprop` (loss incl. penalty, and the gradients of every parameter);
- the optimizers, NumPy transcriptions of PyTorch's ``torch.optim`` single-tensor
  update rules (``foreach=False``, ``fused=False``, ``capturable=False``,
  ``differentiable=False``, ``maximize=False``), operation by operation;
- :func:`train_full_batch`: K epochs of full-batch training;
- :func:`flatten` / :func:`unflatten`: the flat parameter layout of the engine
  (all weights layer by layer in C order, then all biases).

Conventions
-----------
``coefs[i]`` has shape ``(fan_in, fan_out)`` and ``intercepts[i]`` shape
``(fan_out,)``, as scikit-learn's ``coefs_`` / ``intercepts_``.  With sample weights
``s`` the data objective is ``sum_i s_i * loss_i / sum_i s_i``; without, ``s_i = 1``
(so the objective is the mean over the samples).  The penalty is divided by the same
``sw_sum = sum_i s_i`` (the number of samples when unweighted), as scikit-learn does.
"""

import numpy as np

# ---------------------------------------------------------------------------
# Activations (hidden layers and output) and derivatives
# ---------------------------------------------------------------------------


def identity(z):
    """Identity activation: ``a = z``."""
    return np.array(z, dtype=np.float64, copy=True)


def logistic(z):
    """Logistic sigmoid ``a = 1 / (1 + exp(-z))``, stable for large ``|z|``."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def tanh(z):
    """Hyperbolic tangent activation."""
    return np.tanh(np.asarray(z, dtype=np.float64))


def relu(z):
    """Rectified linear unit ``a = max(z, 0)``."""
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


def leaky_relu(z, slope=0.01):
    """Leaky ReLU ``a = z if z > 0 else slope * z`` (PyTorch's slope)."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z > 0, z, slope * z)


def elu(z):
    """ELU ``a = z if z > 0 else exp(z) - 1``."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772


def selu(z):
    """SELU ``a = scale * elu_alpha(z)`` with PyTorch's constants."""
    z = np.asarray(z, dtype=np.float64)
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def softplus(z):
    """Softplus ``a = log(1 + exp(z))``, stable for large ``|z|``."""
    z = np.asarray(z, dtype=np.float64)
    return np.logaddexp(0.0, z)


def _normal_cdf(z):
    from scipy.special import ndtr

    return ndtr(z)


def gelu(z):
    """GELU ``a = z Phi(z)``, Phi the standard normal CDF (PyTorch's default)."""
    z = np.asarray(z, dtype=np.float64)
    return z * _normal_cdf(z)


GELU_K, GELU_C = np.sqrt(2.0 / np.pi), 0.044715


def gelu_tanh(z):
    """GELU's tanh approximation ``a = z (1 + tanh(k (z + 0.044715 z^3))) / 2``."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * z * (1.0 + np.tanh(GELU_K * (z + GELU_C * z**3)))


def silu(z):
    """SiLU (swish) ``a = z sigmoid(z)``."""
    z = np.asarray(z, dtype=np.float64)
    return z * logistic(z)


def mish(z):
    """Mish ``a = z tanh(softplus(z))``."""
    z = np.asarray(z, dtype=np.float64)
    return z * np.tanh(softplus(z))


def softmax(z):
    """Row-wise softmax, shifted by the row maximum for stability."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def exp(z):
    """Exponential output activation (inverse of the log link, Poisson)."""
    return np.exp(np.asarray(z, dtype=np.float64))


def identity_derivative(a):
    """d identity / dz expressed from the output ``a``: ones."""
    return np.ones_like(a)


def logistic_derivative(a):
    """d logistic / dz from the output: ``a * (1 - a)``."""
    return a * (1.0 - a)


def tanh_derivative(a):
    """d tanh / dz from the output: ``1 - a**2``."""
    return 1.0 - a**2


def relu_derivative(a):
    """d relu / dz from the output: ``1`` where ``a > 0`` else ``0`` (0 at the kink)."""
    return (a > 0).astype(np.float64)


def leaky_relu_derivative(a, slope=0.01):
    """From the output: ``1`` where ``a > 0`` else ``slope``."""
    return np.where(a > 0, 1.0, slope)


def elu_derivative(a):
    """From the output: ``1`` where ``a > 0`` else ``exp(z) = a + 1``."""
    return np.where(a > 0, 1.0, a + 1.0)


def selu_derivative(a):
    """From the output: ``scale`` where ``a > 0`` else ``scale * alpha * exp(z)``."""
    return np.where(a > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA)


def softplus_derivative(a):
    """From the output: ``sigmoid(z) = 1 - exp(-a)``."""
    return -np.expm1(-a)


def gelu_derivative_z(z):
    """d gelu / dz from the pre-activation: ``Phi(z) + z phi(z)``."""
    return _normal_cdf(z) + z * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def gelu_tanh_derivative_z(z):
    """d gelu_tanh / dz from the pre-activation."""
    t = np.tanh(GELU_K * (z + GELU_C * z**3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_K * (
        1.0 + 3 * GELU_C * z * z
    )


def silu_derivative_z(z):
    """d silu / dz: ``s (1 + z (1 - s))``, s = sigmoid(z)."""
    s = logistic(z)
    return s * (1.0 + z * (1.0 - s))


def mish_derivative_z(z):
    """d mish / dz: ``t + z sigmoid(z) (1 - t^2)``, t = tanh(softplus(z))."""
    t = np.tanh(softplus(z))
    return t + z * logistic(z) * (1.0 - t * t)


ACTIVATIONS = {
    "identity": identity,
    "logistic": logistic,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "softplus": softplus,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "silu": silu,
    "mish": mish,
    "softmax": softmax,
    "exp": exp,
}

DERIVATIVES = {
    "identity": identity_derivative,
    "logistic": logistic_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
    "elu": elu_derivative,
    "selu": selu_derivative,
    "softplus": softplus_derivative,
}

# activations whose derivative needs the pre-activation z (not monotonic)
DERIVATIVES_Z = {
    "gelu": gelu_derivative_z,
    "gelu_tanh": gelu_tanh_derivative_z,
    "silu": silu_derivative_z,
    "mish": mish_derivative_z,
}

HIDDEN_ACTIVATIONS = (
    "identity",
    "logistic",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "softplus",
    "gelu",
    "gelu_tanh",
    "silu",
    "mish",
)
OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")


# ---------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------


def hidden_activations(activation, n_hidden):
    """One activation name per hidden layer, from a name or a sequence."""
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(names) != n_hidden:
        raise ValueError(f"{len(names)} activations for {n_hidden} hidden layers")
    for name in names:
        if name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown hidden activation {name!r}")
    return names


def _apply(name, z, slope):
    return leaky_relu(z, slope) if name == "leaky_relu" else ACTIVATIONS[name](z)


def _forward_raw(
    coefs, intercepts, X, activation, out_activation, slope=0.01, masks=None
):
    """Return (activations, Z, pre): activations as :func:`forward`, Z the raw
    output, pre the pre-activation of every layer.

    ``masks``: None, or one (keep mask, keep probability) pair (or None) per
    hidden layer: inverted dropout on its output.
    """
    if out_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"unknown output activation {out_activation!r}")
    n_layers = len(coefs)
    names = hidden_activations(activation, n_layers - 1) + [out_activation]
    masks = [None] * n_layers if masks is None else list(masks) + [None]
    a = np.asarray(X, dtype=np.float64)
    activations, pre = [a], []
    z = None
    for W, b, name, mask in zip(coefs, intercepts, names, masks):
        z = a @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        pre.append(z)
        a = _apply(name, z, slope)
        if mask is not None:
            keep_mask, keep = mask
            a = np.where(keep_mask, a / keep, 0.0)
        activations.append(a)
    return activations, z, pre


def forward(coefs, intercepts, X, activation, out_activation):
    """Forward pass of a dense network.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        ``coefs[i]`` of shape (fan_in, fan_out), ``intercepts[i]`` of shape (fan_out,).
    X : ndarray of shape (n_samples, n_features)
    activation : str or list of str
        Activation of every hidden layer (``HIDDEN_ACTIVATIONS``), or one per
        hidden layer.
    out_activation : {"identity", "logistic", "softmax", "exp"}
        Activation of the output layer.

    Returns
    -------
    activations : list of ndarray
        ``[X, h_1, ..., h_{L-1}, output]`` (length ``len(coefs) + 1``), as in
        scikit-learn's ``MLP._forward_pass``.
    """
    return _forward_raw(coefs, intercepts, X, activation, out_activation)[0]


# ---------------------------------------------------------------------------
# Losses: value and gradient w.r.t. the raw output Z
# ---------------------------------------------------------------------------


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    s = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if s.shape[0] != n:
        raise ValueError("sample_weight has the wrong length")
    return s


def _reduce(loss_i, dloss_i, sample_weight):
    """Weighted mean of per-sample losses and the matching gradient."""
    n = loss_i.shape[0]
    s = _weights(sample_weight, n)
    sw_sum = s.sum()
    value = float(np.sum(s * loss_i) / sw_sum)
    grad = dloss_i * (s / sw_sum)[:, None]
    return value, grad


def _as_matrix(Y, Z):
    return np.asarray(Y, dtype=np.float64).reshape(Z.shape)


def softmax_cross_entropy(Z, y_idx, *, sample_weight=None):
    """Softmax cross-entropy (multinomial log loss).

    ``loss_i = logsumexp(Z_i) - Z_i[y_i]``; ``dloss_i/dZ_i = softmax(Z_i) - onehot(y_i)``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes), raw output.
    y_idx : ndarray of shape (n_samples,), integer class indices.
    sample_weight : ndarray of shape (n_samples,), optional.

    Returns
    -------
    value : float, ``sum_i s_i loss_i / sum_i s_i``.
    grad : ndarray like Z, gradient of ``value`` w.r.t. Z.
    """
    Z = np.asarray(Z, dtype=np.float64)
    y_idx = np.asarray(y_idx).astype(np.intp).reshape(-1)
    n = Z.shape[0]
    m = Z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]
    loss_i = lse - Z[np.arange(n), y_idx]
    d = softmax(Z)
    d[np.arange(n), y_idx] -= 1.0
    return _reduce(loss_i, d, sample_weight)


def sigmoid_log_loss(Z, Y, *, sample_weight=None):
    """Sigmoid (binary / multilabel) log loss, summed over the K columns.

    ``loss_i = sum_k [log(1 + exp(-|z|)) + max(z, 0) - y z]``;
    ``dloss_i/dz = sigmoid(z) - y``.  ``Y`` is a 0/1 matrix (n, K) (K = 1 for binary).
    """
    Z = np.asarray(Z, dtype=np.float64)
    Y = _as_matrix(Y, Z)
    loss_i = (np.log1p(np.exp(-np.abs(Z))) + np.maximum(Z, 0.0) - Y * Z).sum(axis=1)
    return _reduce(loss_i, logistic(Z) - Y, sample_weight)


def squared_error(Z, Y, *, sample_weight=None):
    """Half squared error: ``loss_i = 0.5 * sum_k (z - y)^2``; gradient ``z - y``."""
    Z = np.asarray(Z, dtype=np.float64)
    R = Z - _as_matrix(Y, Z)
    return _reduce(0.5 * (R**2).sum(axis=1), R, sample_weight)


def absolute_error(Z, Y, *, sample_weight=None):
    """Absolute error: ``loss_i = sum_k |z - y|``; subgradient ``sign(z - y)`` (0 at 0)."""
    Z = np.asarray(Z, dtype=np.float64)
    R = Z - _as_matrix(Y, Z)
    return _reduce(np.abs(R).sum(axis=1), np.sign(R), sample_weight)


def huber(Z, Y, delta=1.0, *, sample_weight=None):
    """Huber loss with threshold ``delta``, ``r = z - y``.

    ``loss_i = sum_k (0.5 r^2 if |r| <= delta else delta * (|r| - delta / 2))``;
    gradient ``r if |r| <= delta else delta * sign(r)``.
    """
    Z = np.asarray(Z, dtype=np.float64)
    R = Z - _as_matrix(Y, Z)
    small = np.abs(R) <= delta
    loss = np.where(small, 0.5 * R**2, delta * (np.abs(R) - 0.5 * delta))
    grad = np.where(small, R, delta * np.sign(R))
    return _reduce(loss.sum(axis=1), grad, sample_weight)


def _xlogy(x, y):
    """``x * log(y)`` with ``0 * log(0) = 0`` (as scipy.special.xlogy)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(y)
    return np.where(x == 0, 0.0, out)


def poisson(Z, Y, *, sample_weight=None):
    """Half Poisson deviance with log link (prediction ``mu = exp(z)``).

    ``loss_i = sum_k [xlogy(y, y) - y - y z + exp(z)]``; gradient ``exp(z) - y``.
    The constant ``xlogy(y, y) - y`` makes the loss 0 at ``mu = y`` (as
    ``sklearn._loss.HalfPoissonLoss`` with its constant term).
    """
    Z = np.asarray(Z, dtype=np.float64)
    Y = _as_matrix(Y, Z)
    eZ = np.exp(Z)
    loss_i = (_xlogy(Y, Y) - Y - Y * Z + eZ).sum(axis=1)
    return _reduce(loss_i, eZ - Y, sample_weight)


def quantile(Z, Y, quantile=0.5, *, sample_weight=None):
    """Pinball loss of the quantile ``tau`` (one value, or one per column).

    ``loss_i = sum_k max(tau_k u, (tau_k - 1) u)`` with ``u = y - z``; gradient
    ``-tau_k`` where ``u > 0``, ``1 - tau_k`` where ``u < 0`` and 0 at ``u = 0``
    (for one column, scikit-learn's ``mean_pinball_loss`` with ``alpha=tau``).
    """
    Z = np.asarray(Z, dtype=np.float64)
    U = _as_matrix(Y, Z) - Z
    tau = np.broadcast_to(np.asarray(quantile, dtype=np.float64), Z.shape[1:])
    loss = np.maximum(tau * U, (tau - 1.0) * U)
    grad = np.where(U > 0, -tau, np.where(U < 0, 1.0 - tau, 0.0))
    return _reduce(loss.sum(axis=1), grad, sample_weight)


#: loss name -> (function, output activation implied by the loss)
LOSSES = {
    "softmax_cross_entropy": (softmax_cross_entropy, "softmax"),
    "sigmoid_log_loss": (sigmoid_log_loss, "logistic"),
    "squared_error": (squared_error, "identity"),
    "absolute_error": (absolute_error, "identity"),
    "huber": (huber, "identity"),
    "poisson": (poisson, "exp"),
    "quantile": (quantile, "identity"),
}


# ---------------------------------------------------------------------------
# Penalty and backprop
# ---------------------------------------------------------------------------


def penalty(coefs, alpha, l1_ratio, sw_sum):
    """Elastic-net penalty on the weights (never the intercepts).

    ``value = alpha * ((1 - l1_ratio) * 0.5 * sum ||W||^2 + l1_ratio * sum |W|) / sw_sum``;
    ``grad_W = alpha * ((1 - l1_ratio) * W + l1_ratio * sign(W)) / sw_sum``.

    Returns
    -------
    value : float
    grads : list of ndarray, one per ``coefs[i]``.
    """
    coefs = [np.asarray(W, dtype=np.float64) for W in coefs]
    l2 = alpha * (1.0 - l1_ratio)
    l1 = alpha * l1_ratio
    value = sum(l2 * 0.5 * np.sum(W * W) + l1 * np.sum(np.abs(W)) for W in coefs)
    grads = [(l2 * W + l1 * np.sign(W)) / sw_sum for W in coefs]
    return float(value / sw_sum), grads


def backprop(
    coefs,
    intercepts,
    X,
    y,
    activation,
    loss,
    sample_weight=None,
    alpha=0.0,
    l1_ratio=0.0,
    slope=0.01,
    masks=None,
):
    """Loss (penalty included) and gradients of every parameter.

    The output activation is implied by ``loss`` (see :data:`LOSSES`):
    softmax cross-entropy -> softmax, sigmoid log loss -> logistic,
    squared / absolute / huber / quantile -> identity, poisson -> exp.  ``y`` is the class
    index vector for softmax cross-entropy, else a (n, K) matrix (or vector for K=1).
    ``activation``: a name or one per hidden layer; ``slope``: leaky_relu's;
    ``masks``: dropout, as in :func:`_forward_raw`.

    Returns
    -------
    value : float
        Data objective plus :func:`penalty`.
    coef_grads, intercept_grads : list of ndarray
        Gradients of ``value`` w.r.t. ``coefs`` and ``intercepts``.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}")
    loss_fn, out_activation = LOSSES[loss]
    X = np.asarray(X, dtype=np.float64)
    coefs = [np.asarray(W, dtype=np.float64) for W in coefs]
    activations, Z, pre = _forward_raw(
        coefs, intercepts, X, activation, out_activation, slope, masks
    )
    value, delta = loss_fn(Z, y, sample_weight=sample_weight)
    sw_sum = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    pen_value, pen_grads = penalty(coefs, alpha, l1_ratio, sw_sum)

    n_layers = len(coefs)
    coef_grads = [None] * n_layers
    intercept_grads = [None] * n_layers
    names = hidden_activations(activation, n_layers - 1)
    masks = [None] * (n_layers - 1) if masks is None else list(masks)
    for i in range(n_layers - 1, -1, -1):
        coef_grads[i] = activations[i].T @ delta + pen_grads[i]
        intercept_grads[i] = delta.sum(axis=0)
        if i > 0:
            name, mask, z = names[i - 1], masks[i - 1], pre[i - 1]
            if name in DERIVATIVES_Z:
                deriv = DERIVATIVES_Z[name](z)
            elif name == "leaky_relu":
                deriv = np.where(z > 0, 1.0, slope)
            else:
                deriv = DERIVATIVES[name](_apply(name, z, slope))
            if mask is not None:
                keep_mask, keep = mask
                deriv = np.where(keep_mask, deriv / keep, 0.0)
            delta = (delta @ coefs[i].T) * deriv
    return value + pen_value, coef_grads, intercept_grads


# ---------------------------------------------------------------------------
# Flat parameter layout
# ---------------------------------------------------------------------------


def flatten(coefs, intercepts):
    """Pack parameters as the engine does: every W (C order, layer by layer), then every b.

    Returns ``(flat, n_weights)``; ``flat[:n_weights]`` are the weights.
    """
    ws = [np.ravel(np.asarray(W, dtype=np.float64)) for W in coefs]
    bs = [np.ravel(np.asarray(b, dtype=np.float64)) for b in intercepts]
    n_weights = sum(w.size for w in ws)
    return np.concatenate(ws + bs), n_weights


def unflatten(flat, layer_sizes):
    """Inverse of :func:`flatten`; ``layer_sizes = [n_in, h_1, ..., n_out]``."""
    coefs, intercepts, pos = [], [], 0
    for fi, fo in zip(layer_sizes[:-1], layer_sizes[1:]):
        coefs.append(np.array(flat[pos : pos + fi * fo]).reshape(fi, fo))
        pos += fi * fo
    for fo in layer_sizes[1:]:
        intercepts.append(np.array(flat[pos : pos + fo]))
        pos += fo
    if pos != len(flat):
        raise ValueError("flat buffer does not match layer_sizes")
    return coefs, intercepts


# ---------------------------------------------------------------------------
# Optimizers: PyTorch's single-tensor update rules
# ---------------------------------------------------------------------------


def lerp(start, end, weight):
    """``torch.lerp`` as ATen's scalar kernel computes it.

    ``start + weight * (end - start)`` if ``|weight| < 0.5`` else
    ``end - (end - start) * (1 - weight)``.  Both equal
    ``(1 - weight) * start + weight * end`` in exact arithmetic.
    """
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


class _Optimizer:
    """Common driver: lazily created per-tensor state and the step counter ``t``.

    ``step(params, grads, lr=None, decay_mask=None)`` updates every array of the
    list ``params`` in place (``grads`` are read, never written); ``lr=None`` uses
    the constructor's ``lr``.  ``decay_mask`` is a list (one entry per param) of
    bools or boolean arrays; only decoupled weight decay (AdamW) reads it.
    ``self.t`` is the number of steps taken (1-based inside ``_update``).
    """

    def __init__(self, lr):
        self.lr = lr
        self.t = 0
        self.state = None

    def _init_state(self, p):  # pragma: no cover - overridden
        return {}

    def step(self, params, grads, lr=None, decay_mask=None):
        lr = self.lr if lr is None else float(lr)
        if len(params) != len(grads):
            raise ValueError("params and grads differ in length")
        if self.state is None:
            self.state = [self._init_state(p) for p in params]
        if decay_mask is None:
            decay_mask = [True] * len(params)
        self.t += 1
        for p, g, st, mask in zip(params, grads, self.state, decay_mask):
            self._update(p, np.asarray(g, dtype=p.dtype), st, lr, mask)


class SGD(_Optimizer):
    """``torch.optim.SGD`` (weight_decay=0), single tensor::

    if momentum != 0:
        if buf is None: buf = clone(g)                        # first step: no dampening
        else:           buf = buf * momentum + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p = p - lr * g
    """

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def _init_state(self, p):
        return {"buf": None}

    def _update(self, p, g, st, lr, mask):
        mu = self.momentum
        if mu != 0:
            if st["buf"] is None:
                st["buf"] = g.copy()
            else:
                st["buf"] *= mu
                st["buf"] += (1.0 - self.dampening) * g
            g = g + mu * st["buf"] if self.nesterov else st["buf"]
        p -= lr * g


class Adagrad(_Optimizer):
    """``torch.optim.Adagrad`` (lr_decay=0, weight_decay=0), single tensor::

    clr = lr / (1 + (t - 1) * lr_decay)        # = lr
    sum = sum + g * g                          # sum starts at initial_accumulator_value
    std = sqrt(sum) + eps
    p = p - clr * g / std
    """

    def __init__(self, lr=1e-2, eps=1e-10, initial_accumulator_value=0.0):
        super().__init__(lr)
        self.eps = eps
        self.initial_accumulator_value = initial_accumulator_value

    def _init_state(self, p):
        return {"sum": np.full_like(p, self.initial_accumulator_value)}

    def _update(self, p, g, st, lr, mask):
        clr = lr / (1 + (self.t - 1) * 0.0)
        st["sum"] += g * g
        std = np.sqrt(st["sum"]) + self.eps
        p -= clr * g / std


class RMSprop(_Optimizer):
    """``torch.optim.RMSprop`` (weight_decay=0), single tensor; ``alpha`` is fastfit's ``rho``::

    v = v * alpha + (1 - alpha) * g * g
    if centered:
        ga = lerp(ga, g, 1 - alpha)            # = alpha * ga + (1 - alpha) * g
        avg = sqrt(v - ga * ga) + eps
    else:
        avg = sqrt(v) + eps
    if momentum > 0:
        buf = buf * momentum + g / avg         # buf starts at zeros
        p = p - lr * buf
    else:
        p = p - lr * g / avg
    """

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
        super().__init__(lr)
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered

    def _init_state(self, p):
        return {"v": np.zeros_like(p), "ga": np.zeros_like(p), "buf": np.zeros_like(p)}

    def _update(self, p, g, st, lr, mask):
        a = self.alpha
        st["v"] *= a
        st["v"] += (1.0 - a) * g * g
        if self.centered:
            st["ga"][...] = lerp(st["ga"], g, 1.0 - a)
            avg = np.sqrt(st["v"] - st["ga"] * st["ga"]) + self.eps
        else:
            avg = np.sqrt(st["v"]) + self.eps
        if self.momentum > 0:
            st["buf"] *= self.momentum
            st["buf"] += g / avg
            p -= lr * st["buf"]
        else:
            p -= lr * g / avg


class Adam(_Optimizer):
    """``torch.optim.Adam`` (weight_decay=0), single tensor, non-capturable::

    m = lerp(m, g, 1 - beta_1)                 # = m + (1 - beta_1) * (g - m)
    v = v * beta_2 + (1 - beta_2) * g * g
    step_size = lr / (1 - beta_1 ** t)
    bc2_sqrt = (1 - beta_2 ** t) ** 0.5
    if amsgrad:
        vmax = maximum(vmax, v)
        denom = sqrt(vmax) / bc2_sqrt + eps
    else:
        denom = sqrt(v) / bc2_sqrt + eps
    p = p - step_size * m / denom
    """

    weight_decay = 0.0

    def __init__(self, lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-8, amsgrad=False):
        super().__init__(lr)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.eps = eps
        self.amsgrad = amsgrad

    def _init_state(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "vmax": np.zeros_like(p)}

    def _update(self, p, g, st, lr, mask):
        if self.weight_decay != 0:
            # decoupled decay (AdamW): p = p * (1 - lr * weight_decay), weights only
            p *= np.where(mask, 1.0 - lr * self.weight_decay, 1.0)
        b1, b2, t = self.beta_1, self.beta_2, self.t
        st["m"][...] = lerp(st["m"], g, 1.0 - b1)
        st["v"] *= b2
        st["v"] += (1.0 - b2) * g * g
        step_size = lr / (1.0 - b1**t)
        bc2_sqrt = (1.0 - b2**t) ** 0.5
        if self.amsgrad:
            np.maximum(st["vmax"], st["v"], out=st["vmax"])
            denom = np.sqrt(st["vmax"]) / bc2_sqrt + self.eps
        else:
            denom = np.sqrt(st["v"]) / bc2_sqrt + self.eps
        p -= step_size * st["m"] / denom


class AdamW(Adam):
    """``torch.optim.AdamW``, single tensor: decoupled decay, then :class:`Adam`::

    p = p * (1 - lr * weight_decay)            # only where decay_mask is True
    ... Adam update of p ...
    """

    def __init__(
        self,
        lr=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        eps=1e-8,
        weight_decay=0.01,
        amsgrad=False,
    ):
        super().__init__(lr, beta_1=beta_1, beta_2=beta_2, eps=eps, amsgrad=amsgrad)
        self.weight_decay = weight_decay


# ---------------------------------------------------------------------------
# Full-batch training
# ---------------------------------------------------------------------------


def train_full_batch(
    coefs,
    intercepts,
    X,
    y,
    activation,
    loss,
    optimizer,
    lrs,
    alpha=0.0,
    l1_ratio=0.0,
    sample_weight=None,
):
    """``len(lrs)`` epochs of full-batch training, one optimizer step per epoch.

    Epoch ``k`` computes :func:`backprop` (regularization coupled into the weight
    gradients, as scikit-learn's MLP) and then steps ``optimizer`` with ``lr = lrs[k]``;
    the decay mask marks the weights (not the intercepts) for AdamW.

    Returns
    -------
    coefs, intercepts : list of ndarray
        New arrays (the inputs are not modified).
    losses : list of float
        ``losses[k]`` is the objective (penalty included) before step ``k``.
    """
    coefs = [np.array(W, dtype=np.float64) for W in coefs]
    intercepts = [np.array(b, dtype=np.float64) for b in intercepts]
    decay_mask = [True] * len(coefs) + [False] * len(intercepts)
    losses = []
    for lr in lrs:
        value, cg, ig = backprop(
            coefs,
            intercepts,
            X,
            y,
            activation,
            loss,
            sample_weight=sample_weight,
            alpha=alpha,
            l1_ratio=l1_ratio,
        )
        losses.append(value)
        optimizer.step(coefs + intercepts, cg + ig, lr=lr, decay_mask=decay_mask)
    return coefs, intercepts, losses


__all__ = [
    "identity",
    "logistic",
    "tanh",
    "relu",
    "softmax",
    "exp",
    "identity_derivative",
    "logistic_derivative",
    "tanh_derivative",
    "relu_derivative",
    "ACTIVATIONS",
    "DERIVATIVES",
    "LOSSES",
    "forward",
    "softmax_cross_entropy",
    "sigmoid_log_loss",
    "squared_error",
    "absolute_error",
    "huber",
    "poisson",
    "quantile",
    "penalty",
    "backprop",
    "flatten",
    "unflatten",
    "lerp",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "train_full_batch",
]
