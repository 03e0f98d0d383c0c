"""Optimizers: small hyperparameter objects over compiled in-place update kernels.

Each class holds the hyperparameters of one ``torch.optim`` update rule and is a
scikit-learn estimator for parameter handling, so ``clone`` and ``GridSearchCV``
reach into it (``optimizer__beta_1``). The learning rate stays on the estimator
(``learning_rate_init``) and the schedule. The update itself runs in the engine
(``fastfit._engine._optim``), one fused pass over every parameter per step.

Regularisation is not an optimizer hyperparameter: the estimator's ``alpha``
(L2 / L1 penalty, coupled: added to the gradient of the weights) applies with any
rule; ``AdamW`` adds its own decoupled ``weight_decay``. Neither touches biases.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator

from fastfit._engine import _optim

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "resolve_optimizer",
           "OPTIMIZER_NAMES"]


def _check_range(name, value, low, high, low_closed=True, high_closed=True):
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    ok_low = value >= low if low_closed else value > low
    ok_high = value <= high if high_closed else value < high
    if not (ok_low and ok_high) or not np.isfinite(value):
        lb = "[" if low_closed else "("
        rb = "]" if high_closed else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value!r}")


class Optimizer(BaseEstimator):
    """Base class: state allocation, validation and the kernel call."""

    _kind = None

    @property
    def _engine_kind(self):
        """The engine's id of this update rule."""
        return _optim.OPTIMIZER_KINDS[self._kind]

    def _validate(self):
        """Raise ValueError/TypeError for out-of-range hyperparameters."""

    def _hyper(self):
        """The rule's hyperparameters in the order the kernel reads them."""
        raise NotImplementedError

    def _init_state(self, n_params, dtype):
        """Fresh optimizer state: an array of shape (n_state, n_params)."""
        self._validate()
        return np.zeros((_optim.STATE_BUFFERS[self._engine_kind], n_params),
                        dtype=dtype)

    def _step(self, params, grads, state, *, lr, t, n_weights, l2=0.0, l1=0.0,
              gscale=1.0, n_threads=1):
        """One in-place update of ``params`` and ``state`` (for tests and tools).

        Parameters
        ----------
        params : ndarray of shape (n,), C-contiguous float32 or float64
            ``params[:n_weights]`` are weights, the rest biases.
        grads : ndarray of shape (n,), same dtype; not modified.
        state : ndarray from ``_init_state``.
        lr : float
        t : int, the 1-based step number since the state was created.
        n_weights : int
        l2, l1 : float, coupled penalty on weights: ``g += l2 * w + l1 * sign(w)``.
        gscale : float, gradient scaling (norm clipping).
        n_threads : int

        Returns
        -------
        penalty : float, ``l2/2 ||w||^2 + l1 ||w||_1`` before the update.
        """
        params = np.asarray(params)
        if (params.ndim != 1 or not params.flags.c_contiguous
                or params.dtype not in (np.float32, np.float64)):
            raise ValueError("params must be a 1-D C-contiguous float32/float64 array")
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError("grads must match params in shape and dtype")
        if state.shape != (state.shape[0], params.shape[0]) or state.dtype != params.dtype:
            raise ValueError("state does not match params")
        if not 0 <= n_weights <= params.shape[0]:
            raise ValueError("n_weights out of range")
        if t < 1:
            raise ValueError("t is 1-based")
        return _optim.optimizer_step_py(
            self._engine_kind, params, np.ascontiguousarray(grads), state,
            np.asarray(self._hyper(), dtype=np.float64), float(lr), int(t),
            int(n_weights), float(l2), float(l1), float(gscale), int(n_threads))


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    PyTorch's ``torch.optim.SGD`` rule, with ``g`` the gradient of step ``t``::

        b_t = g                                     if t == 1
        b_t = momentum * b_{t-1} + (1 - dampening) * g    otherwise
        g   = g + momentum * b_t  if nesterov  else  b_t   (when momentum != 0)
        p   = p - lr * g

    With ``batch_size='full'`` on the estimator this is plain gradient descent.

    Parameters
    ----------
    momentum : float, default=0.0
        Momentum factor in [0, 1).
    dampening : float, default=0.0
        Dampening of the momentum, in [0, 1].
    nesterov : bool, default=False
        Nesterov momentum (needs momentum > 0 and dampening == 0).
    """

    _kind = "sgd"

    def __init__(self, momentum=0.0, dampening=0.0, nesterov=False):
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def _validate(self):
        _check_range("momentum", self.momentum, 0.0, 1.0, high_closed=False)
        _check_range("dampening", self.dampening, 0.0, 1.0)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0")

    def _hyper(self):
        return [self.momentum, self.dampening, float(bool(self.nesterov))]


class Adagrad(Optimizer):
    r"""Adagrad: per-parameter steps scaled by the accumulated squared gradients.

    PyTorch's ``torch.optim.Adagrad`` rule (``lr_decay=0``)::

        s = s + g^2                       (s starts at initial_accumulator_value)
        p = p - lr * g / (sqrt(s) + epsilon)

    Parameters
    ----------
    epsilon : float, default=1e-10
    initial_accumulator_value : float, default=0.0
    """

    _kind = "adagrad"

    def __init__(self, epsilon=1e-10, initial_accumulator_value=0.0):
        self.epsilon = epsilon
        self.initial_accumulator_value = initial_accumulator_value

    def _validate(self):
        _check_range("epsilon", self.epsilon, 0.0, np.inf, low_closed=False,
                     high_closed=False)
        _check_range("initial_accumulator_value", self.initial_accumulator_value,
                     0.0, np.inf, high_closed=False)

    def _hyper(self):
        return [self.epsilon, self.initial_accumulator_value]

    def _init_state(self, n_params, dtype):
        state = super()._init_state(n_params, dtype)
        state[0] = self.initial_accumulator_value
        return state


class RMSprop(Optimizer):
    r"""RMSprop: steps scaled by a running mean of squared gradients.

    PyTorch's ``torch.optim.RMSprop`` rule (its ``alpha`` is ``rho`` here)::

        v = rho * v + (1 - rho) * g^2
        centered:  g_avg = rho * g_avg + (1 - rho) * g;  a = sqrt(v - g_avg^2) + epsilon
        otherwise: a = sqrt(v) + epsilon
        momentum > 0:  buf = momentum * buf + g / a;  p = p - lr * buf
        otherwise:     p = p - lr * g / a

    Parameters
    ----------
    rho : float, default=0.99
        Smoothing constant in [0, 1).
    epsilon : float, default=1e-8
        Added outside the square root.
    momentum : float, default=0.0
    centered : bool, default=False
        Normalise by the estimated variance of the gradient.
    """

    _kind = "rmsprop"

    def __init__(self, rho=0.99, epsilon=1e-8, momentum=0.0, centered=False):
        self.rho = rho
        self.epsilon = epsilon
        self.momentum = momentum
        self.centered = centered

    def _validate(self):
        _check_range("rho", self.rho, 0.0, 1.0, high_closed=False)
        _check_range("epsilon", self.epsilon, 0.0, np.inf, low_closed=False,
                     high_closed=False)
        _check_range("momentum", self.momentum, 0.0, 1.0, high_closed=False)

    def _hyper(self):
        return [self.rho, self.epsilon, self.momentum, float(bool(self.centered))]


class Adam(Optimizer):
    r"""Adam, with optional AMSGrad.

    PyTorch's ``torch.optim.Adam`` rule (no weight decay: use the estimator's
    ``alpha``, or ``AdamW``)::

        m = m + (1 - beta_1) * (g - m)
        v = beta_2 * v + (1 - beta_2) * g^2
        v_max = max(v_max, v)                                     (amsgrad)
        denom = sqrt(v, or v_max) / sqrt(1 - beta_2^t) + epsilon
        p = p - lr / (1 - beta_1^t) * m / denom

    i.e. ``m_hat / (sqrt(v_hat) + epsilon)`` with the bias-corrected moments.

    Parameters
    ----------
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    amsgrad : bool, default=False
    """

    _kind = "adam"

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _validate(self):
        _check_range("beta_1", self.beta_1, 0.0, 1.0, high_closed=False)
        _check_range("beta_2", self.beta_2, 0.0, 1.0, high_closed=False)
        _check_range("epsilon", self.epsilon, 0.0, np.inf, low_closed=False,
                     high_closed=False)

    def _hyper(self):
        return [self.beta_1, self.beta_2, self.epsilon, float(bool(self.amsgrad)), 0.0]


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter).

    PyTorch's ``torch.optim.AdamW`` rule: before the Adam step, weights (not
    biases) shrink as ``p = p * (1 - lr * weight_decay)``; then the Adam update
    of :class:`Adam` with the gradient taken at the old weights.

    Parameters
    ----------
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    weight_decay : float, default=0.01
    amsgrad : bool, default=False
    """

    _kind = "adamw"

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01,
                 amsgrad=False):
        super().__init__(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad)
        self.weight_decay = weight_decay

    def _validate(self):
        super()._validate()
        _check_range("weight_decay", self.weight_decay, 0.0, np.inf, high_closed=False)

    def _hyper(self):
        return [self.beta_1, self.beta_2, self.epsilon, float(bool(self.amsgrad)),
                self.weight_decay]


OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
                   "adamw")


def resolve_optimizer(optimizer, *, momentum=0.9, nesterovs_momentum=True,
                      beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """An Optimizer from an instance (returned as is) or a name.

    Names take their hyperparameters from the keyword arguments, which are
    scikit-learn's MLP parameters with its defaults, so that ``'sgd'`` means
    what scikit-learn's ``solver='sgd'`` means (momentum 0.9, Nesterov):

    ============  ==================================================
    name          optimizer
    ============  ==================================================
    'sgd'         ``SGD(momentum, nesterov=nesterovs_momentum)``
    'momentum'    ``SGD(momentum)`` (heavy ball)
    'nesterov'    ``SGD(momentum, nesterov=True)``
    'adagrad'     ``Adagrad()``
    'rmsprop'     ``RMSprop()``
    'adam'        ``Adam(beta_1, beta_2, epsilon)``
    'adamw'       ``AdamW(beta_1, beta_2, epsilon)``
    ============  ==================================================

    Plain SGD without momentum is ``SGD()`` or ``'sgd'`` with ``momentum=0``.
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(
            f"optimizer must be a name in {list(OPTIMIZER_NAMES)} or an Optimizer "
            f"instance, got {type(optimizer).__name__}")
    if optimizer == "sgd":
        return SGD(momentum=momentum, nesterov=bool(nesterovs_momentum) and momentum > 0)
    if optimizer == "momentum":
        return SGD(momentum=momentum)
    if optimizer == "nesterov":
        return SGD(momentum=momentum, nesterov=True)
    if optimizer == "adagrad":
        return Adagrad()
    if optimizer == "rmsprop":
        return RMSprop()
    if optimizer == "adam":
        return Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    if optimizer == "adamw":
        return AdamW(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    raise ValueError(
        f"optimizer must be one of {list(OPTIMIZER_NAMES)} or an Optimizer "
        f"instance, got {optimizer!r}")
