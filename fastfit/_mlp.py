"""The estimators: validation, target encoding, the epoch loop, early stopping.

Python runs once per epoch (permutation, learning rate, scoring, early stopping,
progress); the compiled engine runs every mini-batch of the epoch in one call
with the GIL released.
"""

import ctypes
import functools
import os
import threading
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin,
                          _fit_context, is_classifier)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted,
                                      validate_data)
from threadpoolctl import ThreadpoolController

from fastfit import losses as _losses
from fastfit._engine import _network, _threads, _train
from fastfit._engine._losses import loss_gradient_py
from fastfit._layout import Layout, aligned_empty
from fastfit.optimizers import OPTIMIZER_NAMES, resolve_optimizer
from fastfit.schedules import SCHEDULE_NAMES, InverseScaling, resolve_schedule

_ACTIVATIONS = tuple(_network.ACTIVATIONS)
# Rows per chunk of the prediction forward pass (bounded memory for any n, and
# the unit of work of a thread): about this many activations per buffer, with
# at least _PREDICT_MIN_CHUNK rows so the gemms stay efficient.
_PREDICT_CHUNK_ELEMENTS = 1 << 18
_PREDICT_MIN_CHUNK = 64
# exp() of the 'poisson' output overflows float64 above this
_MAX_EXP_ARG = 709.0
# rows of X forward-checked after each epoch when there is no validation set
_DIVERGENCE_PROBE_ROWS = 256
# schedule='adaptive' stops training once the rate falls to this (scikit-learn's rule)
_ADAPTIVE_MIN_LR = 1e-6
# verbose=2 shows a bar within epochs of at least this many batches, updated
# after each of _PROGRESS_PIECES engine calls.
_PROGRESS_MIN_BATCHES = 50
_PROGRESS_PIECES = 20


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
            print(f"\r{self.desc}: {self.done}/{self.total} batches", end="",
                  flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
        else:
            print("\r", end="", flush=True)


class _SingleThreadedBlas:
    """While any fit or predict runs, in any thread, the engine's BLAS uses one thread.

    The engine parallelises with its own OpenMP threads; BLAS threads on top would
    fight them for the cores and change the rounding. The setting is process-wide,
    so overlapping fits in Python threads share it: the first user pins, the last
    one restores, and the pin is re-applied every epoch in case other code changed
    it meanwhile. Only SciPy's BLAS (what the engine calls through
    ``scipy.linalg.cython_blas``) is touched.

    With SciPy's OpenBLAS (pthreads), ``openblas_set_num_threads`` (what
    threadpoolctl calls) has no effect when called from a thread other than the
    main one; ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) does, from
    any thread, so it is used when present.
    """

    _lock = threading.Lock()
    _users = 0
    _saved = ()
    _setters = None  # one (get, set) pair per engine BLAS library

    @classmethod
    def _setup(cls):
        if cls._setters is not None:
            return
        blas = [lc for lc in ThreadpoolController().lib_controllers
                if lc.user_api == "blas"]
        scipy_libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)),
                                  "scipy.libs")
        own = [lc for lc in blas
               if os.path.dirname(os.path.abspath(lc.filepath)) == scipy_libs]
        setters = []
        for lc in own or blas:
            try:
                fn = ctypes.CDLL(lc.filepath).openblas_set_num_threads_local
                fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                setters.append((lc.get_num_threads, fn))
            except (OSError, AttributeError):
                setters.append((lc.get_num_threads, lc.set_num_threads))
        cls._setters = setters

    @classmethod
    def pin(cls):
        """(Re-)apply the one-thread setting."""
        cls._setup()
        for _, set_threads in cls._setters:
            set_threads(1)

    def __enter__(self):
        cls = type(self)
        cls._setup()
        with cls._lock:
            if cls._users == 0:
                cls._saved = [get() for get, _ in cls._setters]
            cls._users += 1
            cls.pin()
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                for (_, set_threads), n in zip(cls._setters, cls._saved):
                    set_threads(n)
                cls._saved = ()
        return False


def _effective_n_threads(n_threads):
    """Threads for the engine: ``n_threads``, or what OpenMP allows (None).

    OpenMP's limit honours OMP_NUM_THREADS, threadpoolctl and joblib (which sets
    it in its workers so that parallel fits do not oversubscribe the cores).
    """
    max_threads = _threads.openmp_max_threads()
    if n_threads is None:
        return max(1, max_threads)
    if n_threads < 0:
        return max(1, max_threads + 1 + n_threads)
    return max(1, min(int(n_threads), max_threads) if max_threads > 1 else 1)


class BaseMLP(BaseEstimator):
    """Shared machinery of MLPClassifier and MLPRegressor."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "optimizer": [StrOptions(set(OPTIMIZER_NAMES)),
                      HasMethods(["_init_state", "_step"])],
        "schedule": [StrOptions(set(SCHEDULE_NAMES)), HasMethods(["start"])],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [StrOptions({"auto", "full"}),
                       Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "early_stopping_monitor": [StrOptions({"loss", "score"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "clip_norm": [None, Interval(Real, 0, None, closed="neither")],
        "dtype": "no_validation",  # any spelling of float32/float64: see _dtype()
        "n_threads": [None, Interval(Integral, None, None, closed="neither")],
    }

    def __init__(self, hidden_layer_sizes, activation, *, loss, optimizer, schedule,
                 alpha, penalty, l1_ratio, batch_size, learning_rate_init, power_t,
                 max_iter, shuffle, random_state, tol, verbose, warm_start, momentum,
                 nesterovs_momentum, early_stopping, early_stopping_monitor,
                 validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change,
                 clip_norm, dtype, n_threads):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.schedule = schedule
        self.alpha = alpha
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.early_stopping_monitor = early_stopping_monitor
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.clip_norm = clip_norm
        self.dtype = dtype
        self.n_threads = n_threads

    # ------------------------------------------------------------------ setup
    def _resolved_optimizer(self):
        optimizer = resolve_optimizer(
            self.optimizer, momentum=self.momentum,
            nesterovs_momentum=self.nesterovs_momentum, beta_1=self.beta_1,
            beta_2=self.beta_2, epsilon=self.epsilon)
        optimizer._validate()
        return optimizer

    def _resolved_schedule(self):
        if isinstance(self.schedule, str) and self.schedule == "invscaling":
            return InverseScaling(power_t=self.power_t)
        return resolve_schedule(self.schedule, self.max_iter, tol=self.tol)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, Integral) or s <= 0
               for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {sizes}.")
        if len(sizes) > 62:
            raise ValueError("at most 62 hidden layers are supported")
        return [int(s) for s in sizes]

    def _dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(
                f"dtype must be np.float32 or np.float64, got {self.dtype!r}")
        return dtype.type

    def _n_threads(self):
        if self.n_threads == 0:
            raise ValueError("n_threads must be a positive int, a negative int "
                             "(counting back from all cores) or None")
        return _effective_n_threads(self.n_threads)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size == "full":
            return n_samples
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` larger than the number of samples; it is "
                f"clipped to {n_samples}.")
        return min(int(self.batch_size), n_samples)

    def _penalty_l1_ratio(self):
        if self.penalty == "l2":
            return 0.0
        if self.penalty == "l1":
            return 1.0
        return float(self.l1_ratio)

    def _glorot_init(self, layout, rng, dtype):
        # scikit-learn's order and bounds, so equal seeds give equal starts.
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layout.sizes[:-1], layout.sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(rng.uniform(-bound, bound, fan_out))
        return layout.pack(coefs, intercepts, dtype)

    def _set_params_buffer(self, layout, params):
        self._layout = layout
        self._params = params
        self.coefs_, self.intercepts_ = layout.views(params)

    def _packed_params(self):
        """The flat buffer behind coefs_/intercepts_, rebuilt if they were replaced."""
        layout = self._layout
        if (len(self.coefs_) != layout.n_layers
                or len(self.intercepts_) != layout.n_layers):
            raise ValueError("coefs_ and intercepts_ must have one entry per layer")
        params = getattr(self, "_params", None)
        if params is not None and layout.is_view(params, self.coefs_, self.intercepts_):
            return params
        for l, (c, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            shape_c = (int(layout.sizes[l]), int(layout.sizes[l + 1]))
            if np.shape(c) != shape_c or np.shape(b) != shape_c[1:]:
                raise ValueError(
                    f"coefs_[{l}] / intercepts_[{l}] must have shapes {shape_c} "
                    f"and {shape_c[1:]}, got {np.shape(c)} and {np.shape(b)}")
        params = layout.pack(self.coefs_, self.intercepts_, self._fit_dtype)
        if not np.isfinite(params).all():
            raise ValueError("coefs_ / intercepts_ contain NaN or infinity")
        self._set_params_buffer(layout, params)
        return params

    # -------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        fitted = hasattr(self, "_layout")
        # keep the data contract (features, classes, dtype) of the previous fit
        continuing = fitted and (incremental or self.warm_start)
        # keep the optimizer state and schedule too (partial_fit)
        resuming = fitted and incremental
        dtype = self._fit_dtype if continuing else self._dtype()
        X, y = validate_data(self, X, y, reset=not continuing, dtype=dtype, order="C",
                             multi_output=True, y_numeric=not is_classifier(self))
        Y, spec = self._encode_targets(y, not continuing, classes, dtype)
        sample_weight = self._sample_weights(X, y, sample_weight, dtype)

        layout = Layout([X.shape[1]] + self._hidden_sizes()
                        + [self._n_outputs_from(Y, spec)])
        optimizer = self._resolved_optimizer()
        # everything that can reject a hyperparameter runs before any state is set
        runner = None if resuming else self._resolved_schedule().start(
            self.learning_rate_init, self.max_iter)
        n_threads = self._n_threads()
        l1_ratio = self._penalty_l1_ratio()
        clip = 0.0 if self.clip_norm is None else float(self.clip_norm)
        if continuing and not np.array_equal(layout.sizes, self._layout.sizes):
            raise ValueError(
                "The network shape changed since the last fit "
                f"({self._layout.sizes.tolist()} -> {layout.sizes.tolist()}); "
                "use warm_start=False to start over.")

        if not continuing:
            self._fit_dtype = dtype
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.learning_rate_curve_ = []
            self.best_loss_ = np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        if not resuming:
            self._random_state = check_random_state(self.random_state)
            if continuing or (self.warm_start and hasattr(self, "coefs_")):
                # previous or user-assigned weights, shapes checked
                self._layout = layout
                params = self._packed_params()
            else:
                params = self._glorot_init(layout, self._random_state, dtype)
            probe = _forward(layout, params, X[:_DIVERGENCE_PROBE_ROWS],
                             self.activation, n_threads)
            if not _predictions_finite(probe, spec.out_activation):
                raise ValueError(
                    "The network's predictions overflow even at its initial weights: "
                    f"X is too large in magnitude (max |X| = {np.abs(X).max():.3g}) "
                    f"for loss={self.loss!r}. Scale X (e.g. StandardScaler).")
            self._set_params_buffer(layout, params)
            self.n_layers_ = layout.n_layers + 1
            self.n_outputs_ = int(layout.sizes[-1])
            self.out_activation_ = spec.out_activation
            self._optimizer_state = optimizer._init_state(layout.n_params, dtype)
            self._opt_steps = 0
            self._schedule_runner = runner
            self._no_improvement_count = 0
            self._best_params = None
            if continuing:
                self.best_loss_ = np.inf
                if self.early_stopping:
                    self.best_validation_score_ = -np.inf
                    if self.validation_scores_ is None:
                        self.validation_scores_, self.validation_loss_curve_ = [], []
        else:
            self._packed_params()
            fresh = optimizer._init_state(layout.n_params, dtype)
            if self._optimizer_state.shape != fresh.shape:  # optimizer was changed
                self._optimizer_state, self._opt_steps = fresh, 0

        self._loss_spec = spec
        if self.early_stopping and not incremental:
            (X, Y, sample_weight, X_val, Y_val, sw_val, y_val) = self._validation_split(
                X, Y, sample_weight, y)
        else:
            X_val = Y_val = sw_val = y_val = None

        batch_size = self._batch_size(X.shape[0])
        max_iter = 1 if incremental else self.max_iter
        with _SingleThreadedBlas():
            self._epochs(X, Y, sample_weight, X_val, Y_val, sw_val, y_val,
                         optimizer, batch_size, max_iter, n_threads, l1_ratio, clip,
                         incremental)
        return self

    def _epochs(self, X, Y, sample_weight, X_val, Y_val, sw_val, y_val, optimizer,
                batch_size, max_iter, n_threads, l1_ratio, clip, incremental):
        layout, spec = self._layout, self._loss_spec
        params = self._params
        grads = aligned_empty(params.shape[0], params.dtype)
        last_good = params.copy()
        n = X.shape[0]
        n_batches = -(-n // batch_size)
        empty_idx = np.empty(0, dtype=np.intp)
        sw = sample_weight if sample_weight is not None else np.empty(0, X.dtype)
        hyper = np.asarray(optimizer._hyper(), dtype=np.float64)
        run = functools.partial(_train.train_epoch, layout.sizes, layout.w_off,
                                layout.b_off, params, grads, self._optimizer_state)
        rest = (batch_size, _network.ACTIVATIONS[self.activation], spec.kernel,
                spec.param, optimizer._engine_kind, hyper)
        reg = (float(self.alpha), l1_ratio, clip, n_threads)
        probe_X = X_val if X_val is not None else X[:_DIVERGENCE_PROBE_ROWS]
        runner = self._schedule_runner
        rng = self._random_state
        fit_start = time.perf_counter()
        converged = False
        try:
            for _ in range(max_iter):
                start = time.perf_counter()
                _SingleThreadedBlas.pin()
                lr = float(runner.lr)
                order = rng.permutation(n).astype(np.intp) if self.shuffle else empty_idx
                if self.verbose >= 2 and n_batches >= _PROGRESS_MIN_BATCHES:
                    obj_sum, w_sum, n_steps = self._epoch_with_progress(
                        run, rest, reg, X, Y, sw, order, lr, n_batches, batch_size)
                else:
                    obj_sum, w_sum, n_steps = run(
                        X, Y, sw, order, *rest, np.full(n_batches, lr),
                        self._opt_steps, *reg)
                    self._opt_steps += n_steps
                loss = obj_sum / w_sum if w_sum > 0 else np.nan
                # The epoch's loss is measured before each update: the weights
                # after the last one are checked by a forward pass on a probe
                # (the validation set, else the first rows; a small cost).
                probe_raw = val_loss = None
                if np.isfinite(loss) and np.isfinite(params).all():
                    probe_raw = _forward(layout, params, probe_X, self.activation,
                                         n_threads)
                    if X_val is not None:
                        val_loss = self._loss_value(probe_raw, Y_val, sw_val)
                if probe_raw is None or not _predictions_finite(
                        probe_raw, spec.out_activation) or (
                        X_val is not None and not np.isfinite(val_loss)):
                    params[...] = last_good
                    warnings.warn(
                        f"Training diverged in epoch {self.n_iter_ + 1}: the loss, the "
                        "weights or the predictions became NaN or infinite. The weights "
                        "of the last finite epoch were restored. Try a smaller "
                        "learning_rate_init, standardised inputs (StandardScaler), "
                        "clip_norm, or a different optimizer.", ConvergenceWarning)
                    break
                np.copyto(last_good, params)
                self.n_iter_ += 1
                self.t_ += n
                self.loss_ = float(loss)
                self.loss_curve_.append(self.loss_)
                self.learning_rate_curve_.append(lr)
                monitored = self._after_epoch(probe_raw, val_loss, y_val, sw_val)
                if self.verbose:
                    self._print_progress(lr, time.perf_counter() - start)
                runner.step(monitored)
                if incremental:
                    break
                if self._no_improvement_count > self.n_iter_no_change:
                    if self.schedule == "adaptive" and runner.lr > _ADAPTIVE_MIN_LR:
                        # scikit-learn's 'adaptive': keep going while the
                        # plateau schedule can still lower the rate
                        self._no_improvement_count = 0
                        continue
                    if self.early_stopping:
                        msg = ("Validation %s did not improve more than tol=%f for %d "
                               "consecutive epochs." % (
                                   self.early_stopping_monitor, self.tol,
                                   self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self.verbose:
                        print(msg + " Stopping.")
                    converged = True
                    break
            else:
                if not incremental:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % max_iter,
                        ConvergenceWarning)
        except KeyboardInterrupt:
            params[...] = last_good
            warnings.warn("Training interrupted by user; the weights of the last "
                          "finished epoch are kept.")
        if self.early_stopping and self._best_params is not None and not incremental:
            params[...] = self._best_params
        if self.verbose:
            print(f"Fit: {self.n_iter_} epochs in {time.perf_counter() - fit_start:.3f}s"
                  f", loss = {getattr(self, 'loss_', float('nan')):.8f}"
                  + (" (converged)" if converged else ""))

    def _epoch_with_progress(self, run, rest, reg, X, Y, sw, order, lr, n_batches,
                             batch_size):
        """One epoch as a few engine calls on batch boundaries, with a progress bar."""
        n = X.shape[0]
        pieces = np.array_split(np.arange(n_batches), _PROGRESS_PIECES)
        totals = [0.0, 0.0, 0]
        bar = _ProgressBar(n_batches, f"epoch {self.n_iter_ + 1}")
        try:
            for piece in pieces:
                if len(piece) == 0:
                    continue
                lo, hi = piece[0] * batch_size, min((piece[-1] + 1) * batch_size, n)
                if len(order):
                    args = (X, Y, sw, order[lo:hi])
                else:
                    args = (X[lo:hi], Y[lo:hi], sw[lo:hi] if len(sw) else sw, order)
                obj, w, steps = run(*args, *rest, np.full(len(piece), lr),
                                    self._opt_steps, *reg)
                self._opt_steps += steps
                totals[0] += obj
                totals[1] += w
                totals[2] += steps
                bar.update(len(piece))
                if steps < len(piece):
                    break
        finally:
            bar.close()
        return tuple(totals)

    def _after_epoch(self, raw, val_loss, y_val, sw_val):
        """Early-stopping bookkeeping; returns the value a plateau schedule watches.

        ``raw`` and ``val_loss`` are the network's raw output and loss on the
        validation set, when there is one (else None).
        """
        if self.early_stopping and val_loss is not None:
            # score from float64, like predict: exp of a float32 output overflows early
            score = self._score_raw(raw.astype(np.float64), y_val, sw_val)
            self.validation_scores_.append(score)
            self.validation_loss_curve_.append(val_loss)
            if self.early_stopping_monitor == "score":
                improved = score > self.best_validation_score_ + self.tol
                better = score > self.best_validation_score_
            else:
                improved = val_loss < self.best_loss_ - self.tol
                better = val_loss < self.best_loss_
            self.best_validation_score_ = max(self.best_validation_score_, score)
            self.best_loss_ = min(self.best_loss_, val_loss)
            if better:
                self._best_params = self._params.copy()
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            return val_loss
        loss = self.loss_curve_[-1]
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if loss < self.best_loss_:
            self.best_loss_ = loss
        return loss

    def _print_progress(self, lr, seconds):
        line = f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}"
        if self.early_stopping:
            line += (f", validation loss = {self.validation_loss_curve_[-1]:.8f}"
                     f", validation score = {self.validation_scores_[-1]:.6f}")
        print(line + f", lr = {lr:.3g}, {seconds:.3f}s")

    def _validation_split(self, X, Y, sample_weight, y):
        # single-output classification (class indices or one 0/1 column)
        stratify = Y[:, 0] if is_classifier(self) and Y.shape[1] == 1 else None
        idx = np.arange(X.shape[0])
        n_val = int(np.ceil(self.validation_fraction * X.shape[0]))
        n_classes = len(np.unique(stratify)) if stratify is not None else 1
        if n_val < max(2, n_classes) or X.shape[0] - n_val < max(1, n_classes):
            raise ValueError(
                f"The validation split is too small: validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} samples gives {n_val} "
                f"validation samples{' for %d classes' % n_classes if n_classes > 1 else ''}"
                ". Increase validation_fraction or the number of samples, or set "
                "early_stopping=False.")
        idx_train, idx_val = train_test_split(
            idx, random_state=self._random_state,
            test_size=self.validation_fraction, stratify=stratify)
        idx_train.sort()
        idx_val.sort()
        sw_train = sw_val = None
        if sample_weight is not None:
            sw_train = np.ascontiguousarray(sample_weight[idx_train])
            sw_val = np.ascontiguousarray(sample_weight[idx_val])
        y_val = y[idx_val]
        return (np.ascontiguousarray(X[idx_train]), np.ascontiguousarray(Y[idx_train]),
                sw_train, np.ascontiguousarray(X[idx_val]),
                np.ascontiguousarray(Y[idx_val]), sw_val, y_val)

    def _sample_weights(self, X, y, sample_weight, dtype):
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=dtype,
                                      ensure_non_negative=True)
        class_weight = getattr(self, "class_weight", None)
        if class_weight is not None:
            cw = compute_sample_weight(class_weight, y).astype(dtype)
            sw = cw if sw is None else sw * cw
        if sw is not None:
            if not np.all(np.isfinite(sw)):
                raise ValueError("sample_weight must be finite")
            if sw.sum() <= 0:
                raise ValueError("sample_weight must have a positive sum")
            sw = np.ascontiguousarray(sw, dtype=dtype)
        return sw

    # ----------------------------------------------------------- prediction
    def _raw_output(self, X, n_threads=None):
        """Raw network output (before the output transform) for validated X."""
        if n_threads is None:
            n_threads = self._n_threads()
        return _forward(self._layout, self._packed_params(), X, self.activation,
                        n_threads)

    def _validated_raw(self, X):
        """Raw output for user X, as float64 (what scikit-learn's users expect)."""
        check_is_fitted(self, ["coefs_", "_layout"])
        X = validate_data(self, X, reset=False, dtype=self._fit_dtype, order="C")
        return self._raw_output(X).astype(np.float64, copy=False)

    def _loss_value(self, raw, Y, sw):
        G = np.empty_like(raw)
        return float(loss_gradient_py(self._loss_spec.kernel, raw, Y, sw,
                                      self._loss_spec.param, G))

    def __getstate__(self):
        # coefs_/intercepts_ are views of _params; pickling both would store the
        # weights twice. _packed_params() rebuilds the flat buffer on first use.
        state = super().__getstate__()
        state.pop("_params", None)
        state.pop("_best_params", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _forward(layout, params, X, activation, n_threads):
    """Raw output of the network ``params`` (laid out by ``layout``) on X, in chunks."""
    X = np.ascontiguousarray(X, dtype=params.dtype)
    out = np.empty((X.shape[0], layout.sizes[-1]), dtype=params.dtype)
    width = max(int(layout.sizes[1:].max()), 1)
    chunk = max(_PREDICT_MIN_CHUNK, _PREDICT_CHUNK_ELEMENTS // width)
    with _SingleThreadedBlas():
        _network.forward_raw(layout.sizes, params, layout.w_off, layout.b_off, X, out,
                             _network.ACTIVATIONS[activation], chunk, n_threads)
    return out


def _predictions_finite(raw, out_activation):
    """Whether predictions from this raw output are usable numbers.

    For the log link (exp output) the predictions' sum must be finite too:
    scikit-learn's metrics check their input that way.
    """
    if not np.isfinite(raw).all():
        return False
    if out_activation != "exp" or raw.size == 0:
        return True
    if raw.max() >= _MAX_EXP_ARG:
        return False
    return bool(np.isfinite(np.exp(raw.astype(np.float64)).sum()))


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
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation.
    loss : {'log_loss'}, default='log_loss'
        Training loss.
    optimizer : str or Optimizer, default='adam'
        A name in ``fastfit.optimizers.OPTIMIZER_NAMES`` ('sgd', 'momentum',
        'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamw') or an instance from
        :mod:`fastfit.optimizers`.
    schedule : str or schedule, default='constant'
        Learning-rate schedule, stepped once per epoch: a name in
        ``fastfit.schedules.SCHEDULE_NAMES`` or an instance from
        :mod:`fastfit.schedules`.
    alpha : float, default=1e-4
        Strength of the penalty on weights (not biases), scaled as in
        scikit-learn: ``alpha * R(W) / n_batch`` per mini-batch.
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
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Hyperparameters of the named optimizers 'adam' and 'adamw'.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into the sample weights.
    clip_norm : float or None, default=None
        Clip the global gradient norm (penalty included) before every step.
    dtype : {np.float32, np.float64}, default=np.float32
        Precision of training and prediction.
    n_threads : int or None, default=None
        Threads of the engine; None uses what OpenMP allows (all cores unless
        limited by OMP_NUM_THREADS, threadpoolctl or joblib).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
    coefs_ : list of ndarray of shape (fan_in, fan_out)
    intercepts_ : list of ndarray of shape (fan_out,)
    loss_ : float
        Training objective of the last epoch (penalty included).
    loss_curve_ : list of float
    learning_rate_curve_ : list of float
    best_loss_ : float
    validation_scores_, validation_loss_curve_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
    t_ : int
        Samples seen.
    n_features_in_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    """

    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_losses.CLASSIFIER_LOSSES))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *,
                 loss="log_loss", optimizer="adam", schedule="constant", alpha=1e-4,
                 penalty="l2", l1_ratio=0.15, batch_size="auto",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 early_stopping_monitor="loss", validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, class_weight=None,
                 clip_norm=None, dtype=np.float32, n_threads=None):
        super().__init__(
            hidden_layer_sizes, activation, loss=loss, optimizer=optimizer,
            schedule=schedule, alpha=alpha, penalty=penalty, l1_ratio=l1_ratio,
            batch_size=batch_size, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            early_stopping_monitor=early_stopping_monitor,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, clip_norm=clip_norm,
            dtype=dtype, n_threads=n_threads)
        self.class_weight = class_weight

    def _encode_targets(self, y, first_call, classes, dtype):
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"Unknown label type: {y_type!r}. MLPClassifier needs class labels "
                "(binary, multiclass or a multilabel indicator matrix); for "
                "continuous targets use MLPRegressor.")
        if first_call:
            labels = unique_labels(classes) if classes is not None else unique_labels(y)
            if y_type == "multilabel-indicator":
                labels = np.arange(y.shape[1])
            labels = np.asarray(labels)
            if len(labels) < 2 and y_type != "multilabel-indicator":
                raise ValueError(
                    "The number of classes has to be greater than one; got "
                    f"{len(labels)} class.")
            self.classes_ = labels
            self._y_type = "multiclass" if (y_type == "binary" and len(labels) > 2) \
                else y_type
            if self._y_type == "binary" and len(labels) > 2:
                self._y_type = "multiclass"
        if self._y_type == "multilabel-indicator":
            if y_type != "multilabel-indicator" or y.shape[1] != len(self.classes_):
                raise ValueError("y must be a multilabel indicator matrix with "
                                 f"{len(self.classes_)} columns, as when first fitted")
            Y = np.ascontiguousarray(y, dtype=dtype)
        else:
            if y_type == "multilabel-indicator":
                raise ValueError("y is a multilabel indicator matrix but the model "
                                 "was fitted on single-label targets")
            y1 = np.ravel(y)
            unseen = np.setdiff1d(unique_labels(y1), self.classes_)
            if len(unseen):
                raise ValueError(f"y contains labels not seen in the first fit / "
                                 f"`classes`: {unseen.tolist()}")
            idx = np.searchsorted(self.classes_, y1)
            Y = idx.astype(dtype).reshape(-1, 1)
        spec = _losses.classifier_loss(
            self.loss, "multiclass" if self._y_type == "multiclass" else "binary")
        return np.ascontiguousarray(Y), spec

    def _n_outputs_from(self, Y, spec):
        if spec.out_activation == "softmax":
            return len(self.classes_)
        return Y.shape[1]

    def _score_raw(self, raw, y, sample_weight):
        return accuracy_score(y, self._labels_from_raw(raw), sample_weight=sample_weight)

    def _labels_from_raw(self, raw):
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(raw, axis=1)]
        if self._y_type == "multilabel-indicator":
            return (raw > 0).astype(int)
        return self.classes_[(raw[:, 0] > 0).astype(int)]

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
                "all the data instead.")
        if not hasattr(self, "_layout"):
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to "
                                 "partial_fit.")
        elif classes is not None and not np.array_equal(
                np.sort(unique_labels(classes)), self.classes_):
            raise ValueError(f"`classes={list(classes)}` is not the same as on the "
                             f"first call to partial_fit: {list(self.classes_)}.")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         classes=classes)

    def predict(self, X):
        """Predict class labels (or a multilabel indicator matrix) for X."""
        return self._labels_from_raw(self._validated_raw(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        raw = self._validated_raw(X)
        proba = _losses.output_transform(raw, self.out_activation_)
        if self._y_type == "binary":
            proba = np.hstack([1 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities, computed stably from the raw output."""
        raw = self._validated_raw(X)
        if self._y_type == "binary":
            return np.hstack([_losses.log_output_transform(-raw, "logistic"),
                              _losses.log_output_transform(raw, "logistic")])
        return _losses.log_output_transform(raw, self.out_activation_)

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
    loss : {'squared_error', 'absolute_error', 'huber', 'poisson'}, default='squared_error'
        'squared_error' is ``0.5 * mean_i sum_k (y - y_hat)^2``; 'poisson' uses
        an exponential output (log link) and needs y >= 0.
    huber_delta : float, default=1.0
        Threshold of the Huber loss.

    Other parameters are those of :class:`MLPClassifier` (without
    ``class_weight``).
    """

    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_losses.REGRESSOR_LOSSES))],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *,
                 loss="squared_error", optimizer="adam", schedule="constant", alpha=1e-4,
                 penalty="l2", l1_ratio=0.15, batch_size="auto",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 early_stopping_monitor="loss", validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, huber_delta=1.0,
                 clip_norm=None, dtype=np.float32, n_threads=None):
        super().__init__(
            hidden_layer_sizes, activation, loss=loss, optimizer=optimizer,
            schedule=schedule, alpha=alpha, penalty=penalty, l1_ratio=l1_ratio,
            batch_size=batch_size, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            early_stopping_monitor=early_stopping_monitor,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, clip_norm=clip_norm,
            dtype=dtype, n_threads=n_threads)
        self.huber_delta = huber_delta

    def _encode_targets(self, y, first_call, classes, dtype):
        y = np.asarray(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires y >= 0 (it models counts / rates)")
        if not first_call and y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} outputs, but the model was fitted "
                             f"with {self.n_outputs_}")
        spec = _losses.regressor_loss(self.loss, self.huber_delta)
        Y = np.ascontiguousarray(y, dtype=dtype)
        if not np.isfinite(Y).all():
            raise ValueError(
                f"y has values too large for dtype={np.dtype(dtype).name} (the largest "
                f"is {np.finfo(dtype).max:.3g}); scale y or use dtype=np.float64.")
        return Y, spec

    def _n_outputs_from(self, Y, spec):
        return Y.shape[1]

    def _score_raw(self, raw, y, sample_weight):
        return r2_score(y, self._predict_from_raw(raw), sample_weight=sample_weight)

    def _predict_from_raw(self, raw):
        pred = _losses.output_transform(raw, self.out_activation_)
        return pred.ravel() if pred.shape[1] == 1 else pred

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
        """Predict using the multi-layer perceptron model."""
        return self._predict_from_raw(self._validated_raw(X))
