"""pytest-benchmark suite of fastfit: ``python -m pytest benchmarks/``.

Not part of the default ``python -m pytest`` (``testpaths = ["tests"]``).

Options: ``--bench-threads T`` (default 2: every framework gets T threads),
``--bench-rounds R`` (timed rounds per benchmark, default 3),
``--bench-max-wait S`` (seconds to wait for a quiet machine before each
benchmark). Every trainer runs in its own fresh interpreter
(:class:`benchmarks.worker.Remote`): the pytest process only times the round
trips, so no two thread runtimes share a process. pytest-benchmark records the
machine and the commit in its JSON (``machine_info``, ``commit_info``); each
benchmark adds GFLOP/s, the share of the sgemm peak and (epochs) the other
frameworks' time over fastfit's (``jax_over_fastfit``, ...) to ``extra_info``.
``--bench-sweep`` also runs ``test_sweep.py`` (fastfit over widths x
batches; skipped otherwise: it is long). At
the end, a summary compares the frameworks against the speed targets (printed,
never asserted: timings are not pass/fail on a shared machine).
"""

import pytest

from benchmarks import cases, probes, worker

try:
    import pytest_benchmark  # noqa: F401

    HAVE_PYTEST_BENCHMARK = True
except ImportError:
    HAVE_PYTEST_BENCHMARK = False

# (kind, case or "", framework, threads) -> seconds per unit (epoch or predict call)
RESULTS = {}
DISTURBED = {}  # same keys -> cores other processes used during the rounds
EXTRA = {}  # same keys -> the benchmark's extra_info (ratios are added later)
_PEAK = {}
MAX_BUSY = 0.3  # cores other processes may use while a benchmark runs


def pytest_addoption(parser):
    group = parser.getgroup("fastfit benchmarks")
    group.addoption(
        "--bench-threads",
        type=int,
        default=2,
        help="threads for every framework (default 2)",
    )
    group.addoption(
        "--bench-rounds",
        type=int,
        default=3,
        help="timed rounds per epoch benchmark (default 3)",
    )
    group.addoption(
        "--bench-max-wait",
        type=float,
        default=60.0,
        help="seconds to wait before each benchmark for other processes to leave "
        f"the cores (<= {MAX_BUSY} busy); 0 = never wait (default 60)",
    )
    group.addoption(
        "--bench-sweep",
        action="store_true",
        help="also run test_sweep.py: fastfit over hidden widths x batch sizes",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--bench-sweep"):
        sweep = pytest.mark.skip(reason="the sweep runs only with --bench-sweep")
        for item in items:
            if item.path.name == "test_sweep.py":
                item.add_marker(sweep)
    if HAVE_PYTEST_BENCHMARK:
        return
    reason = "pytest-benchmark is not installed (pip install -e '.[test]')"
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _quiet_machine(request):
    """Before each timed benchmark, wait (bounded) until other processes are idle."""
    if "benchmark" in request.fixturenames:
        max_wait = request.config.getoption("--bench-max-wait")
        probes.wait_until_quiet(MAX_BUSY, max_wait)


@pytest.fixture(scope="session")
def threads(request):
    return request.config.getoption("--bench-threads")


@pytest.fixture(scope="session")
def rounds(request):
    return request.config.getoption("--bench-rounds")


@pytest.fixture(scope="session")
def sgemm_peak(threads):
    """GFLOP/s of scipy's sgemm with ``threads`` threads: the best of 2048^3
    and 4096^3 float32 (``probes.sgemm_peak``).

    Measured once per pytest run, best of 5 per size, in a fresh worker process
    (the same OpenBLAS that fastfit calls through scipy.linalg.cython_blas).
    """
    peak = worker.run_job("peak", threads)
    _PEAK.update(peak)
    return peak["gflops"]


@pytest.fixture
def timed_remote(threads, rounds):
    """``timed_remote(benchmark, kind, *args, call=("run", k), n_rounds=R)``.

    Builds the object in a fresh worker (``Remote(kind, *args)``), warms a
    trainer up (untimed), then times ``rounds`` round trips of ``call``.
    Returns the cores other processes used during the timed calls.
    """

    def run(benchmark, kind, *args, call, n_rounds=None):
        with worker.Remote(kind, *args) as remote:
            if kind == "trainer":
                remote.call("warm_up")
            remote.other_cores.clear()
            benchmark.pedantic(
                remote.call, args=call, rounds=n_rounds or rounds, iterations=1
            )
        return remote.other_cores

    return run


@pytest.fixture
def record():
    """``record(benchmark, kind=..., ...)``: fill extra_info, keep for the summary."""
    return _record


def _record(
    benchmark,
    *,
    kind,
    case,
    framework,
    threads,
    units_per_round,
    flops_per_unit,
    peak,
    other_cores,
    nominal_flops_per_unit=None,
):
    """Store GFLOP/s and share of the sgemm peak in ``benchmark.extra_info``.

    ``units_per_round``: epochs (or predict calls) one timed round contains; the
    per-unit median is the round median divided by it. ``flops_per_unit`` is
    the required count (epochs: ``Case.gemm_flops_per_epoch``), the one
    ``gflops`` and ``share_of_peak`` use; ``nominal_flops_per_unit`` adds
    ``gflops_nominal``. An epoch benchmark also gets, once both are measured,
    ``<framework>_over_fastfit`` (fastfit's extra_info) and
    ``over_fastfit`` (the other framework's): time ratios, > 1 = fastfit faster.
    """
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return None
    per_unit = stats.stats.median / units_per_round
    g = flops_per_unit / per_unit / 1e9
    busy = max([c for c in other_cores if c is not None], default=0.0)
    info = benchmark.extra_info
    info.update(
        {
            "case": case,
            "framework": framework,
            "threads": threads,
            "units_per_round": units_per_round,
            "seconds_per_unit_median": per_unit,
            "gflops": round(g, 3),
            "sgemm_peak_gflops": round(peak, 3),
            "share_of_peak": round(g / peak, 4),
            "other_cores_max": round(busy, 3),
        }
    )
    if nominal_flops_per_unit:
        info["gflops_nominal"] = round(nominal_flops_per_unit / per_unit / 1e9, 3)
    key = (kind, case, framework, threads)
    RESULTS[key] = per_unit
    EXTRA[key] = info
    if busy > MAX_BUSY:
        DISTURBED[key] = busy
    if kind == "epoch":
        _add_ratios(case, threads)
    return per_unit


def _add_ratios(case, threads):
    """Each framework's epoch time over fastfit's, in both extra_infos: pytest-
    benchmark writes its JSON at the end of the session, so the ratio reaches
    fastfit's entry whichever of the two ran first."""
    ff = RESULTS.get(("epoch", case, "fastfit", threads))
    if not ff:
        return
    for fw in cases.FRAMEWORKS[1:]:
        key = ("epoch", case, fw, threads)
        if key in RESULTS:
            ratio = round(RESULTS[key] / ff, 4)
            EXTRA[("epoch", case, "fastfit", threads)][f"{fw}_over_fastfit"] = ratio
            EXTRA[key]["over_fastfit"] = ratio


def _target_line(label, value, target, unit="x"):
    if value is None:
        shown = "n/a"
    else:
        shown = f"{value:.1%}" if unit == "%" else f"{value:.2f}x"
    return f"  {label:<52} {shown:>8}  {cases.verdict(value, target)}"


def _case_lines(name, T):
    """The summary lines of one case: its medians, then each of its targets."""
    ff = RESULTS.get(("epoch", name, "fastfit", T))
    if ff is None:
        return []
    seconds = {"fastfit": ff}
    g = cases.required_gflops(name, ff)
    line = f"{name}: fastfit {ff:.4f} s/epoch = {g:.1f} GFLOP/s (required FLOPs)"
    for fw in cases.FRAMEWORKS[1:]:
        other = RESULTS.get(("epoch", name, fw, T))
        if other is not None:
            seconds[fw] = other
            line += f", {fw} {other:.4f} s"
    checks = cases.check_targets(name, seconds, _PEAK.get("gflops"))
    return [line] + [_target_line(*check) for check in checks]


def _other_lines(T):
    lines = []
    s1 = RESULTS.get(("scaling", "wide", "fastfit", 1))
    s2 = RESULTS.get(("scaling", "wide", "fastfit", 2))
    if s1 and s2:
        target = cases.THREAD_SCALING_TARGET
        label = f"wide: fastfit 1 -> 2 threads >= {target}x"
        lines.append(_target_line(label, s1 / s2, target))
    pf = RESULTS.get(("predict", "", "fastfit", T))
    ps = RESULTS.get(("predict", "", "sklearn", T))
    if pf and ps:
        label = "predict 10k x 784: fastfit vs sklearn >= 1x"
        lines.append(_target_line(label, ps / pf, cases.PREDICT_TARGET))
    return ["other targets:"] + lines if lines else []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    T = config.getoption("--bench-threads")
    tr = terminalreporter
    tr.section("fastfit speed targets -- informational, not asserted")
    if _PEAK.get("gflops"):
        size = _PEAK.get("size", "?")
        tr.write_line(
            f"sgemm {size}^3 peak, {T} threads: {_PEAK['gflops']:.1f} GFLOP/s"
        )
    for name in cases.TARGETS:
        for line in _case_lines(name, T):
            tr.write_line(line)
    for line in _other_lines(T):
        tr.write_line(line)
    if DISTURBED:
        tr.write_line("disturbed by other processes (re-run these on a quiet machine):")
        for (kind, case, fw, t), cores in DISTURBED.items():
            tr.write_line(
                f"  {kind} {case} {fw} {t} threads: others used up to {cores:.2f} cores"
            )
