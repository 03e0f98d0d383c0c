"""Learning-rate schedules, stepped once per epoch.

A schedule is a small scikit-learn style parameter object (a
:class:`~sklearn.base.BaseEstimator`, so ``get_params``/``set_params``/``clone``
and nested names such as ``schedule__gamma`` work in ``GridSearchCV``). It holds
hyperparameters only. A *run* of a schedule is a separate object, the runner,
created fresh for every fit::

    runner = schedule.start(base_lr, max_iter)  # validates; never mutates `schedule`
    for epoch in range(max_iter):
        lr = runner.lr                # learning rate of the epoch about to run
        loss = run_one_epoch(lr)
        runner.step(metric=loss)      # once after each epoch
    runner.epoch                      # number of completed epochs

``metric`` is the monitored loss (lower is better). Only
:class:`ReduceLROnPlateau` (directly or wrapped in :class:`Warmup`) reads it;
the other schedules ignore it. Runners are plain picklable objects, so a fit
can be checkpointed and resumed mid-run.

The semantics follow PyTorch's ``torch.optim.lr_scheduler`` with ``epoch``
playing the role of ``last_epoch``: the learning rate of epoch ``e`` (counted
from 0) is the value PyTorch's scheduler holds after ``e`` calls to
``scheduler.step()``. Schedules that are functions of the epoch are evaluated
in closed form, so no rounding error accumulates over long runs.

The schedules can also be named by a string; :func:`resolve_schedule` maps the
names in :data:`SCHEDULE_NAMES` to instances whose defaults depend on
``max_iter``.
"""

import math
import numbers

from sklearn.base import BaseEstimator

__all__ = [
    "SCHEDULE_NAMES",
    "Constant",
    "CosineAnnealingLR",
    "ExponentialLR",
    "InverseScaling",
    "LinearLR",
    "MultiStepLR",
    "ReduceLROnPlateau",
    "Schedule",
    "ScheduleRunner",
    "StepLR",
    "Warmup",
    "resolve_schedule",
]

SCHEDULE_NAMES = (
    "constant",
    "step",
    "exponential",
    "linear",
    "cosine",
    "invscaling",
    "plateau",
    "adaptive",
)
"""Names accepted by :func:`resolve_schedule` (and hence by the estimators)."""


# ---------------------------------------------------------------------------
# Validation helpers. They return the value converted to a Python int/float.
# ---------------------------------------------------------------------------


def _fmt_interval(low, high, low_closed, high_closed):
    left = "[" if low_closed else "("
    right = "]" if high_closed else ")"
    low_s = "-inf" if low is None else f"{low:g}"
    high_s = "inf" if high is None else f"{high:g}"
    return f"{left}{low_s}, {high_s}{right}"


def _check_real(
    owner, name, value, low=None, high=None, low_closed=True, high_closed=True
):
    """Check that ``value`` is a finite real number in the given interval."""
    interval = _fmt_interval(low, high, low_closed, high_closed)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_closed else value > low
    if ok and high is not None:
        ok = value <= high if high_closed else value < high
    if not ok:
        raise ValueError(
            f"{owner}: {name} must be a finite real number in {interval}; "
            f"got {value!r}."
        )
    return value


def _check_int(owner, name, value, low):
    """Check that ``value`` is an integer (not a bool) with ``value >= low``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = value >= low
    if not ok:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{owner}: {name} must be {what}; got {value!r}.")
    return value


def _check_run_args(owner, base_lr, max_iter):
    base_lr = _check_real(owner, "base_lr", base_lr, 0.0, None, low_closed=False)
    max_iter = _check_int(owner, "max_iter", max_iter, 1)
    return base_lr, max_iter


# ---------------------------------------------------------------------------
# Runners: the state of one run of a schedule.
# ---------------------------------------------------------------------------


class ScheduleRunner:
    """State of one run of a schedule (base class).

    Created by :meth:`Schedule.start`; not meant to be built directly.

    Attributes
    ----------
    base_lr : float
        Initial learning rate of the run.
    lr : float
        Learning rate for the epoch about to run.
    epoch : int
        Number of completed epochs (number of calls to :meth:`step`).
    """

    def __init__(self, base_lr):
        self.base_lr = float(base_lr)
        self.epoch = 0
        self.lr = self.base_lr

    def step(self, metric=None):
        """Advance by one completed epoch.

        Parameters
        ----------
        metric : float or None, default=None
            Monitored loss of the epoch just completed (lower is better).
            Ignored by schedules that do not monitor a metric.
        """
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(epoch={self.epoch}, lr={self.lr!r})"


class _ClosedFormRunner(ScheduleRunner):
    """Runner of a schedule whose lr is a pure function of the epoch.

    ``lr = func(base_lr, epoch, **params)``; ``func`` is a module-level
    function so the runner pickles by reference.
    """

    def __init__(self, func, base_lr, params):
        super().__init__(base_lr)
        self.func = func
        self.params = dict(params)
        self.lr = float(func(self.base_lr, 0, **self.params))

    def step(self, metric=None):
        self.epoch += 1
        self.lr = float(self.func(self.base_lr, self.epoch, **self.params))


class _PlateauRunner(ScheduleRunner):
    """Runner of :class:`ReduceLROnPlateau` (PyTorch's state machine, mode='min')."""

    def __init__(
        self,
        base_lr,
        factor,
        patience,
        threshold,
        threshold_mode,
        cooldown,
        min_lr,
        eps,
    ):
        super().__init__(base_lr)
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.eps = eps
        self.best = math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, current):
        """Whether ``current`` improves on :attr:`best` by the threshold."""
        if self.threshold_mode == "rel":
            return current < self.best * (1.0 - self.threshold)
        return current < self.best - self.threshold

    def step(self, metric=None):
        if metric is None:
            raise ValueError(
                "ReduceLROnPlateau monitors a metric: call runner.step(metric) "
                "with the monitored loss of the epoch just completed."
            )
        current = float(metric)
        self.epoch += 1
        if self.is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0


class _WarmupRunner(ScheduleRunner):
    """Runner of :class:`Warmup`: linear ramp, then an inner runner."""

    def __init__(self, base_lr, epochs, inner):
        super().__init__(base_lr)
        self.epochs = epochs
        self.inner = inner
        self.lr = self._current_lr()

    def _current_lr(self):
        if self.epoch < self.epochs:
            return self.base_lr * (self.epoch + 1) / self.epochs
        return self.inner.lr

    def step(self, metric=None):
        # The epoch just completed ran with the inner schedule's lr only if it
        # was past the warm-up; only then does the inner schedule see it.
        if self.epoch >= self.epochs:
            self.inner.step(metric)
        self.epoch += 1
        self.lr = self._current_lr()

    def __repr__(self):
        return (
            f"{type(self).__name__}(epoch={self.epoch}, lr={self.lr!r}, "
            f"inner={self.inner!r})"
        )


# ---------------------------------------------------------------------------
# Pure functions of the epoch (the formulas of the closed-form schedules).
# ---------------------------------------------------------------------------


def _constant_lr(base_lr, epoch):
    return base_lr


def _step_lr(base_lr, epoch, step_size, gamma):
    return base_lr * gamma ** (epoch // step_size)


def _multistep_lr(base_lr, epoch, milestones, gamma):
    return base_lr * gamma ** sum(1 for m in milestones if m <= epoch)


def _exponential_lr(base_lr, epoch, gamma):
    return base_lr * gamma**epoch


def _linear_lr(base_lr, epoch, start_factor, end_factor, total_iters):
    frac = min(epoch, total_iters) / total_iters
    return base_lr * (start_factor + (end_factor - start_factor) * frac)


def _cosine_lr(base_lr, epoch, T_max, eta_min):
    return (
        eta_min + (base_lr - eta_min) * (1.0 + math.cos(math.pi * epoch / T_max)) / 2.0
    )


def _inverse_scaling_lr(base_lr, epoch, power_t):
    return base_lr / (epoch + 1.0) ** power_t


# ---------------------------------------------------------------------------
# Schedules: hyperparameter objects.
# ---------------------------------------------------------------------------


class Schedule(BaseEstimator):
    """Base class of learning-rate schedules.

    Subclasses store their hyperparameters in ``__init__`` unchanged and
    implement :meth:`_validate` (check the hyperparameters, return them
    converted) and :meth:`_make_runner`. Closed-form schedules only set the
    class attribute ``_lr_function``.
    """

    _lr_function = None

    def start(self, base_lr, max_iter):
        """Validate the hyperparameters and start a run.

        Parameters
        ----------
        base_lr : float
            Initial learning rate, > 0.
        max_iter : int
            Planned number of epochs of the run, >= 1.

        Returns
        -------
        runner : ScheduleRunner
            A fresh runner; ``runner.lr`` is the learning rate of epoch 0.
            The schedule itself is not modified, and later changes to it do
            not affect the runner.

        Raises
        ------
        ValueError
            If a hyperparameter, ``base_lr`` or ``max_iter`` is invalid.
        """
        owner = type(self).__name__
        base_lr, max_iter = _check_run_args(owner, base_lr, max_iter)
        params = self._validate()
        return self._make_runner(base_lr, max_iter, params)

    def _validate(self):
        """Check the hyperparameters; return them converted, as a dict.

        Raises
        ------
        ValueError
            Naming the offending parameter and its allowed range.
        """
        return {}

    def _make_runner(self, base_lr, max_iter, params):
        if type(self)._lr_function is None:
            raise NotImplementedError(
                f"{type(self).__name__} must define _lr_function or _make_runner."
            )
        return _ClosedFormRunner(type(self)._lr_function, base_lr, params)


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

    _lr_function = staticmethod(_constant_lr)

    def __init__(self):
        pass


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

    _lr_function = staticmethod(_step_lr)

    def __init__(self, step_size=10, gamma=0.1):
        self.step_size = step_size
        self.gamma = gamma

    def _validate(self):
        owner = type(self).__name__
        return {
            "step_size": _check_int(owner, "step_size", self.step_size, 1),
            "gamma": _check_real(
                owner, "gamma", self.gamma, 0.0, 1.0, low_closed=False
            ),
        }


class MultiStepLR(Schedule):
    """Decay the learning rate by ``gamma`` at each milestone epoch.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * gamma ** (number of milestones m with m <= e)

    As PyTorch's ``MultiStepLR`` (with distinct milestones).

    Parameters
    ----------
    milestones : sequence of int, default=(30, 80)
        Strictly increasing positive epoch indices. May be empty (constant).
    gamma : float, default=0.1
        Multiplicative factor of the decay, in (0, 1].
    """

    _lr_function = staticmethod(_multistep_lr)

    def __init__(self, milestones=(30, 80), gamma=0.1):
        self.milestones = milestones
        self.gamma = gamma

    def _validate(self):
        owner = type(self).__name__
        message = (
            f"{owner}: milestones must be a sequence of strictly increasing "
            f"positive ints; got {self.milestones!r}."
        )
        if isinstance(self.milestones, (str, bytes)) or not hasattr(
            self.milestones, "__iter__"
        ):
            raise ValueError(message)
        milestones = []
        for m in self.milestones:
            if (
                not isinstance(m, numbers.Integral)
                or isinstance(m, bool)
                or m < 1
                or (milestones and m <= milestones[-1])
            ):
                raise ValueError(message)
            milestones.append(int(m))
        return {
            "milestones": tuple(milestones),
            "gamma": _check_real(
                owner, "gamma", self.gamma, 0.0, 1.0, low_closed=False
            ),
        }


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

    _lr_function = staticmethod(_exponential_lr)

    def __init__(self, gamma=0.99):
        self.gamma = gamma

    def _validate(self):
        owner = type(self).__name__
        return {
            "gamma": _check_real(owner, "gamma", self.gamma, 0.0, 1.0, low_closed=False)
        }


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

    _lr_function = staticmethod(_linear_lr)

    def __init__(self, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters

    def _validate(self):
        owner = type(self).__name__
        return {
            "start_factor": _check_real(
                owner, "start_factor", self.start_factor, 0.0, 1.0, low_closed=False
            ),
            "end_factor": _check_real(owner, "end_factor", self.end_factor, 0.0, 1.0),
            "total_iters": _check_int(owner, "total_iters", self.total_iters, 1),
        }


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

    _lr_function = staticmethod(_cosine_lr)

    def __init__(self, T_max=100, eta_min=0.0):
        self.T_max = T_max
        self.eta_min = eta_min

    def _validate(self):
        owner = type(self).__name__
        return {
            "T_max": _check_real(
                owner, "T_max", self.T_max, 0.0, None, low_closed=False
            ),
            "eta_min": _check_real(owner, "eta_min", self.eta_min, 0.0, None),
        }


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

    _lr_function = staticmethod(_inverse_scaling_lr)

    def __init__(self, power_t=0.5):
        self.power_t = power_t

    def _validate(self):
        owner = type(self).__name__
        return {"power_t": _check_real(owner, "power_t", self.power_t, 0.0, None)}


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

    Examples
    --------
    >>> runner = ReduceLROnPlateau(factor=0.5, patience=1).start(1.0, max_iter=10)
    >>> for loss in [3.0, 2.0, 2.0, 2.0]:
    ...     runner.step(loss)
    >>> runner.lr, runner.best, runner.epoch
    (0.5, 2.0, 4)
    """

    def __init__(
        self,
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
    ):
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.eps = eps

    def _validate(self):
        owner = type(self).__name__
        if self.threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{owner}: threshold_mode must be 'rel' or 'abs'; "
                f"got {self.threshold_mode!r}."
            )
        high = 1.0 if self.threshold_mode == "rel" else None
        return {
            "factor": _check_real(
                owner,
                "factor",
                self.factor,
                0.0,
                1.0,
                low_closed=False,
                high_closed=False,
            ),
            "patience": _check_int(owner, "patience", self.patience, 0),
            "threshold": _check_real(
                owner, "threshold", self.threshold, 0.0, high, high_closed=False
            ),
            "threshold_mode": self.threshold_mode,
            "cooldown": _check_int(owner, "cooldown", self.cooldown, 0),
            "min_lr": _check_real(owner, "min_lr", self.min_lr, 0.0, None),
            "eps": _check_real(owner, "eps", self.eps, 0.0, None),
        }

    def _make_runner(self, base_lr, max_iter, params):
        return _PlateauRunner(base_lr, **params)


class Warmup(Schedule):
    """Linear warm-up, then another schedule.

    The learning rate of epoch ``e`` (counted from 0) is::

        lr_e = base_lr * (e + 1) / epochs    for e < epochs
        lr_e = after_(e - epochs)            for e >= epochs

    where ``after_(k)`` is the learning rate of epoch ``k`` of a run of
    ``after`` started with the same ``base_lr`` and ``max_iter - epochs``
    epochs (at least 1): the inner schedule has its own epoch counter, which
    starts at 0 at the end of the warm-up. Metrics
    passed to ``step`` during the warm-up are ignored (an inner
    :class:`ReduceLROnPlateau` first sees the metric of the first epoch after
    the warm-up).

    Parameters
    ----------
    epochs : int, default=5
        Number of warm-up epochs, positive. The last warm-up epoch runs at
        ``base_lr``.
    after : Schedule, str or None, default=None
        Schedule that follows the warm-up. ``None`` means :class:`Constant`;
        a name from :data:`SCHEDULE_NAMES` is resolved by
        :func:`resolve_schedule` with ``max_iter - epochs`` epochs (e.g.
        ``'cosine'`` anneals over the remaining epochs).

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

    def __init__(self, epochs=5, after=None):
        self.epochs = epochs
        self.after = after

    def _validate(self):
        owner = type(self).__name__
        epochs = _check_int(owner, "epochs", self.epochs, 1)
        if not (self.after is None or isinstance(self.after, (str, Schedule))):
            raise ValueError(
                f"{owner}: after must be None, a schedule name in {SCHEDULE_NAMES} "
                f"or a Schedule instance; got {self.after!r}."
            )
        return {"epochs": epochs, "after": self.after}

    def _make_runner(self, base_lr, max_iter, params):
        epochs, after = params["epochs"], params["after"]
        remaining = max(1, max_iter - epochs)
        if after is None:
            after = Constant()
        elif isinstance(after, str):
            after = resolve_schedule(after, remaining)
        return _WarmupRunner(base_lr, epochs, after.start(base_lr, remaining))


# ---------------------------------------------------------------------------
# Names.
# ---------------------------------------------------------------------------


def resolve_schedule(schedule, max_iter, *, tol=1e-4):
    """Turn a schedule name or instance into a :class:`Schedule`.

    Parameters
    ----------
    schedule : str or Schedule
        A :class:`Schedule` instance, returned as is (not copied), or one of
        :data:`SCHEDULE_NAMES`:

        - ``'constant'``: ``Constant()``.
        - ``'step'``: ``StepLR(step_size=max(1, max_iter // 3), gamma=0.1)``.
        - ``'exponential'``: ``ExponentialLR(gamma=0.01 ** (1 / max_iter))``,
          i.e. the rate decays to 1% of ``base_lr`` over ``max_iter`` epochs.
        - ``'linear'``: ``LinearLR(start_factor=1.0, end_factor=0.01,
          total_iters=max_iter)``.
        - ``'cosine'``: ``CosineAnnealingLR(T_max=max_iter)``.
        - ``'invscaling'``: ``InverseScaling(power_t=0.5)`` (per epoch; see
          :class:`InverseScaling` for the difference with scikit-learn).
        - ``'plateau'``: ``ReduceLROnPlateau()`` (PyTorch's defaults).
        - ``'adaptive'``: scikit-learn's name, ``ReduceLROnPlateau(factor=0.2,
          patience=1, threshold=tol, threshold_mode='abs', cooldown=0,
          min_lr=0.0, eps=0.0)``: the rate is divided by 5 each time two
          consecutive epochs fail to decrease the loss by at least ``tol``,
          as scikit-learn documents for ``learning_rate='adaptive'``. Two
          small differences remain: scikit-learn's counter compares with
          the lowest loss seen (PyTorch's ``best`` only moves on an
          improvement by ``tol``), and scikit-learn's code waits for
          ``n_iter_no_change + 1`` bad epochs rather than the documented two
          (use ``ReduceLROnPlateau(patience=n_iter_no_change, ...)`` for
          that). Stopping once the rate falls below 1e-6 is left to the
          estimator.
    max_iter : int
        Planned number of epochs, >= 1; sets the defaults of the names.
    tol : float, default=1e-4
        Improvement threshold of ``'adaptive'`` (the estimator's ``tol``).

    Returns
    -------
    schedule : Schedule

    Raises
    ------
    ValueError
        If ``schedule`` is an unknown name (the message lists the valid
        names) or ``max_iter`` is not a positive int.
    TypeError
        If ``schedule`` is neither a string nor a :class:`Schedule`.
    """
    if isinstance(schedule, Schedule):
        return schedule
    if not isinstance(schedule, str):
        raise TypeError(
            "schedule must be a Schedule instance or one of "
            f"{', '.join(map(repr, SCHEDULE_NAMES))}; got {schedule!r} "
            f"of type {type(schedule).__name__}."
        )
    if schedule not in SCHEDULE_NAMES:
        raise ValueError(
            f"Unknown schedule {schedule!r}; valid names are "
            f"{', '.join(map(repr, SCHEDULE_NAMES))}, or pass a Schedule instance."
        )
    max_iter = _check_int("resolve_schedule", "max_iter", max_iter, 1)
    if schedule == "constant":
        return Constant()
    if schedule == "step":
        return StepLR(step_size=max(1, max_iter // 3), gamma=0.1)
    if schedule == "exponential":
        return ExponentialLR(gamma=0.01 ** (1.0 / max_iter))
    if schedule == "linear":
        return LinearLR(start_factor=1.0, end_factor=0.01, total_iters=max_iter)
    if schedule == "cosine":
        return CosineAnnealingLR(T_max=max_iter)
    if schedule == "invscaling":
        return InverseScaling(power_t=0.5)
    if schedule == "plateau":
        return ReduceLROnPlateau()
    # 'adaptive'
    return ReduceLROnPlateau(
        factor=0.2,
        patience=1,
        threshold=tol,
        threshold_mode="abs",
        cooldown=0,
        min_lr=0.0,
        eps=0.0,
    )
