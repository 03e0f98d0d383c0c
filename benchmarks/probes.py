"""Machine and memory probes of the benchmarks.

* :func:`sgemm_peak` -- the yardstick: scipy's sgemm, best of 2048^3 and
  4096^3 float32;
* :class:`CpuProbe`, :func:`machine_busy_cores`, :func:`wait_until_quiet` --
  how many cores *other* processes keep busy (from ``/proc/stat``);
* :func:`canary_gflops` -- a fixed one-thread sgemm that shows slowdowns of
  the host that ``/proc/stat`` does not;
* :func:`fit_memory`, :func:`predict_memory` -- what fastfit allocates
  (tracemalloc), with :class:`RssSampler` for the resident set size.

Nothing here imports a framework at module level: a worker process loads only
the one it measures.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc

import numpy as np

from benchmarks.cases import (
    CASES,
    MEMORY_EXTRA_FRACTION,
    PREDICT_CASE,
    SEED,
    get_case,
    make_data,
)

# ------------------------------------------------------------------ the peak
PEAK_SIZES = (2048, 4096)


def _sgemm_best(sgemm, size, repeats):
    rng = np.random.default_rng(SEED)
    a, b = (
        np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
        for _ in range(2)
    )
    c = np.zeros((size, size), dtype=np.float32, order="F")
    sgemm(1.0, a, b, beta=0.0, c=c, overwrite_c=True)
    times, others = [], []
    for _ in range(repeats):
        with CpuProbe() as probe:
            t0 = time.perf_counter()
            sgemm(1.0, a, b, beta=0.0, c=c, overwrite_c=True)
            times.append(time.perf_counter() - t0)
        others.append(probe.other_cores)
    best = min(times)
    # the best sample is the one to trust: report the disturbance it saw
    return {
        "size": size,
        "seconds": best,
        "samples": times,
        "gflops": 2.0 * size**3 / best / 1e9,
        "other_cores": [others[times.index(best)]],
    }


def sgemm_peak(threads, sizes=PEAK_SIZES, repeats=5):
    """Best GFLOP/s of ``scipy.linalg.blas.sgemm`` on size^3 float32, T threads.

    The same OpenBLAS that fastfit calls through ``scipy.linalg.cython_blas``;
    for each of ``sizes`` (an int or a sequence) one untimed call, then the
    best of ``repeats``; the peak is the best size's. Both 2048 and 4096 by
    default: on some CPUs two threads reach only half of their 4096^3 rate at
    2048^3, which would inflate every share of the peak.
    """
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits

    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    canary = canary_gflops()  # first: no BLAS thread of ours is spinning yet
    with threadpool_limits(limits=threads, user_api="blas"):
        by_size = [_sgemm_best(sgemm, int(size), repeats) for size in sizes]
    best = max(by_size, key=lambda r: r["gflops"])
    return dict(
        best,
        threads=threads,
        canary_gflops=[canary],
        by_size={str(r["size"]): r["gflops"] for r in by_size},
    )


# ---------------------------------------------------------------- contention
def _machine_busy_seconds():
    """CPU-seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    t = os.times()
    return t.user + t.system  # every thread of this process


class CpuProbe:
    """How many cores *other* processes kept busy while the block ran.

    ``other_cores`` = (machine busy CPU-seconds - this process's CPU-seconds) /
    wall seconds, from /proc/stat and ``os.times()`` (10 ms ticks: coarse for
    blocks under ~0.2 s). 0 on a quiet machine; ~1 means another job took a
    whole core. ``None`` where /proc/stat is missing.
    """

    def __enter__(self):
        self.m0, self.o0 = _machine_busy_seconds(), _own_cpu_seconds()
        self.t0 = time.perf_counter()
        self.other_cores = None
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        m1, o1 = _machine_busy_seconds(), _own_cpu_seconds()
        if self.m0 is not None and m1 is not None and wall > 0:
            self.other_cores = max(0.0, (m1 - self.m0) - (o1 - self.o0)) / wall
        return False


def machine_busy_cores(seconds=1.0):
    """Cores busy on the whole machine over ``seconds`` (call while idle yourself)."""
    with CpuProbe() as p:
        time.sleep(seconds)
    return p.other_cores


def wait_until_quiet(max_busy=0.3, max_wait=60.0, log=None):
    """Wait (up to ``max_wait`` s) until other processes use <= ``max_busy`` cores.

    Returns the last load seen (None if unknown, or if ``max_wait`` <= 0: then
    it does not even look).
    """
    if max_wait <= 0:
        return None
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    while True:
        busy = machine_busy_cores(1.0)
        if busy is None or busy <= max_busy:
            return busy
        if time.perf_counter() - t0 > max_wait:
            log(f"  (machine still busy: {busy:.2f} cores; measuring anyway)")
            return busy
        log(f"  (machine busy: {busy:.2f} cores used by others; waiting)")
        time.sleep(4.0)


_CANARY = {}


def _one_core_gflops(sgemm, a, size):
    sgemm(1.0, a, a)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sgemm(1.0, a, a)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def canary_gflops(size=768):
    """One-thread sgemm GFLOP/s on each core this process may use; the slowest.

    Host-level noise (other VMs on the same host, frequency changes) does not
    show in /proc/stat, yet moves epochs by 10-20 %: this fixed probe (best of
    3 products of ~13 ms per core, after 0.2 s of sleep so that no spinning
    thread of the framework competes), run before every timed sample, shows it.
    Single-threaded, pinned to one core at a time, so it wakes no BLAS thread
    pool next to the framework's own.
    """
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits

    time.sleep(0.2)  # let the framework's threads (OpenMP/BLAS spin-waits) go idle
    a = _CANARY.get(size)
    if a is None:
        rng = np.random.default_rng(SEED)
        a = np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
        _CANARY[size] = a
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = [None]
    speeds = []
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            for cpu in cpus:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})
                speeds.append(_one_core_gflops(sgemm, a, size))
        finally:
            if cpus != [None]:
                os.sched_setaffinity(0, cpus)
    return min(speeds)


# -------------------------------------------------------------------- memory
def quiet_warnings():
    """Ignore warnings (ConvergenceWarning on every max_iter fit)."""
    import warnings

    warnings.simplefilter("ignore")


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class RssSampler:
    """Highest resident set size seen while the block runs (a thread samples
    /proc/self/statm every ``interval`` s; fit releases the GIL in its epochs)."""

    def __init__(self, interval=0.002):
        self.interval = interval

    def __enter__(self):
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.growth = self.peak - self.start
        return False


def traced_peak(fn, *args):
    """Peak bytes tracemalloc saw allocated (beyond the start) while ``fn`` ran."""
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base


def _fit_allowance(case, X):
    """Bytes fit may allocate: 10 % of X plus its parameter, batch, row buffers."""
    item = 4
    params = 6 * case.n_params * item
    batch = (
        2 * case.batch_size * sum(case.sizes[1:])
        + case.batch_size * (case.n_features + case.n_outputs + 1)
    ) * item
    per_row = 24 * case.n
    total = MEMORY_EXTRA_FRACTION * X.nbytes + params + batch + per_row
    return {
        "allowance_bytes": total,
        "params_bytes": params,
        "batch_bytes": batch,
        "per_row_bytes": per_row,
    }


def fit_memory(case="mnist_shape", threads=2, epochs=1):
    """Peak memory fastfit allocates while fitting float32 C-contiguous X.

    Measured with tracemalloc: NumPy reports every array allocation to it (and
    the engine allocates its buffers as NumPy arrays), so a copy of X -- cast,
    ``ascontiguousarray``, fancy-indexed shuffle -- shows up in full, while
    OpenBLAS's private buffers and thread stacks (not copies of X) do not. The
    growth of the peak RSS is reported too, for information: it also counts
    those buffers, thread stacks and the allocator's retention (sampled every
    2 ms by a thread), so it is the noisier number.

    The allowance is ``10 % of X`` plus the parameter-sized buffers (params,
    gradients, a last-good copy, 3 Adam states: 6 x n_params) plus the batch
    buffers (activations + deltas + gathered batch), plus the per-row targets
    and permutation (y encoded, index order: 24 bytes per row).
    """
    import fastfit

    quiet_warnings()
    case = get_case(case)
    X, y = make_data(case)
    assert X.dtype == np.float32 and X.flags.c_contiguous
    cls = fastfit.MLPRegressor if case.task == "regression" else fastfit.MLPClassifier
    est = cls(
        hidden_layer_sizes=case.hidden,
        batch_size=case.batch_size,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=np.inf,
        random_state=SEED,
        dtype=np.float32,
        n_threads=threads,
    )
    allowance = _fit_allowance(case, X)
    gc.collect()
    with RssSampler() as rss:
        peak = traced_peak(est.fit, X, y)
    return {
        "case": case.name,
        "X_bytes": X.nbytes,
        "traced_peak_bytes": peak,
        **allowance,
        "peak_rss_growth_bytes": rss.growth,
        "traced_peak_over_X": peak / X.nbytes,
        "ok": peak < allowance["allowance_bytes"],
    }


def predict_memory(threads=2, sizes=(20_000, 100_000)):
    """Traced peak memory of fastfit predict for two n: its slope per row.

    Chunked prediction needs memory proportional to n only for the outputs
    (raw float32, float64 copy, labels: ~ n_out * 12 + 16 bytes per row); an
    unchunked forward pass would need at least the widest hidden layer per row
    (256 floats = 1 KiB). Returns the measured bytes per row.
    """
    import fastfit

    quiet_warnings()
    case = CASES[PREDICT_CASE]
    X, y = make_data(case)
    model = fastfit.MLPClassifier(
        hidden_layer_sizes=case.hidden,
        max_iter=1,
        random_state=SEED,
        n_threads=threads,
    ).fit(X[:2000], y[:2000])
    rng = np.random.default_rng(1)
    peaks = {}
    for n in sizes:
        Xn = rng.standard_normal((n, case.n_features), dtype=np.float32)
        peaks[n] = traced_peak(model.predict, Xn)
        del Xn
    n1, n2 = sizes
    slope = (peaks[n2] - peaks[n1]) / (n2 - n1)
    widest = max(case.hidden) * 4
    return {
        "peaks": {str(k): v for k, v in peaks.items()},
        "bytes_per_row": slope,
        "unchunked_bytes_per_row_at_least": widest,
        "ok": slope < 0.5 * widest,
    }
