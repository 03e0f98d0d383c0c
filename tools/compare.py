"""fastfit vs scikit-learn vs PyTorch vs JAX, in one run, against the speed targets.

    python tools/compare.py [--cases tiny,wide] [--threads 2] [--repeats 3]
                            [--png out.png] [--json out.json]

Prints, per case, the median epoch seconds of fastfit / scikit-learn / PyTorch /
JAX (the last two optional: skipped when not installed; the frameworks of a
case run one after the other), the speed ratios, fastfit's GFLOP/s and the
shares of the sgemm peak (on the required FLOPs), and
PASS/FAIL against each speed target; then the 1 -> 2 thread scaling of
fastfit on ``wide``, predict on 10k x 784 (fastfit vs scikit-learn) and the
no-copy memory property of fit (``--no-extras`` skips these).

Every measurement runs in a fresh worker process (``benchmarks.worker``, the
one the pytest-benchmark suite uses), one after another, never in parallel:
the frameworks' thread runtimes never share a process or the cores. Each
worker also reports how many cores *other* processes kept busy while it timed
(``busy`` column); a measurement disturbed by more than ``--max-busy`` cores is
re-run (``--retries``), and the least disturbed one is kept and marked ``*``.
The machine and commit come from pytest-benchmark's own helpers, as in the
suite's JSON. The method and the numbers so far: ``docs/performance.md``.

``--interleave`` measures a case's frameworks side by side instead: one live
worker per framework, each warmed up, then their samples in alternating
rounds (the order reversed every other round), one framework running at a
time. On a shared host whose speed drifts by tens of percent over minutes, a
slow phase then falls on every framework's samples alike rather than on one
framework's whole measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import cases, probes, trainers, worker  # noqa: E402

TIMEOUT = 3600  # seconds one worker may take


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------ environment
@contextlib.contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def environment(frameworks):
    """pytest-benchmark's ``machine_info`` and ``commit_info`` (of this repo),
    and the versions of the frameworks compared."""
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info
    from pytest_benchmark.utils import get_commit_info

    with _cwd(ROOT):  # get_commit_info asks git in the working directory
        commit = get_commit_info("fastfit")
    return {
        "machine_info": pytest_benchmark_generate_machine_info(),
        "commit_info": commit,
        "versions": _versions(frameworks),
    }


def _versions(frameworks):
    """Versions from the package metadata: importing the frameworks here would
    load their runtimes into the parent, which must stay light."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    dists = ["numpy", "scipy", "scikit-learn", "fastfit"]
    dists += ["torch"] if "torch" in frameworks else []
    dists += ["jax", "jaxlib"] if "jax" in frameworks else []
    for dist in dists:
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    if "fastfit" not in out:  # run from the source tree, not installed
        import fastfit

        out["fastfit"] = fastfit.__version__
    return out


def _machine_line(env):
    cpu = env["machine_info"].get("cpu") or {}
    simd = [f for f in ("avx2", "fma", "avx512f") if f in cpu.get("flags", [])]
    name = cpu.get("brand_raw") or env["machine_info"].get("processor", "?")
    return f"{name} ({'/'.join(simd) or 'no avx'}), {os.cpu_count()} cores"


def _commit_line(env):
    c = env["commit_info"]
    return f"{c['id'][:10]} on {c['branch']}" + (" (dirty)" if c["dirty"] else "")


# ---------------------------------------------------------------- running
class Runner:
    """Runs worker jobs one at a time, re-running the disturbed ones."""

    def __init__(self, max_busy, retries, max_wait):
        self.max_busy, self.retries, self.max_wait = max_busy, retries, max_wait
        self.failures = []

    def wait_quiet(self):
        return probes.wait_until_quiet(self.max_busy, self.max_wait, log)

    def one(self, job, *args):
        self.wait_quiet()
        t0 = time.perf_counter()
        out = worker.run_job(job, *args, timeout=TIMEOUT)
        out["wall"] = time.perf_counter() - t0
        return out

    def measure(self, job, *args):
        """Run a job; re-run it if others disturbed it; keep the least disturbed.

        A job that fails is reported and skipped (None): one crashing
        framework must not cost the whole table.
        """
        label, best = " ".join(map(str, (job, *args))), None
        for attempt in range(1 + self.retries):
            try:
                out = self.one(job, *args)
            except (RuntimeError, ValueError, OSError) as exc:
                log(f"  {label}: FAILED, skipped\n{exc}")
                self.failures.append(label)
                return best
            self.mark_busy(out)
            if best is None or out["busy"] < best["busy"]:
                best = out
            if not out["disturbed"] or attempt == self.retries:
                break
            log(
                f"  {label}: others used {out['busy']:.2f} cores while timing; "
                f"re-running (retry {attempt + 1}/{self.retries})"
            )
        return best

    def mark_busy(self, out):
        """Set ``busy`` (the most cores others used during a sample) and
        ``disturbed`` (more than --max-busy) from ``out['other_cores']``."""
        seen = [b for b in out.get("other_cores", []) if b is not None]
        out["busy"] = max(seen, default=0.0)
        out["disturbed"] = out["busy"] > self.max_busy

    def memory(self, threads):
        """fit and predict memory, one after the other in one worker."""
        self.wait_quiet()
        try:
            with worker.Remote("jobs", timeout=TIMEOUT) as remote:
                out = remote.call("fit_memory", threads=threads)
                out["predict"] = remote.call("predict_memory", threads=threads)
            return out
        except (RuntimeError, ValueError, OSError) as exc:
            log(f"  memory: FAILED, skipped\n{exc}")
            self.failures.append("memory")
            return None


def measure_cases(run, names, frameworks, T, repeats):
    results = {}
    for name in names:
        results[name] = {}
        for fw in frameworks:
            log(f"{name}: {fw} ...")
            out = run.measure("epochs", fw, name, T, repeats)
            if out is not None:
                results[name][fw] = out
    return results


def measure_case_interleaved(run, name, frameworks, T, repeats):
    """One case, the frameworks' samples alternating round by round (see the
    module docstring); per framework, the fields of ``trainers.time_epochs``
    that the report reads."""
    case = cases.CASES[name]
    remotes, out = {}, {}
    try:
        for fw in frameworks:
            log(f"{name}: {fw} warm-up ...")
            remotes[fw] = worker.Remote("trainer", fw, name, T, timeout=TIMEOUT)
            t0 = time.perf_counter()
            remotes[fw].call("warm_up")
            out[fw] = {
                "framework": fw, "case": name, "threads": T,
                "epochs_per_sample": case.epochs_for(fw), "samples": [],
                "other_cores": [], "canary_gflops": [],
                "warm_up_seconds": time.perf_counter() - t0,
            }  # fmt: skip
        for r in range(repeats):
            order = frameworks if r % 2 == 0 else frameworks[::-1]
            for fw in order:
                run.wait_quiet()
                k = out[fw]["epochs_per_sample"]
                # the canary first, as ``time_epochs`` takes it (after 0.2 s of
                # sleep, so no framework's spinning thread competes)
                out[fw]["canary_gflops"].append(probes.canary_gflops())
                t0 = time.perf_counter()
                out[fw]["loss"] = remotes[fw].call("run", k)
                out[fw]["samples"].append((time.perf_counter() - t0) / k)
                out[fw]["other_cores"].append(remotes[fw].other_cores[-1])
    except (RuntimeError, ValueError, OSError) as exc:
        log(f"  {name} interleaved: FAILED, skipped\n{exc}")
        run.failures.append(f"{name} interleaved")
        return {}
    finally:
        for remote in remotes.values():
            remote.close()
    for o in out.values():
        o.update(trainers.epoch_rates(case, o["samples"]))
        run.mark_busy(o)
    return out


def measure_extras(run, results, frameworks, T, repeats):
    """Thread scaling on ``wide``, predict, memory (fastfit where it is run)."""
    extras = {}
    if "fastfit" in frameworks:
        w = {}
        for t in (1, 2):
            if t == T and "fastfit" in results.get("wide", {}):
                w[t] = results["wide"]["fastfit"]
            else:
                log(f"wide: fastfit {t} thread(s) ...")
                w[t] = run.measure("epochs", "fastfit", "wide", t, repeats)
        if all(w.values()):
            extras["scaling"] = w
    log("predict ...")
    predict = {
        fw: run.measure("predict", fw, T)
        for fw in ("fastfit", "sklearn")
        if fw in frameworks
    }
    extras["predict"] = {fw: v for fw, v in predict.items() if v is not None}
    if "fastfit" in frameworks:
        log("memory ...")
        memory = run.memory(T)
        if memory is not None:
            extras["memory"] = memory
    return extras


def measure_peak(run, T, label=""):
    log(f"sgemm peak{label} ({T} threads) ...")
    return run.measure("peak", T)


def best_peak(peak, peak_end):
    """The peak is the best the machine does: a host slowdown while it was
    measured would inflate every share of it, so it is measured again at the
    end and the higher of the two is used."""
    if peak_end is None:
        return peak
    best = max((peak, peak_end), key=lambda p: p["gflops"])
    return dict(best, start=peak["gflops"], end=peak_end["gflops"])


# -------------------------------------------------------------- rendering
def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.4f}" if x < 1 else f"{x:.3f}"


def _median(r, fw):
    return r[fw]["median"] if fw in r else None


def _host_speed(measurements, peak):
    """Canary range of a row's samples relative to the reference canary."""
    ref = (peak.get("canary_gflops") or [None])[0]
    vals = [c for m in measurements for c in m.get("canary_gflops", []) if c]
    if not ref or not vals:
        return "n/a"
    lo, hi = min(vals) / ref, max(vals) / ref
    return f"{lo:.0%}-{hi:.0%}" + ("!" if lo < 0.9 or hi > 1.1 else "")


def _header(peak, T, repeats, env):
    when = (
        f"; measured at the start {peak['start']:.1f} and at the end "
        f"{peak['end']:.1f}, the higher is used)"
        if "end" in peak
        else ")"
    )
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    python = env["machine_info"]["python_version"]
    return [
        "",
        "fastfit vs scikit-learn vs PyTorch vs JAX -- median seconds per epoch "
        f"({repeats} samples after a warm-up epoch), float32, Adam, shuffle, "
        f"{T} threads",
        f"machine: {_machine_line(env)}; sgemm peak at {T} threads: "
        f"{peak['gflops']:.1f} GFLOP/s ({peak.get('size', '?')}^3, best of 5"
        f"{_sizes_note(peak)}" + when,
        f"fastfit code: {_commit_line(env)}",
        f"versions: python {python}, {versions}",
        "",
    ]


def _sizes_note(peak):
    sizes = peak.get("by_size") or {}
    if len(sizes) < 2:
        return ""
    return "; by size: " + ", ".join(f"{k}^3 {v:.1f}" for k, v in sizes.items())


OTHERS = cases.FRAMEWORKS[1:]
SHORT = {"fastfit": "ff", "sklearn": "sk", "torch": "torch", "jax": "jax"}


def _row(name, r, peak):
    case, peak_g = cases.CASES[name], peak["gflops"]
    ff = _median(r, "fastfit")

    def ratio(other):
        return f"{other / ff:.2f}x" if (other and ff) else "n/a"

    def share(s):
        return f"{cases.required_gflops(case, s) / peak_g:.1%}" if s else "n/a"

    busy = max((v.get("busy", 0.0) for v in r.values()), default=0.0)
    mark = "*" if any(v.get("disturbed") for v in r.values()) else ""
    ff_g = cases.required_gflops(case, ff) if ff else 0.0
    secs = {fw: _median(r, fw) for fw in cases.FRAMEWORKS}
    return (
        f"{name:<12}{case.gemm_flops_per_epoch / 1e9:>9.2f}"
        + "".join(f"{fmt_s(secs[fw]):>10}" for fw in cases.FRAMEWORKS)
        + "".join(f"{ratio(secs[fw]):>9}" for fw in OTHERS)
        + f"{ff_g:>11.1f}"
        + "".join(f"{share(secs[fw]):>10}" for fw in cases.FRAMEWORKS)
        + f"  {busy:.2f}{mark:<1} {_host_speed(r.values(), peak)}"
    )


def _table(results, names, peak):
    hdr = (
        f"{'case':<12}{'GFLOP/ep':>9}"
        + "".join(f"{fw + ' s':>10}" for fw in cases.FRAMEWORKS)
        + "".join(f"{SHORT[fw] + '/ff':>9}" for fw in OTHERS)
        + f"{'ff GFLOP/s':>11}"
        + "".join(f"{SHORT[fw] + ' %pk':>10}" for fw in cases.FRAMEWORKS)
        + "  busy  host"
    )
    lines = [hdr, "-" * len(hdr)]
    lines += [_row(name, results[name], peak) for name in names]
    spread = []
    for name in names:
        parts = [
            f"{fw} {max(v['samples']) / min(v['samples']):.2f}"
            for fw, v in results[name].items()
            if v.get("samples")
        ]
        spread.append(f"{name}: " + " ".join(parts))
    lines.append(
        "sample spread (slowest/fastest of each median's samples): " + "; ".join(spread)
    )
    return lines


def _target_lines(results, names, peak):
    lines = ["", "targets:"]
    for name in names:
        r, case = results[name], cases.CASES[name]
        seconds = {fw: v["median"] for fw, v in r.items()}
        ff = seconds.get("fastfit")
        for label, value, target, unit in cases.check_targets(
            name, seconds, peak["gflops"]
        ):
            if value is None:
                shown = "n/a"
            else:
                shown = f"{value:.1%}" if unit == "%" else f"{value:.2f}x"
            line = f"  {name:<12} {label:<37}{shown:>8}  {cases.verdict(value, target)}"
            if unit == "%" and ff:
                nominal = cases.gflops(case, ff) / peak["gflops"]
                line += f"   (by the nominal count: {nominal:.1%})"
            lines.append(line)
    return lines


def _scaling_lines(w):
    s1, s2 = w[1]["median"], w[2]["median"]
    target = cases.THREAD_SCALING_TARGET
    return [
        f"  {'wide':<12} fastfit 1 -> 2 threads >= {target}x{'':<7}{s1 / s2:>8.2f}x"
        f"  {cases.verdict(s1 / s2, target)}"
        f"   (1 thread {fmt_s(s1)} s, 2 threads {fmt_s(s2)} s)"
    ]


def _predict_lines(p):
    if "fastfit" not in p or "sklearn" not in p:
        return []
    ff, sk = p["fastfit"], p["sklearn"]
    ratio = sk["median"] / ff["median"]
    status = cases.verdict(ratio, cases.PREDICT_TARGET)
    return [
        f"  predict      {cases.PREDICT_N // 1000}k x 784 (784-256-128-10), fastfit "
        f"as fast as sklearn {ratio:>6.2f}x  {status}"
        f"   (fastfit {ff['median'] * 1e3:.1f} ms = {ff['gflops']:.1f} GFLOP/s, "
        f"sklearn {sk['median'] * 1e3:.1f} ms = {sk['gflops']:.1f} GFLOP/s)"
    ]


def _memory_lines(m):
    mib = 2**20
    lines = [
        f"  memory       fit on float32 C X ({m['X_bytes'] / mib:.0f} MiB) allocates "
        f"{m['traced_peak_bytes'] / mib:.1f} MiB at peak (tracemalloc) "
        f"= {m['traced_peak_over_X']:.1%} of X; allowance "
        f"{m['allowance_bytes'] / mib:.1f} MiB  {'PASS' if m['ok'] else 'FAIL'}"
        f"   (peak RSS grew {m['peak_rss_growth_bytes'] / mib:.1f} MiB)"
    ]
    pm = m.get("predict")
    if pm:
        lines.append(
            f"  memory       predict grows {pm['bytes_per_row']:.0f} B/row "
            f"(unchunked would be >= {pm['unchunked_bytes_per_row_at_least']} "
            f"B/row){'':<4}{'PASS' if pm['ok'] else 'FAIL'}"
        )
    return lines


def _footnotes(names, elapsed):
    shares = {
        n: cases.CASES[n].gemm_flops_per_epoch / cases.CASES[n].flops_per_epoch
        for n in names
    }
    done = ", ".join(f"{n} {share:.0%}" for n, share in shares.items())
    return [
        "",
        "GFLOP/ep, GFLOP/s and %pk use the required count: the nominal "
        "6 x sum(fan_in x fan_out) x n less the first layer's input gradient, "
        f"which no framework computes ({done} of the nominal count).",
        "x/ff = that framework's epoch time over fastfit's (> 1: fastfit faster).",
        "busy = cores used by other processes while timing (max over samples); "
        "* = still disturbed after re-runs.",
        "host = slowest-fastest one-core sgemm canary run before each sample of "
        "the row, relative to the one taken with the peak used (< 90%: the VM's "
        "host slowed us down, invisibly to /proc/stat; > 110%: the peak itself was "
        "taken on a slowed host, shares of it are too high; re-run).",
        f"total wall time {elapsed / 60:.1f} min",
    ]


def render(results, extras, peak, T, repeats, names, env, elapsed):
    lines = _header(peak, T, repeats, env) + _table(results, names, peak)
    lines += _target_lines(results, names, peak)
    if extras.get("scaling"):
        lines += _scaling_lines(extras["scaling"])
    lines += _predict_lines(extras.get("predict", {}))
    if extras.get("memory"):
        lines += _memory_lines(extras["memory"])
    return "\n".join(lines + _footnotes(names, elapsed))


def plot(results, peak, names, frameworks, T, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--png needs matplotlib (pip install matplotlib); no chart written.")
        return
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(names))
    width = 0.8 / len(frameworks)
    colors = {
        "fastfit": "tab:green",
        "sklearn": "tab:orange",
        "torch": "tab:red",
        "jax": "tab:blue",
    }
    for i, fw in enumerate(frameworks):
        secs = [_median(results[n], fw) or np.nan for n in names]
        share = [
            cases.required_gflops(n, s) / peak["gflops"] * 100
            for n, s in zip(names, secs)
        ]
        at = x + (i - (len(frameworks) - 1) / 2) * width
        ax1.bar(at, secs, width, label=fw, color=colors.get(fw))
        ax2.bar(at, share, width, label=fw, color=colors.get(fw))
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds per epoch (log)")
    ax2.set_ylabel(f"% of sgemm peak ({peak['gflops']:.0f} GFLOP/s)")
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.legend()
    ax1.set_title(f"epoch time, {T} threads (lower is better)")
    ax2.set_title("share of sgemm peak (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"chart written to {path}")


# ------------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = ap.add_argument
    add(
        "--cases",
        default=",".join(cases.CASES),
        help="comma-separated subset of: " + ", ".join(cases.CASES),
    )
    add(
        "--threads", type=int, default=2, help="threads for every framework (default 2)"
    )
    add(
        "--repeats",
        type=int,
        default=3,
        help="timed samples per measurement, after one warm-up epoch",
    )
    add("--frameworks", default=",".join(cases.FRAMEWORKS))
    add("--png", help="write a bar chart (needs matplotlib)")
    add("--json", help="write every raw measurement as JSON")
    add(
        "--interleave",
        action="store_true",
        help="a case's frameworks in live workers, samples alternating by round",
    )
    add(
        "--no-extras",
        action="store_true",
        help="skip thread scaling, predict and memory",
    )
    add(
        "--max-busy",
        type=float,
        default=0.3,
        help="cores other processes may use while we time (default 0.3)",
    )
    add(
        "--retries",
        type=int,
        default=2,
        help="re-runs of a disturbed measurement (default 2)",
    )
    add(
        "--max-wait",
        type=float,
        default=300,
        help="seconds to wait for a quiet machine before each run",
    )
    ns = ap.parse_args(argv)
    ns.cases, ns.frameworks = _names(ns.cases), _names(ns.frameworks)
    unknown = [c for c in ns.cases if c not in cases.CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(cases.CASES)}")
    unknown = [fw for fw in ns.frameworks if fw not in cases.FRAMEWORKS]
    if unknown:
        ap.error(f"unknown framework(s) {unknown}; choose from {cases.FRAMEWORKS}")
    for fw in cases.OPTIONAL_FRAMEWORKS:
        if fw in ns.frameworks and not trainers.framework_available(fw):
            print(f"{fw} is not installed: its column is skipped (optional).")
            ns.frameworks.remove(fw)
    return ns


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv=None):
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    T, names, frameworks = ns.threads, ns.cases, ns.frameworks
    run = Runner(ns.max_busy, ns.retries, ns.max_wait)
    started = time.time()
    env = environment(frameworks)  # before measuring: what was measured
    raw = dict(env, threads=T, repeats=ns.repeats)
    peak = raw["peak"] = measure_peak(run, T)
    if peak is None:
        raise SystemExit("the sgemm peak could not be measured: is scipy installed?")
    if ns.interleave:
        results = {
            name: measure_case_interleaved(run, name, frameworks, T, ns.repeats)
            for name in names
        }
    else:
        results = measure_cases(run, names, frameworks, T, ns.repeats)
    raw["cases"], raw["interleaved"] = results, ns.interleave
    extras = {}
    if not ns.no_extras:
        extras = raw["extras"] = measure_extras(run, results, frameworks, T, ns.repeats)
    raw["peak_end"] = measure_peak(run, T, " again")
    peak = best_peak(peak, raw["peak_end"])
    elapsed = time.time() - started
    report = render(results, extras, peak, T, ns.repeats, names, env, elapsed)
    if run.failures:
        report += "\nFAILED workers (see stderr): " + "; ".join(run.failures)
    print(report)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(raw, f, indent=1)
    if ns.png:
        plot(results, peak, names, frameworks, T, ns.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
