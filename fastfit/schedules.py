"""Learning-rate schedules, stepped once per epoch or at every mini-batch.

A schedule is a small scikit-learn style parameter object (a
:class:`~sklearn.base.BaseEstimator`, so ``get_params``/``set_params``/``clone``
and nested names such as ``schedule__gamma`` work in ``GridSearchCV``). It holds
hyperparameters only, declares their valid values in ``_parameter_constraints``
and is checked by scikit-learn's ``_validate_params``. A *run* of a schedule is a
separate object, the runner, created fresh for every fit::

    # validates; never mutates `schedule`
    runner = schedule.start(base_lr, max_iter, steps_per_epoch)
    for epoch in range(max_iter):
        lrs = runner.epoch_lrs(n_batches)  # one rate per mini-batch of the epoch
        loss = run_one_epoch(lrs)
        runner.step(metric=loss, n_batches=n_batches)  # once after each epoch
        if stalled and not runner.continue_after_stall():
            break                     # early stopping, unless the schedule objects
    runner.epoch                      # number of completed epochs
    runner.steps                      # number of mini-batches they had

``runner.lr`` is the rate of the first mini-batch of the epoch about to run.
Most schedules are functions of the epoch and give every batch of an epoch
that rate. The per-step schedules (:class:`OneCycleLR`,
:class:`CosineAnnealingWarmRestarts`, :class:`WarmupCosine`, :class:`CosLog`)
give each mini-batch its own: they are planned over ``max_iter *
steps_per_epoch`` steps (or their ``total_steps``) and count the batches
actually run, so epochs of another length (``partial_fit`` on chunks of
another size) continue the count where it stands.

``metric`` is the monitored loss (lower is better). Only
:class:`ReduceLROnPlateau` (directly or wrapped in :class:`Warmup`) reads it;
the other schedules ignore it. A runner works on a frozen copy of the schedule,
so later ``set_params`` calls do not affect a run. Runners are plain picklable
objects, so a fit can be checkpointed and resumed mid-run.

The semantics follow PyTorch's ``torch.optim.lr_scheduler`` with ``epoch``
playing the role of ``last_epoch``: the learning rate of epoch ``e`` (counted
from 0) is the value PyTorch's scheduler holds after ``e`` calls to
``scheduler.step()``; for a per-step schedule, the rate of mini-batch ``k`` of
the run is the value after ``k`` calls, one after each batch. Schedules are
evaluated in closed form, so no rounding error accumulates over long runs:
those that are functions of the epoch write that function once, as their
``_lr`` method, and the per-step ones as ``_step_lrs``, over a whole epoch's
steps at once (NumPy, no Python per step).

All of them scale the estimator's ``learning_rate_init`` (``base_lr``): it is
the rate of a constant schedule, the start of a decay, and the peak of
:class:`OneCycleLR`, :class:`WarmupCosine` and :class:`CosLog`.

The schedules can also be named by a string; :func:`resolve_schedule` maps the
names in :data:`SCHEDULE_NAMES` to instances whose defaults depend on
``max_iter``, ``tol`` and ``power_t``.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints

from fastfit._params import NumberInterval, document_names

__all__ = [
    "SCHEDULE_NAMES",
    "Constant",
    "CosLog",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "InverseScaling",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "Schedule",
    "ScheduleRunner",
    "StepLR",
    "Warmup",
    "WarmupCosine",
    "resolve_schedule",
]

# scikit-learn's learning_rate='adaptive' keeps training past early stopping's
# patience until the rate has fallen to this
_ADAPTIVE_MIN_LR = 1e-6

# Shared constraints of the hyperparameters
_DECAY = NumberInterval(Real, 0, 1, closed="right")  # multiplicative decay factor
_POSITIVE_INT = NumberInterval(Integral, 1, None, closed="left")
_NON_NEGATIVE_INT = NumberInterval(Integral, 0, None, closed="left")
_NON_NEGATIVE = NumberInterval(Real, 0, None, closed="left")

_START_CONSTRAINTS = {
    "base_lr": [NumberInterval(Real, 0, None, closed="neither")],
    "max_iter": [_POSITIVE_INT],
    "steps_per_epoch": [_POSITIVE_INT],
}
# total_steps of the per-step schedules: None plans max_iter * steps_per_epoch
_TOTAL_STEPS = [None, _POSITIVE_INT]


def _as_python_number(value):
    """``value`` as a Python int or float if it is a number (bools kept)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    return value


# ---------------------------------------------------------------------------
# Runners: the state of one run of a schedule.
# ---------------------------------------------------------------------------


class ScheduleRunner:
    """State of one run of a schedule (base class).

    Created by :meth:`Schedule.start`; not meant to be built directly.

    Parameters
    ----------
    schedule : Schedule
        Frozen copy of the schedule being run (see :meth:`Schedule._frozen`).
    base_lr : float
        Initial learning rate of the run.

    Attributes
    ----------
    schedule : Schedule
        The frozen copy; the runner reads its hyperparameters from it only.
    base_lr : float
        Initial learning rate of the run.
    lr : float
        Learning rate of the first mini-batch of the epoch about to run (of
        every one of its batches, for a schedule stepped per epoch).
    epoch : int
        Number of completed epochs (number of calls to :meth:`step`).
    steps : int
        Number of mini-batches in the completed epochs (the sum of the
        ``n_batches`` passed to :meth:`step`).
    """

    def __init__(self, schedule, base_lr):
        self.schedule = schedule
        self.base_lr = float(base_lr)
        self.epoch = 0
        self.steps = 0
        self.lr = self.base_lr

    def epoch_lrs(self, n_batches):
        """Learning rate of each mini-batch of the epoch about to run.

        Parameters
        ----------
        n_batches : int
            Number of mini-batches of the epoch, >= 1.

        Returns
        -------
        lrs : ndarray of shape (n_batches,), dtype float64
            A new array; ``lrs[0]`` is :attr:`lr`. Here every batch runs at
            :attr:`lr`; per-step schedules vary it within the epoch.
        """
        return np.full(_batch_count(n_batches), self.lr)

    def step(self, metric=None, n_batches=1):
        """Advance by one completed epoch.

        Parameters
        ----------
        metric : float or None, default=None
            Monitored loss of the epoch just completed (lower is better).
            Ignored by schedules that do not monitor a metric.
        n_batches : int, default=1
            Number of mini-batches the epoch had, >= 1 (as passed to
            :meth:`epoch_lrs`). Per-step schedules advance by that many steps.
        """
        raise NotImplementedError

    def _count(self, n_batches):
        """Count one more completed epoch of ``n_batches`` mini-batches."""
        self.steps += _batch_count(n_batches)
        self.epoch += 1

    def continue_after_stall(self):
        """Whether training should go on although early stopping would stop it.

        The estimator asks when the monitored value has not improved for
        ``n_iter_no_change`` epochs; a schedule that still has a lower rate to
        try can answer True, and the estimator then resets its counter.

        Returns
        -------
        go_on : bool
            False here: a stall ends the fit.
        """
        return False

    def __repr__(self):
        return f"{type(self).__name__}(epoch={self.epoch}, lr={self.lr!r})"


def _batch_count(n_batches):
    """``n_batches`` as an int, or ValueError unless it is a positive int."""
    if not _POSITIVE_INT.is_satisfied_by(n_batches):
        raise ValueError(
            f"n_batches must be a positive int (mini-batches of an epoch), "
            f"got {n_batches!r}"
        )
    return int(n_batches)


class _ClosedFormRunner(ScheduleRunner):
    """Runner of a schedule whose lr is a pure function of the epoch.

    ``lr = schedule._lr(base_lr, epoch)``, evaluated afresh for every epoch. A
    schedule with ``_per_batch = True`` is evaluated at every mini-batch, at
    fractional epochs: batch ``i`` of the ``n`` of epoch ``e`` at ``e + i / n``
    (its ``_lr`` then takes an array of epochs).
    """

    def __init__(self, schedule, base_lr):
        super().__init__(schedule, base_lr)
        self.lr = float(schedule._lr(self.base_lr, 0))

    def epoch_lrs(self, n_batches):
        if not self.schedule._per_batch:
            return super().epoch_lrs(n_batches)
        n = _batch_count(n_batches)
        epochs = self.epoch + np.arange(n) / n
        return np.array(self.schedule._lr(self.base_lr, epochs), dtype=np.float64)

    def step(self, metric=None, n_batches=1):
        self._count(n_batches)
        self.lr = float(self.schedule._lr(self.base_lr, self.epoch))


class _StepRunner(ScheduleRunner):
    """Runner of a schedule that is a function of the step (the mini-batch
    counted over the run) and of the planned number of steps.

    ``lr = schedule._step_lrs(base_lr, k, total_steps)`` for the steps ``k`` of
    an epoch; steps past the plan repeat the rate of its last step.

    Attributes
    ----------
    total_steps : int
        Planned number of steps of the run.
    """

    def __init__(self, schedule, base_lr, total_steps):
        super().__init__(schedule, base_lr)
        self.total_steps = int(total_steps)
        self.lr = float(self.epoch_lrs(1)[0])

    def epoch_lrs(self, n_batches):
        k = self.steps + np.arange(_batch_count(n_batches))
        k = np.minimum(k, self.total_steps - 1)
        lrs = self.schedule._step_lrs(self.base_lr, k, self.total_steps)
        return np.array(lrs, dtype=np.float64)

    def step(self, metric=None, n_batches=1):
        self._count(n_batches)
        self.lr = float(self.epoch_lrs(1)[0])

    def __repr__(self):
        return (
            f"{type(self).__name__}(epoch={self.epoch}, steps={self.steps}/"
            f"{self.total_steps}, lr={self.lr!r})"
        )


class _PlateauRunner(ScheduleRunner):
    """Runner of :class:`ReduceLROnPlateau` (PyTorch's state machine, mode='min')."""

    def __init__(self, schedule, base_lr):
        super().__init__(schedule, base_lr)
        self.best = math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, current):
        """Whether ``current`` improves on :attr:`best` by the threshold."""
        if self.schedule.threshold_mode == "rel":
            return current < self.best * (1.0 - self.schedule.threshold)
        return current < self.best - self.schedule.threshold

    def step(self, metric=None, n_batches=1):
        if metric is None:
            raise ValueError(
                "ReduceLROnPlateau monitors a metric: call runner.step(metric) "
                "with the monitored loss of the epoch just completed."
            )
        s = self.schedule
        current = float(metric)
        self._count(n_batches)
        if self.is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > s.patience:
            new_lr = max(self.lr * s.factor, s.min_lr)
            if self.lr - new_lr > s.eps:
                self.lr = new_lr
            self.cooldown_counter = s.cooldown
            self.num_bad_epochs = 0

    def continue_after_stall(self):
        """True while the rate is above the schedule's ``continue_above_lr``."""
        return self.lr > self.schedule.continue_above_lr


class _WarmupRunner(ScheduleRunner):
    """Runner of :class:`Warmup`: linear ramp, then an inner runner."""

    def __init__(self, schedule, base_lr, inner):
        super().__init__(schedule, base_lr)
        self.inner = inner
        self.lr = self._current_lr()

    def _warming_up(self):
        return self.epoch < self.schedule.epochs

    def _current_lr(self):
        if self._warming_up():
            return self.base_lr * (self.epoch + 1) / self.schedule.epochs
        return self.inner.lr

    def epoch_lrs(self, n_batches):
        if self._warming_up():
            return super().epoch_lrs(n_batches)
        return self.inner.epoch_lrs(n_batches)

    def step(self, metric=None, n_batches=1):
        n_batches = _batch_count(n_batches)  # before the inner runner moves
        # The epoch just completed ran with the inner schedule's lr only if it
        # was past the warm-up; only then does the inner schedule see it.
        if not self._warming_up():
            self.inner.step(metric, n_batches)
        self._count(n_batches)
        self.lr = self._current_lr()

    def continue_after_stall(self):
        """The inner schedule's answer once past the warm-up; False before."""
        return not self._warming_up() and self.inner.continue_after_stall()

    def __repr__(self):
        return (
            f"{type(self).__name__}(epoch={self.epoch}, lr={self.lr!r}, "
            f"inner={self.inner!r})"
        )


# ---------------------------------------------------------------------------
# Schedules: hyperparameter objects.
# ---------------------------------------------------------------------------


class Schedule(BaseEstimator):
    """Base class of learning-rate schedules.

    Subclasses store their hyperparameters in ``__init__`` unchanged and declare
    them in ``_parameter_constraints``; rules that tie parameters together go in
    an override of ``_validate_params`` that calls ``super()._validate_params()``
    first. A closed-form schedule implements :meth:`_lr` (vectorised over an
    array of fractional epochs if it sets ``_per_batch = True``); a per-step
    one derives from ``_PerStepSchedule``; any other overrides
    :meth:`_make_runner`.
    """

    _parameter_constraints: dict = {}

    # whether the closed form is evaluated at every mini-batch (fractional epochs)
    _per_batch = False

    def start(self, base_lr, max_iter, steps_per_epoch=1):
        """Validate the hyperparameters and start a run.

        Parameters
        ----------
        base_lr : float
            Initial learning rate, > 0.
        max_iter : int
            Planned number of epochs of the run, >= 1.
        steps_per_epoch : int, default=1
            Planned number of mini-batches per epoch, >= 1: the per-step
            schedules plan ``max_iter * steps_per_epoch`` steps unless given
            their ``total_steps``. The others ignore it.

        Returns
        -------
        runner : ScheduleRunner
            A fresh runner; ``runner.lr`` is the learning rate of the first
            mini-batch of epoch 0. The schedule itself is not modified, and
            later changes to it do not affect the runner.

        Raises
        ------
        ValueError
            If a hyperparameter, ``base_lr``, ``max_iter`` or
            ``steps_per_epoch`` is invalid (an ``InvalidParameterError`` naming
            it and its valid values, for a single parameter).
        """
        validate_parameter_constraints(
            _START_CONSTRAINTS,
            {
                "base_lr": base_lr,
                "max_iter": max_iter,
                "steps_per_epoch": steps_per_epoch,
            },
            caller_name=f"{type(self).__name__}.start",
        )
        self._validate_params()
        return self._make_runner(float(base_lr), int(max_iter), int(steps_per_epoch))

    def _frozen(self):
        """A copy for a runner to own, with numbers as Python ints and floats.

        The copy keeps a run independent of later ``set_params`` on ``self``.
        Python floats keep every rate in float64: a NumPy float32 hyperparameter
        would otherwise pull the arithmetic down to float32.
        """
        frozen = clone(self)
        params = frozen.get_params(deep=False)
        return frozen.set_params(**{k: _as_python_number(v) for k, v in params.items()})

    def _lr(self, base_lr, epoch):
        """Learning rate of epoch ``epoch`` (from 0) of a closed-form schedule."""
        raise NotImplementedError(
            f"{type(self).__name__} must define _lr or _make_runner."
        )

    def _make_runner(self, base_lr, max_iter, steps_per_epoch):
        """The runner of a validated schedule; closed form unless overridden."""
        return _ClosedFormRunner(self._frozen(), base_lr)


class Constant(Schedule):
    """Constant learning rate.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr

    Examples
    --------
    >>> runner = Constant().start(0.1, max_iter=10)
    >>> runner.step(); runner.lr
    0.1
    """

    def __init__(self):
        pass

    def _lr(self, base_lr, epoch):
        return base_lr


class StepLR(Schedule):
    """Decay the learning rate by ``gamma`` every ``step_size`` epochs.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * gamma ** (e // step_size)

    As PyTorch's ``StepLR``.

    Parameters
    ----------
    step_size : int, default=10
        Period of the decay, in epochs; positive.
    gamma : float, default=0.1
        Multiplicative factor of the decay, in (0, 1].
    """

    _parameter_constraints = {"step_size": [_POSITIVE_INT], "gamma": [_DECAY]}

    def __init__(self, step_size=10, gamma=0.1):
        self.step_size = step_size
        self.gamma = gamma

    def _lr(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(Schedule):
    """Decay the learning rate by ``gamma`` at each milestone epoch.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * gamma ** (number of milestones m with m <= e)

    As PyTorch's ``MultiStepLR`` (with distinct milestones).

    Parameters
    ----------
    milestones : array-like of int, default=(30, 80)
        Strictly increasing positive epoch indices. May be empty (constant).
    gamma : float, default=0.1
        Multiplicative factor of the decay, in (0, 1].
    """

    _parameter_constraints = {"milestones": ["array-like"], "gamma": [_DECAY]}

    def __init__(self, milestones=(30, 80), gamma=0.1):
        self.milestones = milestones
        self.gamma = gamma

    def _validate_params(self):
        super()._validate_params()
        # a constraint checks the container; the entries need their own rule
        previous = 0
        for m in self.milestones:
            if not (_POSITIVE_INT.is_satisfied_by(m) and m > previous):
                raise ValueError(
                    "MultiStepLR: milestones must be strictly increasing positive "
                    f"ints; got {self.milestones!r}."
                )
            previous = m

    def _lr(self, base_lr, epoch):
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= epoch)


class ExponentialLR(Schedule):
    """Decay the learning rate by ``gamma`` every epoch.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * gamma ** e

    As PyTorch's ``ExponentialLR``.

    Parameters
    ----------
    gamma : float, default=0.99
        Multiplicative factor of the decay, in (0, 1].
    """

    _parameter_constraints = {"gamma": [_DECAY]}

    def __init__(self, gamma=0.99):
        self.gamma = gamma

    def _lr(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class LinearLR(Schedule):
    """Scale the learning rate by a factor that changes linearly.

    The learning rate of epoch ``e`` (counted from 0) is::

        t = min(e, total_iters) / total_iters
        lr_e = base_lr * (start_factor + (end_factor - start_factor) * t)

    so the factor stays at ``end_factor`` from epoch ``total_iters`` on. This
    is the closed form of PyTorch's ``LinearLR``.

    Parameters
    ----------
    start_factor : float, default=1/3
        Factor of epoch 0, in (0, 1].
    end_factor : float, default=1.0
        Factor from epoch ``total_iters`` on, in [0, 1].
    total_iters : int, default=5
        Number of epochs over which the factor changes; positive.
    """

    _parameter_constraints = {
        "start_factor": [NumberInterval(Real, 0, 1, closed="right")],
        "end_factor": [NumberInterval(Real, 0, 1, closed="both")],
        "total_iters": [_POSITIVE_INT],
    }

    def __init__(self, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters

    def _lr(self, base_lr, epoch):
        frac = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (
            self.start_factor + (self.end_factor - self.start_factor) * frac
        )


class CosineAnnealingLR(Schedule):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2

    This is PyTorch's documented closed form for ``CosineAnnealingLR``, used
    for every epoch: past ``T_max`` the learning rate does not stay at
    ``eta_min`` but keeps following the cosine, rising back to ``base_lr`` at
    ``2 * T_max`` (period ``2 * T_max``), as PyTorch's scheduler does. Pass
    ``T_max >= max_iter`` for a single monotone decay.

    Parameters
    ----------
    T_max : float, default=100
        Half period of the cosine, in epochs; positive.
    eta_min : float, default=0.0
        Minimum learning rate, >= 0.
    """

    _parameter_constraints = {
        "T_max": [NumberInterval(Real, 0, None, closed="neither")],
        "eta_min": [_NON_NEGATIVE],
    }

    def __init__(self, T_max=100, eta_min=0.0):
        self.T_max = T_max
        self.eta_min = eta_min

    def _lr(self, base_lr, epoch):
        cosine = 1.0 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cosine / 2.0


class InverseScaling(Schedule):
    """Inverse scaling of the learning rate with the epoch.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr / (e + 1) ** power_t

    Note that scikit-learn's ``learning_rate='invscaling'`` counts ``t`` in
    *samples* seen and updates it every mini-batch; here ``e`` counts epochs,
    so the decay is much gentler for the same ``power_t``.

    Parameters
    ----------
    power_t : float, default=0.5
        Exponent of the inverse scaling, >= 0 (0 gives a constant rate).
    """

    _parameter_constraints = {"power_t": [_NON_NEGATIVE]}

    def __init__(self, power_t=0.5):
        self.power_t = power_t

    def _lr(self, base_lr, epoch):
        return base_lr / (epoch + 1.0) ** self.power_t


class ReduceLROnPlateau(Schedule):
    """Reduce the learning rate when the monitored loss stops improving.

    PyTorch's ``ReduceLROnPlateau`` with ``mode='min'``. The runner keeps
    ``best`` (initially ``inf``), ``num_bad_epochs`` and ``cooldown_counter``;
    ``runner.step(metric)`` does, with ``current = metric``::

        if current is better than best:   best = current; num_bad_epochs = 0
        else:                             num_bad_epochs += 1
        if cooldown_counter > 0:          cooldown_counter -= 1; num_bad_epochs = 0
        if num_bad_epochs > patience:
            new_lr = max(lr * factor, min_lr)
            if lr - new_lr > eps:         lr = new_lr
            cooldown_counter = cooldown;  num_bad_epochs = 0

    where "better" means ``current < best * (1 - threshold)`` for
    ``threshold_mode='rel'`` and ``current < best - threshold`` for
    ``threshold_mode='abs'``. A NaN metric is never better (a bad epoch).

    Parameters
    ----------
    factor : float, default=0.1
        Factor by which the learning rate is reduced, in (0, 1).
    patience : int, default=10
        Number of bad epochs tolerated before a reduction, >= 0: the rate is
        reduced at the ``patience + 1``-th consecutive bad epoch.
    threshold : float, default=1e-4
        Minimum improvement that counts, >= 0 (and < 1 when
        ``threshold_mode='rel'``).
    threshold_mode : {'rel', 'abs'}, default='rel'
        Whether ``threshold`` is relative to ``best`` or absolute.
    cooldown : int, default=0
        Number of epochs after a reduction during which bad epochs are not
        counted, >= 0.
    min_lr : float, default=0.0
        Lower bound on the learning rate, >= 0.
    eps : float, default=1e-8
        A reduction smaller than ``eps`` is skipped (the rate is kept), >= 0.
    continue_above_lr : float, default=inf
        Not in PyTorch: when early stopping would end the fit, the runner's
        :meth:`~ScheduleRunner.continue_after_stall` asks the estimator to go
        on while the rate is above this value (in [0, inf]), since this
        schedule can still lower it. The default never does, so early stopping
        stops as usual; the name ``'adaptive'`` sets 1e-6, scikit-learn's rule.

    Examples
    --------
    >>> runner = ReduceLROnPlateau(factor=0.5, patience=1).start(1.0, max_iter=10)
    >>> for loss in [3.0, 2.0, 2.0, 2.0]:
    ...     runner.step(loss)
    >>> runner.lr, runner.best, runner.epoch
    (0.5, 2.0, 4)
    """

    _parameter_constraints = {
        "factor": [NumberInterval(Real, 0, 1, closed="neither")],
        "patience": [_NON_NEGATIVE_INT],
        "threshold": [_NON_NEGATIVE],
        "threshold_mode": [StrOptions({"rel", "abs"})],
        "cooldown": [_NON_NEGATIVE_INT],
        "min_lr": [_NON_NEGATIVE],
        "eps": [_NON_NEGATIVE],
        "continue_above_lr": [NumberInterval(Real, 0, math.inf, closed="both")],
    }

    def __init__(
        self,
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
        continue_above_lr=math.inf,
    ):
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.eps = eps
        self.continue_above_lr = continue_above_lr

    def _validate_params(self):
        super()._validate_params()
        # a relative threshold of 1 or more would make every epoch a bad one
        if self.threshold_mode == "rel" and self.threshold >= 1:
            raise ValueError(
                "ReduceLROnPlateau: threshold must be < 1 when "
                f"threshold_mode='rel'; got {self.threshold!r}."
            )

    def _make_runner(self, base_lr, max_iter, steps_per_epoch):
        return _PlateauRunner(self._frozen(), base_lr)


# ---------------------------------------------------------------------------
# Schedules stepped at every mini-batch.
# ---------------------------------------------------------------------------


class CosineAnnealingWarmRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR), at every mini-batch.

    Mini-batch ``i`` of the ``n`` of epoch ``e`` (both counted from 0) runs at
    the fractional epoch ``t = e + i / n``, at the rate::

        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    where period ``j`` (from 0) lasts ``T_i = T_0 * T_mult ** j`` epochs and
    ``T_cur`` is ``t`` minus the epoch at which the period holding ``t``
    started. Periods start at whole epochs, each at ``base_lr``.

    This is PyTorch's ``CosineAnnealingWarmRestarts`` stepped with fractional
    epochs: batch ``i`` of epoch ``e`` runs at the rate the scheduler holds
    after ``scheduler.step(e + i / n)``. PyTorch's documented recipe calls
    ``scheduler.step(epoch + i / iters)`` *after* the update of batch ``i``, so
    there every batch runs at the rate meant for the one before it (the first
    two batches both at ``t = 0``); here the call comes before the batch, so a
    restart falls on the first batch of its epoch. The period holding ``t`` is
    found in integers: PyTorch's floating-point logarithm misses a few
    restarts (with ``T_mult=10`` the one at epoch 111, with ``T_mult=3`` at
    epoch 121, whose first batch it runs at ``eta_min``).

    The epoch-level record of a fit (``learning_rate_curve_``) holds the rate
    of each epoch's first batch, the value at whole epochs.

    Parameters
    ----------
    T_0 : int, default=10
        Length of the first period, in epochs; positive.
    T_mult : int, default=1
        Factor by which each period is longer than the one before, >= 1.
    eta_min : float, default=0.0
        Minimum learning rate, >= 0.

    Examples
    --------
    >>> runner = CosineAnnealingWarmRestarts(T_0=1).start(1.0, max_iter=3)
    >>> runner.epoch_lrs(4).tolist()
    [1.0, 0.8535533905932737, 0.5, 0.14644660940672627]
    """

    _parameter_constraints = {
        "T_0": [_POSITIVE_INT],
        "T_mult": [_POSITIVE_INT],
        "eta_min": [_NON_NEGATIVE],
    }
    _per_batch = True

    def __init__(self, T_0=10, T_mult=1, eta_min=0.0):
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min

    def _lr(self, base_lr, epoch):
        t = np.asarray(epoch, dtype=np.float64)
        T_0, m = self.T_0, self.T_mult
        if m == 1:
            T_cur, T_i = t % T_0, T_0
        else:
            # period j starts at epoch T_0 (m^j - 1) / (m - 1), a whole number
            whole = np.floor(t).astype(np.int64)
            j = np.floor(np.log(whole / T_0 * (m - 1) + 1) / math.log(m))
            j = j.astype(np.int64)
            j += T_0 * (m ** (j + 1) - 1) // (m - 1) <= whole  # rounded down
            j -= T_0 * (m**j - 1) // (m - 1) > whole  # rounded up
            T_cur = t - T_0 * (m**j - 1) // (m - 1)
            T_i = T_0 * m**j
        cosine = 1.0 + np.cos(np.pi * T_cur / T_i)
        return self.eta_min + (base_lr - self.eta_min) * cosine / 2.0


class _PerStepSchedule(Schedule):
    """Base of the schedules that are functions of the step.

    The step ``k`` counts the mini-batches of the run from 0; the run plans
    ``T`` of them, its ``total_steps`` hyperparameter or, when that is None,
    ``max_iter * steps_per_epoch``. Subclasses write
    ``_step_lrs(base_lr, k, T)`` over an array of steps ``0 <= k < T``, and
    ``_check_plan(T)`` if some of their hyperparameters must fit ``T``.
    """

    def _make_runner(self, base_lr, max_iter, steps_per_epoch):
        frozen = self._frozen()
        total = frozen.total_steps
        if total is None:
            total = max_iter * steps_per_epoch
        frozen._check_plan(total)
        return _StepRunner(frozen, base_lr, total)

    def _check_plan(self, total_steps):
        """Raise ValueError unless the hyperparameters fit ``total_steps``."""

    def _step_lrs(self, base_lr, k, total_steps):
        """Learning rates of the steps ``k`` (an int array) of the run."""
        raise NotImplementedError


class OneCycleLR(_PerStepSchedule):
    """The 1cycle policy, at every mini-batch.

    PyTorch's ``OneCycleLR`` with ``max_lr`` the base rate of the run (the
    estimator's ``learning_rate_init``): the rate rises from ``initial_lr =
    base_lr / div_factor`` to ``base_lr`` over the first ``pct_start`` of the
    steps, then falls to ``min_lr = initial_lr / final_div_factor``. With ``T``
    the planned steps, step ``k`` (counted from 0 over the run) lies in the
    first of these phases whose end step is at least ``k`` (else in the last)::

        phase                   end step                 from         to
        warm-up                 pct_start * T - 1        initial_lr   base_lr
        (three_phase only)      2 * pct_start * T - 2    base_lr      initial_lr
        annealing               T - 1                    (previous)   min_lr

    and with ``s`` the end step of the phase before (0 for the first), ``pct =
    (k - s) / (end - s)`` and::

        'cos':     lr_k = to + (from - to) * (1 + cos(pi * pct)) / 2
        'linear':  lr_k = from + (to - from) * pct

    This is the rate PyTorch's scheduler holds after ``k`` calls to
    ``scheduler.step()``, one after each batch. Two differences: a phase of
    zero steps (``pct_start * T == 1``, where PyTorch divides by zero) gives
    its step the phase's end rate, and steps past ``T`` (``partial_fit``
    beyond ``max_iter`` epochs, or a ``total_steps`` shorter than the fit) keep
    the rate of step ``T - 1``, where PyTorch raises. PyTorch's momentum
    cycling (``cycle_momentum``) is not done: the optimizer's momentum and
    betas stay fixed for a fit.

    Parameters
    ----------
    total_steps : int or None, default=None
        Planned number of steps (mini-batches) of the run, positive; None
        plans ``max_iter`` epochs of the fit's batches (for ``partial_fit``,
        of the batches of its first call).
    pct_start : float, default=0.3
        Fraction of the steps spent raising the rate, in [0, 1].
    anneal_strategy : {'cos', 'linear'}, default='cos'
        Shape of each phase.
    div_factor : float, default=25.0
        ``initial_lr = base_lr / div_factor``, > 0.
    final_div_factor : float, default=1e4
        ``min_lr = initial_lr / final_div_factor``, > 0.
    three_phase : bool, default=False
        Return to ``initial_lr`` before the final annealing (the original
        paper's shape) instead of annealing from the peak.

    Examples
    --------
    >>> runner = OneCycleLR(pct_start=0.5, anneal_strategy="linear",
    ...                     div_factor=10, final_div_factor=10).start(1.0, 2, 3)
    >>> runner.epoch_lrs(3).tolist()
    [0.1, 0.55, 1.0]
    >>> runner.step(n_batches=3); runner.epoch_lrs(3).round(12).tolist()
    [0.67, 0.34, 0.01]
    """

    _parameter_constraints = {
        "total_steps": _TOTAL_STEPS,
        "pct_start": [NumberInterval(Real, 0, 1, closed="both")],
        "anneal_strategy": [StrOptions({"cos", "linear"})],
        "div_factor": [NumberInterval(Real, 0, None, closed="neither")],
        "final_div_factor": [NumberInterval(Real, 0, None, closed="neither")],
        "three_phase": ["boolean"],
    }

    def __init__(
        self,
        total_steps=None,
        pct_start=0.3,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
    ):
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase

    def _phases(self, base_lr, total_steps):
        """(end step, start rate, end rate) of each phase, as PyTorch's."""
        initial = base_lr / self.div_factor
        final = initial / self.final_div_factor
        up = float(self.pct_start * total_steps) - 1
        if self.three_phase:
            down = float(2 * self.pct_start * total_steps) - 2
            return [(up, initial, base_lr), (down, base_lr, initial),
                    (total_steps - 1, initial, final)]  # fmt: skip
        return [(up, initial, base_lr), (total_steps - 1, base_lr, final)]

    def _step_lrs(self, base_lr, k, total_steps):
        phases = self._phases(base_lr, total_steps)
        k = np.asarray(k, dtype=np.float64)
        lrs = np.empty_like(k)
        todo = np.ones(k.shape, dtype=bool)
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(phases):
            here = todo if i == len(phases) - 1 else todo & (k <= end_step)
            span = end_step - start_step
            pct = (k[here] - start_step) / span if span else 1.0
            if self.anneal_strategy == "cos":
                lrs[here] = end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
            else:
                lrs[here] = (end - start) * pct + start
            todo &= ~here
            start_step = end_step
        return lrs


class WarmupCosine(_PerStepSchedule):
    """Linear warm-up, then cosine annealing to ``eta_min``, at every mini-batch.

    With ``T`` the planned steps and ``W`` the warm-up steps, the rate of step
    ``k`` (counted from 0 over the run) is::

        lr_k = base_lr * (k + 1) / W                                  k < W
        lr_k = eta_min + (base_lr - eta_min)
                         * (1 + cos(pi * (k - W) / (T - W))) / 2      k >= W

    the per-step form of ``Warmup(W, after=CosineAnnealingLR(T - W, eta_min))``:
    the last warm-up step and the first annealing step run at ``base_lr``, the
    last planned step just above ``eta_min``. In PyTorch it is
    ``SequentialLR([LinearLR(start_factor=1 / W, end_factor=1, total_iters=W -
    1), CosineAnnealingLR(T_max=T - W, eta_min=eta_min)], milestones=[W])``,
    stepped after every batch. Steps past ``T`` (``partial_fit`` beyond
    ``max_iter`` epochs, or a ``total_steps`` shorter than the fit) keep the
    rate of step ``T - 1``.

    Parameters
    ----------
    warmup_steps : int or float, default=0.05
        Length of the warm-up: an int >= 0 is a number of steps; a float in
        [0, 1) a fraction of ``T``, rounded to the nearest step (halves up).
        Fewer than ``T`` steps.
    eta_min : float, default=0.0
        Rate the cosine anneals to, >= 0.
    total_steps : int or None, default=None
        Planned number of steps (mini-batches) of the run, positive; None
        plans ``max_iter`` epochs of the fit's batches (for ``partial_fit``,
        of the batches of its first call).

    Examples
    --------
    >>> runner = WarmupCosine(warmup_steps=2, total_steps=6).start(1.0, 1)
    >>> runner.epoch_lrs(6).tolist()
    [0.5, 1.0, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627]
    """

    _parameter_constraints = {
        "warmup_steps": [
            _NON_NEGATIVE_INT,
            NumberInterval(Real, 0, 1, closed="left"),
        ],
        "eta_min": [_NON_NEGATIVE],
        "total_steps": _TOTAL_STEPS,
    }

    def __init__(self, warmup_steps=0.05, eta_min=0.0, total_steps=None):
        self.warmup_steps = warmup_steps
        self.eta_min = eta_min
        self.total_steps = total_steps

    def _warmup(self, total_steps):
        """The number of warm-up steps of a run of ``total_steps``."""
        if isinstance(self.warmup_steps, Integral):
            return int(self.warmup_steps)
        return math.floor(self.warmup_steps * total_steps + 0.5)

    def _check_plan(self, total_steps):
        if self._warmup(total_steps) >= total_steps:
            raise ValueError(
                f"WarmupCosine: warmup_steps={self.warmup_steps!r} gives "
                f"{self._warmup(total_steps)} warm-up steps, but the run has "
                f"{total_steps} steps; the warm-up must be shorter."
            )

    def _step_lrs(self, base_lr, k, total_steps):
        W = self._warmup(total_steps)
        k = np.asarray(k, dtype=np.float64)
        lrs = np.empty_like(k)
        warm = k < W
        lrs[warm] = base_lr * (k[warm] + 1) / W
        cosine = 1.0 + np.cos(np.pi * (k[~warm] - W) / (total_steps - W))
        lrs[~warm] = self.eta_min + (base_lr - self.eta_min) * cosine / 2.0
        return lrs


class CosLog(_PerStepSchedule):
    """RealMLP's ``coslog`` schedule: cosine cycles on a log time scale, at
    every mini-batch.

    With ``T`` the planned steps and ``p = k / T`` the progress at step ``k``
    (counted from 0 over the run), the rate is::

        lr_k = base_lr * (1 - cos(2 * pi * log2(1 + (2 ** n_cycles - 1) * p))) / 2

    With ``n_cycles=4`` (the name ``'coslog4'``) this is ``0.5 * (1 - cos(2 *
    pi * log2(1 + 15 p)))``, the default schedule of RealMLP (Holzmüller et al.
    2024, "Better by Default: Strong Pre-Tuned MLPs and Boosted Trees on
    Tabular Data"), written as pytabkit's ``CoslogFunc``. Cycle ``j`` (from 1)
    ends at ``p = (2 ** j - 1) / (2 ** n_cycles - 1)``, so each cycle lasts
    twice as long as the one before; within each the rate rises from 0 to
    ``base_lr`` and falls back, and the first step of a run has rate 0.
    pytabkit measures ``p`` in samples seen before the step; here it is
    counted in steps, the same unless an epoch's last batch is short. Steps
    past ``T`` keep the rate of step ``T - 1``.

    Parameters
    ----------
    n_cycles : int, default=4
        Number of cycles, positive.
    total_steps : int or None, default=None
        Planned number of steps (mini-batches) of the run, positive; None
        plans ``max_iter`` epochs of the fit's batches (for ``partial_fit``,
        of the batches of its first call).

    Examples
    --------
    >>> runner = CosLog(n_cycles=1, total_steps=4).start(1.0, 1)
    >>> runner.epoch_lrs(4).round(6).tolist()
    [0.0, 0.718355, 0.930431, 0.323689]
    """

    _parameter_constraints = {
        "n_cycles": [_POSITIVE_INT],
        "total_steps": _TOTAL_STEPS,
    }

    def __init__(self, n_cycles=4, total_steps=None):
        self.n_cycles = n_cycles
        self.total_steps = total_steps

    def _step_lrs(self, base_lr, k, total_steps):
        p = np.asarray(k, dtype=np.float64) / total_steps
        log_time = np.log2(1.0 + (2.0**self.n_cycles - 1.0) * p)
        return base_lr * 0.5 * (1.0 - np.cos(2.0 * np.pi * log_time))


# ---------------------------------------------------------------------------
# Names. Each factory takes (max_iter, tol, power_t) and ignores what it does
# not use; its docstring is its documentation in resolve_schedule.
# ---------------------------------------------------------------------------


def _constant(max_iter, tol, power_t):
    """``Constant()``."""
    return Constant()


def _step(max_iter, tol, power_t):
    """``StepLR(step_size=max(1, max_iter // 3), gamma=0.1)``."""
    return StepLR(step_size=max(1, max_iter // 3), gamma=0.1)


def _exponential(max_iter, tol, power_t):
    """``ExponentialLR(gamma=0.01 ** (1 / max_iter))``, i.e. the rate decays
    to 1% of ``base_lr`` over ``max_iter`` epochs."""
    return ExponentialLR(gamma=0.01 ** (1.0 / max_iter))


def _linear(max_iter, tol, power_t):
    """``LinearLR(start_factor=1.0, end_factor=0.01, total_iters=max_iter)``."""
    return LinearLR(start_factor=1.0, end_factor=0.01, total_iters=max_iter)


def _cosine(max_iter, tol, power_t):
    """``CosineAnnealingLR(T_max=max_iter)``."""
    return CosineAnnealingLR(T_max=max_iter)


def _invscaling(max_iter, tol, power_t):
    """``InverseScaling(power_t)`` (per epoch; see :class:`InverseScaling`
    for the difference with scikit-learn)."""
    return InverseScaling(power_t=power_t)


def _onecycle(max_iter, tol, power_t):
    """``OneCycleLR()``: PyTorch's defaults, over the fit's mini-batches."""
    return OneCycleLR()


def _warmup_cosine(max_iter, tol, power_t):
    """``WarmupCosine()``: a linear warm-up over 5% of the fit's
    mini-batches, then a cosine to 0 over the rest."""
    return WarmupCosine()


def _coslog4(max_iter, tol, power_t):
    """``CosLog(n_cycles=4)``: RealMLP's default, four cosine cycles on a
    log time scale over the fit's mini-batches."""
    return CosLog(n_cycles=4)


def _plateau(max_iter, tol, power_t):
    """``ReduceLROnPlateau()`` (PyTorch's defaults)."""
    return ReduceLROnPlateau()


def _adaptive(max_iter, tol, power_t):
    """scikit-learn's name, ``ReduceLROnPlateau(factor=0.2, patience=1,
    threshold=tol, threshold_mode='abs', cooldown=0, min_lr=0.0, eps=0.0,
    continue_above_lr=1e-6)``: the rate is divided by 5 each time two
    consecutive epochs fail to decrease the loss by at least ``tol``, as
    scikit-learn documents for ``learning_rate='adaptive'``, and early
    stopping does not end the fit while the rate is above 1e-6. Two small
    differences remain: scikit-learn's counter compares with the lowest loss
    seen (PyTorch's ``best`` only moves on an improvement by ``tol``), and
    scikit-learn's code waits for ``n_iter_no_change + 1`` bad epochs rather
    than the documented two (use ``ReduceLROnPlateau(patience=n_iter_no_change,
    ...)`` for that)."""
    return ReduceLROnPlateau(
        factor=0.2,
        patience=1,
        threshold=tol,
        threshold_mode="abs",
        cooldown=0,
        min_lr=0.0,
        eps=0.0,
        continue_above_lr=_ADAPTIVE_MIN_LR,
    )


_SCHEDULES = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "linear": _linear,
    "cosine": _cosine,
    "invscaling": _invscaling,
    "plateau": _plateau,
    "adaptive": _adaptive,
    "onecycle": _onecycle,
    "warmup_cosine": _warmup_cosine,
    "coslog4": _coslog4,
}

SCHEDULE_NAMES = tuple(_SCHEDULES)
"""Names accepted by :func:`resolve_schedule` (and hence by the estimators)."""


# Warmup comes after the names: its `after` accepts them.
class Warmup(Schedule):
    """Linear warm-up, then another schedule.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * (e + 1) / epochs    for e < epochs
        lr_e = after_(e - epochs)            for e >= epochs

    where ``after_(k)`` is the learning rate of epoch ``k`` of a run of
    ``after`` started with the same ``base_lr`` and ``max_iter - epochs``
    epochs (at least 1): the inner schedule has its own epoch counter, which
    starts at 0 at the end of the warm-up. The warm-up is stepped per epoch; a
    per-step ``after`` (such as :class:`OneCycleLR`) plans its steps over the
    remaining epochs and counts them from the end of the warm-up. Metrics
    passed to ``step`` during the warm-up are ignored (an inner
    :class:`ReduceLROnPlateau` first sees the metric of the first epoch after
    the warm-up), and so is a stall: the runner's
    :meth:`~ScheduleRunner.continue_after_stall` is the inner runner's once
    the warm-up is over, False before.

    Parameters
    ----------
    epochs : int, default=5
        Number of warm-up epochs, positive. The last warm-up epoch runs at
        ``base_lr``.
    after : Schedule, str or None, default=None
        Schedule that follows the warm-up. ``None`` means :class:`Constant`;
        a name from :data:`SCHEDULE_NAMES` is resolved by
        :func:`resolve_schedule` with ``max_iter - epochs`` epochs (e.g.
        ``'cosine'`` anneals over the remaining epochs) and its other defaults.

    Examples
    --------
    >>> runner = Warmup(epochs=2, after=StepLR(step_size=1, gamma=0.5)).start(1.0, 10)
    >>> lrs = []
    >>> for _ in range(5):
    ...     lrs.append(runner.lr)
    ...     runner.step()
    >>> lrs
    [0.5, 1.0, 1.0, 0.5, 0.25]
    """

    _parameter_constraints = {
        "epochs": [_POSITIVE_INT],
        "after": [None, StrOptions(set(SCHEDULE_NAMES)), Schedule],
    }

    def __init__(self, epochs=5, after=None):
        self.epochs = epochs
        self.after = after

    def _make_runner(self, base_lr, max_iter, steps_per_epoch):
        frozen = self._frozen()
        remaining = max(1, max_iter - frozen.epochs)
        after = resolve_schedule(
            Constant() if frozen.after is None else frozen.after, remaining
        )
        inner = after.start(base_lr, remaining, steps_per_epoch)
        return _WarmupRunner(frozen, base_lr, inner)


@document_names(_SCHEDULES)
def resolve_schedule(schedule, max_iter, *, tol=1e-4, power_t=0.5):
    """Turn a schedule name or instance into a :class:`Schedule`.

    Parameters
    ----------
    schedule : str or Schedule
        A :class:`Schedule` instance, returned as is (not copied), or one of
        :data:`SCHEDULE_NAMES`:

        {names}
    max_iter : int
        Planned number of epochs, >= 1; sets the defaults of the names.
    tol : float, default=1e-4
        Improvement threshold of ``'adaptive'`` (the estimator's ``tol``).
    power_t : float, default=0.5
        Exponent of ``'invscaling'`` (the estimator's ``power_t``).

    Returns
    -------
    schedule : Schedule
        Not validated yet: :meth:`Schedule.start` does that.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError``, if ``schedule`` is neither a name
        in :data:`SCHEDULE_NAMES` (the message lists them) nor a
        :class:`Schedule`, or if ``max_iter`` is not a positive int.
    """
    validate_parameter_constraints(
        {
            "schedule": [StrOptions(set(SCHEDULE_NAMES)), Schedule],
            "max_iter": [_POSITIVE_INT],
        },
        {"schedule": schedule, "max_iter": max_iter},
        caller_name="resolve_schedule",
    )
    if isinstance(schedule, Schedule):
        return schedule
    return _SCHEDULES[schedule](int(max_iter), tol, power_t)
