"""fastfit's epoch over hidden widths x batch sizes (784-w-10, ``SWEEP_N`` rows).

Long (one benchmark per grid point): runs only with ``--bench-sweep`` (the
conftest marks these tests skipped otherwise, before any fixture waits)::

    python -m pytest benchmarks/test_sweep.py --bench-sweep --bench-rounds 3

``extra_info`` holds the per-epoch median, GFLOP/s and share of the sgemm
peak by the required count, plus ``width`` and ``batch_size``; a jump between
neighbouring points marks a change of code path. ``python -m benchmarks.sweep``
prints the same grid as a table.
"""

import math

import pytest

from benchmarks import cases

# epochs per round: about 5 GFLOP of required gemm work, so that fit's fixed
# per-call cost stays small next to the round
ROUND_FLOPS = 5e9

PARAMS = [
    pytest.param(w, b, id=f"w{w}-b{b}")
    for w in cases.SWEEP_WIDTHS
    for b in cases.SWEEP_BATCHES
]


@pytest.mark.parametrize("width, batch_size", PARAMS)
def test_sweep(benchmark, record, timed_remote, width, batch_size, threads, sgemm_peak):
    c = cases.sweep_case(width, batch_size)
    k = max(1, min(20, math.ceil(ROUND_FLOPS / c.gemm_flops_per_epoch)))
    benchmark.group = f"sweep 784-w-10, n={c.n}, {threads} threads"
    busy = timed_remote(
        benchmark, "trainer", "fastfit", c.name, threads, call=("run", k)
    )
    record(
        benchmark,
        kind="sweep",
        case=c.name,
        framework="fastfit",
        threads=threads,
        units_per_round=k,
        flops_per_unit=c.gemm_flops_per_epoch,
        nominal_flops_per_unit=c.flops_per_epoch,
        peak=sgemm_peak,
        other_cores=busy,
    )
    if getattr(benchmark, "stats", None) is not None:
        benchmark.extra_info.update({"width": width, "batch_size": batch_size})
