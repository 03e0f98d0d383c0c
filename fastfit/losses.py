"""Loss names, the output transform each implies, and the engine kernel behind it.

The network's last layer is linear; the loss owns the output transform, and its
kernel returns the gradient w.r.t. the raw output. Names follow scikit-learn.

=================  =====================================  ==================
name               used for                               output transform
=================  =====================================  ==================
``log_loss``       classification: softmax cross-entropy  ``softmax`` (multiclass)
                   or sigmoid log loss                    ``logistic`` (binary, multilabel)
``squared_error``  regression, 0.5 * squared error        ``identity``
``absolute_error`` regression, absolute error             ``identity``
``huber``          regression, Huber (``huber_delta``)    ``identity``
``poisson``        regression, half Poisson deviance      ``exp`` (log link)
=================  =====================================  ==================
"""

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from fastfit._engine._losses import LOSS_KINDS

CLASSIFIER_LOSSES = ("log_loss",)
REGRESSOR_LOSSES = ("squared_error", "absolute_error", "huber", "poisson")


class LossSpec:
    """What the engine needs to know about a loss.

    Attributes
    ----------
    name : str
        The user-facing name.
    kernel : int
        Engine loss id.
    out_activation : str
        Output transform: 'softmax', 'logistic', 'identity' or 'exp'.
    param : float
        Extra parameter of the kernel (Huber's delta), else 0.
    """

    def __init__(self, name, kernel_name, out_activation, param=0.0):
        self.name = name
        self.kernel = LOSS_KINDS[kernel_name]
        self.out_activation = out_activation
        self.param = float(param)


def classifier_loss(name, y_type):
    """LossSpec for a classifier given scikit-learn's ``type_of_target`` of y."""
    if name != "log_loss":
        raise ValueError(f"loss must be one of {CLASSIFIER_LOSSES}, got {name!r}")
    if y_type == "multiclass":
        return LossSpec(name, "softmax_cross_entropy", "softmax")
    return LossSpec(name, "sigmoid_log_loss", "logistic")


def regressor_loss(name, huber_delta=1.0):
    """LossSpec for a regressor."""
    if name == "squared_error":
        return LossSpec(name, "squared_error", "identity")
    if name == "absolute_error":
        return LossSpec(name, "absolute_error", "identity")
    if name == "huber":
        return LossSpec(name, "huber", "identity", huber_delta)
    if name == "poisson":
        return LossSpec(name, "poisson", "exp")
    raise ValueError(f"loss must be one of {REGRESSOR_LOSSES}, got {name!r}")


def output_transform(raw, out_activation):
    """Apply the output transform to the raw network output (new array)."""
    if out_activation == "softmax":
        return softmax(raw, axis=1)
    if out_activation == "logistic":
        return expit(raw)
    if out_activation == "exp":
        return np.exp(raw)
    return raw


def log_output_transform(raw, out_activation):
    """Logarithm of the output transform, computed stably from the raw output."""
    if out_activation == "softmax":
        return log_softmax(raw, axis=1)
    if out_activation == "logistic":
        return log_expit(raw)
    raise ValueError(f"no log transform for {out_activation!r}")
