"""The estimators: hyperparameters, input and target validation, initial weights,
prediction.

``fit`` and ``partial_fit`` validate once, set up the weights and the engine's
:class:`~fastfit._engine.Trainer`, and hand the epochs to
:class:`fastfit._training.EpochLoop`.
"""

import copy
import functools
import math
import os
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _clone_parametrized,
    _fit_context,
    is_classifier,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from fastfit import _lbfgs
from fastfit import losses as _losses
from fastfit._averaging import WeightAverage
from fastfit._concurrency import check_not_fitting, exclusive_fit, fit_count
from fastfit._distributed import (
    COMMUNICATOR_METHODS,
    Collective,
    DataParallelPlan,
    rank_random_state,
)
from fastfit._engine import (
    ACTIVATIONS,
    MAX_LAYERS,
    Network,
    Trainer,
    count_outside,
    loss_gradient_py,
)
from fastfit._layout import Layout
from fastfit._parallel import SingleThreadedBlas, effective_n_threads
from fastfit._params import ValidatedOnce, _immutable
from fastfit._sparse import engine_input
from fastfit._training import DIVERGENCE_PROBE_ROWS, Dataset, EarlyStopping, EpochLoop
from fastfit.optimizers import OPTIMIZER_NAMES, Optimizer, resolve_optimizer
from fastfit.schedules import (
    SCHEDULE_NAMES,
    Schedule,
    ScheduleRunner,
    resolve_schedule,
)

# The engine indexes a layer's units with C ints.
MAX_LAYER_WIDTH = 2**31 - 1

# Rows per chunk of the prediction forward pass (bounded memory for any n, and
# the unit of work of a thread): about this many activations per buffer, with
# at least PREDICT_MIN_CHUNK rows so the gemms stay efficient.
PREDICT_CHUNK_ELEMENTS = 1 << 18
PREDICT_MIN_CHUNK = 64

_Y_TYPES = ("binary", "multiclass", "multilabel-indicator")


def _uniform(bound):
    return lambda rng, shape: rng.uniform(-bound, bound, shape)


def _normal(std):
    return lambda rng, shape: rng.normal(0.0, std, shape)


# init name -> (fan_in, fan_out, hidden activation) -> draw(rng, shape).
# 'glorot_uniform' is scikit-learn's (its bound uses 2 instead of 6 for the
# logistic activation); the others are torch.nn.init's (normals untruncated).
INITIALIZERS = {
    "glorot_uniform": lambda a, b, act: _uniform(
        np.sqrt((2.0 if act == "logistic" else 6.0) / (a + b))
    ),
    "glorot_normal": lambda a, b, act: _normal(np.sqrt(2.0 / (a + b))),
    "he_uniform": lambda a, b, act: _uniform(np.sqrt(6.0 / a)),
    "he_normal": lambda a, b, act: _normal(np.sqrt(2.0 / a)),
    "lecun_normal": lambda a, b, act: _normal(np.sqrt(1.0 / a)),
}


class FittedModel(NamedTuple):
    """What a prediction reads from an estimator, taken in one step and
    checked for consistency (:meth:`BaseMLP._fitted_model`)."""

    network: Network
    params: np.ndarray
    loss_fn: _losses.Loss
    classes: np.ndarray = None  # classifiers only
    y_type: str = None  # classifiers only


class BaseMLP(ValidatedOnce, BaseEstimator):
    """Shared machinery of MLPClassifier and MLPRegressor."""

    _parameter_constraints = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS)), list, tuple],
        "negative_slope": [Interval(Real, None, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
        # 'lbfgs' is not an update rule: scipy drives the fit (fastfit._lbfgs)
        "optimizer": [StrOptions({*OPTIMIZER_NAMES, _lbfgs.LBFGS}), Optimizer],
        "schedule": [StrOptions(set(SCHEDULE_NAMES)), Schedule],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [
            StrOptions({"auto", "full"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "early_stopping_monitor": [StrOptions({"loss", "score"})],
        "best_epoch": [StrOptions({"first", "last"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "clip_norm": [None, Interval(Real, 0, None, closed="neither")],
        "dtype": "no_validation",  # any spelling of float32/float64: see _dtype()
        "n_threads": [None, Interval(Integral, None, None, closed="neither")],
        "init": [StrOptions(set(INITIALIZERS))],
        "bias_init": [StrOptions({"init", "zeros"})],
        "ema_decay": [None, Interval(Real, 0, 1, closed="neither")],
        "swa_start": [None, Interval(Integral, 1, None, closed="left")],
        "communicator": [None, HasMethods(COMMUNICATOR_METHODS)],
        "sync_every": [None, Interval(Integral, 1, None, closed="left")],
        "sync_warmup": [Interval(Integral, 0, None, closed="left")],
        "overlap_allreduce": ["boolean"],
    }

    # ------------------------------------------------------------------ setup
    def _resolved_optimizer(self):
        args = (
            self.optimizer,
            self.momentum,
            self.nesterovs_momentum,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        )
        # a named rule is built and validated once per set of (immutable)
        # arguments: the same objects give the same rule; an Optimizer
        # instance, which may have changed in place, is validated every time
        cached = self.__dict__.get("_optimizer_resolved")
        if cached is not None and all(a is b for a, b in zip(cached[0], args)):
            return cached[1]
        optimizer = resolve_optimizer(
            args[0],
            momentum=args[1],
            nesterovs_momentum=args[2],
            beta_1=args[3],
            beta_2=args[4],
            epsilon=args[5],
        )
        if isinstance(args[0], str) and all(_immutable(a) for a in args):
            self.__dict__["_optimizer_resolved"] = (args, optimizer)
        return optimizer

    def _resolved_schedule(self):
        return resolve_schedule(
            self.schedule, self.max_iter, tol=self.tol, power_t=self.power_t
        )

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(
            isinstance(s, bool) or not isinstance(s, Integral) or s <= 0 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {sizes}."
            )
        if len(sizes) > MAX_LAYERS - 1:
            raise ValueError(f"at most {MAX_LAYERS - 1} hidden layers are supported")
        if max(sizes, default=1) > MAX_LAYER_WIDTH:
            raise ValueError(
                f"hidden_layer_sizes: at most {MAX_LAYER_WIDTH} units per layer, "
                f"got {max(sizes)}"
            )
        return [int(s) for s in sizes]

    def _dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(
                f"dtype must be np.float32 or np.float64, got {self.dtype!r}"
            )
        return dtype.type

    def _batch_size(self, n_samples, warn=True):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size == "full":
            return n_samples
        if warn and self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` larger than the number of samples; it is "
                f"clipped to {n_samples}."
            )
        return min(int(self.batch_size), n_samples)

    def _architecture(self, n_hidden):
        """(activation names, leaky_relu slope, dropout rates) of the
        ``n_hidden`` hidden layers, from ``activation``, ``negative_slope`` and
        ``dropout`` (a value for every hidden layer, or one per layer)."""
        names = _per_layer(self.activation, n_hidden, "activation", str)
        unknown = [a for a in names if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(
                f"activation: {unknown[0]!r} is not one of {sorted(ACTIVATIONS)}"
            )
        rates = _per_layer(self.dropout, n_hidden, "dropout", Real)
        if not all(0 <= r < 1 for r in rates):
            raise ValueError(f"dropout rates must be in [0, 1), got {list(rates)}")
        return names, float(self.negative_slope), tuple(float(r) for r in rates)

    def _averaging(self):
        """(ema_decay, swa_start), at most one of them set."""
        if self.ema_decay is not None and self.swa_start is not None:
            raise ValueError(
                "ema_decay and swa_start are two ways of averaging the weights; "
                "set one of them"
            )
        return self.ema_decay, self.swa_start

    def _validation_size(self, n_samples):
        """Rows early stopping holds out of ``n_samples``: ``train_test_split``'s
        count for ``test_size=validation_fraction``."""
        return int(np.ceil(self.validation_fraction * n_samples))

    def _steps_per_epoch(self, n_samples, incremental):
        """Mini-batches per epoch of a fit on ``n_samples`` rows, less the
        validation set that early stopping will hold out: what the schedule
        plans its per-step rates over, before the split is drawn."""
        n_samples = self._training_rows(n_samples, incremental)
        return -(-n_samples // self._batch_size(n_samples, warn=False))

    def _training_rows(self, n_samples, incremental):
        """Rows of ``n_samples`` left for training by early stopping's
        validation set (at least 1: a split this small is refused later)."""
        if self.early_stopping and not incremental:
            n_samples -= self._validation_size(n_samples)
        return max(n_samples, 1)

    def _penalty_l1_ratio(self):
        return {"l2": 0.0, "l1": 1.0}.get(self.penalty, float(self.l1_ratio))

    def _network(
        self, layout=None, loss_fn=None, activations=None, slope=None, dropout=()
    ):
        """The engine's description of the network (``layout``, ``loss_fn``:
        those of the fitted model by default; ``activations``, ``slope``: the
        parameters'; ``dropout``: the hidden layers' rates, none by default)."""
        layout = self._layout if layout is None else layout
        loss_fn = self._loss_fn if loss_fn is None else loss_fn
        if activations is None:
            activations, slope, _ = self._architecture(layout.n_layers - 1)
        ids = tuple(ACTIVATIONS[a] for a in activations) + (ACTIVATIONS["identity"],)
        return _engine_network(
            tuple(layout.sizes.tolist()),
            ids,
            loss_fn.kernel_id,
            loss_fn.param,
            tuple(dropout) + (0.0,) * (layout.n_layers - len(dropout)),
            (slope,) * layout.n_layers,
        )

    def _initial_params(self, layout, rng, dtype):
        """Fresh weights drawn by ``init`` (and biases by ``bias_init``), layer
        by layer, weights then biases: scikit-learn's order, so the default
        gives scikit-learn's start for an equal seed."""
        coefs, intercepts = [], []
        names, _, _ = self._architecture(layout.n_layers - 1)
        for l, (fan_in, fan_out) in enumerate(zip(layout.sizes[:-1], layout.sizes[1:])):
            # a layer's gain follows the activation of its outputs; the
            # output layer's, the last hidden one's (scikit-learn's)
            act = names[min(l, len(names) - 1)] if names else "identity"
            draw = INITIALIZERS[self.init](int(fan_in), int(fan_out), act)
            coefs.append(draw(rng, (fan_in, fan_out)))
            intercepts.append(
                draw(rng, fan_out) if self.bias_init == "init" else np.zeros(fan_out)
            )
        return layout.pack(coefs, intercepts, dtype)

    def _set_params_buffer(self, layout, params):
        self._layout = layout
        self._params = params
        self.coefs_, self.intercepts_ = layout.views(params)

    def _packed_params(self, state=None):
        """The flat buffer behind coefs_/intercepts_, rebuilt if they were
        replaced (``state``: the estimator's attributes, read once)."""
        state = vars(self) if state is None else state
        layout, coefs, intercepts = (
            state["_layout"],
            state["coefs_"],
            state["intercepts_"],
        )
        if not (
            isinstance(coefs, (list, tuple))
            and isinstance(intercepts, (list, tuple))
            and len(coefs) == layout.n_layers
            and len(intercepts) == layout.n_layers
        ):
            raise ValueError(
                "coefs_ and intercepts_ must be lists with one entry per layer "
                f"({layout.n_layers})"
            )
        params = state.get("_params")
        if (
            isinstance(params, np.ndarray)
            and params.dtype == state["_fit_dtype"]
            and params.shape == (layout.n_params,)
            and layout.is_view(params, coefs, intercepts)
        ):
            return params
        for l, (c, b) in enumerate(zip(coefs, intercepts)):
            shape_c = (int(layout.sizes[l]), int(layout.sizes[l + 1]))
            if np.shape(c) != shape_c or np.shape(b) != shape_c[1:]:
                raise ValueError(
                    f"coefs_[{l}] / intercepts_[{l}] must have shapes {shape_c} "
                    f"and {shape_c[1:]}, got {np.shape(c)} and {np.shape(b)}"
                )
        params = layout.pack(coefs, intercepts, state["_fit_dtype"])
        if not np.isfinite(params).all():
            raise ValueError("coefs_ / intercepts_ contain NaN or infinity")
        self._set_params_buffer(layout, params)
        return params

    # -------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        with exclusive_fit(self):
            return self._fit_exclusive(X, y, sample_weight, incremental, classes)

    def _fit_exclusive(self, X, y, sample_weight, incremental, classes):
        # A data-parallel fit (``communicator``) runs the same steps on every
        # process; each phase that can reject the input ends with every
        # process agreeing (``Collective.agree``), so a failure on one is raised
        # on all instead of leaving them waiting in the next collective call.
        collective = (
            None if self.communicator is None else Collective(self.communicator)
        )
        agreed = (lambda fn: fn()) if collective is None else collective.agree
        fitted = hasattr(self, "_layout")
        # keep the data contract (features, classes, dtype) of the previous fit
        continuing = fitted and (incremental or self.warm_start)
        # keep the optimizer state, schedule and stopping rule too (partial_fit)
        resuming = fitted and incremental
        if (
            collective is not None
            and is_classifier(self)
            and not continuing
            and classes is None
        ):
            # a data-parallel classifier knows the classes of every shard
            # (the same sorted array on every process)
            mine = agreed(lambda: unique_labels(y))
            classes = unique_labels(*collective.allgather(mine))
        data, loss_fn, layout = agreed(
            lambda: self._fit_data_phase(
                X, y, sample_weight, incremental, classes, continuing, resuming,
                collective,
            )
        )  # fmt: skip
        if _lbfgs.is_lbfgs(self.optimizer):
            if collective is not None:
                raise ValueError(
                    "optimizer='lbfgs' does not train data-parallel: use a "
                    "stochastic optimizer with a communicator"
                )
            if incremental:
                _lbfgs.check_stochastic(self)
            return _lbfgs.fit(self, data, loss_fn, layout, continuing)
        plan = None
        if collective is not None:
            plan = self._data_parallel_plan(
                collective, data, layout, loss_fn, incremental
            )
        optimizer, architecture, averaging, n_threads = agreed(
            lambda: self._training_phase(
                data, loss_fn, layout, continuing, resuming, incremental, plan
            )
        )
        if collective is not None and not resuming:
            # rank 0's initial weights and dropout key; shuffles of each rank's own
            collective.bcast_array(self._params)
            if any(architecture[2]):
                self._dropout_seed = collective.bcast(self._dropout_key())
            self._random_state = rank_random_state(self._random_state, collective.rank)
        if not resuming:
            self._weight_average = (
                WeightAverage(self._params, *averaging) if any(
                    a is not None for a in averaging) else None
            )  # fmt: skip
        data, validation, trainer = agreed(
            lambda: self._split_and_trainer(
                data, optimizer, n_threads, architecture, incremental, plan
            )
        )
        with SingleThreadedBlas():
            EpochLoop(self, trainer, data, validation, collective, plan).run(
                1 if incremental else self.max_iter, incremental
            )
        return self

    def _fit_data_phase(
        self, X, y, sample_weight, incremental, classes, continuing, resuming,
        collective,
    ):  # fmt: skip
        """Validated data, the loss and the layout of a fit (its first phase)."""
        if incremental and hasattr(self, "_layout"):
            # scikit-learn validates only the first partial_fit; parameters set
            # since then reach the engine too
            self._validate_params()
        if incremental and self.early_stopping:
            # scikit-learn's rule: a stream has no held-out validation set
            raise ValueError("partial_fit does not support early_stopping=True")
        if continuing:
            # what the previous fit left (or a user or a pickle set) is checked
            # before its classes encode y or its weights reach the engine
            self._fitted_model()
        if resuming:
            self._check_resumable()
        data, loss_fn = self._fit_data(
            X, y, sample_weight, continuing, classes, same_classes=not incremental
        )
        widths = (
            [data.X.shape[1]]
            + self._hidden_sizes()
            + [loss_fn.n_outputs(data.Y, len(getattr(self, "classes_", ())))]
        )
        _check_fits_in_memory(widths, self._batch_size(data.X.shape[0]), data.X.dtype)
        layout = Layout(widths)
        if continuing:
            self._check_same_shape(layout)
        return data, loss_fn, layout

    def _data_parallel_plan(self, collective, data, layout, loss_fn, incremental):
        """What the processes of a data-parallel fit agree on before training:
        the same network and loss everywhere, the batches of an epoch (the
        most any process has: one whose rows run out takes empty shares), and
        each process's first row within the whole batch.

        Raises
        ------
        ValueError
            On every process, if they disagree.
        """
        n = data.X.shape[0]
        mine = (
            layout.sizes.tolist(),
            loss_fn.kernel_id,
            getattr(self, "_y_type", None),
            self._steps_per_epoch(n, incremental),
            self._batch_size(self._training_rows(n, incremental), warn=False),
        )
        everyone = collective.allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs[:3] != mine[:3]:
                raise ValueError(
                    "data-parallel fit: the processes disagree on the network "
                    f"(widths, loss, target type): rank {collective.rank} has "
                    f"{mine[:3]}, rank {rank} has {theirs[:3]}. Every shard needs "
                    "the same features and target type."
                )
        return DataParallelPlan(
            collective=collective,
            epoch_batches=max(t[3] for t in everyone),
            row_offset=sum(t[4] for t in everyone[: collective.rank]),
            sync_every=self.sync_every,
            sync_warmup=self.sync_warmup,
            overlap=self.overlap_allreduce,
        )

    def _training_phase(
        self, data, loss_fn, layout, continuing, resuming, incremental, plan
    ):
        """Hyperparameters resolved, the weights, optimizer state, schedule
        and record of the run (its second phase); returns (optimizer,
        architecture, averaging, n_threads)."""
        architecture = self._architecture(layout.n_layers - 1)
        averaging = self._averaging()
        optimizer = self._resolved_optimizer()
        # everything that can reject a hyperparameter runs before any state is set
        runner = (
            None
            if resuming
            else self._resolved_schedule().start(
                self.learning_rate_init,
                self.max_iter,
                self._steps_per_epoch(data.X.shape[0], incremental)
                if plan is None
                else plan.epoch_batches,
            )
        )
        n_threads = effective_n_threads(self.n_threads)
        # an L-BFGS fit leaves no epoch record to continue
        if not continuing or not hasattr(self, "loss_curve_"):
            self._reset_record(data.X.dtype.type)
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them
        if resuming:
            self._resume(layout, optimizer, averaging)
        else:
            self._start(
                layout,
                loss_fn,
                data.X,
                optimizer,
                runner,
                continuing,
                incremental,
                n_threads,
            )
        self._loss_fn = loss_fn
        self._activation, self._negative_slope, _ = architecture
        return optimizer, architecture, averaging, n_threads

    def _split_and_trainer(
        self, data, optimizer, n_threads, architecture, incremental, plan
    ):
        """(training data, validation data or None, Trainer): the last phase
        before the epochs."""
        validation = None
        if self.early_stopping and not incremental:
            data, validation = self._validation_split(data)
        trainer = self._trainer(optimizer, data.X.shape[0], n_threads, architecture)
        if plan is not None:
            plan.attach(trainer, self.alpha)
        return data, validation, trainer

    def _trainer(self, optimizer, n_rows, n_threads, architecture):
        """The engine's Trainer for this fit's network (``architecture``:
        ``_architecture``'s activations, slope and dropout), rule and penalty."""
        activations, slope, dropout = architecture
        return Trainer(
            self._network(None, None, activations, slope, dropout),
            optimizer._engine_kind,
            optimizer._hyper(),
            self._optimizer_state,
            self._batch_size(n_rows),
            float(self.alpha),
            self._penalty_l1_ratio(),
            0.0 if self.clip_norm is None else float(self.clip_norm),
            n_threads,
            self._dropout_key() if any(dropout) else 0,
            *(
                (average.engine_decay, average.average)
                if (average := self._weight_average) is not None
                and average.engine_decay
                else (0.0, None)
            ),
        )

    def _dropout_key(self):
        """The key of this model's dropout masks, drawn once (on the first fit
        that drops units, so a fit without dropout draws what it always did)."""
        if getattr(self, "_dropout_seed", None) is None:
            self._dropout_seed = int(
                self._random_state.randint(0, 2**32, dtype=np.int64)
            )
        return self._dropout_seed

    def _check_same_shape(self, layout):
        if not np.array_equal(layout.sizes, self._layout.sizes):
            raise ValueError(
                "The network shape changed since the last fit "
                f"({self._layout.sizes.tolist()} -> {layout.sizes.tolist()}); "
                "use warm_start=False to start over."
            )

    def _fit_data(self, X, y, sample_weight, continuing, classes, same_classes):
        """Validated training data and the loss, in the training dtype.

        ``same_classes``: a continued ``fit`` (warm start) must see exactly the
        classes of the previous fit; ``partial_fit`` may see a subset.
        """
        dtype = self._dtype()
        if continuing and dtype != self._fit_dtype:
            raise ValueError(
                f"dtype changed since the last fit ({np.dtype(self._fit_dtype)} -> "
                f"{np.dtype(dtype)}); use warm_start=False to start over."
            )
        n_threads = effective_n_threads(self.n_threads)
        plain = _plain_arrays(self, X, y, dtype, n_threads) if continuing else None
        if plain is not None:
            X, y = plain
        else:
            X, y = validate_data(
                self,
                X,
                y,
                reset=not continuing,
                accept_sparse="csr",
                dtype=dtype,
                order="C",
                multi_output=True,
                y_numeric=not is_classifier(self),
            )
            _check_trainable_magnitude(X, n_threads)
        Y, loss_fn = self._encode_targets(
            y, not continuing, classes, dtype, same_classes
        )
        sample_weight = self._sample_weights(X, y, sample_weight, dtype)
        return Dataset(X, Y, sample_weight, y), loss_fn

    def _reset_record(self, dtype):
        """A fresh training record (the attributes of a first fit)."""
        self._fit_dtype = dtype
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.learning_rate_curve_ = []
        self.learning_rate_steps_ = []
        # scikit-learn: None under early stopping (the validation score rules)
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _start(
        self, layout, loss_fn, X, optimizer, runner, continuing, incremental, n_threads
    ):
        """Weights, optimizer state, schedule and stopping rule of a new run:
        fresh weights, or (warm start, partial_fit) the current or
        user-assigned ones."""
        self._start_weights(layout, loss_fn, X, continuing, incremental, n_threads)
        self._optimizer_state = optimizer._init_state(layout.n_params, self._fit_dtype)
        self._opt_steps = 0
        self._schedule_runner = runner
        self._early_stopping_rule = EarlyStopping(
            self.tol,
            self.n_iter_no_change,
            self.early_stopping_monitor,
            self.best_epoch,
        )
        if continuing:
            self.best_loss_ = None if self.early_stopping else np.inf
            if self.early_stopping:
                self.best_validation_score_ = -np.inf
                if self.validation_scores_ is None:
                    self.validation_scores_, self.validation_loss_curve_ = [], []

    def _start_weights(self, layout, loss_fn, X, continuing, incremental, n_threads):
        """The weights of a new run (fresh, or the current or user-assigned
        ones when continuing, warm-starting or in partial_fit), checked by a
        probe forward pass."""
        self._random_state = check_random_state(self.random_state)
        if continuing or ((self.warm_start or incremental) and hasattr(self, "coefs_")):
            self._layout = layout
            params = self._packed_params()
        else:
            params = self._initial_params(layout, self._random_state, self._fit_dtype)
        probe = _raw_output(
            self._network(layout, loss_fn), params, X[:DIVERGENCE_PROBE_ROWS], n_threads
        )
        if not loss_fn.link.finite(probe):
            raise ValueError(
                "The network's predictions overflow even at its initial weights: "
                f"X is too large in magnitude (max |X| = {abs(X).max():.3g}) "
                f"for loss={self.loss!r}. Scale X (e.g. StandardScaler)."
            )
        self._set_params_buffer(layout, params)
        self.n_layers_ = layout.n_layers + 1
        self.n_outputs_ = int(layout.sizes[-1])
        self.out_activation_ = loss_fn.link.name

    def _check_resumable(self):
        """Raise ValueError unless the training state partial_fit continues is
        one a fit left (types and counts; the engine checks the state's shape)."""
        state = getattr(self, "_optimizer_state", None)
        steps = getattr(self, "_opt_steps", None)
        if not (
            isinstance(state, np.ndarray)
            and state.ndim == 2
            and state.dtype == self._fit_dtype
        ):
            raise ValueError(
                "_optimizer_state must be a 2-d array of the model's dtype, got "
                f"{type(state).__name__} {getattr(state, 'shape', '')}"
            )
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
            raise ValueError(f"_opt_steps must be a count of steps, got {steps!r}")
        seed = getattr(self, "_dropout_seed", None)
        if seed is not None and (
            isinstance(seed, bool)
            or not isinstance(seed, Integral)
            or not 0 <= seed < 2**32
        ):
            raise ValueError(f"_dropout_seed must be a 32-bit key, got {seed!r}")
        for name, cls in (
            ("_schedule_runner", ScheduleRunner),
            ("_early_stopping_rule", EarlyStopping),
        ):
            if not isinstance(getattr(self, name, None), cls):
                raise ValueError(f"{name} is not an instance of {cls.__name__}")
        average = getattr(self, "_weight_average", None)
        if average is not None:
            if not isinstance(average, WeightAverage):
                raise ValueError("_weight_average is not a WeightAverage")
            average.check(self._layout.n_params, self._fit_dtype)

        # the runner's counts place the epoch's rates (per-step schedules)
        for name in ("epoch", "steps"):
            count = getattr(self._schedule_runner, name, None)
            if isinstance(count, bool) or not isinstance(count, Integral) or count < 0:
                raise ValueError(
                    f"_schedule_runner.{name} must be a count, got {count!r}"
                )

    def _resume(self, layout, optimizer, averaging):
        """partial_fit after a fit: keep the state, unless the optimizer (or
        the weight averaging) changed."""
        # (the weights were packed and checked by _fitted_model just before)
        # the state is compared by shape: a fresh one per call would cost an
        # allocation of the parameters' size (or more) for nothing
        if self._optimizer_state.shape != optimizer._state_shape(layout.n_params):
            self._optimizer_state = optimizer._init_state(
                layout.n_params, self._fit_dtype
            )
            self._opt_steps = 0
        average = getattr(self, "_weight_average", None)
        if not any(a is not None for a in averaging):
            if average is not None:
                # the trained weights go on, not their average
                self._params[...] = average.weights
            self._weight_average = None
        elif average is None or not average.same_rule(*averaging):
            self._weight_average = WeightAverage(
                self._params if average is None else average.weights, *averaging
            )
        else:
            average.ema_decay = averaging[0]
        rule = self._early_stopping_rule
        rule.tol, rule.n_iter_no_change = self.tol, self.n_iter_no_change
        rule.monitor, rule.keep = self.early_stopping_monitor, self.best_epoch

    def _record_epoch(self, loss, lrs, n_rows, raw, val_loss, validation):
        """Add a finished epoch, trained at the rates ``lrs`` (one per
        mini-batch), to the training record; returns the value a plateau
        schedule watches."""
        self.n_iter_ += 1
        self.t_ += n_rows
        self.loss_ = loss
        self.loss_curve_.append(loss)
        self.learning_rate_curve_.append(float(lrs[0]))
        self.learning_rate_steps_.append(lrs)
        score = None
        if self.early_stopping and val_loss is not None:
            # score from float64, like predict: exp of a float32 output overflows early
            score = self._score_raw(
                raw.astype(np.float64), validation.y, validation.sample_weight
            )
            self.validation_scores_.append(score)
            self.validation_loss_curve_.append(val_loss)
        rule = self._early_stopping_rule
        monitored = rule.update(loss, self._params, val_loss, score)
        if not self.early_stopping:
            self.best_loss_ = rule.best_loss
        if score is not None:
            self.best_validation_score_ = rule.best_score
        return monitored

    def _print_epoch(self, lr, seconds):
        line = f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}"
        if self.early_stopping:
            line += (
                f", validation loss = {self.validation_loss_curve_[-1]:.8f}"
                f", validation score = {self.validation_scores_[-1]:.6f}"
            )
        print(line + f", lr = {lr:.3g}, {seconds:.3f}s")

    def _validation_split(self, data):
        """(training, validation) Datasets, stratified for single-output
        classification."""
        n = data.X.shape[0]
        stratify = (
            data.Y[:, 0] if is_classifier(self) and data.Y.shape[1] == 1 else None
        )
        n_val = self._validation_size(n)
        n_classes = len(np.unique(stratify)) if stratify is not None else 1
        if n_val < max(2, n_classes) or n - n_val < max(1, n_classes):
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset (validation_fraction="
                f"{self.validation_fraction} of {n} samples gives {n_val} "
                "validation samples"
                + (f" for {n_classes} classes" if n_classes > 1 else "")
                + "), or set early_stopping=False."
            )
        idx_train, idx_val = train_test_split(
            np.arange(n),
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        idx_train.sort()
        idx_val.sort()
        train, validation = data.subset(idx_train), data.subset(idx_val)
        for name, part in (("validation", validation), ("training", train)):
            if part.sample_weight is not None and not part.sample_weight.sum() > 0:
                raise ValueError(
                    f"The {name} set drawn for early stopping has zero total "
                    "sample weight: nothing to score or train on. Change "
                    "'validation_fraction' or random_state, or set "
                    "early_stopping=False."
                )
        return train, validation

    def _sample_weights(self, X, y, sample_weight, dtype):
        # combined in float64, then rounded once to the training dtype
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        class_weight = getattr(self, "class_weight", None)
        if class_weight is not None:
            cw = compute_sample_weight(class_weight, y)
            sw = cw if sw is None else sw * cw
        if sw is None:
            return None
        if not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight must be finite")
        if not sw.sum() > 0:
            raise ValueError("sample_weight must have a positive sum")
        rounded = np.ascontiguousarray(sw, dtype=dtype)
        if not (np.isfinite(rounded).all() and rounded.sum() > 0):
            info = np.finfo(dtype)
            raise ValueError(
                f"sample_weight does not fit {np.dtype(dtype).name} (its "
                f"positive values lie in [{info.smallest_subnormal:.2g}, "
                f"{info.max:.2g}]; got weights up to {sw.max():.3g}). Rescale "
                "sample_weight (the loss depends on relative weights only; the "
                "penalty is divided by each batch's weight sum) or use "
                "dtype=np.float64."
            )
        return rounded

    # ----------------------------------------------------------- prediction
    def _forward(self, X, n_threads=None):
        """Raw network output (before the output transform) for validated X,
        by the network being trained."""
        if n_threads is None:
            n_threads = effective_n_threads(self.n_threads)
        # the buffer the fit trains (checked against coefs_ when it started)
        return _raw_output(self._network(), self._params, X, n_threads)

    def _fitted_model(self):
        """The fitted model as prediction uses it.

        The estimator's attributes are read once (one copy of its ``__dict__``:
        an assignment from another thread lands wholly before or after it) and
        checked against each other in O(layers): whatever a user assigned or a
        pickle held, the engine gets a network and a buffer that agree.

        Raises
        ------
        ValueError
            Naming the attribute that disagrees with the fitted network.
        """
        check_is_fitted(self, ["coefs_", "_layout"])
        state = dict(vars(self))
        layout, loss_fn = state["_layout"], state.get("_loss_fn")
        if not isinstance(layout, Layout) or not isinstance(loss_fn, _losses.Loss):
            raise ValueError("the fitted state (_layout, _loss_fn) is not a model's")
        if state.get("_fit_dtype") not in (np.float32, np.float64):
            raise ValueError(f"_fit_dtype is {state.get('_fit_dtype')!r}")
        activations, slope = state.get("_activation"), state.get("_negative_slope")
        if not (
            isinstance(activations, tuple)
            and len(activations) == layout.n_layers - 1
            and all(isinstance(a, str) and a in ACTIVATIONS for a in activations)
        ):
            raise ValueError(
                f"_activation is {activations!r}, not one activation per hidden layer"
            )
        if (
            isinstance(slope, bool)
            or not isinstance(slope, Real)
            or not np.isfinite(slope)
        ):
            raise ValueError(f"_negative_slope is {slope!r}, not a finite number")
        if state.get("out_activation_") != loss_fn.link.name:
            raise ValueError(
                f"out_activation_ is {state.get('out_activation_')!r}, "
                f"but the model was fitted with {loss_fn.link.name!r}"
            )
        sizes = layout.sizes
        for name, value in (
            ("n_features_in_", sizes[0]),
            ("n_outputs_", sizes[-1]),
            ("n_layers_", len(sizes)),
        ):
            if state.get(name) != value:
                raise ValueError(
                    f"{name} is {state.get(name)!r}, but the fitted network "
                    f"(widths {sizes.tolist()}) has {int(value)}"
                )
        if loss_fn.outputs_per_target not in (1, sizes[-1]):
            # several quantiles: one output each, a single target
            raise ValueError(
                f"_loss_fn has {loss_fn.outputs_per_target} quantiles, but the "
                f"fitted network has {int(sizes[-1])} outputs"
            )
        return FittedModel(
            self._network(layout, loss_fn, activations, float(slope)),
            self._packed_params(state),
            loss_fn,
            *self._fitted_targets(state, loss_fn, int(sizes[-1])),
        )

    def _fitted_targets(self, state, loss_fn, n_outputs):
        """The fitted target encoding (``FittedModel``'s last fields)."""
        return ()

    def _validated_raw(self, X):
        """The fitted model, its raw output for user X as float64, and the
        dtype predictions are returned in: float32 when the model and X both
        are (as scikit-learn's MLPs keep float32), else float64. Output
        transforms run in float64 either way, so both give the same numbers up
        to that last rounding.

        Raises
        ------
        RuntimeError
            If another thread fitted this estimator meanwhile.
        """
        before = fit_count(self)
        model = self._fitted_model()
        float32_in = getattr(X, "dtype", None) == np.float32
        X = validate_data(
            self,
            X,
            reset=False,
            accept_sparse="csr",
            dtype=model.params.dtype,
            order="C",
        )
        raw = _raw_output(
            model.network, model.params, X, effective_n_threads(self.n_threads)
        )
        check_not_fitting(self, before)
        out = np.float32 if float32_in and raw.dtype == np.float32 else np.float64
        return model, raw.astype(np.float64, copy=False), out

    def _loss_value(self, raw, Y, sw):
        G = np.empty_like(raw)
        return float(
            loss_gradient_py(
                self._loss_fn.kernel_id, raw, Y, sw, self._loss_fn.param, G
            )
        )

    def __getstate__(self):
        # coefs_/intercepts_ are views of _params; pickling both would store the
        # weights twice. _packed_params() rebuilds the flat buffer on first use.
        # (A copy: object.__getstate__ gives the instance's own __dict__.)
        state = dict(super().__getstate__())
        state.pop("_params", None)
        state.pop("_optimizer_resolved", None)  # a cache: resolved again
        # a communicator is a handle of this job's processes (most cannot be
        # pickled): an unpickled estimator trains alone until given one
        if state.get("communicator") is not None:
            state["communicator"] = None
        return state

    def __sklearn_is_fitted__(self):
        # what check_is_fitted and scikit-learn's partial_fit wrapper ask
        # (its default scans every attribute's name)
        return "_layout" in self.__dict__ and "coefs_" in self.__dict__

    def __sklearn_clone__(self):
        # a communicator is shared, not copied: copying a duplicated one is
        # refused by mpi4py (and duplicating it would be a collective call)
        communicator = self.communicator
        if communicator is None:
            return _clone_parametrized(self)
        alone = copy.copy(self)
        alone.communicator = None
        clone = _clone_parametrized(alone)
        clone.communicator = communicator
        return clone

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags


def _per_layer(value, n_layers, name, kind):
    """``value`` for each of ``n_layers`` layers: one ``kind`` for all, or a
    sequence of one per layer."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return (value,) * n_layers
    values = tuple(value)
    if len(values) != n_layers or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(
            f"{name} must be one value or one per hidden layer ({n_layers}), "
            f"got {value!r}"
        )
    return values


def _check_fits_in_memory(widths, batch_size, dtype):
    """Refuse, before allocating, a network whose parameter and batch buffers
    exceed the machine's memory.

    Counts the parameters and the buffers of their size (gradient, up to three
    optimizer moments, the last-good and best-epoch copies: 7 in all) and a
    batch's activations and deltas, in Python integers (no overflow).

    Raises
    ------
    MemoryError
        With the size needed and the memory present, in GiB.
    """
    n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    itemsize = np.dtype(dtype).itemsize
    needed = itemsize * (7 * n_params + 2 * batch_size * sum(widths[1:]))
    try:
        present = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed > present:
        raise MemoryError(
            f"a network of widths {widths} with batch_size={batch_size} needs "
            f"{needed / 2**30:.1f} GiB for its parameters, optimizer state and "
            f"batch buffers; this machine has {present / 2**30:.1f} GiB"
        )


# sqrt of each training dtype's largest value (_check_trainable_magnitude)
_TRAINABLE_BOUND = {
    t: float(np.sqrt(np.finfo(t).max)) for t in (np.float32, np.float64)
}


def _plain_arrays(estimator, X, y, dtype, n_threads):
    """(X, y) as a continued fit's ``validate_data`` and
    ``_check_trainable_magnitude`` would pass them, for the common case
    checked in one pass over X on ``n_threads`` threads (``validate_data``
    costs about 0.15 ms, more than a ``partial_fit`` step on a small chunk;
    NumPy's ``X.min()`` and ``X.max()`` are two passes on one thread).

    The case: X a float ndarray of the fitted width and y a numeric ndarray
    of as many rows, the model fitted without feature names, X finite and
    within the trainable magnitude once in the training dtype (float y
    finite). X is returned C-contiguous in ``dtype``.

    Returns None otherwise: the caller then runs the full checks, which raise
    the errors (or warnings) that apply.
    """
    if not (
        type(X) is np.ndarray
        and type(y) is np.ndarray
        and X.ndim == 2
        and 1 <= y.ndim <= 2
        and X.shape[0] == y.shape[0] > 0
        and X.shape[1] == estimator.__dict__.get("n_features_in_")
        and X.dtype.kind == "f"
        and y.dtype.kind in "biuf"
        and "feature_names_in_" not in estimator.__dict__
    ):
        return None
    # an overflow, NaN or infinity goes the full way, which warns and raises
    with np.errstate(over="ignore", invalid="ignore"):
        X = np.ascontiguousarray(X, dtype=dtype)
    if _beyond_trainable_bound(X.reshape(-1), n_threads):
        return None
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        return None
    return X, y


def _beyond_trainable_bound(values, n_threads):
    """Whether a 1-D array of a training dtype holds an entry beyond that
    dtype's ``_TRAINABLE_BOUND``, or a NaN: one pass on ``n_threads``
    threads."""
    bound = _TRAINABLE_BOUND[values.dtype.type]
    return count_outside(values, bound, n_threads) > 0


def _check_trainable_magnitude(X, n_threads):
    """Refuse X (already of the training dtype) with entries whose squares
    overflow that dtype: beyond ``sqrt(finfo.max)`` (1.8e19 in float32), the
    products of backpropagation (an input times its error, itself of the
    input's order) and the second moments of the adaptive rules are infinite,
    so a batch holding such a row cannot be trained. One pass over the data on
    ``n_threads`` threads, no copy.

    Raises
    ------
    ValueError
        With the largest magnitude and the bound.
    """
    values = np.ravel(X.data if sp.issparse(X) else X)
    if _beyond_trainable_bound(values, n_threads):
        largest = max(float(values.max()), -float(values.min()))
        bound = _TRAINABLE_BOUND[values.dtype.type]
        raise ValueError(
            f"X has values up to {largest:.3g} in magnitude: training in "
            f"{values.dtype} squares products of them (gradients, second "
            f"moments), which overflow beyond {bound:.3g}. Scale X (e.g. "
            "StandardScaler), or use dtype=np.float64 for float32 data."
        )


def _store_params(estimator, values):
    """Set each ``__init__`` argument as the attribute of its name, unchanged
    (scikit-learn's convention; ``get_params`` reads the signature)."""
    for name in estimator._get_param_names():
        setattr(estimator, name, values[name])


@functools.lru_cache(maxsize=64)
def _cached_network(description, slope_signs):
    return Network(*description)


def _engine_network(*description):
    """``Network(*description)``, one per description: a Network is immutable
    and costs tens of microseconds to build, several times per ``partial_fit``.
    The key is the description's values, so a model whose state was changed
    gets the Network of its new values (or the engine's ValueError)."""
    try:
        # -0.0 == 0.0, but a leaky_relu slope of -0.0 gives zeros of the
        # other sign: the slopes' signs are part of the key
        signs = tuple(math.copysign(1.0, s) for s in description[5])
        return _cached_network(description, signs)
    except TypeError:  # unhashable (a tampered loss parameter): no cache
        return Network(*description)


def _raw_output(network, params, X, n_threads):
    """Raw output of ``network`` with weights ``params`` on X (dense or
    sparse), in chunks."""
    X = engine_input(X, params.dtype)
    out = np.empty((X.shape[0], network.sizes[-1]), dtype=params.dtype)
    width = max(int(network.sizes[1:].max()), 1)
    chunk = max(PREDICT_MIN_CHUNK, PREDICT_CHUNK_ELEMENTS // width)
    with SingleThreadedBlas():
        network.forward(params, X, out, chunk, n_threads)
    return out


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained by a compiled engine.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` with the loss,
    optimizer, schedule and batch size as plain hyperparameters. Multiclass
    targets use a softmax output and cross-entropy; binary and multilabel
    targets use logistic outputs and log loss.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Width of each hidden layer.
    activation : str or list of str, default='relu'
        Hidden-layer activation, or one per hidden layer: scikit-learn's
        'identity', 'logistic', 'tanh', 'relu', or torch.nn.functional's
        'leaky_relu' (slope ``negative_slope``), 'elu' (alpha 1), 'selu',
        'softplus' (beta 1), 'gelu' (exact, by erf), 'gelu_tanh' (GELU's tanh
        approximation), 'silu' (swish) and 'mish'.
    negative_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs (torch's default).
    dropout : float or list of float, default=0
        Inverted dropout on the outputs of every hidden layer (or one rate per
        hidden layer), in [0, 1): in training each unit is zeroed with this
        probability and the kept ones scaled by ``1 / (1 - rate)``
        (``torch.nn.Dropout``); predictions, the validation score and the
        divergence probe use no mask. The masks are a hash of a key drawn from
        ``random_state`` (on the first fit with dropout), the optimizer step,
        the layer, the row's place in its batch and the unit: a fit is
        reproducible and the same for any ``n_threads``. Not with
        ``optimizer='lbfgs'``.
    loss : {'log_loss'}, default='log_loss'
        Training loss.
    optimizer : str or Optimizer, default='adam'
        A name in ``fastfit.optimizers.OPTIMIZER_NAMES`` ('sgd', 'momentum',
        'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamw') or an instance from
        :mod:`fastfit.optimizers`; or 'lbfgs', scikit-learn's full-batch
        quasi-Newton solver (scipy's L-BFGS-B over every sample at once:
        ``max_iter`` bounds its iterations, ``tol`` is its gradient tolerance,
        ``max_fun`` bounds its objective evaluations; batches, schedules,
        shuffling and early stopping do not apply, and ``partial_fit`` is
        unavailable).
    schedule : str or schedule, default='constant'
        Learning-rate schedule scaling ``learning_rate_init``: a name in
        ``fastfit.schedules.SCHEDULE_NAMES`` or an instance from
        :mod:`fastfit.schedules`. Most are stepped once per epoch;
        'onecycle', 'warmup_cosine', 'coslog4' and the classes ``OneCycleLR``,
        ``CosineAnnealingWarmRestarts``, ``WarmupCosine`` and ``CosLog`` give
        every mini-batch its own rate, planned over ``max_iter`` epochs of
        this fit's batches (for ``partial_fit``, those of its first call).
    alpha : float, default=1e-4
        Strength of the penalty on weights (not biases), scaled as in
        scikit-learn: ``alpha * R(W) / n_batch`` per mini-batch (the sum of the
        sample weights of the batch; all samples with 'lbfgs').
    penalty : {'l2', 'l1', 'elasticnet'}, default='l2'
        ``R(W)`` is ``||W||^2 / 2``, ``||W||_1``, or their mix by ``l1_ratio``.
    l1_ratio : float, default=0.15
        L1 share of the elastic-net penalty.
    batch_size : int, 'auto' or 'full', default='auto'
        Rows per step; 'auto' is ``min(200, n_samples)``, 'full' is gradient
        descent on every sample at once.
    learning_rate_init : float, default=1e-3
        Base learning rate.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule: ``lr / (epoch + 1) ** power_t``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no improvement.
    verbose : bool or int, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Start from the current ``coefs_``/``intercepts_`` (which may be assigned
        by the user) with fresh optimizer state.
    momentum : float, default=0.9
        Momentum of the named optimizers 'sgd', 'momentum' and 'nesterov'.
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum (as scikit-learn's 'sgd' solver).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for
        single-output classification) and stop when the monitored validation
        metric stops improving; the best epoch's weights are restored.
    early_stopping_monitor : {'loss', 'score'}, default='loss'
        What early stopping watches: the validation loss, or the validation
        score (accuracy / R^2, scikit-learn's choice).
    best_epoch : {'first', 'last'}, default='first'
        Which weights early stopping restores when several epochs tie for the
        best validation metric: the first such epoch's (scikit-learn's rule)
        or the last one's (RealMLP's). Ties are common when the score is an
        accuracy on a small validation set, where the last of them has trained
        longest.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Hyperparameters of the named optimizers 'adam' and 'adamw'.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    max_fun : int, default=15000
        Only used when ``optimizer='lbfgs'``: maximum number of objective
        evaluations (each one pass over all samples).
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into the sample weights.
    label_smoothing : float in [0, 1), default=0
        Train against smoothed targets, as PyTorch's ``CrossEntropyLoss``
        does: ``(1 - eps) * onehot + eps / n_classes`` for a softmax output,
        ``(1 - eps) * y + eps / 2`` for logistic outputs (binary, multilabel).
        ``loss_`` is the cross-entropy against them; predictions are unchanged
        in kind (probabilities of the model).
    clip_norm : float or None, default=None
        Clip the global gradient norm (penalty included) before every step.
    dtype : {np.float32, np.float64}, default=np.float32
        Precision of training and prediction.
    n_threads : int or None, default=None
        Threads of the engine. None uses what OpenMP allows (all cores unless
        limited by OMP_NUM_THREADS, threadpoolctl or joblib), and a negative
        count counts back from it (-1: all of it). A positive count is used
        as given, capped only by the cores the process may use (affinity,
        cgroup quotas), not by OMP_NUM_THREADS: a Dask worker (whose nanny
        sets OMP_NUM_THREADS=1) trains on ``n_threads=2`` with two threads.
        Results are the same for any count.
    init : {'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', \
            'lecun_normal'}, default='glorot_uniform'
        Distribution of the initial weights, from ``random_state``:
        'glorot_uniform' is scikit-learn's (``U(-b, b)``, ``b = sqrt(6 /
        (fan_in + fan_out))``, 2 instead of 6 for ``activation='logistic'``);
        'glorot_normal' ``N(0, 2 / (fan_in + fan_out))``, 'he_uniform'
        ``U(-sqrt(6 / fan_in), sqrt(6 / fan_in))``, 'he_normal' ``N(0, 2 /
        fan_in)`` (for ReLU), 'lecun_normal' ``N(0, 1 / fan_in)``: the
        ``torch.nn.init`` formulas, normals untruncated.
    bias_init : {'init', 'zeros'}, default='init'
        Initial biases: drawn like the weights of their layer (scikit-learn's
        choice), or zero.
    ema_decay : float in (0, 1) or None, default=None
        Predict with an exponential moving average of the weights (Keras's
        ``use_ema`` with ``ema_momentum=ema_decay``): after every optimizer
        step ``average = ema_decay * average + (1 - ema_decay) * weights``
        (the first step copies), in the engine's optimizer pass.
    swa_start : int or None, default=None
        Predict with stochastic weight averaging: the mean of the weights at
        the end of every epoch from epoch ``swa_start`` (counted from 1 in
        each ``fit``) on, ``torch.optim.swa_utils.AveragedModel``'s running
        mean; the trained weights until then.

        With either, ``coefs_``/``intercepts_`` hold the average after every
        epoch: it is what the validation score, early stopping's best epoch
        and ``predict`` use, while training goes on from the trained weights
        (kept for ``partial_fit``; a ``warm_start`` fit starts from
        ``coefs_``). Not with ``optimizer='lbfgs'``.
    communicator : mpi4py.MPI.Intracomm or None, default=None
        Train data-parallel over MPI (needs the ``mpi`` extra): the same
        script runs on every process of the communicator (``mpiexec -n N``),
        each calling ``fit`` / ``partial_fit`` on its own shard of the rows
        (same features and target type; a classifier learns the classes of
        every shard). ``batch_size`` is then the batch of each process: a step
        averages the gradients of every process's batch (one allreduce) and
        applies the gradient of the global batch, its penalty scaled by the
        global batch's weight, so the processes keep bit-identical weights,
        the same as one process on batches of the shards' batches in rank
        order. An epoch has the most batches any shard has (a process whose
        rows ran out contributes empty batches). Rank 0's initial weights and
        dropout key are used; each process shuffles its shard with its own
        stream drawn from ``random_state`` and the rank; the validation split
        is drawn per shard and the epochs are scored on every shard's
        validation rows; divergence and early stopping are decided from the
        reduced values, so every process stops at the same epoch. An input
        one process refuses raises on every process. Not pickled (an
        unpickled or deep-copied estimator has ``None``; ``clone`` shares
        it); not with ``optimizer='lbfgs'``.
    sync_every : int or None, default=None
        With a communicator: None for synchronous steps; K for local SGD
        (``torch.distributed``'s ``PeriodicModelAverager``): each process
        steps on its own batch (its penalty scaled by the whole batch's
        weight, as if the processes' batches were one) and the parameters are
        averaged every K steps and at every epoch's end. K=1 with the 'sgd'
        optimizer without momentum is synchronous training (for shards of
        equal batches). An optimizer's state (moments) is not averaged.
    sync_warmup : int, default=0
        With ``sync_every``: synchronous steps before local SGD starts
        (post-local SGD), counted from the start of the fit (of the first
        call for ``partial_fit``).
    overlap_allreduce : bool, default=False
        With a communicator: start each layer's gradient allreduce as soon as
        its gradient is final (``Iallreduce``), while the backward pass goes
        on, instead of one allreduce of the whole gradient after it. The
        same sums, so the same fit for 2 processes (for more, the MPI library
        may add in another order); see ``docs/performance.md`` for what it
        buys.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
    coefs_ : list of ndarray of shape (fan_in, fan_out)
    intercepts_ : list of ndarray of shape (fan_out,)
    loss_ : float
        Training objective of the last epoch (penalty included).
    loss_curve_ : list of float
        Not set by ``optimizer='lbfgs'`` (as in scikit-learn), nor are
        ``learning_rate_curve_``, ``best_loss_`` and the validation record.
    learning_rate_curve_ : list of float
        Learning rate of each epoch: that of its first mini-batch (for a
        per-step schedule the rate at the epoch's start; the epoch's other
        batches are in ``learning_rate_steps_``).
    learning_rate_steps_ : list of ndarray of shape (n_batches,)
        Learning rate of every mini-batch of each epoch, as the engine used
        them (float64, in batch order; a batch of zero total sample weight
        takes no step but keeps its place). ``learning_rate_steps_[e][0] ==
        learning_rate_curve_[e]``; ``np.concatenate(learning_rate_steps_)`` is
        the whole sequence. Kept across ``partial_fit`` calls, like
        ``loss_curve_``.
    best_loss_ : float
    validation_scores_, validation_loss_curve_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs, or L-BFGS iterations.
    t_ : int
        Samples seen; 'lbfgs' does not count them (as in scikit-learn).
    n_features_in_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    """

    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_losses.CLASSIFIER_LOSSES))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        negative_slope=0.01,
        dropout=0.0,
        loss="log_loss",
        optimizer="adam",
        schedule="constant",
        alpha=1e-4,
        penalty="l2",
        l1_ratio=0.15,
        batch_size="auto",
        learning_rate_init=1e-3,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        early_stopping_monitor="loss",
        best_epoch="first",
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        label_smoothing=0.0,
        clip_norm=None,
        dtype=np.float32,
        n_threads=None,
        init="glorot_uniform",
        bias_init="init",
        ema_decay=None,
        swa_start=None,
        communicator=None,
        sync_every=None,
        sync_warmup=0,
        overlap_allreduce=False,
    ):
        _store_params(self, locals())

    def _encode_targets(self, y, first_call, classes, dtype, same_classes=False):
        if not (first_call or same_classes):
            Y = self._known_class_indices(y, dtype)
            if Y is not None:
                return Y, _losses.classifier_loss(
                    self.loss,
                    "multiclass" if self._y_type == "multiclass" else "binary",
                    self.label_smoothing,
                )
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"Unknown label type: {y_type!r}. MLPClassifier needs class labels "
                "(binary, multiclass or a multilabel indicator matrix); for "
                "continuous targets use MLPRegressor."
            )
        if first_call:
            labels = unique_labels(classes) if classes is not None else unique_labels(y)
            if y_type == "multilabel-indicator":
                labels = np.arange(y.shape[1])
            labels = np.asarray(labels)
            self.classes_ = labels
            self._y_type = (
                "multiclass" if (y_type == "binary" and len(labels) > 2) else y_type
            )
            if self._y_type == "binary" and len(labels) > 2:
                self._y_type = "multiclass"
        if self._y_type == "multilabel-indicator":
            if y_type != "multilabel-indicator" or y.shape[1] != len(self.classes_):
                raise ValueError(
                    "y must be a multilabel indicator matrix with "
                    f"{len(self.classes_)} columns, as when first fitted"
                )
            Y = np.ascontiguousarray(y, dtype=dtype)
        else:
            if y_type == "multilabel-indicator":
                raise ValueError(
                    "y is a multilabel indicator matrix but the model "
                    "was fitted on single-label targets"
                )
            y1 = np.ravel(y)
            if same_classes and not first_call:
                self._check_same_classes(y1)
            unseen = np.setdiff1d(unique_labels(y1), self.classes_)
            if len(unseen):
                raise ValueError(
                    f"y contains labels not seen in the first fit / "
                    f"`classes`: {unseen.tolist()}"
                )
            idx = np.searchsorted(self.classes_, y1)
            Y = idx.astype(dtype).reshape(-1, 1)
        loss_fn = _losses.classifier_loss(
            self.loss,
            "multiclass" if self._y_type == "multiclass" else "binary",
            self.label_smoothing,
        )
        return np.ascontiguousarray(Y), loss_fn

    def _known_class_indices(self, y, dtype):
        """The encoded targets (class indices) of a 1-d integer or bool y of
        single-label targets whose labels are all in ``classes_`` (of the
        same kind), found by one search of the sorted ``classes_``: what the
        general path gives without its label-type inference (about 0.3 ms).
        None for any other y, or one with unseen labels: the general path
        then checks it and names the problem."""
        classes = self.classes_
        if not (
            self._y_type in ("binary", "multiclass")
            and type(y) is np.ndarray
            and y.ndim == 1
            and isinstance(classes, np.ndarray)
            and classes.ndim == 1
            and len(classes)
            and y.dtype.kind in "biu"
            and y.dtype.kind == classes.dtype.kind
        ):
            return None
        idx = np.searchsorted(classes, y)
        if not (classes[np.minimum(idx, len(classes) - 1)] == y).all():
            return None
        return idx.astype(dtype).reshape(-1, 1)

    def _same_classes(self, classes):
        """Whether ``classes`` (given again to partial_fit, as dask-ml's
        Incremental does on every call) are the fitted ``classes_``. Integer
        labels are compared directly (``unique_labels`` costs about 0.3 ms);
        any others through ``unique_labels``, which checks their types."""
        fitted = self.classes_
        labels = np.asarray(classes)
        if (
            labels.ndim == 1
            and labels.dtype.kind in "biu"
            and isinstance(fitted, np.ndarray)
            and labels.dtype.kind == fitted.dtype.kind
        ):
            return np.array_equal(np.unique(labels), fitted)
        return np.array_equal(np.sort(unique_labels(classes)), fitted)

    def _check_same_classes(self, y):
        labels = unique_labels(y)
        if len(np.setxor1d(labels, self.classes_)):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as "
                f"in the previous call to fit. Previously got {self.classes_}, "
                f"`y` has {labels}"
            )

    def _fitted_targets(self, state, loss_fn, n_outputs):
        classes, y_type = state.get("classes_"), state.get("_y_type")
        if y_type not in _Y_TYPES or loss_fn.takes_class_indices != (
            y_type == "multiclass"
        ):
            raise ValueError(f"_y_type is {y_type!r}, not the fitted loss's")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise ValueError("classes_ must be a 1-d array of the fitted labels")
        expected = (1, 2) if y_type == "binary" else (n_outputs,)
        if len(classes) not in expected:
            raise ValueError(
                f"classes_ has {len(classes)} labels, but the fitted network "
                f"has {n_outputs} outputs for {y_type!r} targets"
            )
        try:
            sorted_unique = np.array_equal(np.unique(classes), classes)
        except TypeError:
            sorted_unique = False
        if not sorted_unique:
            # the encoding of y and of predictions is the position in classes_
            raise ValueError(
                f"classes_ must be sorted and unique (as fit sets it), got {classes}"
            )
        return classes, y_type

    def _score_raw(self, raw, y, sample_weight):
        # within a fit: the encoding this fit set (or checked) itself
        labels = self._labels_from_raw(raw, self._loss_fn, self.classes_, self._y_type)
        return accuracy_score(y, labels, sample_weight=sample_weight)

    @staticmethod
    def _labels_from_raw(raw, loss_fn, classes, y_type):
        if loss_fn.takes_class_indices:
            return classes[np.argmax(raw, axis=1)]
        if y_type == "multilabel-indicator":
            return (raw > 0).astype(int)
        if len(classes) == 1:
            # one class seen (scikit-learn fits it): every prediction is it
            return np.full(raw.shape[0], classes[0])
        return classes[(raw[:, 0] > 0).astype(int)]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and labels y.

        Parameters
        ----------
        X : {array-like} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_lbfgs.check_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train for one epoch over (X, y), keeping the optimizer state.

        Parameters
        ----------
        X : {array-like} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            Every class that may appear in any call; required on the first call.

        Returns
        -------
        self : MLPClassifier
        """
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of one chunk are not those of the data. Pass a dict "
                "computed with sklearn.utils.class_weight.compute_class_weight over "
                "all the data instead."
            )
        if not hasattr(self, "_layout"):
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
        elif classes is not None and not self._same_classes(classes):
            raise ValueError(
                f"`classes={list(classes)}` is not the same as on the "
                f"first call to partial_fit: {list(self.classes_)}."
            )
        return self._fit(
            X, y, sample_weight=sample_weight, incremental=True, classes=classes
        )

    def predict(self, X):
        """Predict class labels (or a multilabel indicator matrix) for X."""
        model, raw, _ = self._validated_raw(X)
        return self._labels_from_raw(raw, model.loss_fn, model.classes, model.y_type)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        model, raw, dtype = self._validated_raw(X)
        if len(model.classes) == 1:
            # one class seen: it is certain
            return np.ones((raw.shape[0], 1), dtype=dtype)
        proba = model.loss_fn.link.inverse(raw)
        if model.y_type == "binary":
            proba = np.hstack([1 - proba, proba])
        return proba.astype(dtype, copy=False)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities, computed stably from the raw output."""
        model, raw, dtype = self._validated_raw(X)
        if len(model.classes) == 1:
            return np.zeros((raw.shape[0], 1), dtype=dtype)
        log_inverse = model.loss_fn.link.log_inverse
        if model.y_type == "binary":
            log_proba = np.hstack([log_inverse(-raw), log_inverse(raw)])
        else:
            log_proba = log_inverse(raw)
        return log_proba.astype(dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by a compiled engine.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`; see
    :class:`MLPClassifier` for the parameters they share.

    Parameters
    ----------
    loss : {'squared_error', 'absolute_error', 'huber', 'poisson', 'quantile'}, \
            default='squared_error'
        'squared_error' is ``0.5 * mean_i sum_k (y - y_hat)^2``; 'poisson' uses
        an exponential output (log link) and needs y >= 0; 'quantile' is the
        pinball loss ``mean_i sum_k max(tau u, (tau - 1) u)``, ``u = y - y_hat``,
        whose minimiser is the conditional ``tau``-quantile of y (its
        subgradient at ``u = 0`` is taken as 0; scikit-learn's ``PinballLoss``
        takes ``-tau`` there).
    huber_delta : float, default=1.0
        Threshold of the Huber loss.
    quantile : float or array-like of float, default=0.5
        Only used when ``loss='quantile'`` (but checked whatever the loss): the
        quantile ``tau`` to predict, in (0, 1), or several of them for a single
        target. With several quantiles the network has one output per
        quantile, in the order given: ``predict`` returns shape ``(n_samples,
        n_quantiles)``, column ``j`` for ``quantile[j]``, and ``n_outputs_`` is
        ``n_quantiles``; several quantiles with several target columns raise
        ValueError (fit one model per target). Nothing keeps the columns from
        crossing. One quantile (a float or a one-element sequence) predicts
        like the other losses: ``(n_samples,)`` for a 1-d y, ``(n_samples,
        n_targets)`` otherwise.

    Other parameters are those of :class:`MLPClassifier` (without
    ``class_weight``).
    """

    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_losses.REGRESSOR_LOSSES))],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
        # each value of a sequence is checked in fit (losses.check_quantiles)
        "quantile": [Interval(Real, 0, 1, closed="neither"), "array-like"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        negative_slope=0.01,
        dropout=0.0,
        loss="squared_error",
        optimizer="adam",
        schedule="constant",
        alpha=1e-4,
        penalty="l2",
        l1_ratio=0.15,
        batch_size="auto",
        learning_rate_init=1e-3,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        early_stopping_monitor="loss",
        best_epoch="first",
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        huber_delta=1.0,
        quantile=0.5,
        clip_norm=None,
        dtype=np.float32,
        n_threads=None,
        init="glorot_uniform",
        bias_init="init",
        ema_decay=None,
        swa_start=None,
        communicator=None,
        sync_every=None,
        sync_warmup=0,
        overlap_allreduce=False,
    ):
        _store_params(self, locals())

    def _encode_targets(self, y, first_call, classes, dtype, same_classes=False):
        y = np.asarray(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        loss_fn = _losses.regressor_loss(self.loss, self.huber_delta, self.quantile)
        loss_fn.check_targets(y)
        Y = np.ascontiguousarray(y, dtype=dtype)
        if not np.isfinite(Y).all():
            raise ValueError(
                f"y has values too large for dtype={np.dtype(dtype).name} (the largest "
                f"is {np.finfo(dtype).max:.3g}); scale y or use dtype=np.float64."
            )
        Y = loss_fn.expand_targets(Y)
        if not first_call and Y.shape[1] != self.n_outputs_:
            per_target = loss_fn.outputs_per_target
            raise ValueError(
                f"y has {y.shape[1]} outputs"
                + (
                    f" and quantile {per_target} values ({Y.shape[1]} network outputs)"
                    if per_target > 1
                    else ""
                )
                + f", but the model was fitted with {self.n_outputs_}"
            )
        return Y, loss_fn

    def _score_raw(self, raw, y, sample_weight):
        return self._r2(
            y, self._predict_from_raw(raw, self._loss_fn), self._loss_fn, sample_weight
        )

    @staticmethod
    def _predict_from_raw(raw, loss_fn):
        pred = loss_fn.link.inverse(raw)
        return pred.ravel() if pred.shape[1] == 1 else pred

    @staticmethod
    def _r2(y, pred, loss_fn, sample_weight):
        """R^2 of the predictions; with several quantiles, the mean over the
        quantiles of the R^2 of each one's predictions against y."""
        per_target = loss_fn.outputs_per_target
        if per_target > 1:
            y = np.asarray(y)
            if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
                y = np.repeat(y.reshape(-1, 1), per_target, axis=1)
        return r2_score(y, pred, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and target(s) y.

        Parameters
        ----------
        X : {array-like} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_lbfgs.check_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch over (X, y), keeping the optimizer state.

        Parameters
        ----------
        X : {array-like} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            With several quantiles, column ``j`` predicts ``quantile[j]``.
        """
        model, raw, dtype = self._validated_raw(X)
        return self._predict_from_raw(raw, model.loss_fn).astype(dtype, copy=False)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of ``predict(X)`` (scikit-learn's
        regressor score).

        With several quantiles, each quantile's predictions are scored against
        ``y`` and the R^2 are averaged (as over the outputs of a multi-output
        model); quantile models are better judged by ``mean_pinball_loss``
        (``sklearn.metrics``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        model, raw, dtype = self._validated_raw(X)
        pred = self._predict_from_raw(raw, model.loss_fn).astype(dtype, copy=False)
        return self._r2(y, pred, model.loss_fn, sample_weight)
