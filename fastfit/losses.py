"""Training losses: the engine kernel, the output link and the target check of each.

The network's last layer is linear; a loss owns the transform of that raw output
into predictions (the inverse of its link function), and its engine kernel
returns the gradient with respect to the raw output. Names follow scikit-learn.

=================  =====================================  ====================
name               kernel                                 output (inverse link)
=================  =====================================  ====================
``log_loss``       softmax cross-entropy (multiclass)     ``softmax``
                   sigmoid log loss (binary, multilabel)  ``logistic``
``squared_error``  0.5 * squared error                    ``identity``
``absolute_error`` absolute error                         ``identity``
``huber``          Huber (``huber_delta``)                ``identity``
``poisson``        half Poisson deviance, y >= 0          ``exp`` (log link)
``quantile``       pinball loss (``quantile``)            ``identity``
=================  =====================================  ====================

With several quantiles (a single target only), the network has one output per
quantile, in the order given: column ``j`` of the encoded targets is ``y`` and
column ``j`` of the prediction is quantile ``j``.
"""

from numbers import Real

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from fastfit._engine import LOSS_KINDS, MAX_EXP_ARG


class OutputLink:
    """The transform from the raw network output to predictions.

    Parameters
    ----------
    name : str
        The scikit-learn name of the output activation (``out_activation_``).
    inverse : callable
        Raw output -> predictions (a new array).
    log_inverse : callable or None
        Raw output -> log of the predictions, computed stably.
    max_raw : float
        Largest raw output whose prediction is a usable number.
    """

    def __init__(self, name, inverse, log_inverse=None, max_raw=np.inf):
        self.name = name
        self.inverse = inverse
        self.log_inverse = log_inverse
        self.max_raw = max_raw

    def finite(self, raw):
        """Whether the predictions from ``raw`` are usable numbers.

        For the log link the predictions' sum must be finite too:
        scikit-learn's metrics check their input that way.
        """
        if not np.isfinite(raw).all():
            return False
        if self.max_raw == np.inf or raw.size == 0:
            return True
        if raw.max() >= self.max_raw:
            return False
        return bool(np.isfinite(self.inverse(raw.astype(np.float64)).sum()))

    def __reduce__(self):
        # links are module-level singletons: pickles refer to them by name
        return (_link, (self.name,))


def _identity(raw):
    return raw


LINKS = {
    link.name: link
    for link in (
        OutputLink("identity", _identity),
        OutputLink("logistic", expit, log_expit),
        OutputLink(
            "softmax",
            lambda raw: softmax(raw, axis=1),
            lambda raw: log_softmax(raw, axis=1),
        ),
        OutputLink("exp", np.exp, max_raw=MAX_EXP_ARG),
    )
}


def _link(name):
    return LINKS[name]


class Loss:
    """A training loss as the estimators and the engine use it.

    Parameters
    ----------
    name : str
        The user-facing name.
    kernel : str
        Name of the engine kernel (a key of ``LOSS_KINDS``).
    link : str
        Name of the output link (a key of ``LINKS``).
    param : float or tuple of float, default=0
        The kernel's parameter: Huber's delta, the label smoothing, the
        quantile; a tuple holds one value per output (several quantiles).
    nonnegative_targets : bool, default=False
        Whether ``y`` must be >= 0.

    Attributes
    ----------
    kernel_id : int
        The engine's id of the kernel.
    link : OutputLink
    """

    def __init__(self, name, kernel, link, param=0.0, nonnegative_targets=False):
        self.name = name
        self.kernel = kernel
        self.kernel_id = LOSS_KINDS[kernel]
        self.link = LINKS[link]
        self.param = (
            tuple(float(p) for p in param) if isinstance(param, tuple) else float(param)
        )
        self.nonnegative_targets = nonnegative_targets

    @property
    def outputs_per_target(self):
        """Network outputs per target column: one per quantile, else 1."""
        return len(self.param) if isinstance(self.param, tuple) else 1

    @property
    def takes_class_indices(self):
        """Whether the encoded targets are one column of class indices (one
        output per class) rather than one column per output."""
        return self.kernel == "softmax_cross_entropy"

    def check_targets(self, y):
        """Raise ValueError if ``y`` is outside the loss's domain."""
        if self.nonnegative_targets and np.any(np.asarray(y) < 0):
            raise ValueError(
                f"loss={self.name!r} requires y >= 0 (it models counts / rates)"
            )

    def expand_targets(self, Y):
        """The encoded targets ``Y`` (n, n_targets) with one column per network
        output: with several quantiles, the one target column once per quantile.

        Raises
        ------
        ValueError
            For several quantiles and several target columns.
        """
        n_columns = self.outputs_per_target
        if n_columns == 1:
            return Y
        if Y.shape[1] != 1:
            raise ValueError(
                f"quantile: several quantiles ({n_columns}) need a single target; "
                f"y has {Y.shape[1]} columns (fit one model per target)"
            )
        return np.repeat(Y, n_columns, axis=1)

    def n_outputs(self, Y, n_classes):
        """Width of the network's output for the encoded targets ``Y``."""
        return n_classes if self.takes_class_indices else Y.shape[1]


# One entry per name: the factory of its Loss.
_CLASSIFIER_FACTORIES = {
    "log_loss": lambda y_type, eps: (
        Loss("log_loss", "softmax_cross_entropy", "softmax", param=eps)
        if y_type == "multiclass"
        else Loss("log_loss", "sigmoid_log_loss", "logistic", param=eps)
    ),
}
_REGRESSOR_FACTORIES = {
    "squared_error": lambda delta, taus: Loss(
        "squared_error", "squared_error", "identity"
    ),
    "absolute_error": lambda delta, taus: Loss(
        "absolute_error", "absolute_error", "identity"
    ),
    "huber": lambda delta, taus: Loss("huber", "huber", "identity", param=delta),
    "poisson": lambda delta, taus: Loss(
        "poisson", "poisson", "exp", nonnegative_targets=True
    ),
    # one quantile: one value for every output; several: one output each
    "quantile": lambda delta, taus: Loss(
        "quantile", "quantile", "identity", param=taus if len(taus) > 1 else taus[0]
    ),
}
CLASSIFIER_LOSSES = tuple(_CLASSIFIER_FACTORIES)
REGRESSOR_LOSSES = tuple(_REGRESSOR_FACTORIES)


def classifier_loss(name, y_type, label_smoothing=0.0):
    """The Loss of a classifier, given the target type ('multiclass' or not)
    and the label smoothing (the kernel's parameter: softmax targets
    ``(1 - eps) onehot + eps / K``, sigmoid targets ``(1 - eps) y + eps / 2``)."""
    if name not in _CLASSIFIER_FACTORIES:
        raise ValueError(f"loss must be one of {CLASSIFIER_LOSSES}, got {name!r}")
    return _CLASSIFIER_FACTORIES[name](y_type, float(label_smoothing))


def check_quantiles(quantile):
    """The quantiles as a tuple of floats, each in (0, 1).

    Parameters
    ----------
    quantile : float or sequence of float
        One quantile, or several (a 1-d sequence, kept in its order).

    Raises
    ------
    ValueError
        Naming ``quantile``, unless it is one number or a non-empty 1-d
        sequence of numbers, each in the open interval (0, 1).
    """
    values = np.asarray(quantile, dtype=object)
    if values.ndim > 1 or values.size == 0:
        raise ValueError(
            "quantile must be a float or a non-empty 1-d sequence of floats, "
            f"got {quantile!r}"
        )
    taus = values.reshape(-1).tolist()
    if not all(
        isinstance(t, Real) and not isinstance(t, (bool, np.bool_)) and 0 < t < 1
        for t in taus
    ):
        raise ValueError(f"quantile values must lie in (0, 1), got {quantile!r}")
    return tuple(float(t) for t in taus)


def regressor_loss(name, huber_delta=1.0, quantile=0.5):
    """The Loss of a regressor (``quantile``: see :func:`check_quantiles`,
    checked whatever the loss, as ``huber_delta`` is)."""
    if name not in _REGRESSOR_FACTORIES:
        raise ValueError(f"loss must be one of {REGRESSOR_LOSSES}, got {name!r}")
    return _REGRESSOR_FACTORIES[name](huber_delta, check_quantiles(quantile))
