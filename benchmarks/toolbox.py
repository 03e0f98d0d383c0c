"""What the training toolbox costs per epoch: dropout, activations, averaging.

``toolbox_epochs`` times fastfit's epochs of one case under several sets of
hyperparameters in one worker process, the variants interleaved round by
round, so their ratios share the machine's state; the first variant is the
baseline the others are divided by.
"""

import gc
import statistics
import time

import numpy as np

from benchmarks.cases import SEED, get_case, make_data
from benchmarks.probes import CpuProbe

# name -> hyperparameters on top of the epoch benchmark's (ReLU, no dropout)
VARIANTS = {
    "relu": {},
    "selu_dropout": {"activation": "selu", "dropout": 0.15},
    "gelu": {"activation": "gelu"},
    "relu_ema": {"ema_decay": 0.999},
}


def toolbox_epochs(case, threads, variants=tuple(VARIANTS), repeats=5, epochs=2):
    """Per-epoch seconds of each variant (median over ``repeats`` rounds of
    ``epochs`` epochs), and each median over the first variant's."""
    import fastfit

    c = get_case(case)
    X, y = make_data(c)
    cls = fastfit.MLPRegressor if c.task == "regression" else fastfit.MLPClassifier
    models = {}
    for name in variants:
        models[name] = cls(
            hidden_layer_sizes=c.hidden, batch_size=c.batch_size, max_iter=1,
            tol=0.0, n_iter_no_change=np.inf, random_state=SEED, warm_start=True,
            dtype=np.float32, n_threads=threads, **VARIANTS[name],
        )  # fmt: skip
        models[name].fit(X, y)  # warm up
        models[name].set_params(max_iter=epochs)
    samples = {name: [] for name in variants}
    others = []
    for _ in range(repeats):
        for name, model in models.items():
            gc.collect()
            with CpuProbe() as probe:
                t0 = time.perf_counter()
                model.fit(X, y)
                samples[name].append((time.perf_counter() - t0) / epochs)
            others.append(probe.other_cores)
    medians = {name: statistics.median(s) for name, s in samples.items()}
    base = medians[variants[0]]
    return {
        "case": c.name,
        "threads": threads,
        "samples": samples,
        "median": medians,
        "ratio": {name: m / base for name, m in medians.items()},
        "other_cores": others,
    }
