"""The fastfit speed cases: data, layer shapes, batch sizes, FLOP counts, targets.

Shared by the pytest-benchmark suite (``benchmarks/test_*.py``),
``tools/compare.py`` and ``tools/profile_epoch.py``. The rest of the package:

* :mod:`benchmarks.trainers` -- one trainer per framework (fastfit,
  scikit-learn, PyTorch, JAX), the predictor, and the timing protocol;
* :mod:`benchmarks.probes` -- the sgemm peak, the probes of other processes'
  load and of the host's speed, and the memory probes;
* :mod:`benchmarks.worker` -- the fresh-process worker every measurement
  runs in;
* :mod:`benchmarks.sweep` -- fastfit's epoch over hidden widths and batches.

The method is described in ``docs/performance.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

FRAMEWORKS = ("fastfit", "sklearn", "torch", "jax")
OPTIONAL_FRAMEWORKS = ("torch", "jax")
DTYPE = np.float32
SEED = 0


@dataclass(frozen=True)
class Case:
    """One benchmark case: data shape, network, batch size and epochs per timing.

    ``sizes`` is (n_features, hidden..., n_outputs). ``epochs`` is the number of
    epochs timed per sample (one ``run(k)`` call) for each framework: enough that
    a sample lasts well beyond the per-call overhead, few enough to keep the
    suite short (scikit-learn's ``wide`` and ``mnist_b32`` epochs take seconds).
    """

    name: str
    task: str  # "regression" or "classification"
    n: int
    sizes: tuple
    batch_size: int
    epochs: dict = field(default_factory=dict)
    description: str = ""

    @property
    def hidden(self):
        return tuple(self.sizes[1:-1])

    @property
    def n_features(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.sizes[-1]

    @property
    def n_params(self):
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def flops_per_epoch(self):
        """6 x sum(fan_in x fan_out) x n: forward (2), dW (2) and dX (2) gemms.

        The nominal count, used for every GFLOP/s and share of peak reported.
        """
        pairs = zip(self.sizes[:-1], self.sizes[1:])
        return 6 * sum(a * b for a, b in pairs) * self.n

    @property
    def gemm_flops_per_epoch(self):
        """The gemm work actually needed: no framework computes the input
        gradient of the first layer (2 x n_features x sizes[1] x n fewer)."""
        return self.flops_per_epoch - 2 * self.sizes[0] * self.sizes[1] * self.n

    @property
    def n_batches(self):
        return -(-self.n // self.batch_size)

    def epochs_for(self, framework):
        return int(self.epochs.get(framework, 1))


CASES = {
    "tiny": Case(
        "tiny",
        "regression",
        100_000,
        (10, 32, 1),
        32,
        epochs={"fastfit": 5, "sklearn": 1, "torch": 1, "jax": 3},
        description="n=100k, 10-32-1 regression, batch 32",
    ),
    "mnist_shape": Case(
        "mnist_shape",
        "classification",
        60_000,
        (784, 256, 128, 10),
        128,
        epochs={"fastfit": 3, "sklearn": 3, "torch": 3, "jax": 3},
        description="n=60k, 784-256-128-10 classification, batch 128",
    ),
    "mnist_b32": Case(
        "mnist_b32",
        "classification",
        60_000,
        (784, 256, 128, 10),
        32,
        epochs={"fastfit": 2, "sklearn": 2, "torch": 2, "jax": 2},
        description="n=60k, 784-256-128-10 classification, batch 32",
    ),
    "wide": Case(
        "wide",
        "classification",
        20_000,
        (1024, 2048, 2048, 10),
        512,
        epochs={"fastfit": 1, "sklearn": 1, "torch": 1, "jax": 1},
        description="n=20k, 1024-2048-2048-10 classification, batch 512",
    ),
    # scikit-learn's defaults on MNIST-sized data: hidden_layer_sizes=(100,),
    # batch_size='auto' = min(200, n_samples)
    "sk_default": Case(
        "sk_default",
        "classification",
        60_000,
        (784, 100, 10),
        200,
        epochs={"fastfit": 10, "sklearn": 3, "torch": 3, "jax": 5},
        description="n=60k, 784-100-10 classification, batch 200 (sklearn defaults)",
    ),
}

# The speed targets: fastfit's epoch must be at least this many times faster
# than the framework named, or reach this share of the sgemm peak ("peak", on
# the required FLOPs: ``Case.gemm_flops_per_epoch``).
TARGETS = {
    "tiny": {"sklearn": 20.0, "torch": 40.0, "jax": 3.0},
    "mnist_shape": {"sklearn": 2.5, "torch": 2.5, "jax": 1.4, "peak": 0.85},
    "mnist_b32": {"sklearn": 4.0, "torch": 3.0, "jax": 2.0, "peak": 0.70},
    "wide": {"sklearn": 1.4, "torch": 1.25, "jax": 1.1, "peak": 0.90},
    "sk_default": {"sklearn": 3.0, "jax": 1.4, "peak": 0.75},
}
THREAD_SCALING_TARGET = 1.7  # fastfit wide, 1 -> 2 threads
PREDICT_TARGET = 1.0  # fastfit predict at least as fast as sklearn's
PREDICT_CASE = "mnist_shape"  # the network predict is measured with
PREDICT_N = 10_000  # rows predicted (784-256-128-10 network)
MEMORY_EXTRA_FRACTION = 0.10  # fit may allocate < 10 % of X beyond buffers


# The width x batch sweep (benchmarks.sweep): a 784-w-10 classifier on fewer
# rows than the cases, so that the whole grid takes minutes.
SWEEP_WIDTHS = (50, 64, 96, 100, 112, 128, 150, 160, 200, 256, 300)
SWEEP_BATCHES = (32, 64, 100, 128, 129, 160, 200, 256, 384, 511, 512)
SWEEP_N = 10_000
_SWEEP_NAME = re.compile(r"sweep_w(\d+)_b(\d+)_n(\d+)")


def sweep_case(width, batch_size, n=SWEEP_N):
    """The sweep's 784-``width``-10 classification case (its name encodes it,
    so a worker rebuilds it from the name alone)."""
    return Case(
        f"sweep_w{width}_b{batch_size}_n{n}",
        "classification",
        int(n),
        (784, int(width), 10),
        int(batch_size),
        description=f"n={n}, 784-{width}-10 classification, batch {batch_size}",
    )


def get_case(case):
    """A :class:`Case` from its name (or the case itself); the sweep's names
    (``sweep_w100_b200_n10000``) are built on demand."""
    if not isinstance(case, str):
        return case
    match = _SWEEP_NAME.fullmatch(case)
    if match:
        return sweep_case(*map(int, match.groups()))
    return CASES[case]


def make_data(case, seed=SEED):
    """Synthetic data of the case's shape: random but learnable, float32, C order.

    Classification: ``n_outputs`` classes with class-dependent means (spread
    0.25 per feature) plus unit Gaussian noise. Regression: a smooth nonlinear
    function of the features plus noise. Deterministic given ``seed``.
    """
    case = get_case(case)
    rng = np.random.default_rng(seed)
    shape = (case.n, case.n_features)
    if case.task == "classification":
        y = rng.integers(0, case.n_outputs, case.n)
        means = 0.25 * rng.standard_normal((case.n_outputs, case.n_features))
        X = rng.standard_normal(shape, dtype=DTYPE)
        X += means.astype(DTYPE)[y]
        return X, y
    X = rng.standard_normal(shape, dtype=DTYPE)
    w = rng.standard_normal(case.n_features) / math.sqrt(case.n_features)
    v = rng.standard_normal(case.n_features) / math.sqrt(case.n_features)
    y = X @ w + np.sin(2.0 * (X @ v)) + 0.1 * rng.standard_normal(case.n)
    return X, y.astype(DTYPE)


def gflops(case, epoch_seconds):
    """GFLOP/s of an epoch of ``epoch_seconds``, by the nominal count."""
    return get_case(case).flops_per_epoch / epoch_seconds / 1e9


def required_gflops(case, epoch_seconds):
    """GFLOP/s of an epoch by the required count (``gemm_flops_per_epoch``):
    the one shares of the sgemm peak are computed on."""
    return get_case(case).gemm_flops_per_epoch / epoch_seconds / 1e9


def predict_flops(n=PREDICT_N):
    """2 x sum(fan_in x fan_out) x n: the forward gemms only."""
    sizes = CASES[PREDICT_CASE].sizes
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * n


def check_targets(name, seconds, peak_gflops):
    """``(label, value, target, unit)`` for each target of case ``name``.

    ``seconds`` maps a framework to its seconds per epoch; ``value`` is the
    speed ratio (``unit`` "x") or the share of the peak (``unit`` "%"), None
    where a measurement is missing.
    """
    case, ff = CASES[name], seconds.get("fastfit")
    for key, target in TARGETS[name].items():
        if key == "peak":
            value = None
            if ff and peak_gflops:
                value = required_gflops(case, ff) / peak_gflops
            yield f"fastfit >= {target:.0%} of sgemm peak", value, target, "%"
        else:
            other = seconds.get(key)
            value = other / ff if other and ff else None
            yield f"fastfit >= {target:g}x faster than {key}", value, target, "x"


def verdict(value, target):
    """PASS, SKIP (not measured) or FAIL with how far from the target."""
    if value is None:
        return "SKIP"
    if value >= target:
        return "PASS"
    return f"FAIL (at {value / target:.0%} of target; needs {target / value:.2f}x more)"
