"""Where does a fastfit epoch spend its time? A sampling profile of timed epochs only.

    python tools/profile_epoch.py mnist_b32 [--threads 2] [--epochs 1]
        [--tool perf|py-spy] [--framework fastfit] [--top 25] [--keep DIR]

Builds the case's trainer (``benchmarks/trainers.py``) in a fresh worker process
(``benchmarks/worker.py``, the one the benchmarks use),
runs the untimed warm-up epoch, then attaches the profiler to the worker for the
timed ``run(k)`` only (no data generation, imports or warm-up in the profile),
and prints the CPU time split into categories -- gemm compute, gemm packing,
OpenMP runtime (spin/barriers), optimizer, elementwise kernels, ... -- in
CPU-seconds per epoch and as a share of the samples, then the top symbols.

``perf`` (``perf record -e cpu-clock -g -p PID``; works in VMs without hardware
counters) sees every thread, including the OpenMP workers and their spinning.
``py-spy`` (``pip install py-spy``; ``--native``) is the fallback where perf is
missing: it only sees threads that hold a Python thread state, so OpenMP worker
threads are invisible to it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import cases, probes, worker  # noqa: E402

# the engine is one extension module per code path (_core_avx512, ...)
ENGINE = r"_core_|_core\."
# (category, dso regex, symbol regex): first match wins
CATEGORIES = [
    (
        "gemm compute (BLAS micro-kernel)",
        r"openblas|libblas|mkl",
        r"gemm_kernel|_kernel_",
    ),
    (
        "gemm compute (fastfit small-batch kernel, _kernels.h)",
        ENGINE,
        r"ff_[sd]gemm_small",
    ),
    (
        "gemm packing + C scaling (BLAS copy/beta)",
        r"openblas|libblas|mkl",
        r"copy|beta",
    ),
    ("BLAS driver/threads (other BLAS)", r"openblas|libblas|mkl", r""),
    ("OpenMP runtime (spin, barriers, fork/join)", r"libgomp|libiomp|libomp", r""),
    ("optimizer step (_optim)", ENGINE, r"update_range|_range|optimizer_step"),
    (
        "dense elementwise: bias, activation, bias grads (_network)",
        ENGINE,
        r"bias_activation|multiply_derivative|_column_sums|activat|dropout",
    ),
    ("loss + gradient (_losses)", ENGINE, r"loss"),
    ("epoch loop, row gather (_trainer)", ENGINE, r"batch|gather|_run_steps|step"),
    ("other engine code (block loop, ...)", ENGINE, r""),
    ("libm (exp, log, ...)", r"libm\.", r""),
    ("memcpy/memmove (libc)", r"libc", r"mem(cpy|move)"),
    ("memset (libc)", r"libc", r"memset"),
    ("NumPy", r"numpy|_multiarray|_umath|_generator|_pcg64|_bounded", r""),
    ("Python interpreter", r"libpython|python3", r""),
    ("PyTorch (libtorch/dnnl)", r"libtorch|libc10|dnnl|libshm", r""),
    ("kernel (page faults, scheduling)", r"kernel", r""),
]


def categorize(dso, sym):
    for name, dso_re, sym_re in CATEGORIES:
        if re.search(dso_re, dso, re.I) and (
            not sym_re or re.search(sym_re, sym, re.I)
        ):
            return name
    return "other"


def parse_perf_report(text):
    """Lines like ``  24.67%  libfoo.so  [.] symbol`` -> [(pct, dso, sym)]."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3).strip()))
    return rows


def profile_perf(remote, k, workdir, freq):
    data = os.path.join(workdir, "perf.data")
    perf = subprocess.Popen(
        [
            "perf",
            "record",
            "-F",
            str(freq),
            "-e",
            "cpu-clock",
            "-g",
            "-p",
            str(remote.proc.pid),
            "-o",
            data,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # let perf attach
    t0 = time.perf_counter()
    remote.call("run", k)
    wall = time.perf_counter() - t0
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=60)
    rep = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            data,
            "--no-children",
            "--sort",
            "dso,sym",
            "--stdio",
            "-g",
            "none",
        ],
        capture_output=True,
        text=True,
    )
    rows = parse_perf_report(rep.stdout)
    m = re.search(
        r"of event 'cpu-clock'\s*#\s*Event count \(approx\.\):\s*(\d+)", rep.stdout
    )
    samples = None
    m2 = re.search(r"# Samples: ([\d.]+)([KM]?)", rep.stdout)
    if m2:
        samples = float(m2.group(1)) * {"": 1, "K": 1e3, "M": 1e6}[m2.group(2)]
    cpu_seconds = int(m.group(1)) / 1e9 if m else (samples / freq if samples else None)
    return rows, wall, cpu_seconds


def profile_pyspy(remote, k, workdir, rate):
    out = os.path.join(workdir, "pyspy.txt")
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--native",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "-o",
            out,
            "--pid",
            str(remote.proc.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    t0 = time.perf_counter()
    remote.call("run", k)
    wall = time.perf_counter() - t0
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)
    leaf = defaultdict(int)
    total = 0
    with open(out) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            frame = stack.split(";")[-1]
            m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
            sym, dso = (m.group(1), m.group(2)) if m else (frame, "")
            leaf[(dso, sym)] += int(count)
            total += int(count)
    rows = [(100.0 * c / total, dso or "?", sym) for (dso, sym), c in leaf.items()]
    rows.sort(reverse=True)
    return rows, wall, total / rate if total else None


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", choices=list(cases.CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--framework", default="fastfit", choices=cases.FRAMEWORKS)
    ap.add_argument(
        "--tool",
        choices=["perf", "py-spy"],
        default="perf" if shutil.which("perf") else "py-spy",
    )
    ap.add_argument("--freq", type=int, default=1999, help="samples per second per CPU")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--keep", help="keep perf.data / py-spy output in this directory")
    ns = ap.parse_args(argv)
    if not shutil.which(ns.tool):
        ap.error(f"{ns.tool} not found (pip install py-spy, or install perf)")
    return ns


def profile(ns, workdir):
    """Warm a trainer up in a worker, then profile its timed epochs only.

    Returns (rows, wall, cpu, busy before, busy during).
    """
    busy = probes.machine_busy_cores(1.0)
    with worker.Remote("trainer", ns.framework, ns.case, ns.threads) as remote:
        remote.call("warm_up")
        run = profile_perf if ns.tool == "perf" else profile_pyspy
        rows, wall, cpu = run(remote, ns.epochs, workdir, ns.freq)
        during = remote.other_cores[-1] if remote.other_cores else None
    return rows, wall, cpu, busy, during


def _nan(x):
    return float("nan") if x is None else x


def print_summary(ns, wall, cpu, busy, during):
    case, k = cases.CASES[ns.case], ns.epochs
    cpu_epoch = cpu / k if cpu else float("nan")
    cores = cpu / wall / ns.threads if cpu else float("nan")
    print(
        f"{ns.framework} {ns.case} ({case.description}), {ns.threads} threads, "
        f"{k} epoch(s) profiled with {ns.tool}"
    )
    print(
        f"wall {wall / k:.4f} s/epoch; CPU {cpu_epoch:.4f} s/epoch across threads "
        f"({cores:.0%} of {ns.threads} cores busy); "
        f"{cases.gflops(case, wall / k):.1f} GFLOP/s"
    )
    disturbed = during is not None and during > 0.3
    print(
        f"other processes (and the profiler) used {_nan(busy):.2f} cores before the "
        f"run, {_nan(during):.2f} during it"
        + ("  <-- disturbed: re-run on a quiet machine" if disturbed else "")
    )
    if ns.tool == "py-spy":
        print(
            "(py-spy: OpenMP worker threads are not sampled; shares are of the "
            "main thread only)"
        )


def print_profile(rows, cpu, k, top):
    cats = defaultdict(float)
    for pct, dso, sym in rows:
        cats[categorize(dso, sym)] += pct
    print(f"\n{'category':<60}{'share':>8}{'CPU s/epoch':>13}")
    for name, pct in sorted(cats.items(), key=lambda kv: -kv[1]):
        sec = pct / 100 * cpu / k if cpu else float("nan")
        print(f"{name:<60}{pct:>7.1f}%{sec:>13.4f}")
    print(f"\ntop {top} symbols:")
    for pct, dso, sym in rows[:top]:
        print(f"{pct:>7.2f}%  {os.path.basename(dso)[:40]:<40}  {sym[:90]}")


def main(argv=None):
    ns = parse_args(argv)
    workdir = ns.keep or tempfile.mkdtemp(prefix="fastfit-profile-")
    os.makedirs(workdir, exist_ok=True)
    try:
        rows, wall, cpu, busy, during = profile(ns, workdir)
    finally:
        if not ns.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(ns, wall, cpu, busy, during)
    print_profile(rows, cpu, ns.epochs, ns.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
