"""The fixed cost of a ``partial_fit`` call on a small chunk.

``python -m benchmarks.partial_fit`` times ``partial_fit`` on chunks of
``--rows`` rows (one mini-batch each), from the main thread and from a worker
thread, in interleaved rounds, and beside it what the same step costs without
the call's fixed part: an epoch of ``fit`` (one step per epoch) and the
engine's ``Trainer.run_batches`` alone. Prints the median microseconds per
call of each. dask-ml's ``Incremental`` calls ``partial_fit`` once per chunk,
from a worker thread.

Measure on a quiet machine (the numbers in ``docs/performance.md`` were taken
holding the project's measurement lock).
"""

import argparse
import statistics
import threading
import time
import warnings

import numpy as np

CASES = {
    # name: (features, hidden layers, classes)
    "small": (20, (32,), 2),
    "mnist_shape": (784, (256, 128), 10),
}


def _data(case, rows, n_chunks, seed=0):
    n_features, _, n_classes = CASES[case]
    rng = np.random.RandomState(seed)
    X = rng.randn(rows * n_chunks, n_features).astype(np.float32)
    y = rng.randint(0, n_classes, len(X))
    return [(X[i : i + rows], y[i : i + rows]) for i in range(0, len(X), rows)]


def _estimator(case, rows, **params):
    from fastfit import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=CASES[case][1], batch_size=rows, random_state=0, **params
    )


def time_partial_fit(
    case="small", rows=64, calls=2000, rounds=6, n_threads=1, classes_each_call=False
):
    """Median microseconds per ``partial_fit`` call from the main thread and
    from a worker thread, interleaved round by round (``calls // rounds``
    calls on a fresh estimator each), in alternating order. With
    ``classes_each_call`` every call passes ``classes``, as Incremental does."""
    chunks = _data(case, rows, 16)
    classes = np.arange(CASES[case][2])
    per_round = max(1, calls // rounds)
    extra = {"classes": classes} if classes_each_call else {}

    def run(out):
        est = _estimator(case, rows, n_threads=n_threads)
        est.partial_fit(*chunks[0], classes=classes)
        for i in range(per_round):
            X, y = chunks[i % len(chunks)]
            start = time.perf_counter()
            est.partial_fit(X, y, **extra)
            out.append(time.perf_counter() - start)

    def in_thread(out):
        thread = threading.Thread(target=run, args=(out,))
        thread.start()
        thread.join()

    main, worker = [], []
    for r in range(rounds):
        # which goes first alternates: with the main thread always first, the
        # worker thread looked up to 1.3x faster at n_threads=2 on a busy
        # 2-core machine, a difference that alternating the order removes
        if r % 2:
            in_thread(worker)
            run(main)
        else:
            run(main)
            in_thread(worker)
    return 1e6 * statistics.median(main), 1e6 * statistics.median(worker)


def time_fit_epoch(case="small", rows=64, epochs=500, n_threads=1):
    """Median microseconds per epoch of ``fit`` on one chunk (one step per
    epoch): the step and the epoch loop's Python, without a call's set-up."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = _data(case, rows, 1)[0]
    est = _estimator(
        case,
        rows,
        n_threads=n_threads,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=np.inf,
    )
    times = []
    from fastfit import _training

    original = _training.EpochLoop._epoch

    def timed(loop):
        start = time.perf_counter()
        result = original(loop)
        times.append(time.perf_counter() - start)
        return result

    _training.EpochLoop._epoch = timed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    finally:
        _training.EpochLoop._epoch = original
    return 1e6 * statistics.median(times)


def time_engine_step(case="small", rows=64, calls=2000, n_threads=1):
    """Median microseconds of ``Trainer.run_batches`` on one chunk (one step):
    the engine alone."""
    from fastfit._parallel import SingleThreadedBlas

    X, y = _data(case, rows, 1)[0]
    est = _estimator(case, rows, n_threads=n_threads)
    est.partial_fit(X, y, classes=np.arange(CASES[case][2]))
    optimizer = est._resolved_optimizer()
    trainer = est._trainer(
        optimizer, rows, n_threads, est._architecture(est._layout.n_layers - 1)
    )
    Y, _ = est._encode_targets(y, False, None, np.float32)
    sw = np.empty(0, np.float32)
    order = np.arange(rows, dtype=np.intp)
    lrs = np.full(1, 1e-3)
    times = []
    with SingleThreadedBlas():
        for _ in range(calls):
            start = time.perf_counter()
            trainer.run_batches(est._params, X, Y, sw, order, 0, 1, lrs, 1)
            times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="small", choices=sorted(CASES))
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="n_threads")
    parser.add_argument(
        "--classes-each-call",
        action="store_true",
        help="pass classes on every call, as dask-ml's Incremental does",
    )
    args = parser.parse_args(argv)
    main_us, worker_us = time_partial_fit(
        args.case,
        args.rows,
        args.calls,
        n_threads=args.threads,
        classes_each_call=args.classes_each_call,
    )
    epoch_us = time_fit_epoch(args.case, args.rows, n_threads=args.threads)
    engine_us = time_engine_step(
        args.case, args.rows, args.calls, n_threads=args.threads
    )
    print(
        f"case={args.case} rows={args.rows} n_threads={args.threads}"
        + (", classes on each call" if args.classes_each_call else "")
        + ", median us per call:"
    )
    print(f"  partial_fit, main thread    {main_us:9.1f}")
    print(f"  partial_fit, worker thread  {worker_us:9.1f}")
    print(f"  fit, per epoch (one step)   {epoch_us:9.1f}")
    print(f"  Trainer.run_batches (step)  {engine_us:9.1f}")


if __name__ == "__main__":
    main()
