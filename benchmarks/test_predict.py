"""predict on 10k x 784 with a 784-256-128-10 network: fastfit vs scikit-learn."""

import pytest

from benchmarks import cases


@pytest.mark.parametrize("framework", ["fastfit", "sklearn"])
def test_predict(benchmark, record, timed_remote, framework, threads, sgemm_peak):
    benchmark.group = (
        f"predict {cases.PREDICT_N} x 784 (784-256-128-10), {threads} threads"
    )
    busy = timed_remote(
        benchmark, "predictor", framework, threads, call=("run",), n_rounds=15
    )
    record(
        benchmark,
        kind="predict",
        case="",
        framework=framework,
        threads=threads,
        units_per_round=1,
        flops_per_unit=cases.predict_flops(),
        peak=sgemm_peak,
        other_cores=busy,
    )
