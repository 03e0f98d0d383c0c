"""Optimizers: small hyperparameter objects over compiled in-place update kernels.

Each class holds the hyperparameters of one ``torch.optim`` update rule and is a
scikit-learn estimator for parameter handling, so ``clone`` and ``GridSearchCV``
reach into it (``optimizer__beta_1``). Each class declares its valid values in
``_parameter_constraints`` and is checked by scikit-learn's ``_validate_params``
(plus the few rules that tie two parameters together). The learning rate stays
on the estimator (``learning_rate_init``) and the schedule. The update itself
runs in the engine (``fastfit._engine``), one fused pass over every
parameter per step.

The optimizers can also be named by a string; :func:`resolve_optimizer` maps the
names in :data:`OPTIMIZER_NAMES` to validated instances configured by
scikit-learn's MLP parameters.

Regularisation is not an optimizer hyperparameter: the estimator's ``alpha``
(L2 / L1 penalty, coupled: added to the gradient of the weights) applies with any
rule; ``AdamW`` adds its own decoupled ``weight_decay``. Neither touches biases.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints

from fastfit import _engine
from fastfit._params import NumberInterval, ValidatedOnce, document_names

__all__ = [
    "OPTIMIZER_NAMES",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "resolve_optimizer",
]

# Shared constraints: a coefficient of a running average, and a positive constant
# added to a denominator (0 would divide 0 by 0 for a never-updated parameter).
_UNIT = NumberInterval(Real, 0, 1, closed="left")
_POSITIVE = NumberInterval(Real, 0, None, closed="neither")
_NON_NEGATIVE = NumberInterval(Real, 0, None, closed="left")


class Optimizer(ValidatedOnce, BaseEstimator):
    """Base class: state allocation, validation and the kernel call.

    Subclasses store their hyperparameters in ``__init__`` unchanged, declare
    them in ``_parameter_constraints`` and implement :meth:`_hyper`. Rules that
    tie parameters together go in an override of ``_validate_params`` that
    calls ``super()._validate_params()`` first.
    """

    _kind = None
    _parameter_constraints: dict = {}

    @property
    def _engine_kind(self):
        """The engine's id of this update rule."""
        try:
            return _engine.OPTIMIZER_KINDS[self._kind]
        except (KeyError, TypeError):
            raise ValueError(
                f"{type(self).__name__}._kind is {self._kind!r}; the engine's "
                f"update rules are {sorted(_engine.OPTIMIZER_KINDS)}"
            ) from None

    def _hyper(self):
        """The rule's hyperparameters in the order the kernel reads them."""
        raise NotImplementedError

    def _state_shape(self, n_params):
        """The shape of the rule's state, (n_state, n_params): what
        :meth:`_init_state` allocates."""
        return (_engine.STATE_BUFFERS[self._engine_kind], n_params)

    def _init_state(self, n_params, dtype):
        """Fresh optimizer state: an array of shape (n_state, n_params).

        Validates the hyperparameters first, so no kernel runs on invalid ones.
        """
        self._validate_params()
        state = np.empty(self._state_shape(n_params), dtype)
        # written, not calloc'd: the update loops may read a buffer the rule's
        # options leave unused, and reading untouched pages (all mapped to the
        # kernel's one zero page) made RMSprop's pass 25x slower on AMD Zen
        state.fill(0)
        return state

    def _step(
        self,
        params,
        grads,
        state,
        *,
        lr,
        t,
        n_weights,
        l2=0.0,
        l1=0.0,
        gscale=1.0,
        n_threads=1,
    ):
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
        if (
            params.ndim != 1
            or not params.flags.c_contiguous
            or params.dtype not in (np.float32, np.float64)
        ):
            raise ValueError("params must be a 1-D C-contiguous float32/float64 array")
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError("grads must match params in shape and dtype")
        # the engine checks state, n_weights and t against the rule
        return _engine.optimizer_step_py(
            self._engine_kind,
            params,
            np.ascontiguousarray(grads),
            state,
            np.asarray(self._hyper(), dtype=np.float64),
            float(lr),
            int(t),
            int(n_weights),
            float(l2),
            float(l1),
            float(gscale),
            int(n_threads),
        )


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
    _parameter_constraints = {
        "momentum": [_UNIT],
        "dampening": [NumberInterval(Real, 0, 1, closed="both")],
        "nesterov": ["boolean"],
    }

    def __init__(self, momentum=0.0, dampening=0.0, nesterov=False):
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def _validate_params(self):
        super()._validate_params()
        # Nesterov's look-ahead is defined on an undamped momentum buffer
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "SGD: Nesterov momentum (nesterov=True) requires momentum > 0 and "
                "dampening == 0; got "
                f"momentum={self.momentum!r}, dampening={self.dampening!r}."
            )

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
    _parameter_constraints = {
        "epsilon": [_POSITIVE],
        "initial_accumulator_value": [_NON_NEGATIVE],
    }

    def __init__(self, epsilon=1e-10, initial_accumulator_value=0.0):
        self.epsilon = epsilon
        self.initial_accumulator_value = initial_accumulator_value

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
    _parameter_constraints = {
        "rho": [_UNIT],
        "epsilon": [_POSITIVE],
        "momentum": [_UNIT],
        "centered": ["boolean"],
    }

    def __init__(self, rho=0.99, epsilon=1e-8, momentum=0.0, centered=False):
        self.rho = rho
        self.epsilon = epsilon
        self.momentum = momentum
        self.centered = centered

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
    _parameter_constraints = {
        "beta_1": [_UNIT],
        "beta_2": [_UNIT],
        "epsilon": [_POSITIVE],
        "amsgrad": ["boolean"],
    }

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

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
    _parameter_constraints = {
        **Adam._parameter_constraints,
        "weight_decay": [_NON_NEGATIVE],
    }

    def __init__(
        self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01, amsgrad=False
    ):
        super().__init__(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad)
        self.weight_decay = weight_decay

    def _hyper(self):
        return [
            self.beta_1,
            self.beta_2,
            self.epsilon,
            float(bool(self.amsgrad)),
            self.weight_decay,
        ]


# ---------------------------------------------------------------------------
# Names. Each factory takes scikit-learn's MLP optimizer parameters as keywords
# and ignores those its rule does not use; its docstring is its documentation.
# ---------------------------------------------------------------------------


def _sgd(*, momentum, nesterovs_momentum, **_):
    """``SGD(momentum, nesterov=nesterovs_momentum)``, scikit-learn's
    ``solver='sgd'`` (Nesterov only with a positive momentum)."""
    return SGD(momentum=momentum, nesterov=bool(nesterovs_momentum) and momentum > 0)


def _heavy_ball(*, momentum, **_):
    """``SGD(momentum)`` (heavy ball)."""
    return SGD(momentum=momentum)


def _nesterov(*, momentum, **_):
    """``SGD(momentum, nesterov=True)``."""
    return SGD(momentum=momentum, nesterov=True)


def _adagrad(**_):
    """``Adagrad()``."""
    return Adagrad()


def _rmsprop(**_):
    """``RMSprop()``."""
    return RMSprop()


def _adam(*, beta_1, beta_2, epsilon, **_):
    """``Adam(beta_1, beta_2, epsilon)``."""
    return Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def _adamw(*, beta_1, beta_2, epsilon, **_):
    """``AdamW(beta_1, beta_2, epsilon)``."""
    return AdamW(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


_OPTIMIZERS = {
    "sgd": _sgd,
    "momentum": _heavy_ball,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
}

OPTIMIZER_NAMES = tuple(_OPTIMIZERS)
"""Names accepted by :func:`resolve_optimizer` (and hence by the estimators)."""


@document_names(_OPTIMIZERS)
def resolve_optimizer(
    optimizer,
    *,
    momentum=0.9,
    nesterovs_momentum=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
):
    """A validated :class:`Optimizer` from an instance or a name.

    Parameters
    ----------
    optimizer : str or Optimizer
        An :class:`Optimizer` instance, validated and returned as is (not
        copied), or one of :data:`OPTIMIZER_NAMES`:

        {names}

        Plain SGD without momentum is ``SGD()`` or ``'sgd'`` with ``momentum=0``.
    momentum, nesterovs_momentum, beta_1, beta_2, epsilon
        scikit-learn's MLP parameters, with its defaults, so that ``'sgd'``
        means what scikit-learn's ``solver='sgd'`` means. Read by the names
        only; an instance keeps its own hyperparameters.

    Returns
    -------
    optimizer : Optimizer
        With hyperparameters checked by its ``_validate_params``.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError``, if ``optimizer`` is neither a name
        in :data:`OPTIMIZER_NAMES` (the message lists them) nor an
        :class:`Optimizer`, or if a hyperparameter is invalid.
    ValueError
        If hyperparameters are inconsistent with each other.
    """
    validate_parameter_constraints(
        {"optimizer": [StrOptions(set(OPTIMIZER_NAMES)), Optimizer]},
        {"optimizer": optimizer},
        caller_name="resolve_optimizer",
    )
    if isinstance(optimizer, str):
        optimizer = _OPTIMIZERS[optimizer](
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
        )
    optimizer._validate_params()
    return optimizer
