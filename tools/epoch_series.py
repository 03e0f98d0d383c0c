"""Seconds of consecutive one-epoch fits in one process, to see an epoch's
time drift as the model trains (denormal weights made it grow tenfold before
the engine flushed them).

    python tools/epoch_series.py SIZES BATCH EPOCHS [--threads 2] [--n 60000]

SIZES is the network, input to output (784-256-128-10); the data are
``benchmarks.cases.make_data``'s synthetic classes. Each epoch is one
``fit`` with ``warm_start=True, max_iter=1``, as the benchmark trainers run
them.
"""

import argparse
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.cases import Case, make_data  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes")
    parser.add_argument("batch", type=int)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=60_000)
    args = parser.parse_args(argv)
    import fastfit

    sizes = tuple(int(s) for s in args.sizes.split("-"))
    X, y = make_data(Case("series", "classification", args.n, sizes, args.batch))
    model = fastfit.MLPClassifier(
        sizes[1:-1], batch_size=args.batch, max_iter=1, warm_start=True,
        n_threads=args.threads, random_state=0, tol=0, n_iter_no_change=10**9,
    )  # fmt: skip
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.epochs):
            start = time.perf_counter()
            model.fit(X, y)
            seconds.append(time.perf_counter() - start)
    print(" ".join(f"{s:.3f}" for s in seconds))


if __name__ == "__main__":
    main()
