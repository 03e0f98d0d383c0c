"""pytest-benchmark suite of fastfit (issue 5): ``python -m pytest benchmarks/``.

Not part of the default ``python -m pytest`` (``testpaths = ["tests"]``).

Options: ``--bench-threads T`` (default 2: every framework gets T threads),
``--bench-rounds R`` (timed rounds per benchmark, default 3). Every trainer runs
in its own fresh interpreter (:class:`benchmarks.cases.Remote`): the pytest
process only times the round trips, so no two thread runtimes share a process.
At the end, a summary compares the frameworks against the targets of issue 5
(printed, never asserted: timings are not pass/fail on a shared machine).
"""

import time

import pytest

from benchmarks import cases

try:
    import pytest_benchmark  # noqa: F401
    HAVE_PYTEST_BENCHMARK = True
except ImportError:
    HAVE_PYTEST_BENCHMARK = False

# (kind, case or "", framework, threads) -> seconds per unit (epoch or predict call)
RESULTS = {}
DISTURBED = {}  # same keys -> cores other processes used during the rounds
_PEAK = {}


def pytest_addoption(parser):
    group = parser.getgroup("fastfit benchmarks")
    group.addoption("--bench-threads", type=int, default=2,
                    help="threads for every framework (default 2)")
    group.addoption("--bench-rounds", type=int, default=3,
                    help="timed rounds per epoch benchmark (default 3)")
    group.addoption("--bench-max-wait", type=float, default=60.0,
                    help="seconds to wait before each benchmark for other processes "
                         "to leave the cores (< 0.3 busy); 0 = never wait (default 60)")


def pytest_collection_modifyitems(config, items):
    if HAVE_PYTEST_BENCHMARK:
        return
    skip = pytest.mark.skip(reason="pytest-benchmark is not installed "
                                   "(pip install -e '.[test]')")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _quiet_machine(request):
    """Before each timed benchmark, wait (bounded) until other processes are idle."""
    if "benchmark" not in request.fixturenames:
        return
    deadline = request.config.getoption("--bench-max-wait")
    waited = 0.0
    while waited < deadline:
        busy = cases.machine_busy_cores(1.0)
        if busy is None or busy < 0.3:
            return
        time.sleep(4.0)
        waited += 5.0


@pytest.fixture(scope="session")
def threads(request):
    return request.config.getoption("--bench-threads")


@pytest.fixture(scope="session")
def rounds(request):
    return request.config.getoption("--bench-rounds")


@pytest.fixture(scope="session")
def sgemm_peak(threads):
    """GFLOP/s of scipy's sgemm on 2048^3 float32 with ``threads`` threads.

    Measured once per session, best of 5, in a fresh worker process (the same
    OpenBLAS that fastfit calls through scipy.linalg.cython_blas).
    """
    peak = cases.run_job("peak", threads)
    _PEAK.update(peak)
    return peak["gflops"]


@pytest.fixture
def record():
    """``record(benchmark, kind=..., ...)``: fill extra_info, remember for the summary."""
    return _record


def _record(benchmark, *, kind, case, framework, threads, units_per_round, flops_per_unit,
           peak, other_cores):
    """Store GFLOP/s and share of the sgemm peak in ``benchmark.extra_info``.

    ``units_per_round``: epochs (or predict calls) one timed round contains; the
    per-unit median is the round median divided by it.
    """
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return None
    per_unit = stats.stats.median / units_per_round
    g = flops_per_unit / per_unit / 1e9
    benchmark.extra_info.update({
        "case": case, "framework": framework, "threads": threads,
        "units_per_round": units_per_round, "seconds_per_unit_median": per_unit,
        "gflops": round(g, 3), "sgemm_peak_gflops": round(peak, 3),
        "share_of_peak": round(g / peak, 4),
        "other_cores_max": round(max([c for c in other_cores if c is not None],
                                     default=0.0), 3),
    })
    RESULTS[(kind, case, framework, threads)] = per_unit
    if benchmark.extra_info["other_cores_max"] > 0.3:
        DISTURBED[(kind, case, framework, threads)] = benchmark.extra_info["other_cores_max"]
    return per_unit


def _ratio_line(label, value, target):
    if value is None:
        return f"  {label:<52} {'n/a':>8}  SKIP"
    status = "PASS" if value >= target else f"FAIL ({value / target:.0%} of target)"
    return f"  {label:<52} {value:>7.2f}x  {status}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    T = config.getoption("--bench-threads")
    peak = _PEAK.get("gflops")
    tr = terminalreporter
    tr.section("fastfit targets (issue 5) -- informational, not asserted")
    if peak:
        tr.write_line(f"sgemm 2048^3 peak, {T} threads: {peak:.1f} GFLOP/s")
    for name, targets in cases.TARGETS.items():
        ff = RESULTS.get(("epoch", name, "fastfit", T))
        if ff is None:
            continue
        case = cases.CASES[name]
        line = f"{name}: fastfit {ff:.4f} s/epoch = {case.flops_per_epoch / ff / 1e9:.1f} GFLOP/s"
        for fw in ("sklearn", "torch"):
            other = RESULTS.get(("epoch", name, fw, T))
            if other is not None:
                line += f", {fw} {other:.4f} s"
        tr.write_line(line)
        for key, target in targets.items():
            if key == "peak":
                if peak:
                    share = case.flops_per_epoch / ff / 1e9 / peak
                    status = "PASS" if share >= target else "FAIL"
                    tr.write_line(f"  {'share of sgemm peak >= ' + format(target, '.0%'):<52}"
                                  f" {share:>7.1%}   {status}")
                continue
            other = RESULTS.get(("epoch", name, key, T))
            tr.write_line(_ratio_line(f"faster than {key} >= {target:g}x",
                                      other / ff if other else None, target))
    s1 = RESULTS.get(("scaling", "wide", "fastfit", 1))
    s2 = RESULTS.get(("scaling", "wide", "fastfit", 2))
    pf = RESULTS.get(("predict", "", "fastfit", T))
    ps = RESULTS.get(("predict", "", "sklearn", T))
    if (s1 and s2) or (pf and ps):
        tr.write_line("other targets:")
    if s1 and s2:
        tr.write_line(_ratio_line(f"wide: fastfit 1 -> 2 threads >= {cases.THREAD_SCALING_TARGET}x",
                                  s1 / s2, cases.THREAD_SCALING_TARGET))
    if pf and ps:
        tr.write_line(_ratio_line("predict 10k x 784: fastfit vs sklearn >= 1x",
                                  ps / pf, cases.PREDICT_TARGET))
    if DISTURBED:
        tr.write_line("disturbed by other processes (re-run these on a quiet machine):")
        for (kind, case, fw, t), cores in DISTURBED.items():
            tr.write_line(f"  {kind} {case} {fw} {t} threads: others used up to "
                          f"{cores:.2f} cores")
