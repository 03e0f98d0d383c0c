"""Seconds per epoch of the cases: fastfit, scikit-learn, PyTorch, JAX.

One benchmark per (case, framework), the frameworks of a case one after the
other; a round is ``Case.epochs_for(framework)`` epochs (the id says how
many), continuing a model warmed up by one untimed epoch; ``extra_info`` holds
the per-epoch median, GFLOP/s and share of peak (required FLOPs) and the time
ratios to fastfit. PyTorch and JAX are optional: skipped when not installed.
"""

import pytest

from benchmarks import cases, trainers

PARAMS = [
    pytest.param(name, fw, id=f"{name}-{fw}-{cases.CASES[name].epochs_for(fw)}ep")
    for name in cases.CASES
    for fw in cases.FRAMEWORKS
]


@pytest.mark.parametrize("case, framework", PARAMS)
def test_epoch(benchmark, record, timed_remote, case, framework, threads, sgemm_peak):
    if not trainers.framework_available(framework):
        pytest.skip(f"{framework} is not installed (optional)")
    c = cases.CASES[case]
    k = c.epochs_for(framework)
    benchmark.group = f"epoch {case} ({c.description}), {threads} threads"
    busy = timed_remote(benchmark, "trainer", framework, case, threads, call=("run", k))
    record(
        benchmark,
        kind="epoch",
        case=case,
        framework=framework,
        threads=threads,
        units_per_round=k,
        flops_per_unit=c.gemm_flops_per_epoch,
        nominal_flops_per_unit=c.flops_per_epoch,
        peak=sgemm_peak,
        other_cores=busy,
    )
