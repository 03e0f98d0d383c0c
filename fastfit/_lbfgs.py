"""Full-batch fits by L-BFGS: scikit-learn's ``solver='lbfgs'``.

L-BFGS is not an update rule of the engine: scipy's L-BFGS-B drives the fit,
and the engine only evaluates the objective (data loss plus penalty, over every
training row) and its gradient, through ``Trainer.objective_gradient``. So the
estimators name it by a string (:data:`LBFGS`) that never reaches
:func:`fastfit.optimizers.resolve_optimizer`, and its one hyperparameter,
``max_fun``, is an estimator parameter, as in scikit-learn.

The semantics are scikit-learn's: ``max_iter`` bounds the L-BFGS iterations,
``max_fun`` the objective evaluations, ``tol`` is the projected-gradient
tolerance (``gtol``); batches, shuffling, schedules and early stopping do not
apply. After the fit ``n_iter_`` is the number of iterations, ``loss_`` the
final objective, ``t_`` is left as it was (0 on a fresh fit), and the
per-epoch record of the stochastic optimizers (``loss_curve_``,
``best_loss_``, the validation curves) is absent.
"""

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from fastfit._engine import Trainer
from fastfit._layout import aligned_empty
from fastfit._parallel import SingleThreadedBlas, effective_n_threads
from fastfit.optimizers import SGD

LBFGS = "lbfgs"
"""The ``optimizer`` value that selects the full-batch L-BFGS fit."""

# What the stochastic optimizers record per epoch and an L-BFGS fit does not
# have (scikit-learn: "only accessible when solver='sgd' or 'adam'").
_EPOCH_RECORD = (
    "loss_curve_",
    "learning_rate_curve_",
    "learning_rate_steps_",
    "best_loss_",
    "validation_scores_",
    "validation_loss_curve_",
    "best_validation_score_",
)


def is_lbfgs(optimizer):
    """Whether the estimator's ``optimizer`` parameter selects L-BFGS."""
    return isinstance(optimizer, str) and optimizer == LBFGS


def check_stochastic(estimator):
    """``available_if`` condition of ``partial_fit``, as scikit-learn's.

    Raises
    ------
    AttributeError
        If the estimator's optimizer is L-BFGS, which has no incremental step.
    """
    if is_lbfgs(estimator.optimizer):
        raise AttributeError(
            "partial_fit is only available for stochastic optimizers. "
            f"{LBFGS} is not stochastic."
        )
    return True


class FullBatchObjective:
    """The objective and gradient over all training rows, for scipy.

    Buffers are allocated once: scipy's float64 parameters are evaluated in
    place for a float64 model, and copied into one float32 buffer for a
    float32 model (whose gradient is returned as a new float64 array).

    Parameters
    ----------
    trainer : fastfit._engine.Trainer
        Built for the model's network, penalty and threads.
    data : fastfit._training.Dataset
        The training rows, in the model's dtype.
    n_params : int
        Length of the flat parameter buffer.
    """

    def __init__(self, trainer, data, n_params):
        dtype = data.X.dtype
        self.trainer, self.X, self.Y = trainer, data.engine_X, data.Y
        # the engine's convention for "no sample weights": an empty array
        sw = data.sample_weight
        self.sample_weight = np.empty(0, dtype) if sw is None else sw
        self.grads = aligned_empty(n_params, dtype)
        self.params = None if dtype == np.float64 else aligned_empty(n_params, dtype)
        self.n_evaluations = 0

    def __call__(self, x):
        """Objective and gradient at ``x`` (float64, from scipy)."""
        self.n_evaluations += 1
        if self.params is None:
            # scipy copies the gradient before its solver writes (g.astype),
            # so the same buffer can be returned on every call.
            value = self.trainer.objective_gradient(
                x, self.X, self.Y, self.sample_weight, self.grads
            )
            return value, self.grads
        self.params[:] = x
        value = self.trainer.objective_gradient(
            self.params, self.X, self.Y, self.sample_weight, self.grads
        )
        return value, self.grads.astype(np.float64)


def _trainer(estimator, n_threads):
    """A Trainer for ``objective_gradient`` only.

    Its constructor wants an update rule and batch buffers; neither is used,
    so the rule is stateless SGD and a batch is one row. The full-batch
    buffers are allocated by the first ``objective_gradient`` and reused.
    """
    rule = SGD()
    return Trainer(
        estimator._network(),
        rule._engine_kind,
        rule._hyper(),
        rule._init_state(estimator._layout.n_params, estimator._fit_dtype),
        1,
        float(estimator.alpha),
        estimator._penalty_l1_ratio(),
        0.0,
        n_threads,
    )


def _options(estimator):
    """scikit-learn's L-BFGS-B options: ``iprint`` only for the scipy
    versions that still take it (none print from 1.15 on)."""
    iprint = 1 if estimator.verbose is True or estimator.verbose >= 1 else -1
    return {
        "maxfun": estimator.max_fun,
        "maxiter": estimator.max_iter,
        "gtol": estimator.tol,
        **_get_additional_lbfgs_options_dict("iprint", iprint),
    }


def fit(estimator, data, loss_fn, layout, continuing):
    """Fit ``estimator`` on all of ``data`` by L-BFGS-B, as scikit-learn does.

    Parameters
    ----------
    estimator : fastfit._mlp.BaseMLP
        With validated parameters; its weights are set here.
    data : fastfit._training.Dataset
        Validated training data and targets, in the training dtype.
    loss_fn : fastfit.losses.Loss
    layout : fastfit._layout.Layout
        The network's layout for this data.
    continuing : bool
        Start from the current weights (``warm_start`` after a fit).

    Returns
    -------
    estimator : fastfit._mlp.BaseMLP

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        scikit-learn's, when L-BFGS stops before converging (``max_iter`` or
        ``max_fun`` reached, or a line search failure).
    """
    if any(estimator._architecture(layout.n_layers - 1)[2]):
        raise ValueError(
            "dropout needs a stochastic optimizer: L-BFGS minimises one fixed "
            "objective. Set dropout=0 or choose another optimizer."
        )
    if any(a is not None for a in estimator._averaging()):
        raise ValueError(
            "weight averaging (ema_decay, swa_start) averages the steps of a "
            "stochastic optimizer; L-BFGS takes none. Choose another optimizer."
        )
    n_threads = effective_n_threads(estimator.n_threads)
    if not continuing:
        estimator._fit_dtype = data.X.dtype.type
        estimator.n_iter_, estimator.t_ = 0, 0
    for name in _EPOCH_RECORD:
        estimator.__dict__.pop(name, None)
    estimator._start_weights(layout, loss_fn, data.X, continuing, False, n_threads)
    estimator._loss_fn = loss_fn
    estimator._weight_average = None
    estimator._activation, estimator._negative_slope, _ = estimator._architecture(
        layout.n_layers - 1
    )
    objective = FullBatchObjective(
        _trainer(estimator, n_threads), data, layout.n_params
    )
    with SingleThreadedBlas():
        result = scipy.optimize.minimize(
            objective,
            estimator._params.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options=_options(estimator),
        )
    estimator.n_iter_ = _check_optimize_result("lbfgs", result, estimator.max_iter)
    estimator.loss_ = float(result.fun)
    estimator._params[:] = result.x
    if not np.isfinite(estimator._params).all():
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may"
            " contain large values and need to be preprocessed."
        )
    return estimator
