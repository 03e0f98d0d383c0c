"""fastfit on ``wide`` with 1 and 2 threads: the target is >= 1.7x from 1 to 2."""

import os

import pytest

from benchmarks import cases


@pytest.mark.parametrize("n_threads", [1, 2])
def test_wide_threads(benchmark, record, timed_remote, n_threads, sgemm_peak):
    if n_threads > (os.cpu_count() or 1):
        pytest.skip(f"needs {n_threads} cores")
    c = cases.CASES["wide"]
    k = c.epochs_for("fastfit")
    benchmark.group = "fastfit wide: 1 vs 2 threads"
    busy = timed_remote(
        benchmark, "trainer", "fastfit", "wide", n_threads, call=("run", k)
    )
    # share of the peak measured at --bench-threads (the suite's thread count)
    record(
        benchmark,
        kind="scaling",
        case="wide",
        framework="fastfit",
        threads=n_threads,
        units_per_round=k,
        flops_per_unit=c.gemm_flops_per_epoch,
        nominal_flops_per_unit=c.flops_per_epoch,
        peak=sgemm_peak,
        other_cores=busy,
    )
