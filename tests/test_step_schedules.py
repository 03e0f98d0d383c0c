"""Tests of the schedules stepped at every mini-batch, and of their path into
the engine.

The reference sequences come from PyTorch's own schedulers (an SGD optimizer
on a dummy parameter, the scheduler stepped once per batch) or, for
``CosLog``, from its formula written here. The estimator tests check the rates
a fit records (``learning_rate_steps_``) and, with plain SGD, that the weights
are those of a NumPy replay of the same mini-batch steps at those rates, so the
array the runner gives is the one the engine trains with.
"""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import reference as ref
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastfit import MLPClassifier, MLPRegressor
from fastfit.optimizers import SGD
from fastfit.schedules import (
    CosineAnnealingWarmRestarts,
    CosLog,
    ExponentialLR,
    OneCycleLR,
    ScheduleRunner,
    StepLR,
    Warmup,
    WarmupCosine,
    resolve_schedule,
)

RTOL = 1e-12
BASE_LR = 0.3
N_EPOCHS = 3
N_BATCHES = 7  # per epoch


def runner_lrs(schedule, n_epochs=N_EPOCHS, n_batches=N_BATCHES, base_lr=BASE_LR):
    """The rates a runner gives, epoch by epoch, as one sequence."""
    runner = schedule.start(base_lr, n_epochs, n_batches)
    lrs = []
    for _ in range(n_epochs):
        epoch = runner.epoch_lrs(n_batches)
        assert epoch.dtype == np.float64 and epoch.shape == (n_batches,)
        assert epoch[0] == runner.lr
        lrs.append(epoch)
        runner.step(n_batches=n_batches)
    assert runner.epoch == n_epochs and runner.steps == n_epochs * n_batches
    return np.concatenate(lrs)


# --------------------------------------------------------------------------
# PyTorch's sequences
# --------------------------------------------------------------------------


def _torch_optimizer(torch, lr=BASE_LR):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def torch_per_batch(make_scheduler, n_steps, base_lr=BASE_LR):
    """The rate of each of ``n_steps`` batches, the scheduler stepped after
    each batch's update (PyTorch's recipe for per-batch schedulers)."""
    torch = pytest.importorskip("torch")
    optimizer = _torch_optimizer(torch, base_lr)
    scheduler = make_scheduler(torch, optimizer)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's deprecation notices
        for k in range(n_steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if k < n_steps - 1:  # OneCycleLR refuses to step past its total
                scheduler.step()
    return np.array(lrs)


def torch_onecycle(n_steps, **kwargs):
    return torch_per_batch(
        lambda torch, opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=BASE_LR, total_steps=n_steps, cycle_momentum=False, **kwargs
        ),
        n_steps,
    )


def torch_warmup_cosine(n_steps, warmup, eta_min):
    def make(torch, opt):
        lr_scheduler = torch.optim.lr_scheduler
        cosine = lr_scheduler.CosineAnnealingLR(
            opt, T_max=n_steps - warmup, eta_min=eta_min
        )
        if warmup == 0:
            return cosine
        ramp = lr_scheduler.LinearLR(
            opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1
        )
        return lr_scheduler.SequentialLR(opt, [ramp, cosine], milestones=[warmup])

    return torch_per_batch(make, n_steps)


def torch_warm_restarts(n_epochs, n_batches, *, before, **kwargs):
    """CosineAnnealingWarmRestarts stepped with fractional epochs
    ``epoch + i / n_batches``, before batch i (``before=True``) or after its
    update (PyTorch's documented recipe)."""
    torch = pytest.importorskip("torch")
    optimizer = _torch_optimizer(torch)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, **kwargs
    )
    lrs = []
    for epoch in range(n_epochs):
        for i in range(n_batches):
            if before:
                scheduler.step(epoch + i / n_batches)
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if not before:
                scheduler.step(epoch + i / n_batches)
    return np.array(lrs)


ONECYCLE_CASES = [
    {},
    {"anneal_strategy": "linear"},
    {"three_phase": True},
    {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.2},
    {"pct_start": 0.0},
    {"pct_start": 1.0},
    {"div_factor": 4.0, "final_div_factor": 100.0, "pct_start": 0.45},
]


@pytest.mark.parametrize("params", ONECYCLE_CASES, ids=repr)
def test_onecycle_matches_torch(params):
    got = runner_lrs(OneCycleLR(**params))
    want = torch_onecycle(N_EPOCHS * N_BATCHES, **params)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    # the rate peaks at base_lr = max_lr: fastfit's schedules scale it
    assert got.max() <= BASE_LR * (1 + RTOL)


def test_onecycle_total_steps_overrides_the_plan():
    got = runner_lrs(OneCycleLR(total_steps=30))
    np.testing.assert_allclose(got, torch_onecycle(30)[:21], rtol=RTOL)


def test_onecycle_zero_step_phase_takes_its_end_rate():
    # pct_start * T == 1: the warm-up phase ends at step 0, where PyTorch
    # divides by zero (already when the scheduler is built); here step 0 takes
    # the phase's end rate, base_lr, and the annealing phase follows from it
    schedule = OneCycleLR(pct_start=0.1, total_steps=10)
    lrs = runner_lrs(schedule, n_epochs=1, n_batches=10)
    assert lrs[0] == BASE_LR
    min_lr = BASE_LR / 25 / 1e4
    pct = np.arange(10) / 9  # from step 0 to step T - 1 = 9
    np.testing.assert_allclose(
        lrs, min_lr + (BASE_LR - min_lr) * (1 + np.cos(np.pi * pct)) / 2, rtol=RTOL
    )


def test_steps_past_the_plan_keep_the_last_rate():
    for schedule in (OneCycleLR(), WarmupCosine(), CosLog()):
        runner = schedule.start(BASE_LR, 2, 5)  # 10 planned steps
        planned = runner.epoch_lrs(10)
        runner.step(n_batches=6)
        beyond = runner.epoch_lrs(6)  # steps 6..11; 10 and 11 are past the plan
        np.testing.assert_array_equal(beyond[:4], planned[6:10])
        assert beyond[4] == beyond[5] == planned[9]


@pytest.mark.parametrize(
    "params, n_epochs",
    [
        ({"T_0": 1, "T_mult": 2}, 8),  # restarts at epochs 1, 3, 7
        ({"T_0": 2, "T_mult": 1, "eta_min": 0.01}, N_EPOCHS),
        ({"T_0": 1, "T_mult": 3, "eta_min": 0.05}, 5),
        ({"T_0": 10}, N_EPOCHS),
    ],
    ids=repr,
)
def test_warm_restarts_match_torch_stepped_with_fractional_epochs(params, n_epochs):
    got = runner_lrs(CosineAnnealingWarmRestarts(**params), n_epochs)
    want = torch_warm_restarts(n_epochs, N_BATCHES, before=True, **params)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
    # each restart is the first batch of its epoch, at base_lr
    T_0, T_mult = params["T_0"], params.get("T_mult", 1)
    restart, length = 0, T_0
    while restart < n_epochs:
        assert got[restart * N_BATCHES] == BASE_LR
        restart, length = restart + length, length * T_mult


def test_warm_restarts_are_torch_recipe_one_batch_earlier():
    # the documented recipe steps after each update: every batch gets the
    # rate meant for the one before it
    params = {"T_0": 1, "T_mult": 2, "eta_min": 0.01}
    got = runner_lrs(CosineAnnealingWarmRestarts(**params))
    recipe = torch_warm_restarts(N_EPOCHS, N_BATCHES, before=False, **params)
    assert recipe[0] == got[0]
    np.testing.assert_allclose(recipe[1:], got[:-1], rtol=RTOL)


def test_warm_restarts_find_every_restart_in_integers():
    # PyTorch's float logarithm puts epoch 111 (T_0=1, T_mult=10) in the
    # period before; the period starts at 1, 11, 111
    runner = CosineAnnealingWarmRestarts(T_0=1, T_mult=10).start(1.0, 200)
    lrs = []
    for _ in range(112):
        lrs.append(runner.lr)
        runner.step()
    assert lrs[1] == lrs[11] == lrs[111] == 1.0
    assert lrs[110] == pytest.approx((1 + math.cos(math.pi * 99 / 100)) / 2)


@pytest.mark.parametrize("warmup", [0, 1, 3, 8])
@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_warmup_cosine_matches_torch_sequential(warmup, eta_min):
    got = runner_lrs(WarmupCosine(warmup_steps=warmup, eta_min=eta_min))
    want = torch_warmup_cosine(N_EPOCHS * N_BATCHES, warmup, eta_min)
    # PyTorch's LinearLR and CosineAnnealingLR step by recurrences
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    if warmup:
        assert got[warmup - 1] == got[warmup] == BASE_LR


def test_warmup_cosine_fraction_of_the_run():
    # 0.1 of 21 steps = 2.1: two warm-up steps
    np.testing.assert_allclose(
        runner_lrs(WarmupCosine(warmup_steps=0.1)),
        torch_warmup_cosine(21, 2, 0.0),
        rtol=1e-10,
    )
    assert WarmupCosine(warmup_steps=0.25)._warmup(10) == 3  # 2.5 rounds up
    assert WarmupCosine(warmup_steps=0.1)._warmup(30) == 3  # 3.0000000000000004


def coslog(p, n_cycles=4):
    return 0.5 * (1 - np.cos(2 * np.pi * np.log2(1 + (2**n_cycles - 1) * p)))


@pytest.mark.parametrize("n_cycles", [1, 4, 6])
def test_coslog_is_its_formula(n_cycles):
    got = runner_lrs(CosLog(n_cycles=n_cycles))
    p = np.arange(N_EPOCHS * N_BATCHES) / (N_EPOCHS * N_BATCHES)
    np.testing.assert_allclose(got, BASE_LR * coslog(p, n_cycles), rtol=RTOL, atol=0)


def test_coslog4_shape():
    schedule = resolve_schedule("coslog4", 10)
    assert type(schedule) is CosLog and schedule.n_cycles == 4
    T = 15 * 64  # cycle ends p = 1/15, 3/15, 7/15 fall on steps
    lrs = CosLog(total_steps=T).start(1.0, 1).epoch_lrs(T)
    # 0.5 * (1 - cos(2 pi log2(1 + 15 p))), written out once more
    k = np.arange(T)
    np.testing.assert_allclose(
        lrs, [0.5 - 0.5 * math.cos(2 * math.pi * math.log2(1 + 15 * i / T)) for i in k],
        rtol=1e-12, atol=1e-15,
    )  # fmt: skip
    assert lrs[0] == 0.0
    for end in (64, 3 * 64, 7 * 64):  # a cycle ends: the rate is back at 0
        assert lrs[end] == pytest.approx(0.0, abs=1e-12)
    # each cycle peaks at base_lr, halfway through it on the log scale
    peaks = [(2 ** (j + 0.5) - 1) / 15 for j in range(4)]
    for p in peaks:
        assert coslog(p) == pytest.approx(1.0)
        assert lrs[int(round(p * T))] == pytest.approx(1.0, abs=1e-3)


def test_warmup_then_per_step_schedule():
    # two warm-up epochs at one rate each, then OneCycleLR over the 3 others
    runner = Warmup(epochs=2, after=OneCycleLR()).start(BASE_LR, 5, N_BATCHES)
    lrs = []
    for _ in range(5):
        lrs.append(runner.epoch_lrs(N_BATCHES))
        runner.step(1.0, n_batches=N_BATCHES)
    np.testing.assert_array_equal(lrs[0], BASE_LR / 2)
    np.testing.assert_array_equal(lrs[1], BASE_LR)
    np.testing.assert_allclose(
        np.concatenate(lrs[2:]), torch_onecycle(3 * N_BATCHES), rtol=RTOL
    )
    assert runner.steps == 5 * N_BATCHES and runner.inner.steps == 3 * N_BATCHES


def test_epoch_schedules_give_every_batch_the_epoch_rate():
    runner = StepLR(step_size=1, gamma=0.5).start(1.0, 5, 4)
    for e in range(3):
        np.testing.assert_array_equal(runner.epoch_lrs(4), 0.5**e)
        runner.step(n_batches=4)
    assert runner.steps == 12


@pytest.mark.parametrize("n_batches", [0, -2, 1.5, None, True])
@pytest.mark.parametrize(
    "schedule",
    [StepLR(), OneCycleLR(), CosineAnnealingWarmRestarts(), Warmup(2, "onecycle")],
    ids=repr,
)
def test_invalid_n_batches(schedule, n_batches):
    runner = schedule.start(0.1, 10, 4)
    with pytest.raises(ValueError, match="n_batches"):
        runner.epoch_lrs(n_batches)
    with pytest.raises(ValueError, match="n_batches"):
        runner.step(1.0, n_batches=n_batches)
    assert runner.epoch == 0 and runner.steps == 0


@pytest.mark.parametrize(
    "schedule",
    [OneCycleLR(three_phase=True), CosineAnnealingWarmRestarts(T_0=1, T_mult=2),
     WarmupCosine(warmup_steps=4), CosLog()],
    ids=repr,
)  # fmt: skip
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_runner_copied_mid_run_continues_identically(schedule, how):
    runner = schedule.start(BASE_LR, 4, 5)
    runner.epoch_lrs(5)
    runner.step(n_batches=5)
    runner.step(n_batches=3)
    copied = (
        pickle.loads(pickle.dumps(runner)) if how == "pickle" else copy.deepcopy(runner)
    )
    assert (copied.epoch, copied.steps, copied.lr) == (2, 8, runner.lr)
    np.testing.assert_array_equal(copied.epoch_lrs(6), runner.epoch_lrs(6))


# --------------------------------------------------------------------------
# Fits: the rates reach the engine
# --------------------------------------------------------------------------


def _data(n=50, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = np.tanh(X @ [1.0, -2.0, 0.5]) + 0.1 * rng.randn(n)
    return X, y


def _fit(est, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


FIT_SCHEDULES = {
    "OneCycleLR": (
        OneCycleLR(pct_start=0.4),
        lambda T: torch_onecycle(T, pct_start=0.4),
    ),
    "onecycle": ("onecycle", torch_onecycle),
    "WarmupCosine": (
        WarmupCosine(warmup_steps=5, eta_min=1e-3),
        lambda T: torch_warmup_cosine(T, 5, 1e-3),
    ),
    "warmup_cosine": (
        "warmup_cosine",
        lambda T: torch_warmup_cosine(T, math.floor(0.05 * T + 0.5), 0.0),
    ),
    "CosineAnnealingWarmRestarts": (
        CosineAnnealingWarmRestarts(T_0=1, T_mult=2),
        lambda T: torch_warm_restarts(
            N_EPOCHS, T // N_EPOCHS, before=True, T_0=1, T_mult=2
        ),
    ),
    "coslog4": (
        "coslog4",
        lambda T: BASE_LR * coslog(np.arange(T) / T),
    ),
}


@pytest.mark.parametrize("name", list(FIT_SCHEDULES))
def test_fit_records_the_schedule_per_batch(name):
    schedule, reference = FIT_SCHEDULES[name]
    X, y = _data(50)  # batches of 8: 7 per epoch, the last of 2 rows
    est = _fit(
        MLPRegressor(
            (4,),
            schedule=schedule,
            batch_size=8,
            learning_rate_init=BASE_LR,
            optimizer=SGD(),
            max_iter=N_EPOCHS,
            random_state=0,
        ),
        X,
        y,
    )
    steps = est.learning_rate_steps_
    assert len(steps) == len(est.learning_rate_curve_) == est.n_iter_ == N_EPOCHS
    assert all(s.shape == (N_BATCHES,) and s.dtype == np.float64 for s in steps)
    np.testing.assert_allclose(
        np.concatenate(steps), reference(N_EPOCHS * N_BATCHES), rtol=1e-10, atol=0
    )
    # the epoch's record is the rate of its first batch
    np.testing.assert_array_equal(est.learning_rate_curve_, [s[0] for s in steps])
    assert est._schedule_runner.steps == N_EPOCHS * N_BATCHES


def _replay_sgd(coefs, intercepts, X, y, batch_size, lrs):
    """Plain SGD on consecutive mini-batches, batch k at lrs[k] (NumPy)."""
    coefs = [c.copy() for c in coefs]
    intercepts = [b.copy() for b in intercepts]
    opt = ref.SGD()
    n_batches = -(-len(X) // batch_size)
    for k, lr in enumerate(lrs):
        rows = slice((k % n_batches) * batch_size, (k % n_batches + 1) * batch_size)
        _, cg, ig = ref.backprop(
            coefs, intercepts, X[rows], y[rows].reshape(-1, 1), "tanh", "squared_error"
        )
        opt.step(coefs + intercepts, cg + ig, lr=lr)
    return coefs, intercepts


@pytest.mark.parametrize(
    "schedule, reference",
    [
        (OneCycleLR(three_phase=True), lambda T: torch_onecycle(T, three_phase=True)),
        (CosineAnnealingWarmRestarts(T_0=2, eta_min=0.01),
         lambda T: torch_warm_restarts(3, T // 3, before=True, T_0=2, eta_min=0.01)),
        ("coslog4", lambda T: BASE_LR * coslog(np.arange(T) / T)),
    ],
    ids=["OneCycleLR", "CosineAnnealingWarmRestarts", "coslog4"],
)  # fmt: skip
def test_sgd_fit_takes_each_batch_at_its_rate(schedule, reference):
    X, y = _data(40)
    rng = np.random.RandomState(1)
    coefs = [rng.uniform(-0.5, 0.5, (3, 4)), rng.uniform(-0.5, 0.5, (4, 1))]
    intercepts = [rng.uniform(-0.5, 0.5, 4), rng.uniform(-0.5, 0.5, 1)]
    est = MLPRegressor(
        (4,),
        "tanh",
        optimizer=SGD(),
        schedule=schedule,
        learning_rate_init=BASE_LR,
        batch_size=10,
        shuffle=False,
        alpha=0.0,
        dtype=np.float64,
        warm_start=True,
        max_iter=3,
        n_iter_no_change=1000,
    )
    est.coefs_, est.intercepts_ = (
        [c.copy() for c in coefs],
        [b.copy() for b in intercepts],
    )
    _fit(est, X, y)
    lrs = reference(12)  # 3 epochs of 4 batches
    np.testing.assert_allclose(
        np.concatenate(est.learning_rate_steps_), lrs, rtol=1e-12
    )
    want_c, want_i = _replay_sgd(coefs, intercepts, X, y, 10, lrs)
    for got, want in zip(est.coefs_ + est.intercepts_, want_c + want_i):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the per-batch rates matter: one rate per epoch trains other weights
    flat = np.repeat(lrs[::4], 4)
    other_c, _ = _replay_sgd(coefs, intercepts, X, y, 10, flat)
    assert not np.allclose(est.coefs_[0], other_c[0], rtol=1e-6)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("schedule", [OneCycleLR(), "warmup_cosine", "coslog4"])
def test_k_partial_fits_equal_fit_for_k_epochs(cls, schedule):
    X, y = _data(60)
    if cls is MLPClassifier:
        y = (y > 0).astype(int)
    kw = dict(
        hidden_layer_sizes=(5,),
        schedule=schedule,
        batch_size=16,
        max_iter=4,
        random_state=0,
        dtype=np.float64,
        n_iter_no_change=1000,
    )
    a = _fit(cls(**kw), X, y)
    b = cls(**kw)
    for _ in range(4):
        b.partial_fit(X, y, **({"classes": [0, 1]} if cls is MLPClassifier else {}))
    np.testing.assert_array_equal(
        np.concatenate(b.learning_rate_steps_), np.concatenate(a.learning_rate_steps_)
    )
    np.testing.assert_array_equal(b.learning_rate_curve_, a.learning_rate_curve_)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_partial_fit_continues_the_step_count_over_chunks_of_any_size():
    X, y = _data(100)
    est = MLPRegressor(
        (4,),
        schedule=OneCycleLR(),
        batch_size=10,
        max_iter=4,
        learning_rate_init=BASE_LR,
    )
    sizes = [30, 50, 20, 40, 10]  # 3, 5, 2, 4, 1 batches
    start = 0
    for size in sizes:
        est.partial_fit(X[start : start + size], y[start : start + size])
        start = (start + size) % 100
    # planned on the first call: max_iter epochs of its 3 batches
    assert est._schedule_runner.total_steps == 12
    assert est._schedule_runner.steps == 15
    assert [len(s) for s in est.learning_rate_steps_] == [3, 5, 2, 4, 1]
    want = torch_onecycle(12)
    got = np.concatenate(est.learning_rate_steps_)
    np.testing.assert_allclose(got[:12], want, rtol=RTOL)
    np.testing.assert_array_equal(got[12:], want[-1])  # past the plan: held


def test_early_stopping_plans_the_training_batches():
    X, y = _data(50)  # validation_fraction=0.2: 10 held out, 40 to train
    est = _fit(
        MLPRegressor(
            (4,),
            schedule="onecycle",
            learning_rate_init=BASE_LR,
            batch_size=8,
            max_iter=30,
            early_stopping=True,
            validation_fraction=0.2,
            n_iter_no_change=2,
            tol=10.0,  # nothing counts as an improvement
            random_state=0,
        ),
        X,
        y,
    )
    # stopped by the rule: one epoch improves on inf, n_iter_no_change + 1 do not
    assert est.n_iter_ == 4
    runner = est._schedule_runner
    assert runner.total_steps == 30 * 5  # 5 batches of the 40 training rows
    assert [len(s) for s in est.learning_rate_steps_] == [5] * 4
    assert runner.steps == 20 and runner.epoch == 4
    np.testing.assert_allclose(
        np.concatenate(est.learning_rate_steps_), torch_onecycle(150)[:20], rtol=RTOL
    )


def test_n_iter_no_change_stops_a_per_step_fit():
    X, y = _data(50)
    est = _fit(
        MLPRegressor(
            (4,), schedule=WarmupCosine(), n_iter_no_change=3, tol=10.0, max_iter=50
        ),
        X,
        y,
    )
    assert est.n_iter_ == 5  # 1 + n_iter_no_change + 1, as without a schedule
    assert est._schedule_runner.steps == 5  # batch 'auto': one batch of 50


def test_epoch_schedules_record_one_rate_per_batch_too():
    X, y = _data(50)
    est = _fit(
        MLPRegressor(
            (4,), schedule=ExponentialLR(0.5), batch_size=20, max_iter=3,
            learning_rate_init=0.1,
        ),
        X,
        y,
    )  # fmt: skip
    for e, steps in enumerate(est.learning_rate_steps_):
        np.testing.assert_array_equal(steps, np.full(3, 0.1 * 0.5**e))


def test_lbfgs_fit_leaves_no_per_batch_record():
    X, y = _data(50)
    est = _fit(MLPRegressor((4,), schedule="onecycle", max_iter=3), X, y)
    assert len(est.learning_rate_steps_) == 3
    _fit(est.set_params(optimizer="lbfgs"), X, y)
    assert not hasattr(est, "learning_rate_steps_")


# --------------------------------------------------------------------------
# Parameters and state
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, param",
    [
        (OneCycleLR(pct_start=1.5), "pct_start"),
        (OneCycleLR(anneal_strategy="exp"), "anneal_strategy"),
        (OneCycleLR(total_steps=0), "total_steps"),
        (CosineAnnealingWarmRestarts(T_0=0), "T_0"),
        (CosineAnnealingWarmRestarts(T_mult=0.5), "T_mult"),
        (WarmupCosine(warmup_steps=1.5), "warmup_steps"),
        (WarmupCosine(warmup_steps=15), "warmup_steps"),  # 5 epochs of 3 batches
        (CosLog(n_cycles=0), "n_cycles"),
        (Warmup(epochs=2, after=CosLog(total_steps=-1)), "total_steps"),
        ("onecycle_lr", "schedule"),
    ],
    ids=repr,
)
def test_invalid_schedule_parameters_raise_in_fit(schedule, param):
    X, y = _data(30)
    est = MLPRegressor((4,), schedule=schedule, batch_size=10, max_iter=5)
    with pytest.raises(ValueError, match=param):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")  # refused before any state was set


def test_clone_and_grid_search_over_step_schedule_parameters():
    X, y = _data(60)
    est = MLPRegressor(
        (4,), schedule=OneCycleLR(pct_start=0.3), max_iter=3, random_state=0
    )
    twin = clone(est)
    assert twin.schedule is not est.schedule
    assert twin.schedule.get_params() == est.schedule.get_params()
    assert est.get_params()["schedule__pct_start"] == 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid = GridSearchCV(
            est,
            {
                "schedule__pct_start": [0.1, 0.5],
                "schedule__anneal_strategy": ["cos", "linear"],
            },
            cv=2,
        ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert est.schedule.pct_start == 0.3  # the grid worked on clones
    best = grid.best_estimator_
    assert best._schedule_runner.schedule.get_params() == best.schedule.get_params()


def test_pickled_estimator_resumes_the_schedule_mid_run():
    X, y = _data(60)
    est = MLPRegressor((4,), schedule="coslog4", batch_size=16, max_iter=6)
    est.partial_fit(X, y)
    est.partial_fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert restored._schedule_runner.steps == est._schedule_runner.steps == 8
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(
        restored.learning_rate_steps_[-1], est.learning_rate_steps_[-1]
    )
    np.testing.assert_array_equal(restored.coefs_[0], est.coefs_[0])
    np.testing.assert_allclose(
        np.concatenate(est.learning_rate_steps_),
        0.001 * coslog(np.arange(12) / 24),
        rtol=RTOL,
    )


@pytest.mark.parametrize("value", [-1, 2.5, None, True])
@pytest.mark.parametrize("name", ["steps", "epoch"])
def test_tampered_runner_counts_are_refused(name, value):
    X, y = _data(30)
    est = _fit(MLPRegressor((4,), schedule="onecycle", max_iter=3), X, y)
    setattr(est._schedule_runner, name, value)
    with pytest.raises(ValueError, match=f"_schedule_runner.{name}"):
        est.partial_fit(X, y)


class _BadRunner(ScheduleRunner):
    def __init__(self, lrs):
        super().__init__(None, 1.0)
        self.lrs = lrs

    def epoch_lrs(self, n_batches):
        return self.lrs

    def step(self, metric=None, n_batches=1):
        self._count(n_batches)


@pytest.mark.parametrize(
    "lrs",
    [np.array([0.1, np.nan, 0.1]), np.array([0.1, -0.1, 0.1]), np.ones(2),
     np.ones((3, 1)), np.array([0.1, np.inf, 0.1])],
    ids=["nan", "negative", "too-few", "2-d", "inf"],
)  # fmt: skip
def test_runner_rates_are_checked_before_the_engine(lrs):
    X, y = _data(30)
    est = _fit(MLPRegressor((4,), batch_size=10, max_iter=2), X, y)
    before = est.coefs_[0].copy()
    est._schedule_runner = _BadRunner(lrs)
    with pytest.raises(ValueError, match="epoch_lrs"):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(est.coefs_[0], before)
