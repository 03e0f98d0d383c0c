"""The benchmark harness itself: cases, targets, the JAX trainer, the sweep.

Behaviour only, never timings: ``python -m pytest benchmarks/test_harness.py``.
"""

import math
import os
import sys

import pytest

from benchmarks import cases, sweep, trainers, worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sweep_case_round_trips_through_its_name():
    c = cases.sweep_case(96, 129, 5000)
    assert cases.get_case(c.name) == c
    assert c.sizes == (784, 96, 10) and c.batch_size == 129 and c.n == 5000
    with pytest.raises(KeyError):
        cases.get_case("sweep_w96_b129")


def test_sk_default_is_scikit_learns_default_network():
    c = cases.CASES["sk_default"]
    assert c.sizes == (784, 100, 10) and c.batch_size == min(200, c.n)
    # required = nominal less the first layer's input gradient
    assert (
        c.gemm_flops_per_epoch == 6 * (784 * 100 + 100 * 10) * c.n - 2 * 784 * 100 * c.n
    )
    assert all(c.epochs_for(fw) >= 1 for fw in cases.FRAMEWORKS)


def test_every_case_times_every_framework():
    for c in cases.CASES.values():
        assert set(c.epochs) == set(cases.FRAMEWORKS)
    assert {name for name in cases.TARGETS} <= set(cases.CASES)


def test_peak_target_uses_required_flops():
    c = cases.CASES["sk_default"]
    seconds = {"fastfit": 1.0, "jax": 2.0}
    peak = c.gemm_flops_per_epoch / 1e9  # exactly 100 % by the required count
    checks = {
        label: value
        for label, value, _, _ in cases.check_targets("sk_default", seconds, peak)
    }
    assert checks["fastfit >= 75% of sgemm peak"] == pytest.approx(1.0)
    assert checks["fastfit >= 1.4x faster than jax"] == pytest.approx(2.0)
    assert checks["fastfit >= 3x faster than sklearn"] is None


def test_optional_frameworks_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("FASTFIT_BENCH_NO_JAX", "1")
    monkeypatch.setenv("FASTFIT_BENCH_NO_TORCH", "1")
    assert not trainers.jax_available() and not trainers.torch_available()
    assert trainers.framework_available("fastfit")
    assert trainers.framework_available("sklearn")


@pytest.mark.skipif(not trainers.jax_available(), reason="jax is not installed")
@pytest.mark.parametrize("threads", [1, 2])
def test_jax_epoch_trains_every_batch(threads):
    # 1000 rows at batch 32: 31 full batches and a partial one of 8 rows
    name = cases.sweep_case(16, 32, 1000).name
    with worker.Remote("trainer", "jax", name, threads, timeout=300) as remote:
        remote.call("warm_up")
        assert remote.call("steps_taken") == 32
        first = remote.call("run", 1)
        last = remote.call("run", 3)
        assert remote.call("steps_taken") == 5 * 32
        assert math.isfinite(first) and math.isfinite(last) and last < first
        flags = remote.call("xla_flags")
    assert (trainers.JAX_ONE_THREAD_FLAGS in flags) == (threads == 1)


def test_sweep_job_and_table():
    points = worker.run_job("sweep", 1, [16, 24], [32, 129], 600, 1, 0.0, timeout=300)
    assert [(p["width"], p["batch_size"]) for p in points] == [
        (16, 32),
        (16, 129),
        (24, 32),
        (24, 129),
    ]
    assert all(p["median"] > 0 and p["gflops"] > 0 for p in points)
    table = sweep.render(points, (16, 24), (32, 129))
    assert "GFLOP/s (required FLOPs)" in table and table.count("\n") >= 9


def test_compare_table_has_a_column_per_framework():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import compare
    finally:
        sys.path.pop(0)
    r = {
        "fastfit": {"median": 0.5, "samples": [0.5]},
        "jax": {"median": 1.0, "samples": [1.0]},
    }
    peak = {"gflops": 100.0, "canary_gflops": [50.0]}
    lines = compare._table({"sk_default": r}, ["sk_default"], peak)
    assert "jax/ff" in lines[0] and "torch s" in lines[0]
    assert "2.00x" in lines[2] and "n/a" in lines[2]
