"""One trainer per framework, the predictor, and the timing protocol.

How an epoch is timed
---------------------
Every trainer has ``warm_up()`` (build the model, run one untimed epoch: page
faults, thread pools, BLAS buffers, first-call costs) and ``run(k)`` (k more
epochs *continuing the same model*, as one call). The per-epoch time is
``time(run(k)) / k``:

* fastfit / scikit-learn: ``run(k)`` is ``fit(X, y)`` with ``warm_start=True,
  max_iter=k`` -- public API only. Each call repeats the input validation
  (scikit-learn's finite check: one pass over X) and recreates the Adam state:
  a fixed cost per call, measured for fastfit at ~1 ms on ``tiny`` (4 % of its
  epoch) and ~22 ms on the ``mnist_*`` data (3.5 % of a batch-128 epoch), so
  those cases time several epochs per call (``Case.epochs``: the overhead
  stays <= 1.2 %, against fastfit; the same k for scikit-learn and PyTorch,
  except on ``tiny`` where their epochs last ~1 s).
* PyTorch: ``run(k)`` is k more passes of a plain eager loop, written the way
  a user writes it (``torch.randperm``, index batching, ``nn.Sequential``,
  ``torch.optim.Adam``, one ``loss.item()`` per batch for the loss curve).
* JAX: ``run(k)`` is k calls of one jit-compiled epoch (the strongest fair JAX
  epoch: a ``lax.scan`` over the shuffled batches, data resident on the
  device, state donated); ``warm_up`` compiles it, so compile time is excluded.

Everything is float32, Adam (lr 1e-3, PyTorch/sklearn defaults), shuffled every
epoch, ReLU hidden layers, L2 penalty 1e-4 for fastfit/sklearn (their default;
PyTorch's Adam default has none: the penalty is O(params) per step, noise next to
the gemms; the JAX epoch has it, as fastfit's), and the same thread count for
every framework: fastfit ``n_threads=T``; scikit-learn through ``threadpoolctl``
(BLAS limited to T); PyTorch ``torch.set_num_threads(T)``; JAX through
``XLA_FLAGS`` and the CPU affinity, set before jax is imported
(:func:`jax_thread_setup`).

No framework is imported at module level: each trainer imports its own, in
the fresh worker process it lives in (:mod:`benchmarks.worker`).
"""

from __future__ import annotations

import gc
import importlib.util
import os
import statistics
import time

import numpy as np

from benchmarks.cases import (
    CASES,
    PREDICT_CASE,
    PREDICT_N,
    SEED,
    get_case,
    gflops,
    make_data,
    predict_flops,
    required_gflops,
)
from benchmarks.probes import CpuProbe, canary_gflops, quiet_warnings


def _sklearn_blas_limits(threads):
    """Load scikit-learn's BLAS, then limit it to ``threads`` (kept alive)."""
    import sklearn.neural_network  # noqa: F401  load every BLAS before limiting
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


class _WarmStartTrainer:
    """An estimator continued with ``warm_start=True``: ``run(k)`` fits k more epochs.

    Subclasses say which estimator (``_estimator(epochs)``); the timing protocol
    is the same for fastfit and scikit-learn (public API only).
    """

    def __init__(self, case, threads, data=None):
        self.case = get_case(case)
        self.threads = threads
        self.X, self.y = make_data(self.case) if data is None else data
        self.model = None

    def warm_up(self):
        quiet_warnings()
        self.model = self._estimator(1)
        self.model.fit(self.X, self.y)

    def run(self, epochs):
        self.model.set_params(max_iter=epochs)
        self.model.fit(self.X, self.y)
        return float(self.model.loss_)


class FastfitTrainer(_WarmStartTrainer):
    """fastfit estimator continued with ``warm_start=True`` (public API only)."""

    framework = "fastfit"

    def _estimator(self, epochs):
        import fastfit

        regression = self.case.task == "regression"
        cls = fastfit.MLPRegressor if regression else fastfit.MLPClassifier
        return cls(
            hidden_layer_sizes=self.case.hidden,
            batch_size=self.case.batch_size,
            optimizer="adam",
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=np.inf,
            shuffle=True,
            random_state=SEED,
            warm_start=True,
            dtype=np.float32,
            n_threads=self.threads,
        )


class SklearnTrainer(_WarmStartTrainer):
    """scikit-learn's MLP (solver='adam') continued with ``warm_start=True``.

    scikit-learn computes in X's dtype, so float32 X means float32 training.
    threadpoolctl limits its BLAS (OpenBLAS) to ``threads``.
    """

    framework = "sklearn"

    def __init__(self, case, threads, data=None):
        super().__init__(case, threads, data)
        self._limits = _sklearn_blas_limits(threads)

    def _estimator(self, epochs):
        from sklearn import neural_network

        regression = self.case.task == "regression"
        cls = (
            neural_network.MLPRegressor if regression else neural_network.MLPClassifier
        )
        return cls(
            hidden_layer_sizes=self.case.hidden,
            batch_size=self.case.batch_size,
            solver="adam",
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=10**9,
            shuffle=True,
            random_state=SEED,
            warm_start=True,
        )


class TorchTrainer:
    """A plain eager PyTorch loop, as a user writes it (no DataLoader)."""

    framework = "torch"

    def __init__(self, case, threads, data=None):
        import torch

        self.torch = torch
        self.case = get_case(case)
        self.threads = threads
        torch.set_num_threads(threads)
        X, y = make_data(self.case) if data is None else data
        self.X = torch.from_numpy(X)
        if self.case.task == "regression":
            y = np.ascontiguousarray(y, dtype=np.float32).reshape(-1, 1)
            self.y = torch.from_numpy(y)
        else:
            self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))

    def warm_up(self):
        torch, nn = self.torch, self.torch.nn
        torch.manual_seed(SEED)
        layers = []
        sizes = self.case.sizes
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        regression = self.case.task == "regression"
        self.loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.run(1)

    def run(self, epochs):
        torch, model, opt, loss_fn = self.torch, self.model, self.opt, self.loss_fn
        X, y, n, bs = self.X, self.y, self.case.n, self.case.batch_size
        total = 0.0
        for _ in range(epochs):
            perm = torch.randperm(n)
            total = 0.0
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                xb, yb = X[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
        return total / n


# fastfit's and scikit-learn's default Adam and L2; the JAX epoch uses them too.
ADAM_LR, ADAM_BETAS, ADAM_EPS, ALPHA = 1e-3, (0.9, 0.999), 1e-8, 1e-4
JAX_ONE_THREAD_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
_JAX_THREADS = {}  # the count jax_thread_setup set up in this process


def jax_thread_setup(threads):
    """Give XLA's CPU runtime ``threads`` threads; call before jax is imported.

    XLA sizes its intra-op thread pool to the CPUs the process may run on, so
    for ``threads`` < CPUs the affinity is restricted to the first ``threads``
    CPUs; for one thread ``XLA_FLAGS`` also gets
    :data:`JAX_ONE_THREAD_FLAGS` (Eigen's multi-threaded kernels off). With
    ``threads`` >= CPUs nothing is set: XLA's default uses every CPU.
    """
    import sys

    if _JAX_THREADS.get("threads") == threads:
        return
    if "jax" in sys.modules:
        raise RuntimeError("jax is already imported: its thread pool is fixed")
    _JAX_THREADS["threads"] = threads
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " " + JAX_ONE_THREAD_FLAGS).strip()
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


class JaxTrainer:
    """The strongest fair JAX epoch: one jit-compiled ``lax.scan`` per epoch.

    The data lives on the device; each epoch draws its permutation on the
    device (``jax.random.permutation``, a key split per epoch), gathers each
    batch, computes the case's loss (softmax cross-entropy or half squared
    error, plus fastfit's L2 penalty ``alpha * ||W||^2 / (2 n_batch)``) and its
    gradient (``jax.value_and_grad``) and applies Adam (hand-written in jnp:
    optax is not a dependency; fastfit's rule, PyTorch's: ``epsilon`` added to
    the bias-corrected ``sqrt(v_hat)``). The training state (parameters, Adam
    moments, step) is donated to the epoch. The last partial batch is
    trained, as fastfit does: one more step of its own shape after the scan, in
    the same compiled epoch (exact, no padding). Float32, Glorot-uniform init
    as scikit-learn's.
    """

    framework = "jax"

    def __init__(self, case, threads, data=None):
        jax_thread_setup(threads)
        import jax

        self.jax = jax
        self.case = get_case(case)
        self.threads = threads
        X, y = make_data(self.case) if data is None else data
        self.X = jax.device_put(np.ascontiguousarray(X, dtype=np.float32))
        if self.case.task == "regression":
            y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        else:
            y = np.asarray(y, dtype=np.int32)
        self.y = jax.device_put(y)
        self._epoch = jax.jit(self._make_epoch(), donate_argnums=(0,))
        self.state = None

    def _init_state(self):
        jnp = self.jax.numpy
        rng = np.random.default_rng(SEED)
        params = []
        for a, b in zip(self.case.sizes[:-1], self.case.sizes[1:]):
            bound = np.sqrt(6.0 / (a + b))
            W = rng.uniform(-bound, bound, (a, b)).astype(np.float32)
            c = rng.uniform(-bound, bound, b).astype(np.float32)
            params.append((jnp.asarray(W), jnp.asarray(c)))
        params = tuple(params)

        def zeros():  # m and v: distinct buffers (both are donated)
            return self.jax.tree_util.tree_map(jnp.zeros_like, params)

        return params, zeros(), zeros(), jnp.zeros((), jnp.float32)

    def _make_epoch(self):
        jax = self.jax
        jnp, tree_map = jax.numpy, jax.tree_util.tree_map
        n, bs = self.case.n, self.case.batch_size
        n_full, rest = divmod(n, bs)
        regression = self.case.task == "regression"
        b1, b2 = ADAM_BETAS

        def loss_fn(params, xb, yb):
            h = xb
            for W, c in params[:-1]:
                h = jax.nn.relu(h @ W + c)
            W, c = params[-1]
            out = h @ W + c
            if regression:
                data = 0.5 * jnp.mean(jnp.sum((out - yb) ** 2, axis=1))
            else:
                picked = jnp.take_along_axis(out, yb[:, None], axis=1)[:, 0]
                data = jnp.mean(jax.nn.logsumexp(out, axis=1) - picked)
            l2 = sum(jnp.sum(W * W) for W, _ in params)
            return data + 0.5 * ALPHA * l2 / xb.shape[0], data

        grad = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state, idx, X, y):
            params, m, v, t = state
            xb = X.at[idx].get(mode="promise_in_bounds")
            yb = y.at[idx].get(mode="promise_in_bounds")
            (_, data), g = grad(params, xb, yb)
            t = t + 1.0
            m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, m, g)
            v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * g * g, v, g)
            c1, c2 = 1.0 - b1**t, 1.0 - b2**t  # fastfit's (PyTorch's) Adam
            params = tree_map(
                lambda p, m, v: p - ADAM_LR * (m / c1) / (jnp.sqrt(v / c2) + ADAM_EPS),
                params,
                m,
                v,
            )
            return (params, m, v, t), data * idx.shape[0]

        def epoch(state, key, X, y):
            perm = jax.random.permutation(key, n).astype(jnp.int32)
            batches = perm[: n_full * bs].reshape(n_full, bs)
            state, losses = jax.lax.scan(
                lambda s, idx: step(s, idx, X, y), state, batches
            )
            total = losses.sum()
            if rest:  # the last partial batch: one more step of its own shape
                state, last = step(state, perm[n_full * bs :], X, y)
                total = total + last
            return state, total / n

        return epoch

    def warm_up(self):
        self.state = self._init_state()
        self.key = self.jax.random.key(SEED)
        self.run(1)  # compiles the epoch (the same shapes every epoch)

    def run(self, epochs):
        jax, loss = self.jax, None
        for _ in range(epochs):
            self.key, sub = jax.random.split(self.key)
            self.state, loss = self._epoch(self.state, sub, self.X, self.y)
        jax.block_until_ready(self.state)
        return float(loss)

    def steps_taken(self):
        """Adam steps so far (every batch of every epoch, the partial one too)."""
        return int(self.state[3])

    def xla_flags(self):
        """The ``XLA_FLAGS`` this worker's jax was started with."""
        return os.environ.get("XLA_FLAGS", "")


TRAINERS = {
    "fastfit": FastfitTrainer,
    "sklearn": SklearnTrainer,
    "torch": TorchTrainer,
    "jax": JaxTrainer,
}


def _available(module, env_var):
    if os.environ.get(env_var, "0") not in ("", "0"):
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def torch_available():
    """True if torch is installed (found, not imported: the caller stays light).

    ``FASTFIT_BENCH_NO_TORCH=1`` pretends it is not (to check the skip paths).
    """
    return _available("torch", "FASTFIT_BENCH_NO_TORCH")


def jax_available():
    """True if jax is installed (found, not imported), as :func:`torch_available`.

    ``FASTFIT_BENCH_NO_JAX=1`` pretends it is not.
    """
    return _available("jax", "FASTFIT_BENCH_NO_JAX")


def framework_available(framework):
    """fastfit and scikit-learn are required; torch and jax are optional."""
    checks = {"torch": torch_available, "jax": jax_available}
    return checks.get(framework, lambda: True)()


def epoch_rates(case, samples):
    """The median of per-epoch ``samples`` and its GFLOP/s (nominal and
    required FLOPs), as every epoch measurement reports them."""
    med = statistics.median(samples)
    return {
        "median": med,
        "gflops": gflops(case, med),
        "gflops_required": required_gflops(case, med),
    }


def time_epochs(framework, case, threads, repeats=3, epochs=None):
    """Warm up, then ``repeats`` samples of ``run(k)``; returns per-epoch seconds.

    Runs in the calling process: call it from a fresh worker process. Before
    each sample: the host canary, then a garbage collection.
    """
    case = get_case(case)
    k = case.epochs_for(framework) if epochs is None else epochs
    trainer = TRAINERS[framework](case, threads)
    t0 = time.perf_counter()
    trainer.warm_up()
    warm = time.perf_counter() - t0
    samples, others, canaries, loss = [], [], [], None
    for _ in range(repeats):
        canaries.append(canary_gflops())
        gc.collect()
        with CpuProbe() as probe:
            t0 = time.perf_counter()
            loss = trainer.run(k)
            samples.append((time.perf_counter() - t0) / k)
        others.append(probe.other_cores)
    return {
        "framework": framework,
        "case": case.name,
        "threads": threads,
        "epochs_per_sample": k,
        "samples": samples,
        "other_cores": others,
        "canary_gflops": canaries,
        "warm_up_seconds": warm,
        "loss": loss,
        **epoch_rates(case, samples),
    }


# ------------------------------------------------------------------- predict
class Predictor:
    """A fitted 784-256-128-10 model (1 epoch on 2k rows) and 10k rows to predict.

    The weights' values do not matter for the speed of predict, only the shapes.
    """

    def __init__(self, framework, threads, n=PREDICT_N):
        quiet_warnings()
        case = CASES[PREDICT_CASE]
        X, y = make_data(case)
        self.X = np.ascontiguousarray(X[:n])
        self.framework, self.threads = framework, threads
        self._limits = None
        common = {
            "hidden_layer_sizes": case.hidden,
            "max_iter": 1,
            "random_state": SEED,
        }
        if framework == "fastfit":
            import fastfit

            model = fastfit.MLPClassifier(**common, dtype=np.float32, n_threads=threads)
        elif framework == "sklearn":
            self._limits = _sklearn_blas_limits(threads)
            from sklearn.neural_network import MLPClassifier

            model = MLPClassifier(**common)
        else:
            raise ValueError(f"no predictor for {framework!r}")
        self.model = model.fit(X[:2000], y[:2000])
        self.model.predict(self.X)  # warm-up

    def run(self):
        return self.model.predict(self.X)


def time_predict(framework, threads, repeats=10):
    """Median seconds of ``repeats`` predict calls, after one warm-up call."""
    p = Predictor(framework, threads)
    canary = canary_gflops()
    samples = []
    with CpuProbe() as probe:
        for _ in range(repeats):
            t0 = time.perf_counter()
            p.run()
            samples.append(time.perf_counter() - t0)
    med = statistics.median(samples)
    return {
        "framework": framework,
        "threads": threads,
        "n": PREDICT_N,
        "samples": samples,
        "median": med,
        "rows_per_second": PREDICT_N / med,
        "gflops": predict_flops() / med / 1e9,
        "other_cores": [probe.other_cores],
        "canary_gflops": [canary, canary_gflops()],
    }
