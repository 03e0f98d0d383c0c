"""Data-parallel training over MPI: what 2 local ranks buy, and a model of more.

Run on purpose (not part of the test suite), from the repository root::

    python benchmarks/mpi_scaling.py [--epochs 3] [--repeats 3]

It times the epoch of the ``mnist_shape`` case (60k x 784, 784-256-128-10,
Adam, float32) as

- 1 process x 1 thread and 1 process x 2 threads, batch 128, and 1 x 1 with
  ``communicator=MPI.COMM_SELF`` (the collective step with no peer);
- 2 ranks x 1 thread, launched with ``UCX_TLS=self,sm UCX_NET_DEVICES=lo
  mpiexec.gforker -n 2`` on loopback (shared memory), each rank on its half of
  the rows: per-rank batch 64 (the same global batch of 128, so the same
  optimisation as the 1-process fits), with the blocking allreduce and with
  the per-layer overlapped one; and per-rank batch 128 (global 256: each rank
  the work of a 1 x 1 step);

each the median (and the minimum: on a shared machine, the least disturbed)
of ``--repeats`` timings of ``--epochs`` epochs (a ``warm_start`` fit after
an untimed warm-up epoch). On the ranks it also times
the gradient hook (the allreduce and the wait for the slower rank) and a bare
in-place ``Allreduce`` of the gradient buffer, from which it fits the
allreduce cost model below, and prints a table of projected weak-scaling
efficiency for N = 2..64 ranks.

Cost model (a ring allreduce of B bytes over N ranks): ``T(N) = 2 (N - 1)
alpha + 2 (N - 1) / N * B / beta``; alpha (per message) and beta (bytes/s) are
fitted to the bare Allreduce of 8 bytes and of the gradient buffer on 2
local ranks. The projected step of N ranks is the compute of one step at
batch 128 on one thread (the fastest 1 x 1 epoch per step) plus T(N) (no
overlap: the measured overlap bought nothing, see ``docs/performance.md``);
the efficiency is compute / (compute + T(N)).
Assumptions: every rank has its own cores (its compute stays that of one
1-thread rank), the interconnect is the measured shared memory (a network is
slower: the table also gives a 25 Gb/s link with 20 us latency, assumed, not
measured), the ranks are in step (no stragglers), and the ring is what the
MPI library runs at that size.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.cases import CASES, make_data  # noqa: E402

CASE = CASES["mnist_shape"]
# assumed network for the second projection: 25 Gb/s Ethernet, 20 us per message
NET_BETA, NET_ALPHA = 25e9 / 8, 20e-6


def _model(batch_size, n_threads, **extra):
    from fastfit import MLPClassifier

    return MLPClassifier(
        CASE.hidden, batch_size=batch_size, n_threads=n_threads, max_iter=1,
        random_state=0, warm_start=True, shuffle=True, **extra,
    )  # fmt: skip


def _interleaved(models, X, y, epochs, repeats, before=None, after=None):
    """Seconds per epoch of each of ``models`` (a dict name -> estimator):
    one untimed epoch each, then ``repeats`` rounds timing a fit of
    ``epochs`` epochs of each in turn (interleaved, so a change of the
    machine's load hits them alike). Returns {name: (median, min, total)};
    ``before(name)`` / ``after(name)`` run around each timed fit."""
    warnings.simplefilter("ignore")
    for model in models.values():
        model.set_params(max_iter=1).fit(X, y)
        model.set_params(max_iter=epochs)
    samples = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            if before is not None:
                before(name)
            start = time.perf_counter()
            model.fit(X, y)
            samples[name].append((time.perf_counter() - start) / epochs)
            if after is not None:
                after(name)
    return {
        name: (statistics.median(v), min(v), sum(v) * epochs)
        for name, v in samples.items()
    }


def single(args):
    """One process: the epoch at 1 and 2 threads, and the collective step on
    one process (``COMM_SELF``: its allreduce has no peer), which is what
    the step costs beyond the fused single-process one."""
    from mpi4py import MPI

    X, y = make_data(CASE)
    models = {
        "1x1": _model(CASE.batch_size, 1),
        "1x2": _model(CASE.batch_size, 2),
        "1x1_self": _model(CASE.batch_size, 1, communicator=MPI.COMM_SELF),
    }
    out = {}
    for name, (median, best, _) in _interleaved(
        models, X, y, args.epochs, args.repeats
    ).items():
        out[name], out[name + "_min"] = median, best
    return out


def worker(args):
    """On every rank: the epoch on its shard, the hook's time, a bare
    allreduce. Rank 0 prints the results as JSON."""
    from mpi4py import MPI

    from fastfit import _distributed

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    X, y = make_data(CASE)
    mine = np.arange(rank, X.shape[0], size)
    X, y = np.ascontiguousarray(X[mine]), y[mine]

    hook = {"seconds": 0.0, "calls": 0}
    call = _distributed.GradientReducer.__call__

    def timed(self, layer):
        start = time.perf_counter()
        call(self, layer)
        hook["seconds"] += time.perf_counter() - start
        hook["calls"] += layer < 0

    _distributed.GradientReducer.__call__ = timed
    per_rank = CASE.batch_size // size
    models = {
        "2x1_b64": _model(per_rank, 1, communicator=comm),
        "2x1_b64_overlap": _model(
            per_rank, 1, communicator=comm, overlap_allreduce=True
        ),
        "2x1_b128": _model(CASE.batch_size, 1, communicator=comm),
    }
    hooks = {name: [0.0, 0] for name in models}

    def before(name):
        hook["seconds"] = hook["calls"] = 0

    def after(name):
        hooks[name][0] += hook["seconds"]
        hooks[name][1] += hook["calls"]

    out = {}
    timed_fits = _interleaved(models, X, y, args.epochs, args.repeats, before, after)
    for name, (median, best, total) in timed_fits.items():
        seconds = comm.allreduce(hooks[name][0]) / size  # mean of the ranks
        out[name], out[name + "_min"] = median, best
        out[name + "_hook_share"] = seconds / total
        out[name + "_hook_ms"] = seconds / hooks[name][1] * 1e3
    n_buffer = CASE.n_params + 3
    for name, count in (("allreduce_8B", 2), ("allreduce_grad", n_buffer)):
        buf = np.zeros(count, np.float32)
        samples = []
        for _ in range(200):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            samples.append(time.perf_counter() - start)
        out[name + "_ms"] = statistics.median(comm.allreduce(samples[20:])) * 1e3
    out["grad_bytes"] = 4 * n_buffer
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


def launch(args):
    env = dict(
        os.environ, UCX_TLS="self,sm", UCX_NET_DEVICES="lo", OMP_NUM_THREADS="1",
        PYTHONPATH=ROOT,
    )  # fmt: skip
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec.gforker")
    cmd = [here, "-n", "2", sys.executable, os.path.abspath(__file__), "--worker",
           "--epochs", str(args.epochs), "--repeats", str(args.repeats)]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if res.returncode:
        sys.exit(res.stdout + res.stderr)
    line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")][0]
    return json.loads(line[len("RESULT ") :])


def report(single_out, mpi_out):
    print(f"mnist_shape ({CASE.description}), seconds per epoch, medians:\n")
    print(
        "| run | s / epoch (median) | min | vs 1 x 1 (medians) "
        "| gradient hook ms / step | hook share |"
    )
    print("|---|---|---|---|---|---|")
    base = single_out["1x1"]
    both = {**single_out, **mpi_out}
    rows = [
        ("1 process x 1 thread, batch 128", "1x1", None),
        ("1 process x 2 threads, batch 128", "1x2", None),
        ("1 process x 1 thread, batch 128, communicator=COMM_SELF",
         "1x1_self", None),
        ("2 ranks x 1 thread, batch 64 per rank (global 128)",
         "2x1_b64", "2x1_b64"),
        ("same, overlapped per-layer allreduce", "2x1_b64_overlap",
         "2x1_b64_overlap"),
        ("2 ranks x 1 thread, batch 128 per rank (global 256)",
         "2x1_b128", "2x1_b128"),
    ]  # fmt: skip
    for label, name, key in rows:
        seconds, best = both[name], both[name + "_min"]
        hook = (
            (f"{mpi_out[key + '_hook_ms']:.3f}", f"{mpi_out[key + '_hook_share']:.1%}")
            if key
            else ("", "")
        )
        print(
            f"| {label} | {seconds:.3f} | {best:.3f} | {base / seconds:.2f}x "
            f"| {hook[0]} | {hook[1]} |"
        )
    small, big = mpi_out["allreduce_8B_ms"] / 1e3, mpi_out["allreduce_grad_ms"] / 1e3
    nbytes = mpi_out["grad_bytes"]
    # 2 ranks: T = 2 alpha + B / beta
    alpha = small / 2
    beta = nbytes / max(big - 2 * alpha, 1e-12)
    # compute of one rank's step at batch 128: the 1 x 1 epoch's fastest
    # sample per step (the collective step costs the same, the COMM_SELF row)
    compute = single_out["1x1_min"] / -(-CASE.n // CASE.batch_size)
    print(
        f"\nBare in-place Allreduce on 2 local ranks: 8 B {small * 1e3:.4f} ms, "
        f"{nbytes / 1e6:.2f} MB (the gradient buffer) {big * 1e3:.3f} ms: "
        f"alpha = {alpha * 1e6:.1f} us, beta = {beta / 1e9:.2f} GB/s. "
        f"Compute of one step (batch 128, 1 thread, fastest 1 x 1 epoch): "
        f"{compute * 1e3:.2f} ms.\n"
    )
    print(
        "| N ranks | T(N) shared memory ms | efficiency | T(N) 25 Gb/s ms "
        "| efficiency |"
    )
    print("|---|---|---|---|---|")
    for n in (2, 4, 8, 16, 32, 64):
        cost = [
            2 * (n - 1) * a + 2 * (n - 1) / n * nbytes / b
            for a, b in ((alpha, beta), (NET_ALPHA, NET_BETA))
        ]
        print(
            f"| {n} | {cost[0] * 1e3:.3f} | {compute / (compute + cost[0]):.1%} | "
            f"{cost[1] * 1e3:.3f} | {compute / (compute + cost[1]):.1%} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    report(single(args), launch(args))


if __name__ == "__main__":
    main()
