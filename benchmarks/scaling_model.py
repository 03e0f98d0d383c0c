"""How a fastfit epoch would scale beyond the cores measured: a model.

    python -m benchmarks.scaling_model [--cases mnist_shape,wide] [--measure]
                                       [--rate GFLOPS] [--overhead-us US]

For every product of a training step (each layer's forward, weight gradient
fused with its update, input gradient) the engine's own blocking rules
(``fastfit._engine.blocking_plan``) give the blocks it is cut into on P cores;
the blocks of one product run in parallel, the products one after another.
The model of one step on P cores is

    sum over products of  flops / (R1 * min(P, blocks)) + o * [blocks > 1]

where R1 is the one-core rate of a whole epoch (its required gemm FLOPs over
its measured time, so the elementwise work, the loss and the optimizer are
spread over the products in proportion to their FLOPs) and o the cost of one
parallel region (fork, dynamic schedule, join). Assumptions, each optimistic:
every core runs at the one-core rate (no shared-cache, memory-bandwidth or
frequency limits; the weights and a batch fit in the caches of a 2-core
machine, not necessarily in a larger machine's share of them), blocks of one
product take equal time, and nothing else runs. ``--measure`` times the
one- and two-thread epochs of each case in fresh workers and prints the
model's two-core epoch beside the measured one, the check of the model on
the cores there are.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import cases  # noqa: E402

CORES = (1, 2, 4, 8, 16, 32, 64)


def step_seconds(case, cores, rate_gflops, overhead_s):
    """Modelled seconds of one step of ``case`` on ``cores`` cores."""
    from fastfit._engine import blocking_plan

    total = 0.0
    for layer in blocking_plan(case.sizes, case.batch_size, cores):
        # a split-K forward is cut like the update: by the rows of W
        forward = layer["forward"][0] * layer["forward"][1]
        if layer["forward_split"] > 1:
            forward = layer["forward_split"]
        products = [
            (layer["forward_mnk"], forward),
            (layer["weight_mnk"], layer["weight_grad"]),
        ]
        if layer["input_grad"] != (0, 0):
            c, r = layer["input_grad"]
            products.append((layer["input_mnk"], c * r))
        for (m, n, k), blocks in products:
            used = min(cores, blocks)
            total += 2.0 * m * n * k / (rate_gflops * 1e9 * used)
            total += overhead_s if used > 1 else 0.0
    return total


def epoch_seconds(case, cores, rate_gflops, overhead_s):
    steps = -(-case.n // case.batch_size)
    return steps * step_seconds(case, cores, rate_gflops, overhead_s)


def one_core_rate(case, seconds):
    """R1: the required gemm GFLOP/s of a one-thread epoch of ``seconds``."""
    return case.gemm_flops_per_epoch / seconds / 1e9


def measure(case, threads, repeats=3):
    from benchmarks import worker

    result = worker.run_job("epochs", "fastfit", case.name, threads, repeats=repeats)
    return result["median"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mnist_shape,mnist_b32,sk_default,wide")
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--rate", type=float, default=80.0,
                        help="R1 in GFLOP/s when not measured")  # fmt: skip
    parser.add_argument("--overhead-us", type=float, default=5.0)
    args = parser.parse_args(argv)
    overhead = args.overhead_us * 1e-6
    names = [n for n in args.cases.split(",") if n in cases.CASES]
    header = "| case | R1 GFLOP/s | " + " | ".join(f"P={p}" for p in CORES)
    print(header + " | measured P=1 / P=2 |")
    print("|---" * (len(CORES) + 3) + "|")
    for name in names:
        case = cases.CASES[name]
        measured = ""
        rate = args.rate
        if args.measure:
            t1, t2 = measure(case, 1), measure(case, 2)
            rate = one_core_rate(case, t1)
            measured = f"{t1:.3f} / {t2:.3f} s"
        t_one = epoch_seconds(case, 1, rate, overhead)
        cells = []
        for p in CORES:
            t = epoch_seconds(case, p, rate, overhead)
            cells.append(f"{t:.3f} s ({t_one / t / p:.0%})")
        print(f"| {name} | {rate:.0f} | " + " | ".join(cells) + f" | {measured} |")
    print(
        "\nEach cell: modelled seconds per epoch (parallel efficiency: speed-up "
        "over one core / P)."
    )


if __name__ == "__main__":
    main()
