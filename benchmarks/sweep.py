"""fastfit's epoch over hidden widths and batch sizes: where a code path changes.

    python -m benchmarks.sweep [--widths 50,100,...] [--batches 32,64,...]
                               [--n 10000] [--threads 2] [--repeats 3]
                               [--min-seconds 0.2] [--max-wait 300] [--json out.json]

Times a 784-w-10 classifier (``cases.sweep_case``: synthetic data as the
cases', ``SWEEP_N`` rows) for every width x batch of the grid, with the same
protocol as the cases (``FastfitTrainer``: a warm-up epoch, then ``run(k)``
samples, median per epoch). k is chosen per point from one more timed epoch so
that a sample lasts at least ``min_seconds`` (fit's fixed per-call cost stays
small). The whole grid runs in one fresh worker process (fastfit only).

Prints two tables, widths down and batches across: seconds per epoch and
GFLOP/s by the required count (``Case.gemm_flops_per_epoch``), with the sgemm
peak for scale. A step between neighbouring cells where the rate jumps is
where fastfit switches kernels or threading.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time

from benchmarks.cases import (
    SWEEP_BATCHES,
    SWEEP_N,
    SWEEP_WIDTHS,
    make_data,
    required_gflops,
    sweep_case,
)
from benchmarks.probes import CpuProbe


def _time_point(case, threads, data, repeats, min_seconds, max_epochs):
    from benchmarks.trainers import FastfitTrainer

    trainer = FastfitTrainer(case, threads, data=data)
    trainer.warm_up()
    t0 = time.perf_counter()
    trainer.run(1)
    one = time.perf_counter() - t0
    k = max(1, min(max_epochs, math.ceil(min_seconds / max(one, 1e-6))))
    samples, others = [], []
    for _ in range(repeats):
        gc.collect()
        with CpuProbe() as probe:
            t0 = time.perf_counter()
            trainer.run(k)
            samples.append((time.perf_counter() - t0) / k)
        others.append(probe.other_cores)
    med = statistics.median(samples)
    return {
        "case": case.name,
        "width": case.sizes[1],
        "batch_size": case.batch_size,
        "epochs_per_sample": k,
        "samples": samples,
        "median": med,
        "gflops": required_gflops(case, med),
        "other_cores": max((o for o in others if o is not None), default=None),
    }


def sweep_epochs(
    threads=2,
    widths=SWEEP_WIDTHS,
    batches=SWEEP_BATCHES,
    n=SWEEP_N,
    repeats=3,
    min_seconds=0.2,
    max_epochs=50,
):
    """Time every width x batch point in this process (call it in a worker).

    Returns a list of dicts (one per point): median seconds per epoch, its
    samples, epochs per sample, GFLOP/s by the required count, and the cores
    other processes kept busy while it was timed.
    """
    data = make_data(sweep_case(widths[0], batches[0], n))  # same for every point
    return [
        _time_point(
            sweep_case(w, b, n), threads, data, repeats, min_seconds, max_epochs
        )
        for w in widths
        for b in batches
    ]


def render(points, widths, batches, peak=None):
    """Seconds and GFLOP/s tables, widths down, batches across."""
    at = {(p["width"], p["batch_size"]): p for p in points}
    head = "width \\ batch" + "".join(f"{b:>8}" for b in batches)
    lines = []
    for title, key, fmt in (
        ("seconds per epoch", "median", "{:>8.4f}"),
        ("GFLOP/s (required FLOPs)", "gflops", "{:>8.1f}"),
    ):
        lines += ["", title, head, "-" * len(head)]
        for w in widths:
            cells = [
                fmt.format(at[w, b][key]) if (w, b) in at else f"{'n/a':>8}"
                for b in batches
            ]
            lines.append(f"{w:>13}" + "".join(cells))
    if peak:
        lines.append(
            f"sgemm peak: {peak['gflops']:.1f} GFLOP/s ({peak['size']}^3, "
            f"{peak['threads']} threads)"
        )
    busy = [p["other_cores"] for p in points if p["other_cores"] is not None]
    if busy:
        lines.append(f"other processes used up to {max(busy):.2f} cores while timing")
    return "\n".join(lines)


def _ints(text):
    return tuple(int(v) for v in text.split(",") if v.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=_ints, default=SWEEP_WIDTHS)
    ap.add_argument("--batches", type=_ints, default=SWEEP_BATCHES)
    ap.add_argument("--n", type=int, default=SWEEP_N, help="rows (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--min-seconds", type=float, default=0.2, help="shortest timed sample"
    )
    ap.add_argument("--no-peak", action="store_true", help="skip the sgemm peak")
    ap.add_argument(
        "--max-wait",
        type=float,
        default=300,
        help="seconds to wait for other processes to leave the cores (0: never)",
    )
    ap.add_argument("--json", help="write the raw points as JSON")
    ns = ap.parse_args(argv)
    if not ns.widths or not ns.batches or min(ns.widths + ns.batches) < 1:
        ap.error("--widths and --batches must be positive integers")
    from benchmarks import probes, worker

    probes.wait_until_quiet(0.3, ns.max_wait, log=print)
    t0 = time.time()
    points = worker.run_job(
        "sweep",
        ns.threads,
        list(ns.widths),
        list(ns.batches),
        ns.n,
        ns.repeats,
        ns.min_seconds,
    )
    peak = None if ns.no_peak else worker.run_job("peak", ns.threads)
    print(
        f"fastfit epoch, 784-w-10 classification, n={ns.n}, float32, Adam, "
        f"{ns.threads} threads, median of {ns.repeats} samples"
    )
    print(render(points, ns.widths, ns.batches, peak))
    print(f"total wall time {(time.time() - t0) / 60:.1f} min")
    if ns.json:
        import json

        with open(ns.json, "w") as f:
            json.dump({"points": points, "peak": peak}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
