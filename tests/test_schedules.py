"""Tests of fastfit.schedules.

Expected learning rates are computed here independently of the package:
from PyTorch's documented recurrences (``torch.optim.lr_scheduler``'s
``get_lr``) or closed forms evaluated in NumPy, and, for ReduceLROnPlateau,
derived by hand in the comments.
"""

import copy
import math
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV

from fastfit.schedules import (
    SCHEDULE_NAMES,
    Constant,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CosLog,
    ExponentialLR,
    InverseScaling,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    Schedule,
    StepLR,
    Warmup,
    WarmupCosine,
    resolve_schedule,
)

N_EPOCHS = 30
RTOL = 1e-12


def run(schedule, base_lr, n_epochs=N_EPOCHS, metrics=None, max_iter=None):
    """lr of each of ``n_epochs`` epochs (lr read before the epoch, step after)."""
    runner = schedule.start(base_lr, n_epochs if max_iter is None else max_iter)
    lrs = []
    for e in range(n_epochs):
        assert runner.epoch == e
        lrs.append(runner.lr)
        runner.step(None if metrics is None else metrics[e])
    assert runner.epoch == n_epochs
    return np.array(lrs)


def lrs_after_each_step(runner, metrics):
    """runner.lr after each step(metric): the lr of the *next* epoch."""
    out = []
    for m in metrics:
        runner.step(m)
        out.append(runner.lr)
    return out


# --------------------------------------------------------------------------
# Reference sequences, written independently of the package.
# --------------------------------------------------------------------------


def ref_step_recurrence(base_lr, step_size, gamma, n=N_EPOCHS):
    # torch StepLR.get_lr: multiply by gamma when last_epoch % step_size == 0
    lrs = [base_lr]
    for e in range(1, n):
        lrs.append(lrs[-1] * gamma if e % step_size == 0 else lrs[-1])
    return np.array(lrs)


def ref_multistep_recurrence(base_lr, milestones, gamma, n=N_EPOCHS):
    # torch MultiStepLR.get_lr: multiply by gamma when last_epoch is a milestone
    lrs = [base_lr]
    for e in range(1, n):
        lrs.append(lrs[-1] * gamma if e in milestones else lrs[-1])
    return np.array(lrs)


def ref_exponential_recurrence(base_lr, gamma, n=N_EPOCHS):
    # torch ExponentialLR.get_lr: lr * gamma every epoch
    return base_lr * np.cumprod(np.r_[1.0, np.full(n - 1, gamma)])


def ref_linear_recurrence(base_lr, start, end, total, n=N_EPOCHS):
    # torch LinearLR.get_lr (recursive form)
    lrs = [base_lr * start]
    for e in range(1, n):
        if e > total:
            lrs.append(lrs[-1])
        else:
            lrs.append(
                lrs[-1]
                * (1.0 + (end - start) / (total * start + (e - 1) * (end - start)))
            )
    return np.array(lrs)


def ref_cosine_closed(base_lr, T_max, eta_min, n=N_EPOCHS):
    # torch CosineAnnealingLR documented closed form, for every epoch
    e = np.arange(n)
    return eta_min + (base_lr - eta_min) * (1 + np.cos(np.pi * e / T_max)) / 2


def ref_cosine_recurrence(base_lr, T_max, eta_min, n=N_EPOCHS):
    # torch CosineAnnealingLR.get_lr (recursive form)
    lrs = [base_lr]
    for e in range(1, n):
        lr = lrs[-1]
        if (e - 1 - T_max) % (2 * T_max) == 0:
            lrs.append(lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2)
        else:
            lrs.append(
                (1 + math.cos(math.pi * e / T_max))
                / (1 + math.cos(math.pi * (e - 1) / T_max))
                * (lr - eta_min)
                + eta_min
            )
    return np.array(lrs)


CLOSED_FORM_CASES = [
    ("constant", Constant(), 0.3, lambda b: np.full(N_EPOCHS, b)),
    (
        "step",
        StepLR(step_size=4, gamma=0.5),
        0.3,
        lambda b: ref_step_recurrence(b, 4, 0.5),
    ),
    (
        "step-1",
        StepLR(step_size=1, gamma=0.9),
        1.0,
        lambda b: ref_step_recurrence(b, 1, 0.9),
    ),
    (
        "multistep",
        MultiStepLR(milestones=(3, 10, 25), gamma=0.3),
        0.3,
        lambda b: ref_multistep_recurrence(b, (3, 10, 25), 0.3),
    ),
    (
        "exponential",
        ExponentialLR(gamma=0.9),
        0.3,
        lambda b: ref_exponential_recurrence(b, 0.9),
    ),
    (
        "linear-up",
        LinearLR(start_factor=0.25, end_factor=0.8, total_iters=12),
        0.3,
        lambda b: ref_linear_recurrence(b, 0.25, 0.8, 12),
    ),
    (
        "linear-down",
        LinearLR(start_factor=1.0, end_factor=0.01, total_iters=20),
        0.1,
        lambda b: ref_linear_recurrence(b, 1.0, 0.01, 20),
    ),
    (
        "cosine",
        CosineAnnealingLR(T_max=9, eta_min=0.01),
        0.3,
        lambda b: ref_cosine_closed(b, 9, 0.01),
    ),
    (
        "invscaling",
        InverseScaling(power_t=0.5),
        0.3,
        lambda b: b / np.sqrt(np.arange(1, N_EPOCHS + 1)),
    ),
    (
        "invscaling-1.3",
        InverseScaling(power_t=1.3),
        0.3,
        lambda b: b * np.arange(1.0, N_EPOCHS + 1) ** -1.3,
    ),
]


@pytest.mark.parametrize(
    "schedule, base_lr, reference",
    [c[1:] for c in CLOSED_FORM_CASES],
    ids=[c[0] for c in CLOSED_FORM_CASES],
)
def test_closed_form_schedules_match_reference(schedule, base_lr, reference):
    lrs = run(schedule, base_lr)
    np.testing.assert_allclose(lrs, reference(base_lr), rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    "schedule, base_lr, reference",
    [c[1:] for c in CLOSED_FORM_CASES],
    ids=[c[0] for c in CLOSED_FORM_CASES],
)
def test_closed_form_schedules_ignore_metric(schedule, base_lr, reference):
    metrics = np.random.RandomState(0).uniform(-5, 5, N_EPOCHS)
    metrics[::3] = np.nan
    np.testing.assert_array_equal(
        run(schedule, base_lr, metrics=metrics), run(schedule, base_lr)
    )


def test_small_sequences_by_hand():
    np.testing.assert_allclose(
        run(StepLR(3, 0.1), 1.0, 7), [1, 1, 1, 0.1, 0.1, 0.1, 0.01], rtol=RTOL
    )
    np.testing.assert_allclose(
        run(MultiStepLR([2, 4], 0.5), 1.0, 6), [1, 1, 0.5, 0.5, 0.25, 0.25], rtol=RTOL
    )
    # LinearLR defaults: factor 1/3 -> 1 over 5 epochs, then 1
    np.testing.assert_allclose(
        run(LinearLR(), 3.0, 7),
        [1, 1 + 2 / 5 * 1, 1 + 2 / 5 * 2, 1 + 2 / 5 * 3, 1 + 2 / 5 * 4, 3, 3],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        run(InverseScaling(1.0), 1.0, 4), [1, 1 / 2, 1 / 3, 1 / 4], rtol=RTOL
    )


def test_cosine_matches_torch_recurrence_and_oscillates_past_T_max():
    base, T_max, eta_min = 0.5, 7, 0.05
    lrs = run(CosineAnnealingLR(T_max=T_max, eta_min=eta_min), base)
    # PyTorch's recursive get_lr agrees with the closed form up to accumulated rounding
    np.testing.assert_allclose(
        lrs, ref_cosine_recurrence(base, T_max, eta_min), rtol=1e-10
    )
    # beyond T_max the lr rises again (PyTorch's closed form):
    # minima at T_max, 3 T_max; maxima at 0, 2 T_max, 4 T_max
    np.testing.assert_allclose(lrs[[T_max, 3 * T_max]], eta_min, rtol=RTOL)
    np.testing.assert_allclose(lrs[[0, 2 * T_max, 4 * T_max]], base, rtol=RTOL)
    assert np.all(np.diff(lrs[: T_max + 1]) < 0)
    assert np.all(np.diff(lrs[T_max : 2 * T_max + 1]) > 0)
    # eta_min = 0 reaches exactly zero at T_max
    lrs0 = run(CosineAnnealingLR(T_max=5), 1.0, 11)
    assert abs(lrs0[5]) < 1e-15
    assert lrs0[10] == pytest.approx(1.0, rel=RTOL)


def test_runner_types():
    runner = StepLR().start(np.float32(0.5), np.int64(10))
    assert type(runner.lr) is float and type(runner.epoch) is int
    assert runner.lr == 0.5 and runner.epoch == 0
    runner.step()
    assert type(runner.lr) is float and runner.epoch == 1


# --------------------------------------------------------------------------
# ReduceLROnPlateau state machine (PyTorch semantics, mode='min').
# lrs below are runner.lr after each step(metric), i.e. the lr of the next epoch.
# --------------------------------------------------------------------------


def test_plateau_patience_rel_threshold():
    runner = ReduceLROnPlateau(
        factor=0.5, patience=2, threshold=0.1, threshold_mode="rel"
    ).start(1.0, 30)
    # "better" means metric < best * 0.9
    metrics = [10.0, 9.5, 8.9, 8.9, 8.5, 8.2, 7.0, 7.0, 7.0, 7.0]
    # e0 10.0 < inf*0.9          -> best=10,  bad=0
    # e1  9.5 < 9.0? no          -> bad=1   (improved, but by less than 10%)
    # e2  8.9 < 9.0              -> best=8.9, bad=0
    # e3  8.9 < 8.01? no         -> bad=1
    # e4  8.5 no                 -> bad=2
    # e5  8.2 no                 -> bad=3 > patience=2: lr 1 -> 0.5, bad=0
    # e6  7.0 < 8.01             -> best=7,   bad=0
    # e7, e8 7.0                 -> bad=1, 2
    # e9  7.0                    -> bad=3: lr 0.5 -> 0.25
    expected = [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert lrs_after_each_step(runner, metrics) == expected
    assert runner.best == 7.0 and runner.num_bad_epochs == 0 and runner.epoch == 10


def test_plateau_abs_threshold_is_strict():
    runner = ReduceLROnPlateau(
        factor=0.5, patience=1, threshold=0.5, threshold_mode="abs"
    ).start(1.0, 30)
    # "better" means metric < best - 0.5 (values exact in binary)
    metrics = [5.0, 4.75, 4.5, 4.25, 4.0, 3.75]
    # e0 5.0                     -> best=5,    bad=0
    # e1 4.75 < 4.5? no          -> bad=1
    # e2 4.5  < 4.5? no (strict) -> bad=2 > 1: lr 1 -> 0.5, bad=0
    # e3 4.25 < 4.5              -> best=4.25, bad=0
    # e4 4.0  < 3.75? no         -> bad=1
    # e5 3.75 < 3.75? no         -> bad=2: lr 0.5 -> 0.25
    assert lrs_after_each_step(runner, metrics) == [1, 1, 0.5, 0.5, 0.5, 0.25]
    assert runner.best == 4.25


def test_plateau_rel_and_abs_differ_on_same_metrics():
    # Small absolute improvements of a large loss: 'rel' 1% calls them bad,
    # 'abs' 0.5 calls them good.
    metrics = [1000.0, 999.0, 998.0, 997.0]
    rel = ReduceLROnPlateau(
        factor=0.5, patience=0, threshold=0.01, threshold_mode="rel"
    ).start(1.0, 10)
    abs_ = ReduceLROnPlateau(
        factor=0.5, patience=0, threshold=0.5, threshold_mode="abs"
    ).start(1.0, 10)
    # rel: e1 999 < 990? no -> bad=1 > 0: halve; same at e2, e3
    assert lrs_after_each_step(rel, metrics) == [1, 0.5, 0.25, 0.125]
    # abs: each epoch improves by 1 > 0.5 -> never reduced
    assert lrs_after_each_step(abs_, metrics) == [1, 1, 1, 1]


def test_plateau_cooldown():
    runner = ReduceLROnPlateau(
        factor=0.5, patience=0, threshold=0.0, cooldown=2, eps=0.0
    ).start(1.0, 30)
    metrics = [1.0] * 8
    # e0 best=1. Then every epoch is bad (1.0 < 1.0 is false), patience=0:
    # e1 bad=1 > 0 -> lr 0.5, cooldown_counter=2, bad=0
    # e2 bad=1, in cooldown: counter 2->1, bad reset to 0
    # e3 bad=1, in cooldown: counter 1->0, bad reset to 0
    # e4 bad=1 > 0 -> lr 0.25, counter=2;  e5, e6 cooldown;  e7 -> lr 0.125
    expected_lr = [1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    expected_counter = [0, 2, 1, 0, 2, 1, 0, 2]
    lrs, counters, bads = [], [], []
    for m in metrics:
        runner.step(m)
        lrs.append(runner.lr)
        counters.append(runner.cooldown_counter)
        bads.append(runner.num_bad_epochs)
    assert lrs == expected_lr
    assert counters == expected_counter
    assert bads == [0] * 8


def test_plateau_cooldown_still_tracks_best():
    runner = ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.0, cooldown=1).start(
        1.0, 30
    )
    # e0 2.0 best=2; e1 2.0 bad -> lr 0.5, counter=1;
    # e2 1.0 better during cooldown -> best=1 (counter 1->0);
    # e3 1.5 bad -> 1.5 is compared with best=1, so reduced: lr 0.25
    assert lrs_after_each_step(runner, [2.0, 2.0, 1.0, 1.5]) == [1, 0.5, 0.5, 0.25]
    assert runner.best == 1.0


def test_plateau_min_lr():
    runner = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.015, eps=1e-3).start(
        1.0, 30
    )
    # e0 best. Every later epoch is bad -> a reduction attempt each epoch:
    # e1 max(1*0.1, 0.015) = 0.1;  1 - 0.1 > eps -> 0.1
    # e2 max(0.1*0.1, 0.015) = 0.015 (clipped);  0.085 > eps -> 0.015
    # e3 max(0.0015, 0.015) = 0.015; difference 0 -> unchanged from then on
    assert lrs_after_each_step(runner, [1.0] * 6) == [
        1,
        0.1,
        0.015,
        0.015,
        0.015,
        0.015,
    ]


@pytest.mark.parametrize(
    "eps, expected",
    [
        # halvings of 0.5, 0.25 exceed eps=0.2; 0.125 does not -> stuck at 0.25
        (0.2, [1, 0.5, 0.25, 0.25, 0.25, 0.25]),
        # 0.25 > 0.25 is false (strict): stuck at 0.5
        (0.25, [1, 0.5, 0.5, 0.5, 0.5, 0.5]),
        # eps=0: every reduction applies
        (0.0, [1, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
    ],
)
def test_plateau_eps_rule(eps, expected):
    runner = ReduceLROnPlateau(factor=0.5, patience=0, eps=eps).start(1.0, 30)
    assert lrs_after_each_step(runner, [3.0] * 6) == expected
    # a skipped reduction still resets the bad-epoch counter
    assert runner.num_bad_epochs == 0


def test_plateau_nan_metric_is_a_bad_epoch():
    runner = ReduceLROnPlateau(factor=0.5, patience=1).start(1.0, 30)
    # e0 best=1; e1 nan bad=1; e2 nan bad=2 > 1 -> 0.5; e3 0.5 better than 1
    assert lrs_after_each_step(runner, [1.0, math.nan, math.nan, 0.5]) == [
        1,
        1,
        0.5,
        0.5,
    ]
    assert runner.best == 0.5


def test_plateau_requires_metric():
    runner = ReduceLROnPlateau().start(0.1, 10)
    with pytest.raises(ValueError, match="metric"):
        runner.step()


# --------------------------------------------------------------------------
# Warmup
# --------------------------------------------------------------------------


def test_warmup_then_cosine():
    base, W, T_max, eta_min = 0.2, 5, 10, 0.01
    lrs = run(
        Warmup(epochs=W, after=CosineAnnealingLR(T_max=T_max, eta_min=eta_min)), base
    )
    e = np.arange(N_EPOCHS)
    k = e - W  # the inner schedule's own epoch counter, 0 at the end of warm-up
    expected = np.where(
        e < W,
        base * (e + 1) / W,
        eta_min + (base - eta_min) * (1 + np.cos(np.pi * k / T_max)) / 2,
    )
    np.testing.assert_allclose(lrs, expected, rtol=RTOL)
    assert (
        lrs[W - 1] == lrs[W] == pytest.approx(base)
    )  # ramp ends at base_lr, cosine starts there


def test_warmup_default_is_constant_after():
    np.testing.assert_allclose(
        run(Warmup(epochs=4), 2.0, 7), [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0], rtol=RTOL
    )


def test_warmup_after_name_uses_remaining_epochs():
    max_iter, W = 20, 4
    lrs = run(Warmup(epochs=W, after="cosine"), 1.0, max_iter)
    # 'cosine' resolved with max_iter - W = 16 epochs: T_max = 16
    k = np.arange(max_iter - W)
    np.testing.assert_allclose(lrs[W:], (1 + np.cos(np.pi * k / 16)) / 2, rtol=RTOL)


def test_warmup_then_plateau_ignores_warmup_metrics():
    schedule = Warmup(
        epochs=3, after=ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.0)
    )
    runner = schedule.start(1.0, 30)
    lrs = [runner.lr]
    # e0..e2 are warm-up epochs (lr 1/3, 2/3, 1). Their metrics get worse,
    # which with patience=0 would halve the lr twice if the plateau saw them.
    # e3 5.0: the plateau's first metric -> best=5
    # e4 5.0: bad -> 0.5;  e5 4.0: better;  e6 4.0: bad -> 0.25
    metrics = [1.0, 2.0, 3.0, 5.0, 5.0, 4.0, 4.0]
    for m in metrics:
        runner.step(m)
        lrs.append(runner.lr)
    np.testing.assert_allclose(lrs, [1 / 3, 2 / 3, 1, 1, 1, 0.5, 0.5, 0.25], rtol=RTOL)
    assert runner.inner.best == 4.0
    assert runner.inner.epoch == 4


def test_warmup_then_plateau_metric_optional_only_during_warmup():
    runner = Warmup(epochs=2, after=ReduceLROnPlateau()).start(1.0, 30)
    runner.step()
    runner.step()  # warm-up epochs: no metric needed
    with pytest.raises(ValueError, match="metric"):
        runner.step()


# --------------------------------------------------------------------------
# resolve_schedule
# --------------------------------------------------------------------------

RESOLVE_CASES = [
    ("constant", 10, Constant, {}),
    ("step", 10, StepLR, {"step_size": 3, "gamma": 0.1}),
    ("step", 2, StepLR, {"step_size": 1, "gamma": 0.1}),
    ("exponential", 10, ExponentialLR, {"gamma": 0.01 ** (1 / 10)}),
    (
        "linear",
        10,
        LinearLR,
        {"start_factor": 1.0, "end_factor": 0.01, "total_iters": 10},
    ),
    ("cosine", 10, CosineAnnealingLR, {"T_max": 10, "eta_min": 0.0}),
    ("invscaling", 10, InverseScaling, {"power_t": 0.5}),
    ("plateau", 10, ReduceLROnPlateau, ReduceLROnPlateau().get_params()),
    (
        "adaptive",
        10,
        ReduceLROnPlateau,
        {
            "factor": 0.2,
            "patience": 1,
            "threshold": 1e-4,
            "threshold_mode": "abs",
            "cooldown": 0,
            "min_lr": 0.0,
        },
    ),
    ("onecycle", 10, OneCycleLR, OneCycleLR().get_params()),
    (
        "warmup_cosine",
        10,
        WarmupCosine,
        {"warmup_steps": 0.05, "eta_min": 0.0, "total_steps": None},
    ),
    ("coslog4", 10, CosLog, {"n_cycles": 4, "total_steps": None}),
]


@pytest.mark.parametrize("name, max_iter, cls, params", RESOLVE_CASES)
def test_resolve_schedule_names(name, max_iter, cls, params):
    schedule = resolve_schedule(name, max_iter)
    assert type(schedule) is cls
    got = schedule.get_params()
    for key, value in params.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=RTOL), key
        else:
            assert got[key] == value, key
    schedule.start(0.1, max_iter)  # defaults are valid


def test_resolve_schedule_covers_all_names():
    assert set(SCHEDULE_NAMES) == {case[0] for case in RESOLVE_CASES}
    assert isinstance(SCHEDULE_NAMES, tuple)


@pytest.mark.parametrize("max_iter", [1, 7, 200])
def test_resolve_exponential_and_linear_reach_one_percent(max_iter):
    for name in ("exponential", "linear"):
        runner = resolve_schedule(name, max_iter).start(0.5, max_iter)
        for _ in range(max_iter):
            runner.step()
        assert runner.lr == pytest.approx(0.005, rel=1e-12), name


def test_resolve_adaptive_divides_by_5_after_two_bad_epochs():
    runner = resolve_schedule("adaptive", 50, tol=1e-3).start(1.0, 50)
    metrics = [1.0, 0.9995, 0.9992, 0.5, 0.5, 0.5, 0.3, 0.2999]
    # e0 best=1
    # e1 0.9995, e2 0.9992: each improves by < tol=1e-3 -> 2 bad epochs -> lr / 5
    # e3 0.5: improvement -> best=0.5
    # e4, e5 0.5: 2 bad epochs -> lr / 5 again
    # e6 0.3: improvement;  e7 0.2999: one bad epoch only -> unchanged
    expected = [1, 1, 0.2, 0.2, 0.2, 0.04, 0.04, 0.04]
    np.testing.assert_allclose(
        lrs_after_each_step(runner, metrics), expected, rtol=RTOL
    )


def test_resolve_schedule_returns_instance_unchanged():
    schedule = Warmup(epochs=3, after=StepLR(step_size=2))
    params = schedule.get_params(deep=True)
    assert resolve_schedule(schedule, 100) is schedule
    assert schedule.get_params(deep=True) == params


def test_resolve_schedule_unknown_name_lists_names():
    with pytest.raises(ValueError) as excinfo:
        resolve_schedule("cosine_annealing", 10)
    message = str(excinfo.value)
    assert "cosine_annealing" in message
    for name in SCHEDULE_NAMES:
        assert repr(name) in message


@pytest.mark.parametrize("bad", [5, 0.1, None, StepLR, ["cosine"], b"cosine"])
def test_resolve_schedule_type_error(bad):
    with pytest.raises(TypeError, match="schedule"):
        resolve_schedule(bad, 10)


@pytest.mark.parametrize("max_iter", [0, -3, 2.5, None])
def test_resolve_schedule_bad_max_iter(max_iter):
    with pytest.raises(ValueError, match="max_iter"):
        resolve_schedule("cosine", max_iter)


# --------------------------------------------------------------------------
# scikit-learn parameter protocol
# --------------------------------------------------------------------------

# factories, so every test gets fresh, never-started instances
SCHEDULE_FACTORIES = [
    lambda: Constant(),
    lambda: StepLR(step_size=3, gamma=0.5),
    lambda: MultiStepLR(milestones=[2, 15], gamma=0.5),
    lambda: ExponentialLR(gamma=0.8),
    lambda: LinearLR(start_factor=0.5, end_factor=0.1, total_iters=20),
    lambda: CosineAnnealingLR(T_max=6, eta_min=0.001),
    lambda: InverseScaling(power_t=0.7),
    lambda: ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1),
    lambda: Warmup(epochs=3, after=ReduceLROnPlateau(factor=0.5, patience=0)),
    lambda: Warmup(epochs=2, after=Warmup(epochs=2, after=CosineAnnealingLR(T_max=4))),
    lambda: OneCycleLR(pct_start=0.25, three_phase=True),
    lambda: CosineAnnealingWarmRestarts(T_0=2, T_mult=2, eta_min=0.001),
    lambda: WarmupCosine(warmup_steps=3, eta_min=0.001),
    lambda: CosLog(),
    lambda: Warmup(epochs=2, after=OneCycleLR(anneal_strategy="linear")),
]
IDS = [type(f()).__name__ + str(i) for i, f in enumerate(SCHEDULE_FACTORIES)]
# a metric sequence with improvements and plateaus, so plateau runners move
METRICS = [3.0, 2.0, 2.0, 2.0, 1.5, 1.5, 1.5, 1.5, 1.0] * 4


@pytest.mark.parametrize("factory", SCHEDULE_FACTORIES, ids=IDS)
def test_clone_get_set_params_round_trip(factory):
    schedule = factory()
    params = schedule.get_params(deep=False)
    cloned = clone(schedule)
    assert cloned is not schedule and type(cloned) is type(schedule)
    assert repr(cloned) == repr(schedule)
    np.testing.assert_array_equal(
        run(cloned, 0.1, metrics=METRICS), run(schedule, 0.1, metrics=METRICS)
    )
    # a new instance built from get_params() runs identically
    rebuilt = type(schedule)(**params)
    np.testing.assert_array_equal(
        run(rebuilt, 0.1, metrics=METRICS), run(schedule, 0.1, metrics=METRICS)
    )
    assert isinstance(schedule, Schedule)


def test_set_params_changes_behaviour_and_nested_names():
    schedule = Warmup(epochs=2, after=StepLR(step_size=1, gamma=0.5))
    assert schedule.get_params(deep=True)["after__gamma"] == 0.5
    schedule.set_params(after__gamma=0.25, epochs=1)
    assert schedule.after.gamma == 0.25 and schedule.epochs == 1
    np.testing.assert_allclose(run(schedule, 1.0, 4), [1, 1, 0.25, 0.0625], rtol=RTOL)


class _ScheduleConsumer(RegressorMixin, BaseEstimator):
    """Minimal estimator with a `schedule` hyperparameter, like fastfit's."""

    def __init__(self, schedule="constant", max_iter=5):
        self.schedule = schedule
        self.max_iter = max_iter

    def fit(self, X, y):
        runner = resolve_schedule(self.schedule, self.max_iter).start(
            1.0, self.max_iter
        )
        for _ in range(self.max_iter):
            runner.step(1.0)
        self.final_lr_ = runner.lr
        return self

    def predict(self, X):
        return np.zeros(len(X))

    def score(self, X, y):
        return -self.final_lr_  # the smaller the final lr, the "better"


def test_nested_schedule_params_in_grid_search():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    est = _ScheduleConsumer(schedule=StepLR(step_size=1, gamma=0.9))
    grid = GridSearchCV(est, {"schedule__gamma": [0.9, 0.5, 0.7]}, cv=2).fit(X, y)
    assert grid.best_params_ == {"schedule__gamma": 0.5}
    assert grid.best_estimator_.final_lr_ == pytest.approx(0.5**5, rel=RTOL)
    assert est.schedule.gamma == 0.9  # the grid worked on clones
    grid = GridSearchCV(
        est, {"schedule": ["constant", "linear", StepLR(1, 0.5)]}, cv=2
    ).fit(X, y)
    assert grid.best_params_["schedule"] == "linear"  # 1 -> 0.01 after 5 of 5 epochs


@pytest.mark.parametrize("factory", SCHEDULE_FACTORIES, ids=IDS)
def test_start_does_not_mutate_schedule(factory):
    schedule = factory()
    before_params = copy.deepcopy(schedule.get_params(deep=True))
    before_keys = set(vars(schedule))
    before_bytes = pickle.dumps(schedule)  # covers nested schedules too
    first = run(schedule, 0.1, metrics=METRICS)
    second = run(schedule, 0.1, metrics=METRICS)  # a second run starts from scratch
    np.testing.assert_array_equal(first, second)
    assert set(vars(schedule)) == before_keys
    assert pickle.dumps(schedule) == before_bytes
    after_params = schedule.get_params(deep=True)
    assert after_params.keys() == before_params.keys()
    for key, value in before_params.items():
        if isinstance(value, BaseEstimator):
            assert repr(after_params[key]) == repr(value)
        else:
            assert after_params[key] == value


def test_runner_is_independent_of_later_set_params():
    schedule = ExponentialLR(gamma=0.5)
    runner = schedule.start(1.0, 10)
    other = schedule.start(1.0, 10)
    runner.step()
    schedule.set_params(gamma=0.9)
    runner.step()
    assert runner.lr == 0.25
    assert other.lr == 1.0 and other.epoch == 0
    assert schedule.start(1.0, 10).lr == 1.0


# --------------------------------------------------------------------------
# Pickling / copying runners
# --------------------------------------------------------------------------


@pytest.mark.parametrize("factory", SCHEDULE_FACTORIES, ids=IDS)
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_runner_copy_mid_run_continues_identically(factory, how):
    schedule = factory()
    runner = schedule.start(0.1, len(METRICS))
    k = 9
    for m in METRICS[:k]:
        runner.step(m)
    copied = (
        pickle.loads(pickle.dumps(runner)) if how == "pickle" else copy.deepcopy(runner)
    )
    assert copied is not runner and copied.epoch == k and copied.lr == runner.lr
    original_rest = lrs_after_each_step(runner, METRICS[k:])
    copied_rest = lrs_after_each_step(copied, METRICS[k:])
    assert copied_rest == original_rest
    assert copied.epoch == runner.epoch == len(METRICS)
    if not isinstance(schedule, Constant):
        # the continuation is not trivial: the lr moves after the copy
        assert len(set(original_rest)) > 1


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

INVALID = [
    (lambda: StepLR(step_size=0), "step_size"),
    (lambda: StepLR(step_size=2.5), "step_size"),
    (lambda: StepLR(step_size=True), "step_size"),
    (lambda: StepLR(gamma=0.0), "gamma"),
    (lambda: StepLR(gamma=1.5), "gamma"),
    (lambda: StepLR(gamma=math.nan), "gamma"),
    (lambda: MultiStepLR(milestones=(5, 3)), "milestones"),
    (lambda: MultiStepLR(milestones=(3, 3)), "milestones"),
    (lambda: MultiStepLR(milestones=(0, 5)), "milestones"),
    (lambda: MultiStepLR(milestones=(2.5,)), "milestones"),
    (lambda: MultiStepLR(milestones=30), "milestones"),
    (lambda: MultiStepLR(milestones="30"), "milestones"),
    (lambda: MultiStepLR(gamma=-0.1), "gamma"),
    (lambda: ExponentialLR(gamma=0), "gamma"),
    (lambda: ExponentialLR(gamma="0.9"), "gamma"),
    (lambda: LinearLR(start_factor=0.0), "start_factor"),
    (lambda: LinearLR(start_factor=1.5), "start_factor"),
    (lambda: LinearLR(end_factor=-0.1), "end_factor"),
    (lambda: LinearLR(end_factor=1.1), "end_factor"),
    (lambda: LinearLR(total_iters=0), "total_iters"),
    (lambda: CosineAnnealingLR(T_max=0), "T_max"),
    (lambda: CosineAnnealingLR(T_max=-1), "T_max"),
    (lambda: CosineAnnealingLR(T_max=math.inf), "T_max"),
    (lambda: CosineAnnealingLR(eta_min=-1e-3), "eta_min"),
    (lambda: InverseScaling(power_t=-0.5), "power_t"),
    (lambda: ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: ReduceLROnPlateau(factor=0.0), "factor"),
    (lambda: ReduceLROnPlateau(patience=-1), "patience"),
    (lambda: ReduceLROnPlateau(patience=1.5), "patience"),
    (lambda: ReduceLROnPlateau(threshold=-1e-4), "threshold"),
    (lambda: ReduceLROnPlateau(threshold=1.0, threshold_mode="rel"), "threshold"),
    (lambda: ReduceLROnPlateau(threshold_mode="max"), "threshold_mode"),
    (lambda: ReduceLROnPlateau(cooldown=-1), "cooldown"),
    (lambda: ReduceLROnPlateau(min_lr=-0.1), "min_lr"),
    (lambda: ReduceLROnPlateau(eps=-1.0), "eps"),
    (lambda: Warmup(epochs=0), "epochs"),
    (lambda: Warmup(epochs=2.0), "epochs"),
    (lambda: Warmup(after=5), "after"),
    (lambda: Warmup(after="nope"), "nope"),
    (lambda: Warmup(after=StepLR(gamma=2.0)), "gamma"),
    (lambda: OneCycleLR(total_steps=0), "total_steps"),
    (lambda: OneCycleLR(total_steps=2.0), "total_steps"),
    (lambda: OneCycleLR(total_steps=True), "total_steps"),
    (lambda: OneCycleLR(pct_start=1.5), "pct_start"),
    (lambda: OneCycleLR(pct_start=-0.1), "pct_start"),
    (lambda: OneCycleLR(anneal_strategy="cosine"), "anneal_strategy"),
    (lambda: OneCycleLR(div_factor=0), "div_factor"),
    (lambda: OneCycleLR(final_div_factor=-1.0), "final_div_factor"),
    (lambda: OneCycleLR(three_phase="yes"), "three_phase"),
    (lambda: CosineAnnealingWarmRestarts(T_0=0), "T_0"),
    (lambda: CosineAnnealingWarmRestarts(T_0=2.5), "T_0"),
    (lambda: CosineAnnealingWarmRestarts(T_mult=0), "T_mult"),
    (lambda: CosineAnnealingWarmRestarts(T_mult=1.5), "T_mult"),
    (lambda: CosineAnnealingWarmRestarts(eta_min=-1.0), "eta_min"),
    (lambda: WarmupCosine(warmup_steps=-1), "warmup_steps"),
    (lambda: WarmupCosine(warmup_steps=1.0), "warmup_steps"),
    (lambda: WarmupCosine(warmup_steps=10), "warmup_steps"),  # = the 10 steps
    (lambda: WarmupCosine(warmup_steps=0.96), "warmup_steps"),  # rounds to 10
    (lambda: WarmupCosine(eta_min=-0.1), "eta_min"),
    (lambda: WarmupCosine(total_steps=0), "total_steps"),
    (lambda: CosLog(n_cycles=0), "n_cycles"),
    (lambda: CosLog(n_cycles=2.0), "n_cycles"),
    (lambda: CosLog(total_steps=-3), "total_steps"),
    (lambda: Warmup(epochs=2, after=OneCycleLR(pct_start=2.0)), "pct_start"),
]


@pytest.mark.parametrize(
    "factory, param", INVALID, ids=[p + str(i) for i, (_, p) in enumerate(INVALID)]
)
def test_invalid_hyperparameters_raise_at_start(factory, param):
    schedule = factory()  # construction never validates
    with pytest.raises(ValueError, match=param):
        schedule.start(0.1, 10)


@pytest.mark.parametrize(
    "base_lr, max_iter, param",
    [
        (0.0, 10, "base_lr"),
        (-0.1, 10, "base_lr"),
        (math.nan, 10, "base_lr"),
        (0.1, 0, "max_iter"),
        (0.1, 2.0, "max_iter"),
    ],
)
def test_invalid_run_arguments(base_lr, max_iter, param):
    with pytest.raises(ValueError, match=param):
        StepLR().start(base_lr, max_iter)


@pytest.mark.parametrize("steps_per_epoch", [0, -1, 2.0, True, None])
@pytest.mark.parametrize("schedule", [StepLR(), OneCycleLR()], ids=repr)
def test_invalid_steps_per_epoch(schedule, steps_per_epoch):
    with pytest.raises(ValueError, match="steps_per_epoch"):
        schedule.start(0.1, 10, steps_per_epoch)


def test_error_message_names_allowed_range():
    with pytest.raises(
        ValueError,
        match=r"'gamma' parameter of StepLR must be .*\(0\.0, 1\.0\]\. Got 1\.5",
    ):
        StepLR(gamma=1.5).start(0.1, 10)
    with pytest.raises(
        ValueError,
        match=r"'factor' parameter of ReduceLROnPlateau must be .*\(0\.0, 1\.0\)",
    ):
        ReduceLROnPlateau(factor=2).start(0.1, 10)


@pytest.mark.parametrize(
    "schedule",
    [
        StepLR(step_size=np.int64(3), gamma=np.float64(1.0)),
        MultiStepLR(milestones=[]),
        MultiStepLR(milestones=np.array([2, 5])),
        ExponentialLR(gamma=1),
        LinearLR(start_factor=1, end_factor=0, total_iters=1),
        CosineAnnealingLR(T_max=2.5, eta_min=0),
        InverseScaling(power_t=0),
        ReduceLROnPlateau(
            factor=0.999, patience=0, threshold=0, cooldown=0, min_lr=0, eps=0
        ),
        ReduceLROnPlateau(threshold=5.0, threshold_mode="abs"),
        Warmup(epochs=1, after="plateau"),
        Warmup(epochs=50, after=None),  # longer than the run: allowed
        OneCycleLR(pct_start=0.0),
        OneCycleLR(pct_start=1.0, three_phase=True),
        OneCycleLR(pct_start=0.1),  # a warm-up of zero steps (pct_start * T == 1)
        OneCycleLR(total_steps=1, div_factor=0.5),
        CosineAnnealingWarmRestarts(T_0=1, T_mult=3),
        WarmupCosine(warmup_steps=0),
        WarmupCosine(warmup_steps=9),
        WarmupCosine(warmup_steps=0.94),  # rounds to 9 of 10
        CosLog(n_cycles=1, total_steps=1),
    ],
)
def test_boundary_values_are_valid(schedule):
    lrs = run(schedule, 0.1, 10, metrics=[1.0] * 10)
    assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0)


# --------------------------------------------------------------------------
# Early stopping: continue_after_stall
# --------------------------------------------------------------------------


@pytest.mark.parametrize("factory", SCHEDULE_FACTORIES, ids=IDS)
def test_continue_after_stall_is_false_by_default(factory):
    runner = factory().start(0.1, len(METRICS))
    for m in METRICS:
        assert runner.continue_after_stall() is False
        runner.step(m)
    assert runner.continue_after_stall() is False


def test_adaptive_continues_after_stall_until_the_rate_reaches_1e_6():
    # tol so large that no epoch improves: the rate is divided by 5 every
    # second epoch, 0.01 -> 0.002 -> ... -> 6.4e-7 after 8 reductions
    runner = resolve_schedule("adaptive", 100, tol=10.0).start(0.01, 100)
    answers, lrs = [], []
    for _ in range(20):
        runner.step(1.0)
        answers.append(runner.continue_after_stall())
        lrs.append(runner.lr)
    assert answers == [lr > 1e-6 for lr in lrs]
    assert answers[0] is True and answers[-1] is False
    assert min(lr for lr, go in zip(lrs, answers) if go) > 1e-6


def test_continue_above_lr_is_a_hyperparameter():
    schedule = ReduceLROnPlateau(factor=0.5, patience=0, continue_above_lr=0.3)
    runner = schedule.start(1.0, 10)
    assert runner.continue_after_stall() is True  # lr 1.0 > 0.3
    lrs_after_each_step(runner, [1.0, 1.0, 1.0])  # lr 1.0, 0.5, 0.25
    assert runner.lr == 0.25 and runner.continue_after_stall() is False
    with pytest.raises(ValueError, match="continue_above_lr"):
        ReduceLROnPlateau(continue_above_lr=-1.0).start(1.0, 10)
    with pytest.raises(ValueError, match="continue_above_lr"):
        ReduceLROnPlateau(continue_above_lr=math.nan).start(1.0, 10)


@pytest.mark.parametrize("after", ["adaptive", resolve_schedule("adaptive", 10)])
def test_warmup_delegates_continue_after_stall_after_the_warm_up(after):
    runner = Warmup(epochs=3, after=after).start(1.0, 30)
    answers = []
    for _ in range(5):
        answers.append(runner.continue_after_stall())
        runner.step(1.0)
    # warm-up epochs never ask for more; then the inner 'adaptive' runner does
    assert answers == [False, False, False, True, True]
    assert runner.continue_after_stall() is runner.inner.continue_after_stall()
    # the warm-up itself does not keep a non-adaptive inner schedule going
    plain = Warmup(epochs=1, after="plateau").start(1.0, 30)
    plain.step(1.0)
    assert plain.continue_after_stall() is False


# --------------------------------------------------------------------------
# The name registry
# --------------------------------------------------------------------------


def test_schedule_names_come_from_the_registry():
    from fastfit import schedules

    assert SCHEDULE_NAMES == tuple(schedules._SCHEDULES)
    for name in SCHEDULE_NAMES:
        # documented, and accepted where a name is accepted
        assert f"``{name!r}``" in resolve_schedule.__doc__, name
        assert isinstance(resolve_schedule(name, 10), Schedule)
        Warmup(epochs=1, after=name).start(0.1, 10)
    assert "{names}" not in resolve_schedule.__doc__
    with pytest.raises(ValueError) as excinfo:
        Warmup(after="nope").start(0.1, 10)
    for name in SCHEDULE_NAMES:
        assert repr(name) in str(excinfo.value)


@pytest.mark.parametrize("power_t", [0.0, 0.25, 1.3])
def test_resolve_invscaling_uses_power_t(power_t):
    schedule = resolve_schedule("invscaling", 10, power_t=power_t)
    assert type(schedule) is InverseScaling and schedule.power_t == power_t
    np.testing.assert_allclose(
        run(schedule, 0.3, 10), 0.3 / np.arange(1.0, 11.0) ** power_t, rtol=RTOL
    )
    assert resolve_schedule("invscaling", 10).power_t == 0.5


def test_resolve_passes_tol_to_adaptive_only():
    assert resolve_schedule("adaptive", 10, tol=0.25).threshold == 0.25
    assert resolve_schedule("plateau", 10, tol=0.25).threshold == 1e-4
    assert resolve_schedule("adaptive", 10).continue_above_lr == 1e-6
    assert resolve_schedule("plateau", 10).continue_above_lr == math.inf


# --------------------------------------------------------------------------
# Runners own a frozen copy of the schedule
# --------------------------------------------------------------------------

SET_PARAMS_AFTER_START = [
    (lambda: StepLR(step_size=2, gamma=0.5), {"gamma": 0.9, "step_size": 1}),
    (lambda: MultiStepLR(milestones=[2, 5], gamma=0.5), {"milestones": [1]}),
    (lambda: LinearLR(start_factor=0.5, total_iters=8), {"end_factor": 0.1}),
    (lambda: CosineAnnealingLR(T_max=6), {"T_max": 2, "eta_min": 0.05}),
    (lambda: InverseScaling(power_t=0.7), {"power_t": 2.0}),
    (lambda: ReduceLROnPlateau(factor=0.5, patience=1), {"factor": 0.1}),
    (
        lambda: Warmup(epochs=2, after=StepLR(step_size=1, gamma=0.5)),
        {"epochs": 4, "after__gamma": 0.9},
    ),
    (lambda: OneCycleLR(), {"pct_start": 0.5, "div_factor": 2.0}),
    (lambda: CosineAnnealingWarmRestarts(T_0=3), {"T_0": 5, "T_mult": 2}),
    (lambda: WarmupCosine(warmup_steps=2), {"warmup_steps": 5, "eta_min": 0.01}),
    (lambda: CosLog(), {"n_cycles": 2, "total_steps": 7}),
]


@pytest.mark.parametrize(
    "factory, changes",
    SET_PARAMS_AFTER_START,
    ids=[f"{type(f()).__name__}-{','.join(c)}" for f, c in SET_PARAMS_AFTER_START],
)
def test_runner_is_frozen_against_set_params(factory, changes):
    untouched = run(factory(), 0.1, metrics=METRICS[:N_EPOCHS])
    schedule = factory()
    runner = schedule.start(0.1, N_EPOCHS)
    schedule.set_params(**changes)
    lrs = []
    for m in METRICS[:N_EPOCHS]:
        lrs.append(runner.lr)
        runner.step(m)
    np.testing.assert_array_equal(lrs, untouched)
    # and the changes take effect in the next run
    assert not np.array_equal(run(schedule, 0.1, metrics=METRICS[:N_EPOCHS]), lrs)


def test_numpy_scalar_hyperparameters_give_float64_rates():
    # a float32 gamma must not pull the arithmetic down to float32
    lrs32 = run(ExponentialLR(gamma=np.float32(0.9)), 0.3)
    lrs64 = run(ExponentialLR(gamma=float(np.float32(0.9))), 0.3)
    np.testing.assert_array_equal(lrs32, lrs64)
    runner = StepLR(step_size=np.int64(2), gamma=np.float32(0.5)).start(0.1, 10)
    assert type(runner.schedule.step_size) is int
    assert type(runner.schedule.gamma) is float


def test_adaptive_runner_pickles_mid_run_with_its_state():
    runner = resolve_schedule("adaptive", 100, tol=10.0).start(0.01, 100)
    for _ in range(5):
        runner.step(1.0)
    copied = pickle.loads(pickle.dumps(runner))
    assert copied.schedule is not runner.schedule
    assert copied.schedule.get_params() == runner.schedule.get_params()
    for attr in ("lr", "epoch", "best", "num_bad_epochs", "cooldown_counter"):
        assert getattr(copied, attr) == getattr(runner, attr), attr
    for _ in range(15):
        assert copied.continue_after_stall() == runner.continue_after_stall()
        runner.step(1.0)
        copied.step(1.0)
        assert copied.lr == runner.lr
