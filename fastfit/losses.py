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
=================  =====================================  ====================
"""

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
    param : float, default=0
        The kernel's parameter (Huber's delta).
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
        self.param = float(param)
        self.nonnegative_targets = nonnegative_targets

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
    "squared_error": lambda delta: Loss("squared_error", "squared_error", "identity"),
    "absolute_error": lambda delta: Loss(
        "absolute_error", "absolute_error", "identity"
    ),
    "huber": lambda delta: Loss("huber", "huber", "identity", param=delta),
    "poisson": lambda delta: Loss(
        "poisson", "poisson", "exp", nonnegative_targets=True
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


def regressor_loss(name, huber_delta=1.0):
    """The Loss of a regressor."""
    if name not in _REGRESSOR_FACTORIES:
        raise ValueError(f"loss must be one of {REGRESSOR_LOSSES}, got {name!r}")
    return _REGRESSOR_FACTORIES[name](huber_delta)
