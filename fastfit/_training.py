"""The epoch loop of the estimators: epochs, early stopping, divergence, progress.

Python runs once per epoch (permutation, the epoch's learning rates, one per
mini-batch, the probe forward pass, scoring, early stopping, progress); the
engine's :class:`Trainer` runs the epoch's mini-batches in one call with the
GIL released (or in a few calls, to draw a progress bar).
"""

import functools
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastfit._parallel import SingleThreadedBlas
from fastfit._sparse import engine_input

# rows of X forward-checked after each epoch when there is no validation set
DIVERGENCE_PROBE_ROWS = 256
# verbose=2 shows a bar within epochs of at least this many batches, updated
# after each of PROGRESS_PIECES engine calls.
PROGRESS_MIN_BATCHES = 50
PROGRESS_PIECES = 20
# An epoch runs as engine calls of about this many seconds, sized from the
# batches timed so far: Python (and so Ctrl-C) gets control between calls, a
# few microseconds each.
CALL_SECONDS = 0.1


@dataclass
class Dataset:
    """Engine-ready data: C-contiguous arrays of the training dtype.

    ``X`` may also be a scipy CSR matrix (``engine_X`` is what the engine
    reads); ``Y`` holds the encoded targets; ``sample_weight`` is None for unit
    weights; ``y`` keeps the original targets (scoring).
    """

    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray = None
    y: np.ndarray = None

    @functools.cached_property
    def engine_X(self):
        """X as the engine takes it (a CSRInput for a sparse X)."""
        return engine_input(self.X, self.X.dtype)

    def subset(self, idx):
        """The rows ``idx``, as new contiguous arrays."""
        sw = self.sample_weight
        return Dataset(
            self.X[idx] if sp.issparse(self.X) else np.ascontiguousarray(self.X[idx]),
            np.ascontiguousarray(self.Y[idx]),
            None if sw is None else np.ascontiguousarray(sw[idx]),
            None if self.y is None else self.y[idx],
        )


class EarlyStopping:
    """scikit-learn's stopping rule: stop after more than ``n_iter_no_change``
    epochs without an improvement by ``tol`` of the monitored metric.

    With a validation set the metric is its loss, or its score
    (``monitor='score'``), and the weights of the best epoch are kept: of
    epochs tied for the best, the first (``keep='first'``, scikit-learn's
    rule) or the last (``keep='last'``, RealMLP's); otherwise it is the
    training loss.
    """

    def __init__(self, tol, n_iter_no_change, monitor="loss", keep="first"):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.monitor = monitor
        self.keep = keep
        self.best_loss = np.inf
        self.best_score = -np.inf
        self.count = 0
        self.best_params = None

    @property
    def stalled(self):
        """Whether the rule says stop."""
        return self.count > self.n_iter_no_change

    def update(self, loss, params, val_loss=None, val_score=None):
        """Record an epoch; returns the value a plateau schedule watches."""
        if val_loss is None:
            self.count = self.count + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
            return loss
        # a tie with the best is better only when the last best is kept
        tie = self.keep == "last"
        if self.monitor == "score":
            improved = val_score > self.best_score + self.tol
            better = val_score > self.best_score or (
                tie and val_score == self.best_score
            )
        else:
            improved = val_loss < self.best_loss - self.tol
            better = val_loss < self.best_loss or (tie and val_loss == self.best_loss)
        self.best_score = max(self.best_score, val_score)
        self.best_loss = min(self.best_loss, val_loss)
        if better:
            self.best_params = params.copy()
        self.count = 0 if improved else self.count + 1
        return val_loss

    def message(self, on_validation):
        """Why training stopped."""
        if on_validation:
            return (
                f"Validation {self.monitor} did not improve more than "
                f"tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
            )
        return (
            f"Training loss did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["best_params"] = None  # only needed within a fit
        return state


class _ProgressBar:
    """tqdm when installed, else a plain line rewritten in place."""

    def __init__(self, total, desc):
        self.total, self.done, self.desc = total, 0, desc
        try:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="batch", leave=False)
        except ImportError:
            self._bar = None

    def update(self, k):
        self.done += k
        if self._bar is not None:
            self._bar.update(k)
        else:
            print(
                f"\r{self.desc}: {self.done}/{self.total} batches", end="", flush=True
            )

    def close(self):
        if self._bar is not None:
            self._bar.close()
        else:
            print("\r", end="", flush=True)


class EpochLoop:
    """Runs the epochs of one call to ``fit`` or ``partial_fit``.

    Parameters
    ----------
    model : BaseMLP
        The estimator: holds the weights (``_params``), the training record
        (``n_iter_``, ``loss_curve_``, ...), the optimizer step count
        (``_opt_steps``), the schedule runner, the early-stopping rule and,
        with weight averaging, the trained weights and their average
        (``_weight_average``; ``_params`` then holds the average).
    trainer : fastfit._engine.Trainer
    data : Dataset
    validation : Dataset or None
    collective : fastfit._distributed.Collective or None
        A data-parallel fit's processes (``data`` and ``validation`` are this
        process's shard); their epochs make the same collective calls.
    plan : fastfit._distributed.DataParallelPlan or None
        What they agreed on (given with ``collective``).
    """

    def __init__(self, model, trainer, data, validation, collective=None, plan=None):
        self.model = model
        self.trainer = trainer
        self.data = data
        self.validation = validation
        self.collective, self.plan = collective, plan
        self.sw = (
            data.sample_weight
            if data.sample_weight is not None
            else np.empty(0, data.X.dtype)
        )
        self.n_batches = -(-data.X.shape[0] // trainer.batch_size)
        self.n_rows = data.X.shape[0]
        # what the epochs are scored on: every process's validation rows
        self.scored = validation
        self.verbose = model.verbose
        if collective is not None:
            self.n_batches = plan.epoch_batches
            self.n_rows = int(collective.sum([self.n_rows])[0])
            if validation is not None:
                v = validation
                self.scored = _concatenated(
                    collective.allgather(Dataset(None, v.Y, v.sample_weight, v.y))
                )
            if collective.rank != 0:
                self.verbose = 0
        self.probe_X = (
            validation.X if validation is not None else data.X[:DIVERGENCE_PROBE_ROWS]
        )
        self.average = getattr(model, "_weight_average", None)
        # the weights trained; what predict sees is model._params
        self.params = model._params if self.average is None else self.average.weights
        self.last_good = self.params.copy()
        self.last_average = None if self.average is None else self.average.snapshot()
        self.call_batches = 4  # batches of the first call, then sized

    def run(self, max_iter, incremental):
        """Up to ``max_iter`` epochs (one, incremental, for ``partial_fit``)."""
        model, start = self.model, time.perf_counter()
        converged = False
        try:
            for _ in range(max_iter):
                if not self._epoch() or incremental:
                    break
                if self._stop_after_stall():
                    converged = True
                    break
            else:
                if not incremental:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            if self.collective is not None:
                raise  # the other processes are in other epochs' collectives
            self._roll_back()
            warnings.warn(
                "Training interrupted by user; the weights of the last "
                "finished epoch are kept."
            )
        stopper = model._early_stopping_rule
        if self.validation is not None and stopper.best_params is not None:
            model._params[...] = stopper.best_params
        if self.verbose:
            print(
                f"Fit: {model.n_iter_} epochs in {time.perf_counter() - start:.3f}s"
                f", loss = {getattr(model, 'loss_', float('nan')):.8f}"
                + (" (converged)" if converged else "")
            )

    def _epoch(self):
        """One epoch; False if it diverged (its updates are undone)."""
        model, start = self.model, time.perf_counter()
        SingleThreadedBlas.pin()
        runner = model._schedule_runner
        lrs = self._epoch_lrs(runner)
        n = self.data.X.shape[0]
        # each process shuffles its own shard (its own random state)
        order = (
            model._random_state.permutation(n).astype(np.intp)
            if model.shuffle
            else np.empty(0, dtype=np.intp)
        )
        obj_sum, w_sum, stopped = self._run_epoch(order, lrs)
        loss = obj_sum / w_sum if w_sum > 0 else np.nan
        if self.average is not None and stopped < 0:
            self.average.end_epoch(model._opt_steps)
            np.copyto(model._params, self.average.current)
        probe = None if stopped >= 0 else self._probe(loss)
        if probe is None:
            self._roll_back()
            # scikit-learn leaves the diverged epoch's loss in loss_; keep an
            # earlier epoch's if there was one
            model.__dict__.setdefault("loss_", float(loss))
            where = (
                f" at batch {stopped + 1} of {self.n_batches} (its loss was not "
                "finite; the epoch's remaining batches were not trained)"
                if stopped >= 0
                else ""
            )
            warnings.warn(
                f"Training diverged in epoch {model.n_iter_ + 1}{where}: the "
                "loss, the weights or the predictions became NaN or infinite. "
                "The weights of the last finite epoch were restored. Try a "
                "smaller learning_rate_init, standardised inputs "
                "(StandardScaler), clip_norm, or a different optimizer.",
                ConvergenceWarning,
            )
            return False
        np.copyto(self.last_good, self.params)
        if self.average is not None:
            self.last_average = self.average.snapshot()
        monitored = model._record_epoch(
            float(loss), lrs, self.n_rows, *probe, self.scored
        )
        if self.verbose:
            model._print_epoch(float(lrs[0]), time.perf_counter() - start)
        runner.step(monitored, n_batches=self.n_batches)
        return True

    def _roll_back(self):
        """The weights (and their average) of the last finished epoch."""
        self.params[...] = self.last_good
        if self.average is not None:
            self.average.restore(self.last_average)
            np.copyto(self.model._params, self.average.current)

    def _epoch_lrs(self, runner):
        """The runner's rates for the epoch's batches, as the engine reads
        them: a new float64 array of one finite rate >= 0 per batch.

        Raises
        ------
        ValueError
            If the runner (a custom one, or one a pickle tampered with) gives
            anything else.
        """
        lrs = np.array(runner.epoch_lrs(self.n_batches), dtype=np.float64)
        if lrs.shape != (self.n_batches,) or not (
            np.isfinite(lrs).all() and (lrs >= 0).all()
        ):
            raise ValueError(
                f"{type(runner).__name__}.epoch_lrs({self.n_batches}) must give "
                f"{self.n_batches} finite learning rates >= 0, one per "
                f"mini-batch; got shape {lrs.shape}, values in "
                f"[{lrs.min(initial=np.inf)}, {lrs.max(initial=-np.inf)}]"
            )
        return lrs

    def _stop_after_stall(self):
        """Whether early stopping ends the run (the schedule may extend it)."""
        model = self.model
        stopper = model._early_stopping_rule
        if not stopper.stalled:
            return False
        if model._schedule_runner.continue_after_stall():
            stopper.count = 0
            return False
        if self.verbose:
            print(stopper.message(model.early_stopping) + " Stopping.")
        return True

    def _run(self, order, lrs, first, last, sums):
        """Batches first..last-1 of the epoch in one engine call, adding to
        the epoch's running ``sums``; returns (objective_sum, weight_sum,
        stopped_at)."""
        d, model = self.data, self.model
        obj_sum, w_sum, steps, stopped = self.trainer.run_batches(
            self.params, d.engine_X, d.Y, self.sw, order, first, last, lrs,
            model._opt_steps, *sums,
        )  # fmt: skip
        model._opt_steps += steps
        return obj_sum, w_sum, stopped

    def _run_epoch(self, order, lrs):
        """The epoch's batches as engine calls of about CALL_SECONDS each,
        with a progress bar under verbose=2 in long epochs; returns
        (objective_sum, weight_sum, stopped_at) as ``Trainer.run_batches``."""
        if self.plan is not None and self.plan.sync_every is not None:
            return self._run_epoch_local(order, lrs)
        bar, bar_step = None, self.n_batches
        if self.verbose >= 2 and self.n_batches >= PROGRESS_MIN_BATCHES:
            bar = _ProgressBar(self.n_batches, f"epoch {self.model.n_iter_ + 1}")
            bar_step = -(-self.n_batches // PROGRESS_PIECES)
        totals, first, stopped = [0.0, 0.0], 0, -1
        try:
            while first < self.n_batches and stopped < 0:
                last = min(self.n_batches, first + min(self.call_batches, bar_step))
                start = time.perf_counter()
                # the engine carries the sums on, so the epoch's loss has the
                # same bits however its calls are sized
                totals[0], totals[1], stopped = self._run(
                    order, lrs, first, last, totals
                )
                seconds = time.perf_counter() - start
                if bar is not None:
                    bar.update(last - first)
                self._size_calls(last - first, seconds)
                first = last
        finally:
            if bar is not None:
                bar.close()
        return totals[0], totals[1], stopped

    def _size_calls(self, n_batches, seconds):
        """Batches of the next engine call: about CALL_SECONDS at the pace of
        the last call (``n_batches`` in ``seconds``)."""
        self.call_batches = max(1, int(CALL_SECONDS * n_batches / max(seconds, 1e-9)))

    def _run_epoch_local(self, order, lrs):
        """The epoch of a data-parallel fit with local SGD: runs of local
        steps ended by an average of the parameters (every ``sync_every``
        steps and at the epoch's end), synchronous steps during the warm-up.
        Every process runs the same ranges, so their collectives match;
        returns the sums over every process."""
        plan, collective = self.plan, self.collective
        done = self.model._schedule_runner.steps  # batches of earlier epochs
        synced, local, first, stopped = [0.0, 0.0], [0.0, 0.0], 0, -1
        while first < self.n_batches and stopped < 0:
            period = plan.local_range(done + first)
            synchronous = period is None
            if synchronous:
                last = min(self.n_batches, first + self.call_batches,
                           max(first + 1, plan.sync_warmup - done))  # fmt: skip
            else:
                last = min(self.n_batches, first + period)
            plan.use(synchronous)
            start = time.perf_counter()
            sums = synced if synchronous else local
            sums[0], sums[1], stopped = self._run(order, lrs, first, last, sums)
            if synchronous:
                self._size_calls(last - first, time.perf_counter() - start)
            else:
                # stop everywhere if any process stopped; else average
                failed = collective.sum([1.0 if stopped >= 0 else 0.0])[0]
                if failed:
                    stopped = stopped if stopped >= 0 else last - 1
                    break
                self._average_replicas()
            first = last
        local = collective.sum(local)
        # the steps of the process that took most (one whose shard ran out
        # skips its empty batches)
        self.model._opt_steps = max(collective.allgather(self.model._opt_steps))
        return synced[0] + local[0], synced[1] + local[1], stopped

    def _average_replicas(self):
        """Average the trained parameters (and an EMA) over the processes."""
        self.collective.average(self.params)
        if self.trainer.average is not None:
            self.collective.average(self.trainer.average)

    def _probe(self, loss):
        """(raw, val_loss) of the weights after the epoch, or None if the
        loss, the weights or the predictions stopped being finite.

        The epoch's loss is measured before each update: the weights after the
        last one are checked by a forward pass on a probe (the validation set,
        else the first rows; a small cost).
        """
        model = self.model
        finite = (
            np.isfinite(loss)
            and np.isfinite(self.params).all()
            and (self.average is None or np.isfinite(model._params).all())
        )
        raw = model._forward(self.probe_X) if finite else None
        finite = finite and model._loss_fn.link.finite(raw)
        if self.collective is not None:
            # a data-parallel fit rolls back everywhere or nowhere; it is
            # scored on the validation rows of every process, in rank order
            if not self.collective.all(finite):
                return None
            if self.validation is not None:
                raw = np.concatenate(self.collective.allgather(raw))
        if not finite:
            return None
        val_loss = None
        if self.validation is not None:
            val_loss = model._loss_value(raw, self.scored.Y, self.scored.sample_weight)
            if not np.isfinite(val_loss):
                return None
        return raw, val_loss


def _concatenated(parts):
    """One Dataset of the rows of ``parts`` (a list of Datasets), in order;
    unit weights where a part has none."""
    weights = None
    if any(p.sample_weight is not None for p in parts):
        weights = np.concatenate([
            p.sample_weight if p.sample_weight is not None
            else np.ones(p.Y.shape[0], p.Y.dtype)
            for p in parts
        ])  # fmt: skip
    return Dataset(
        None,
        np.concatenate([p.Y for p in parts]),
        weights,
        np.concatenate([np.asarray(p.y) for p in parts]),
    )
