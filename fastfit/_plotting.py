"""Plots of a fitted estimator's training history (matplotlib is optional)."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_learning_curve"]


def _final_estimator(est):
    """The last step of a Pipeline (or the estimator itself)."""
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and steps and hasattr(est, "_final_estimator"):
        return est._final_estimator
    return est


def plot_learning_curve(est, ax=None):
    """Plot the training history of a fitted MLP, one point per epoch.

    Draws the training loss (``loss_curve_``), the validation loss
    (``validation_loss_curve_``, when the model was fitted with
    ``early_stopping=True``) and the learning rate (``learning_rate_curve_``:
    for a per-step schedule, the rate of each epoch's first mini-batch) on a
    twin y-axis sharing the epoch axis.

    Parameters
    ----------
    est : fitted MLPClassifier or MLPRegressor, or a Pipeline ending in one
        Any estimator with a ``loss_curve_`` works (scikit-learn's MLPs too);
        curves the estimator does not have are left out.
    ax : matplotlib Axes, default=None
        Axes to draw the losses on; a new figure and Axes are created if None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes of the losses. The learning-rate Axes is its twin, reachable
        as ``ax.lr_ax_`` (None when the estimator has no learning-rate curve).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plot_learning_curve needs matplotlib: pip install matplotlib"
        ) from exc

    model = _final_estimator(est)
    check_is_fitted(
        model,
        "loss_curve_",
        msg=f"This {type(model).__name__} instance is not fitted yet: "
        "call 'fit' or 'partial_fit' before plotting its learning "
        "curve.",
    )
    if ax is None:
        _, ax = plt.subplots()
    handles = _plot_losses(ax, model)
    lr_ax = _plot_learning_rate(ax, model, handles)
    ax.lr_ax_ = lr_ax
    ax.legend(handles, [h.get_label() for h in handles], loc="upper right")
    ax.set_title(f"{type(model).__name__}: learning curve")
    return ax


def _plot_losses(ax, model):
    """The training (and validation) loss per epoch on ``ax``; their lines."""
    loss = np.asarray(model.loss_curve_, dtype=float)
    handles = ax.plot(
        np.arange(1, len(loss) + 1), loss, color="C0", label="training loss"
    )
    val_loss = getattr(model, "validation_loss_curve_", None)
    if val_loss is not None and len(val_loss):
        val_loss = np.asarray(val_loss, dtype=float)
        handles += ax.plot(
            np.arange(1, len(val_loss) + 1),
            val_loss,
            color="C1",
            label="validation loss",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    return handles


def _plot_learning_rate(ax, model, handles):
    """The learning rate per epoch on a twin of ``ax`` (None if there is none);
    its line is added to ``handles``."""
    lrs = getattr(model, "learning_rate_curve_", None)
    if lrs is None or not len(lrs):
        return None
    lrs = np.asarray(lrs, dtype=float)
    lr_ax = ax.twinx()
    handles += lr_ax.plot(
        np.arange(1, len(lrs) + 1),
        lrs,
        color="C2",
        linestyle="--",
        label="learning rate",
    )
    lr_ax.set_ylabel("learning rate")
    positive = lrs[np.isfinite(lrs) & (lrs > 0)]
    if positive.size and positive.max() > 10 * positive.min():
        lr_ax.set_yscale("log")  # decays span decades
    return lr_ax
