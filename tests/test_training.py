"""Whole training runs of the estimators against the NumPy oracles of tests/reference.py.

Full-batch training (``batch_size='full'``, ``shuffle=False``, float64) of a small
network from weights we set (``coefs_``/``intercepts_`` assigned, then
``warm_start=True``) takes exactly one optimizer step per epoch, so after K
epochs the weights must equal ``reference.train_full_batch`` run with the same
learning rates, for every loss x optimizer x schedule x penalty. The learning
rates themselves are checked against each schedule's closed form (or an
independent replay of the plateau rule), and gradient-norm clipping against a
NumPy transcription.
"""

import itertools
import math
import warnings
from functools import partial

import numpy as np
import pytest
import reference as ref
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import compute_sample_weight

from fastfit import MLPClassifier, MLPRegressor
from fastfit.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from fastfit.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    MultiStepLR,
    StepLR,
    Warmup,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

K = 8  # epochs (= optimizer steps) per run
RTOL = 1e-10
ATOL = 1e-12


# --------------------------------------------------------------------------
# Problems: estimator targets and the reference's view of them
# --------------------------------------------------------------------------


class Problem:
    """X, the estimator's y, and what the reference needs for the same loss."""

    def __init__(self, name, seed=0, n=40, d=5):
        rng = np.random.RandomState(seed)
        self.name = name
        self.X = rng.randn(n, d)
        self.est_kwargs = {}
        if name == "multiclass":
            idx = rng.randint(0, 3, n)
            self.y = np.array([3, 5, 8])[idx]  # labels need encoding
            self.y_ref, self.n_out, self.ref_loss = idx, 3, "softmax_cross_entropy"
            self.cls = MLPClassifier
        elif name == "binary":
            idx = rng.randint(0, 2, n)
            self.y = np.array(["neg", "pos"])[idx]
            self.y_ref = idx.reshape(-1, 1).astype(float)
            self.n_out, self.ref_loss, self.cls = 1, "sigmoid_log_loss", MLPClassifier
        elif name == "multilabel":
            self.y = rng.randint(0, 2, (n, 3))
            self.y_ref = self.y.astype(float)
            self.n_out, self.ref_loss, self.cls = 3, "sigmoid_log_loss", MLPClassifier
        else:
            self.cls = MLPRegressor
            self.n_out = 2
            self.y = rng.randn(n, 2) * 2.0
            self.ref_loss = name
            self.est_kwargs = {"loss": name}
            if name == "poisson":
                self.y = rng.poisson(2.0, (n, 2)).astype(float)
            if name == "huber":
                self.est_kwargs["huber_delta"] = 0.5
            self.y_ref = self.y
            if name == "quantile":  # one target, two quantiles: two outputs
                self.y = self.y[:, 0]
                self.est_kwargs["quantile"] = QUANTILES
                self.y_ref = np.c_[self.y, self.y]

    def initial_weights(self, hidden, seed=1):
        rng = np.random.RandomState(seed)
        sizes = [self.X.shape[1], *hidden, self.n_out]
        coefs = [rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
        intercepts = [rng.uniform(-0.5, 0.5, b) for b in sizes[1:]]
        return coefs, intercepts


PROBLEMS = (
    "multiclass",
    "binary",
    "multilabel",
    "squared_error",
    "absolute_error",
    "huber",
    "poisson",
    "quantile",
)
QUANTILES = (0.2, 0.7)


@pytest.fixture(autouse=True)
def _huber_delta_in_reference(monkeypatch):
    # reference.backprop calls the loss with its default delta=1; the Huber
    # problem trains with huber_delta=0.5 so that both branches are exercised.
    monkeypatch.setitem(
        ref.LOSSES, "huber", (partial(ref.huber, delta=0.5), "identity")
    )
    # and the quantile problem with its quantiles, one per output
    monkeypatch.setitem(
        ref.LOSSES, "quantile", (partial(ref.quantile, quantile=QUANTILES), "identity")
    )


# --------------------------------------------------------------------------
# Optimizers: (estimator parameters, reference optimizer factory)
# --------------------------------------------------------------------------

OPTIMIZERS = {
    "SGD": ({"optimizer": SGD()}, lambda: ref.SGD()),
    "SGD-nesterov": (
        {"optimizer": SGD(momentum=0.9, nesterov=True)},
        lambda: ref.SGD(momentum=0.9, nesterov=True),
    ),
    "SGD-dampened": (
        {"optimizer": SGD(momentum=0.5, dampening=0.3)},
        lambda: ref.SGD(momentum=0.5, dampening=0.3),
    ),
    "Adagrad": (
        {"optimizer": Adagrad(epsilon=1e-7, initial_accumulator_value=0.1)},
        lambda: ref.Adagrad(eps=1e-7, initial_accumulator_value=0.1),
    ),
    "RMSprop": (
        {"optimizer": RMSprop(rho=0.9, momentum=0.5, centered=True)},
        lambda: ref.RMSprop(alpha=0.9, momentum=0.5, centered=True),
    ),
    "Adam-amsgrad": (
        {"optimizer": Adam(beta_1=0.8, amsgrad=True)},
        lambda: ref.Adam(beta_1=0.8, amsgrad=True),
    ),
    "AdamW": (
        {"optimizer": AdamW(weight_decay=0.1)},
        lambda: ref.AdamW(weight_decay=0.1),
    ),
    # names, configured by the estimator's scikit-learn parameters
    "'sgd'": (
        {"optimizer": "sgd"},  # scikit-learn's default: Nesterov, 0.9
        lambda: ref.SGD(momentum=0.9, nesterov=True),
    ),
    "'sgd'-heavy-ball": (
        {"optimizer": "sgd", "momentum": 0.5, "nesterovs_momentum": False},
        lambda: ref.SGD(momentum=0.5),
    ),
    "'momentum'": (
        {"optimizer": "momentum", "momentum": 0.7},
        lambda: ref.SGD(momentum=0.7),
    ),
    "'adam'": (
        {"optimizer": "adam", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
        lambda: ref.Adam(beta_1=0.8, beta_2=0.99, eps=1e-6),
    ),
    "'adamw'": ({"optimizer": "adamw"}, lambda: ref.AdamW(weight_decay=0.01)),
    "'rmsprop'": ({"optimizer": "rmsprop"}, lambda: ref.RMSprop()),
    "'adagrad'": ({"optimizer": "adagrad"}, lambda: ref.Adagrad()),
}

# --------------------------------------------------------------------------
# Schedules: (estimator parameters, closed form lr(lr0, epoch, max_iter))
# --------------------------------------------------------------------------

SCHEDULES = {
    "constant": ({"schedule": "constant"}, lambda lr, e, T: lr),
    "StepLR": (
        {"schedule": StepLR(step_size=3, gamma=0.5)},
        lambda lr, e, T: lr * 0.5 ** (e // 3),
    ),
    "'step'": (
        {"schedule": "step"},
        lambda lr, e, T: lr * 0.1 ** (e // max(1, T // 3)),
    ),
    "MultiStepLR": (
        {"schedule": MultiStepLR(milestones=[2, 5], gamma=0.3)},
        lambda lr, e, T: lr * 0.3 ** ((e >= 2) + (e >= 5)),
    ),
    "ExponentialLR": (
        {"schedule": ExponentialLR(gamma=0.8)},
        lambda lr, e, T: lr * 0.8**e,
    ),
    "'exponential'": (
        {"schedule": "exponential"},
        lambda lr, e, T: lr * 0.01 ** (e / T),
    ),
    "'linear'": (
        {"schedule": "linear"},
        lambda lr, e, T: lr * (1.0 + (0.01 - 1.0) * min(e, T) / T),
    ),
    "CosineAnnealingLR": (
        {"schedule": CosineAnnealingLR(T_max=5, eta_min=1e-4)},
        lambda lr, e, T: 1e-4 + (lr - 1e-4) * (1 + math.cos(math.pi * e / 5)) / 2,
    ),
    "'cosine'": (
        {"schedule": "cosine"},
        lambda lr, e, T: lr * (1 + math.cos(math.pi * e / T)) / 2,
    ),
    "'invscaling'": (
        {"schedule": "invscaling", "power_t": 0.25},
        lambda lr, e, T: lr / (e + 1) ** 0.25,
    ),
    "Warmup": (
        {"schedule": Warmup(epochs=3, after=ExponentialLR(gamma=0.9))},
        lambda lr, e, T: lr * (e + 1) / 3 if e < 3 else lr * 0.9 ** (e - 3),
    ),
}

# --------------------------------------------------------------------------
# Penalties: (estimator parameters, reference (alpha, l1_ratio))
# --------------------------------------------------------------------------

PENALTIES = {
    "none": ({"alpha": 0.0}, (0.0, 0.0)),
    "l2": ({"alpha": 0.5, "penalty": "l2"}, (0.5, 0.0)),
    "l1": ({"alpha": 0.5, "penalty": "l1"}, (0.5, 1.0)),
    "elasticnet": (
        {"alpha": 0.5, "penalty": "elasticnet", "l1_ratio": 0.3},
        (0.5, 0.3),
    ),
    # l1_ratio only matters for the elastic net
    "l2-ignores-l1_ratio": (
        {"alpha": 0.5, "penalty": "l2", "l1_ratio": 0.7},
        (0.5, 0.0),
    ),
}

ACTIVATIONS = ("tanh", "logistic", "relu", "identity")

# Learning rates at which K full-batch steps move these small problems well
# away from the start without diverging.
_LR = {
    "SGD": 0.1,
    "SGD-nesterov": 0.1,
    "SGD-dampened": 0.1,
    "'sgd'": 0.1,
    "'sgd'-heavy-ball": 0.1,
    "'momentum'": 0.1,
    "RMSprop": 0.01,
    "'rmsprop'": 0.01,
}


def _base_lr(opt_name):
    return _LR.get(opt_name, 0.05)  # Adagrad and the Adam family: 0.05


def _expected_lrs(schedule_name, lr0, max_iter=K):
    return [SCHEDULES[schedule_name][1](lr0, e, max_iter) for e in range(max_iter)]


def _fit_from(
    problem,
    coefs,
    intercepts,
    hidden,
    activation,
    sample_weight=None,
    max_iter=K,
    **params,
):
    """Fit from the given weights; no warning but the max_iter notice is allowed."""
    est = problem.cls(
        hidden_layer_sizes=hidden,
        activation=activation,
        batch_size="full",
        shuffle=False,
        dtype=np.float64,
        warm_start=True,
        max_iter=max_iter,
        n_iter_no_change=1000,
        **problem.est_kwargs,
        **params,
    )
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. divergence would void the comparison
        warnings.filterwarnings(
            "ignore",
            message="Stochastic Optimizer: Maximum",
            category=ConvergenceWarning,
        )
        est.fit(problem.X, problem.y, sample_weight=sample_weight)
    return est


def _assert_matches_reference(
    est,
    problem,
    coefs,
    intercepts,
    activation,
    make_opt,
    lrs,
    alpha,
    l1_ratio,
    sample_weight=None,
):
    assert est.n_iter_ == len(lrs)
    want_c, want_i, losses = ref.train_full_batch(
        coefs,
        intercepts,
        problem.X,
        problem.y_ref,
        activation,
        problem.ref_loss,
        make_opt(),
        lrs,
        alpha=alpha,
        l1_ratio=l1_ratio,
        sample_weight=sample_weight,
    )
    for layer, (got, want) in enumerate(zip(est.coefs_, want_c)):
        np.testing.assert_allclose(
            got, want, rtol=RTOL, atol=ATOL, err_msg=f"coefs_[{layer}]"
        )
    for layer, (got, want) in enumerate(zip(est.intercepts_, want_i)):
        np.testing.assert_allclose(
            got, want, rtol=RTOL, atol=ATOL, err_msg=f"intercepts_[{layer}]"
        )
    # loss_curve_[k]: the objective (penalty included) the k-th step descended
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=RTOL)
    # and the weights actually moved (the comparison is not vacuous)
    assert not np.allclose(est.coefs_[0], coefs[0], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# loss x optimizer x schedule x penalty
# --------------------------------------------------------------------------


def _combos():
    """Every loss x optimizer pair, with schedules, penalties and activations
    cycling so that each value of every axis meets many of the others."""
    schedules, penalties = list(SCHEDULES), list(PENALTIES)
    for i, (prob, opt) in enumerate(itertools.product(PROBLEMS, OPTIMIZERS)):
        yield pytest.param(
            prob,
            opt,
            schedules[i % len(schedules)],
            penalties[i % len(penalties)],
            ACTIVATIONS[i % len(ACTIVATIONS)],
            id=f"{prob}-{opt}-{schedules[i % len(schedules)]}-"
            f"{penalties[i % len(penalties)]}-"
            f"{ACTIVATIONS[i % len(ACTIVATIONS)]}",
        )


@pytest.mark.parametrize(
    "problem_name, opt_name, schedule_name, penalty_name, activation", list(_combos())
)
def test_full_batch_training_matches_reference(
    problem_name, opt_name, schedule_name, penalty_name, activation
):
    problem = Problem(problem_name)
    hidden = (6, 4) if len(opt_name) % 2 else (7,)
    coefs, intercepts = problem.initial_weights(hidden)
    opt_params, make_opt = OPTIMIZERS[opt_name]
    sched_params, _ = SCHEDULES[schedule_name]
    pen_params, (alpha, l1_ratio) = PENALTIES[penalty_name]
    lr0 = _base_lr(opt_name)
    est = _fit_from(
        problem,
        coefs,
        intercepts,
        hidden,
        activation,
        learning_rate_init=lr0,
        **opt_params,
        **sched_params,
        **pen_params,
    )
    lrs = _expected_lrs(schedule_name, lr0)
    np.testing.assert_allclose(est.learning_rate_curve_, lrs, rtol=1e-14)
    _assert_matches_reference(
        est, problem, coefs, intercepts, activation, make_opt, lrs, alpha, l1_ratio
    )


@pytest.mark.parametrize("schedule_name", list(SCHEDULES))
@pytest.mark.parametrize("max_iter", [1, 7, 10])
def test_learning_rate_curve_is_the_schedule(schedule_name, max_iter):
    # the named schedules' defaults depend on max_iter
    problem = Problem("multiclass")
    coefs, intercepts = problem.initial_weights((5,))
    est = _fit_from(
        problem,
        coefs,
        intercepts,
        (5,),
        "tanh",
        max_iter=max_iter,
        learning_rate_init=0.02,
        **SCHEDULES[schedule_name][0],
    )
    np.testing.assert_allclose(
        est.learning_rate_curve_,
        _expected_lrs(schedule_name, 0.02, max_iter),
        rtol=1e-14,
    )


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


@pytest.mark.parametrize("problem_name", ["multiclass", "binary", "huber", "quantile"])
@pytest.mark.parametrize("opt_name", ["SGD-nesterov", "Adam-amsgrad", "AdamW"])
def test_sample_weight_matches_weighted_reference(problem_name, opt_name):
    problem = Problem(problem_name, seed=2)
    coefs, intercepts = problem.initial_weights((6,))
    sw = np.random.RandomState(5).uniform(0.1, 3.0, len(problem.y))
    opt_params, make_opt = OPTIMIZERS[opt_name]
    lr0 = _base_lr(opt_name)
    est = _fit_from(
        problem,
        coefs,
        intercepts,
        (6,),
        "tanh",
        sample_weight=sw,
        learning_rate_init=lr0,
        alpha=0.3,
        **opt_params,
    )
    _assert_matches_reference(
        est,
        problem,
        coefs,
        intercepts,
        "tanh",
        make_opt,
        [lr0] * K,
        0.3,
        0.0,
        sample_weight=sw,
    )


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_class_weight_matches_weighted_reference(with_sample_weight):
    problem = Problem("multiclass", seed=3)
    coefs, intercepts = problem.initial_weights((6,))
    class_weight = {3: 1.0, 5: 4.0, 8: 0.5}
    sw = (
        np.random.RandomState(6).uniform(0.5, 2.0, len(problem.y))
        if with_sample_weight
        else None
    )
    est = _fit_from(
        problem,
        coefs,
        intercepts,
        (6,),
        "relu",
        sample_weight=sw,
        learning_rate_init=0.1,
        alpha=0.1,
        optimizer=SGD(momentum=0.9),
        class_weight=class_weight,
    )
    total = compute_sample_weight(class_weight, problem.y)
    if sw is not None:
        total = total * sw
    _assert_matches_reference(
        est,
        problem,
        coefs,
        intercepts,
        "relu",
        lambda: ref.SGD(momentum=0.9),
        [0.1] * K,
        0.1,
        0.0,
        sample_weight=total,
    )


# --------------------------------------------------------------------------
# Plateau schedules: the monitored metric is wired in
# --------------------------------------------------------------------------


def _replay_plateau(
    metrics, lr0, factor, patience, threshold, mode, cooldown=0, min_lr=0.0, eps=1e-8
):
    """PyTorch's ReduceLROnPlateau (mode='min'), written out independently."""
    lrs, lr, best, bad, cool = [], lr0, math.inf, 0, 0
    for m in metrics:
        lrs.append(lr)
        better = m < (best * (1 - threshold) if mode == "rel" else best - threshold)
        if better:
            best, bad = m, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > eps:
                lr = new
            cool, bad = cooldown, 0
    return lrs


@pytest.mark.parametrize("early_stopping", [False, True])
def test_adaptive_schedule_watches_the_monitored_loss(early_stopping):
    # 'adaptive' (scikit-learn's name) divides the rate by 5 after two epochs
    # without a `tol` improvement; a large tol makes that happen within K epochs.
    problem = Problem("multiclass", seed=4, n=80)
    coefs, intercepts = problem.initial_weights((6,))
    tol = 0.02
    est = _fit_from(
        problem,
        coefs,
        intercepts,
        (6,),
        "tanh",
        max_iter=12,
        learning_rate_init=0.05,
        optimizer=Adam(),
        schedule="adaptive",
        tol=tol,
        early_stopping=early_stopping,
        random_state=0,  # the validation split
    )
    metrics = est.validation_loss_curve_ if early_stopping else est.loss_curve_
    expected = _replay_plateau(
        metrics, 0.05, factor=0.2, patience=1, threshold=tol, mode="abs", eps=0.0
    )
    np.testing.assert_allclose(est.learning_rate_curve_, expected, rtol=1e-14)
    assert len(set(expected)) > 1, "the rate must have been reduced at least once"
    if not early_stopping:
        _assert_matches_reference(
            est,
            problem,
            coefs,
            intercepts,
            "tanh",
            lambda: ref.Adam(),
            expected,
            1e-4,
            0.0,
        )


# --------------------------------------------------------------------------
# Gradient-norm clipping
# --------------------------------------------------------------------------


def _train_full_batch_clipped(
    coefs, intercepts, problem, activation, optimizer, lrs, alpha, l1_ratio, clip_norm
):
    """reference.train_full_batch with the global norm of the full gradient
    (penalty included, weights and biases) clipped to ``clip_norm`` before
    each step: ``g *= clip_norm / (norm + 1e-6)`` when ``norm > clip_norm``."""
    coefs = [np.array(W, dtype=np.float64) for W in coefs]
    intercepts = [np.array(b, dtype=np.float64) for b in intercepts]
    decay_mask = [True] * len(coefs) + [False] * len(intercepts)
    losses, norms = [], []
    for lr in lrs:
        value, cg, ig = ref.backprop(
            coefs,
            intercepts,
            problem.X,
            problem.y_ref,
            activation,
            problem.ref_loss,
            alpha=alpha,
            l1_ratio=l1_ratio,
        )
        grads = cg + ig
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
        if norm > clip_norm:
            grads = [g * (clip_norm / (norm + 1e-6)) for g in grads]
        losses.append(value)
        norms.append(norm)
        optimizer.step(coefs + intercepts, grads, lr=lr, decay_mask=decay_mask)
    return coefs, intercepts, losses, norms


@pytest.mark.parametrize(
    "opt_name", ["SGD", "SGD-nesterov", "Adam-amsgrad", "AdamW", "RMSprop"]
)
@pytest.mark.parametrize(
    "problem_name, penalty_name",
    [("multiclass", "l2"), ("squared_error", "elasticnet"), ("binary", "l1")],
)
def test_clip_norm_matches_numpy(opt_name, problem_name, penalty_name):
    problem = Problem(problem_name, seed=7)
    hidden = (6,)
    coefs, intercepts = problem.initial_weights(hidden, seed=8)
    opt_params, make_opt = OPTIMIZERS[opt_name]
    pen_params, (alpha, l1_ratio) = PENALTIES[penalty_name]
    lr0 = _base_lr(opt_name)
    lrs = [lr0] * K
    # a threshold between the smallest and largest unclipped norms
    *_, free_norms = _train_full_batch_clipped(
        coefs, intercepts, problem, "tanh", make_opt(), lrs, alpha, l1_ratio, math.inf
    )
    clip = float(np.median(free_norms))
    want_c, want_i, losses, norms = _train_full_batch_clipped(
        coefs, intercepts, problem, "tanh", make_opt(), lrs, alpha, l1_ratio, clip
    )
    assert any(n > clip for n in norms), "clipping must be active in some step"

    est = _fit_from(
        problem,
        coefs,
        intercepts,
        hidden,
        "tanh",
        learning_rate_init=lr0,
        clip_norm=clip,
        **opt_params,
        **pen_params,
    )
    for got, want in zip(est.coefs_ + est.intercepts_, want_c + want_i):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(est.loss_curve_, losses, rtol=RTOL)

    # and clipping changed the result (the comparison is not vacuous)
    free = _fit_from(
        problem,
        coefs,
        intercepts,
        hidden,
        "tanh",
        learning_rate_init=lr0,
        **opt_params,
        **pen_params,
    )
    assert not np.allclose(free.coefs_[0], est.coefs_[0], rtol=1e-6, atol=0)


def test_clip_norm_above_every_norm_changes_nothing():
    problem = Problem("multiclass", seed=9)
    coefs, intercepts = problem.initial_weights((6,))
    kw = dict(learning_rate_init=0.1, optimizer=SGD(momentum=0.9), alpha=0.1)
    a = _fit_from(problem, coefs, intercepts, (6,), "relu", **kw)
    b = _fit_from(problem, coefs, intercepts, (6,), "relu", clip_norm=1e6, **kw)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------
# Stopping rules and reproducibility
# --------------------------------------------------------------------------


@pytest.mark.parametrize("early_stopping", [False, True])
def test_adaptive_schedule_stops_when_the_rate_is_exhausted(early_stopping):
    # scikit-learn's learning_rate='adaptive' (solver='sgd'): when the monitored
    # loss stops improving by tol, the rate is divided by 5 *instead of*
    # stopping, and training stops only once the rate has fallen to 1e-6.
    # (The 'adaptive' runner's continue_after_stall keeps training while the
    # rate is above 1e-6.) With tol so large that no epoch
    # counts as an improvement, scikit-learn runs ~19 epochs here and ends
    # at lr 3.2e-7; stopping after n_iter_no_change bad epochs at lr 1e-3
    # would silently turn 'adaptive' into 'constant'.
    problem = Problem("multiclass", seed=10, n=120)
    est = problem.cls(
        hidden_layer_sizes=(8,),
        optimizer="sgd",
        schedule="adaptive",
        tol=10.0,
        n_iter_no_change=2,
        max_iter=100,
        random_state=0,
        early_stopping=early_stopping,
        validation_fraction=0.2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(problem.X, problem.y)
    assert est.n_iter_ < 100, "it must stop by itself"
    assert min(est.learning_rate_curve_) <= 1e-6 * 5, est.learning_rate_curve_
    assert est.n_iter_ > est.n_iter_no_change + 1


def test_fit_is_reproducible_for_a_seed_and_thread_count():
    problem = Problem("multiclass", seed=11, n=300, d=20)
    fits = [
        problem.cls(
            hidden_layer_sizes=(64, 32),
            max_iter=3,
            random_state=0,
            batch_size=50,
            n_threads=2,
        ).fit(problem.X, problem.y)
        for _ in range(2)
    ]
    for a, b in zip(
        fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_
    ):
        np.testing.assert_array_equal(a, b)
