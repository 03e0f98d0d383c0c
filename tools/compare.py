"""fastfit vs scikit-learn vs PyTorch on this machine, in one run (issue 5).

    python tools/compare.py [--cases tiny,wide] [--threads 2] [--repeats 3]
                            [--png out.png] [--json out.json]

Prints, per case, the median epoch seconds of fastfit / scikit-learn / PyTorch,
the speed ratios, fastfit's GFLOP/s and its share of the sgemm peak, and
PASS/FAIL against each target of issue 5; then the 1 -> 2 thread scaling of
fastfit on ``wide``, predict on 10k x 784 (fastfit vs scikit-learn) and the
no-copy memory property of fit.

Every measurement runs in a fresh worker process, one after another, never in
parallel (``python tools/compare.py --worker fastfit tiny 2`` prints its JSON):
the frameworks' thread runtimes never share a process or the cores. Each worker
also reports how many cores *other* processes kept busy while it timed
(``busy`` column); a measurement disturbed by more than ``--max-busy`` cores is
re-run (``--retries``), and the least disturbed one is kept and marked ``*``.
Case definitions, data, FLOP counts and the runners live in
``benchmarks/cases.py``, shared with the pytest-benchmark suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import cases  # noqa: E402

CODE_VERSION = "unknown"
FW_LABEL = {"fastfit": "fastfit", "sklearn": "sklearn", "torch": "torch"}


# ------------------------------------------------------------------- worker
def worker(argv):
    """``--worker`` mode: one measurement in this (fresh) process, JSON on stdout.

    fastfit|sklearn|torch CASE THREADS [REPEATS]   epoch times
    peak THREADS                                   sgemm 2048^3 GFLOP/s
    predict fastfit|sklearn THREADS [REPEATS]      predict 10k x 784
    memory THREADS                                 fit memory (tracemalloc)
    """
    kind = argv[0]
    if kind in cases.FRAMEWORKS:
        case, threads = argv[1], int(argv[2])
        repeats = int(argv[3]) if len(argv) > 3 else 3
        out = cases.time_epochs(kind, case, threads, repeats=repeats)
    elif kind == "peak":
        out = cases.sgemm_peak(int(argv[1]))
    elif kind == "predict":
        repeats = int(argv[3]) if len(argv) > 3 else 10
        out = cases.time_predict(argv[1], int(argv[2]), repeats=repeats)
    elif kind == "memory":
        out = cases.fit_memory(threads=int(argv[1]))
        out["predict"] = cases.predict_memory(threads=int(argv[1]))
    else:
        raise SystemExit(f"unknown worker kind {kind!r}")
    print(json.dumps(out))
    return 0


# ------------------------------------------------------------------- parent
class Runner:
    def __init__(self, max_busy, retries, max_wait, log):
        self.max_busy, self.retries, self.max_wait, self.log = max_busy, retries, max_wait, log
        self.failures = []

    def wait_quiet(self):
        """Wait (up to max_wait s) until other processes use < max_busy cores."""
        t0 = time.perf_counter()
        while True:
            busy = cases.machine_busy_cores(1.0)
            if busy is None or busy <= self.max_busy:
                return busy
            if time.perf_counter() - t0 > self.max_wait:
                self.log(f"  (machine still busy: {busy:.2f} cores; measuring anyway)")
                return busy
            self.log(f"  (machine busy: {busy:.2f} cores used by others; waiting)")
            time.sleep(5.0)

    def one(self, args, timeout=3600):
        self.wait_quiet()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", *map(str, args)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=cases.worker_env(), text=True,
                              capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {' '.join(map(str, args))} failed:\n"
                               + proc.stderr[-3000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["wall"] = time.perf_counter() - t0
        return out

    def measure(self, args):
        """Run a worker; re-run it if others disturbed it; keep the least disturbed.

        A worker that fails is reported and skipped (None): one crashing
        framework must not cost the whole table.
        """
        best = None
        for attempt in range(1 + self.retries):
            try:
                out = self.one(args)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                self.log(f"  {' '.join(map(str, args))}: FAILED, skipped\n{exc}")
                self.failures.append(" ".join(map(str, args)))
                return best
            busy = max([b for b in out.get("other_cores", []) if b is not None],
                       default=0.0)
            out["busy"] = busy
            out["disturbed"] = busy > self.max_busy
            if best is None or busy < best["busy"]:
                best = out
            if not out["disturbed"] or attempt == self.retries:
                break
            self.log(f"  {' '.join(map(str, args))}: others used {busy:.2f} cores "
                     f"while timing; re-running (retry {attempt + 1}/{self.retries})")
        return best


def _host_speed(measurements, peak):
    """Canary range of a row's samples relative to the reference canary."""
    ref = (peak.get("canary_gflops") or [None])[0]
    vals = [c for m in measurements for c in m.get("canary_gflops", []) if c]
    if not ref or not vals:
        return "n/a"
    lo, hi = min(vals) / ref, max(vals) / ref
    return f"{lo:.0%}-{hi:.0%}" + ("!" if lo < 0.9 or hi > 1.1 else "")


def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.4f}" if x < 1 else f"{x:.3f}"


def verdict(value, target):
    if value is None:
        return "SKIP"
    if value >= target:
        return "PASS"
    return f"FAIL (at {value / target:.0%} of target; needs {target / value:.2f}x more)"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("model name")), platform.processor())
        flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), [])
        simd = [f for f in ("avx2", "fma", "avx512f") if f in flags]
        return f"{name} ({'/'.join(simd) or 'no avx'})"
    except OSError:
        return platform.processor()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker(argv[1:])

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(cases.CASES),
                    help="comma-separated subset of: " + ", ".join(cases.CASES))
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for every framework (default 2)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed samples per measurement, after one warm-up epoch")
    ap.add_argument("--frameworks", default=",".join(cases.FRAMEWORKS))
    ap.add_argument("--png", help="write a bar chart (needs matplotlib)")
    ap.add_argument("--json", help="write every raw measurement as JSON")
    ap.add_argument("--no-extras", action="store_true",
                    help="skip thread scaling, predict and memory")
    ap.add_argument("--max-busy", type=float, default=0.3,
                    help="cores other processes may use while we time (default 0.3)")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-runs of a disturbed measurement (default 2)")
    ap.add_argument("--max-wait", type=float, default=300,
                    help="seconds to wait for a quiet machine before each run")
    ns = ap.parse_args(argv)

    names = [c.strip() for c in ns.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in cases.CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(cases.CASES)}")
    frameworks = [f.strip() for f in ns.frameworks.split(",") if f.strip()]
    if "torch" in frameworks and not cases.torch_available():
        print("torch is not installed: its column is skipped "
              "(pip install the CPU wheel to compare).")
        frameworks.remove("torch")
    T = ns.threads
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    run = Runner(ns.max_busy, ns.retries, ns.max_wait, log)
    started = time.time()
    global CODE_VERSION
    CODE_VERSION = cases.code_version()  # before measuring: what was measured
    raw = {"code": CODE_VERSION, "threads": T, "repeats": ns.repeats, "cases": {}, "cpu": cpu_name()}

    log(f"sgemm peak ({T} threads) ...")
    peak = run.measure(["peak", T])
    if peak is None:
        raise SystemExit("the sgemm peak could not be measured: is scipy installed?")
    raw["peak"] = peak
    results = {}
    for name in names:
        results[name] = {}
        for fw in frameworks:
            log(f"{name}: {fw} ...")
            out = run.measure([fw, name, T, ns.repeats])
            if out is not None:
                results[name][fw] = out
        raw["cases"][name] = results[name]

    extras = {}
    if not ns.no_extras:
        if "fastfit" in frameworks:
            w = {}
            for t in (1, 2):
                if t == T and "fastfit" in results.get("wide", {}):
                    w[t] = results["wide"]["fastfit"]
                else:
                    log(f"wide: fastfit {t} thread(s) ...")
                    w[t] = run.measure(["fastfit", "wide", t, ns.repeats])
            if all(w.values()):
                extras["scaling"] = w
        log("predict ...")
        predict = {fw: run.measure(["predict", fw, T])
                   for fw in ("fastfit", "sklearn") if fw in frameworks}
        extras["predict"] = {fw: v for fw, v in predict.items() if v is not None}
        if "fastfit" in frameworks:
            log("memory ...")
            try:
                extras["memory"] = run.one(["memory", T])
            except RuntimeError as exc:
                log(f"  memory: FAILED, skipped\n{exc}")
                run.failures.append("memory")
        raw["extras"] = extras

    # the peak is the best the machine does: a host slowdown while it was
    # measured would inflate every share of it, so measure it again at the end
    log(f"sgemm peak again ({T} threads) ...")
    peak_end = run.measure(["peak", T])
    raw["peak_end"] = peak_end
    if peak_end is not None:
        peak = dict(max((peak, peak_end), key=lambda p: p["gflops"]),
                    start=peak["gflops"], end=peak_end["gflops"])

    report = render(results, extras, peak, T, ns.repeats, frameworks, names,
                    time.time() - started)
    if run.failures:
        report += "\nFAILED workers (see stderr): " + "; ".join(run.failures)
    print(report)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(raw, f, indent=1)
    if ns.png:
        plot(results, peak, names, frameworks, T, ns.png)
    return 0


def render(results, extras, peak, T, repeats, frameworks, names, elapsed):
    lines = []
    add = lines.append
    peak_g = peak["gflops"]
    add("")
    add(f"fastfit vs scikit-learn vs PyTorch -- median seconds per epoch "
        f"({repeats} samples after a warm-up epoch), float32, Adam, shuffle, {T} threads")
    add(f"machine: {cpu_name()}, {os.cpu_count()} cores; sgemm 2048^3 peak at {T} "
        f"threads: {peak_g:.1f} GFLOP/s (best of 5"
        + (f"; measured at the start {peak['start']:.1f} and at the end {peak['end']:.1f}, "
           "the higher is used)" if "end" in peak else ")"))
    add(f"fastfit code: {CODE_VERSION}")
    versions = _versions(frameworks)
    add("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    add("")
    hdr = (f"{'case':<12}{'GFLOP/ep':>9}{'fastfit s':>11}{'sklearn s':>11}{'torch s':>10}"
           f"{'sk/ff':>8}{'torch/ff':>9}{'ff GFLOP/s':>11}{'ff %peak':>9}"
           f"{'sk %peak':>9}{'th %peak':>9}  busy  host")
    add(hdr)
    add("-" * len(hdr))
    get = lambda r, fw: r[fw]["median"] if fw in r else None  # noqa: E731
    for name in names:
        r, case = results[name], cases.CASES[name]
        ff, sk, th = get(r, "fastfit"), get(r, "sklearn"), get(r, "torch")
        ratio = lambda other: f"{other / ff:.2f}x" if (other and ff) else "n/a"  # noqa: E731
        share = lambda s: f"{case.flops_per_epoch / s / 1e9 / peak_g:.1%}" if s else "n/a"  # noqa: E731
        busy = max(v.get("busy", 0.0) for v in r.values())
        mark = "*" if any(v.get("disturbed") for v in r.values()) else ""
        host = _host_speed(r.values(), peak)
        add(f"{name:<12}{case.flops_per_epoch / 1e9:>9.2f}{fmt_s(ff):>11}{fmt_s(sk):>11}"
            f"{fmt_s(th):>10}{ratio(sk):>8}{ratio(th):>9}"
            f"{(case.flops_per_epoch / ff / 1e9 if ff else 0):>11.1f}{share(ff):>9}"
            f"{share(sk):>9}{share(th):>9}  {busy:.2f}{mark:<1} {host}")
    spread = []
    for name in names:
        parts = [f"{fw} {max(v['samples']) / min(v['samples']):.2f}"
                 for fw, v in results[name].items() if v.get("samples")]
        spread.append(f"{name}: " + " ".join(parts))
    add("sample spread (slowest/fastest of each median's samples): " + "; ".join(spread))
    add("")
    add("targets (issue 5):")
    for name in names:
        r, case = results[name], cases.CASES[name]
        ff = get(r, "fastfit")
        for key, target in cases.TARGETS[name].items():
            if key == "peak":
                value = case.flops_per_epoch / ff / 1e9 / peak_g if ff else None
                shown = f"{value:.1%}" if value is not None else "n/a"
                work = (f"   (gemms actually computed: "
                        f"{case.gemm_flops_per_epoch / ff / 1e9 / peak_g:.1%} of peak)"
                        if ff else "")
                add(f"  {name:<12} fastfit >= {target:.0%} of sgemm peak"
                    f"{'':<9}{shown:>8}  {verdict(value, target)}{work}")
            else:
                other = get(r, key)
                value = other / ff if (other and ff) else None
                shown = f"{value:.2f}x" if value is not None else "n/a"
                add(f"  {name:<12} fastfit >= {target:g}x faster than {key:<8}"
                    f"{shown:>9}  {verdict(value, target)}")
    if extras.get("scaling"):
        w = extras["scaling"]
        s1, s2 = w[1]["median"], w[2]["median"]
        add(f"  {'wide':<12} fastfit 1 -> 2 threads >= {cases.THREAD_SCALING_TARGET}x"
            f"{'':<7}{s1 / s2:>8.2f}x  {verdict(s1 / s2, cases.THREAD_SCALING_TARGET)}"
            f"   (1 thread {fmt_s(s1)} s, 2 threads {fmt_s(s2)} s)")
    if extras.get("predict"):
        p = extras["predict"]
        if "fastfit" in p and "sklearn" in p:
            ratio = p["sklearn"]["median"] / p["fastfit"]["median"]
            add(f"  predict      {cases.PREDICT_N // 1000}k x 784 (784-256-128-10), fastfit "
                f"as fast as sklearn {ratio:>6.2f}x  {verdict(ratio, cases.PREDICT_TARGET)}"
                f"   (fastfit {p['fastfit']['median'] * 1e3:.1f} ms = "
                f"{p['fastfit']['gflops']:.1f} GFLOP/s, "
                f"sklearn {p['sklearn']['median'] * 1e3:.1f} ms = "
                f"{p['sklearn']['gflops']:.1f} GFLOP/s)")
    if extras.get("memory"):
        m = extras["memory"]
        add(f"  memory       fit on float32 C X ({m['X_bytes'] / 2**20:.0f} MiB) allocates "
            f"{m['traced_peak_bytes'] / 2**20:.1f} MiB at peak (tracemalloc) "
            f"= {m['traced_peak_over_X']:.1%} of X; allowance "
            f"{m['allowance_bytes'] / 2**20:.1f} MiB  {'PASS' if m['ok'] else 'FAIL'}"
            f"   (peak RSS grew {m['peak_rss_growth_bytes'] / 2**20:.1f} MiB)")
        pm = m.get("predict")
        if pm:
            add(f"  memory       predict grows {pm['bytes_per_row']:.0f} B/row (unchunked would "
                f"be >= {pm['unchunked_bytes_per_row_at_least']} B/row)"
                f"{'':<4}{'PASS' if pm['ok'] else 'FAIL'}")
    add("")
    add("GFLOP/s and %peak use issue 5's count, 6 x sum(fan_in x fan_out) x n; no "
        "framework computes the first layer's input gradient, so the gemm work done is "
        + ", ".join(f"{n} {cases.CASES[n].gemm_flops_per_epoch / cases.CASES[n].flops_per_epoch:.0%}"
                    for n in names) + " of it.")
    add("busy = cores used by other processes while timing (max over samples); "
        "* = still disturbed after re-runs.")
    add("host = slowest-fastest one-core sgemm canary run before each sample of the row, "
        "relative to the one taken with the peak used (< 90%: the VM's host slowed us "
        "down, invisibly to /proc/stat; > 110%: the peak itself was taken on a slowed "
        "host, shares of it are too high; re-run).")
    add(f"total wall time {elapsed / 60:.1f} min")
    return "\n".join(lines)


def _versions(frameworks):
    out = {"python": platform.python_version()}
    try:
        import numpy
        import scipy
        import sklearn
        out.update(numpy=numpy.__version__, scipy=scipy.__version__,
                   sklearn=sklearn.__version__)
    except ImportError:
        pass
    try:
        import fastfit
        out["fastfit"] = fastfit.__version__
    except ImportError:
        pass
    if "torch" in frameworks:
        # from the metadata: importing torch here would load its runtime into
        # the parent, which must stay light while workers run
        from importlib.metadata import PackageNotFoundError, version
        try:
            out["torch"] = version("torch")
        except PackageNotFoundError:
            pass
    return out


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
    colors = {"fastfit": "tab:green", "sklearn": "tab:orange", "torch": "tab:red"}
    for i, fw in enumerate(frameworks):
        secs = [results[n][fw]["median"] if fw in results[n] else np.nan for n in names]
        share = [cases.CASES[n].flops_per_epoch / s / 1e9 / peak["gflops"] * 100
                 for n, s in zip(names, secs)]
        ax1.bar(x + (i - (len(frameworks) - 1) / 2) * width, secs, width,
                label=FW_LABEL[fw], color=colors.get(fw))
        ax2.bar(x + (i - (len(frameworks) - 1) / 2) * width, share, width,
                label=FW_LABEL[fw], color=colors.get(fw))
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


if __name__ == "__main__":
    sys.exit(main())
