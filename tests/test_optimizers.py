"""The compiled optimizer kernels against the NumPy transcriptions of torch.optim.

``fastfit.optimizers.<Rule>._step`` updates one flat buffer in place; the oracle is
``reference.<Rule>.step`` (PyTorch's single-tensor rule, see tests/reference.py and
tests/test_reference.py, which checks the oracle against torch itself).  The coupled
regularization ``g = grad + l2 * w + l1 * sign(w)`` is added to the *weight*
gradients before the reference step; the decoupled AdamW decay goes through the
reference's decay mask (weights only).
"""

import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from fastfit.optimizers import (
    OPTIMIZER_NAMES,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    resolve_optimizer,
)

try:  # tests/ as a package, or tests/ on sys.path (pytest's default "prepend" mode)
    from tests import reference as ref
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref

N_STEPS = 20
N_PARAMS = 37  # odd sizes: not a multiple of any vector width
N_WEIGHTS = 29
F64 = dict(rtol=1e-12, atol=1e-15)
F32 = dict(rtol=1e-5, atol=1e-6)

# id -> factory of a fastfit optimizer; every option combination worth a kernel branch
CASES = {
    "sgd": lambda: SGD(),
    "sgd-momentum": lambda: SGD(momentum=0.9),
    "sgd-momentum-dampening": lambda: SGD(momentum=0.8, dampening=0.3),
    "sgd-nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "adagrad": lambda: Adagrad(),
    "adagrad-initial-accumulator": lambda: Adagrad(
        epsilon=1e-6, initial_accumulator_value=0.1
    ),
    "rmsprop": lambda: RMSprop(),
    "rmsprop-rho": lambda: RMSprop(rho=0.9, epsilon=1e-6),
    "rmsprop-centered": lambda: RMSprop(centered=True),
    "rmsprop-momentum": lambda: RMSprop(momentum=0.7),
    "rmsprop-centered-momentum": lambda: RMSprop(rho=0.95, momentum=0.5, centered=True),
    "adam": lambda: Adam(),
    "adam-betas": lambda: Adam(beta_1=0.3, beta_2=0.9, epsilon=1e-6),
    "adam-amsgrad": lambda: Adam(amsgrad=True),
    "adamw": lambda: AdamW(weight_decay=0.05),
    "adamw-amsgrad": lambda: AdamW(weight_decay=0.1, amsgrad=True),
    "adamw-betas": lambda: AdamW(
        beta_1=0.5, beta_2=0.99, epsilon=1e-7, weight_decay=0.2
    ),
}

DOCUMENTED_DEFAULTS = {
    SGD: dict(momentum=0.0, dampening=0.0, nesterov=False),
    Adagrad: dict(epsilon=1e-10, initial_accumulator_value=0.0),
    RMSprop: dict(rho=0.99, epsilon=1e-8, momentum=0.0, centered=False),
    Adam: dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False),
    AdamW: dict(
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01, amsgrad=False
    ),
}


def _reference_for(opt):
    """The reference optimizer with the same hyperparameters (read as attributes)."""
    if isinstance(opt, AdamW):
        return ref.AdamW(
            beta_1=opt.beta_1,
            beta_2=opt.beta_2,
            eps=opt.epsilon,
            weight_decay=opt.weight_decay,
            amsgrad=opt.amsgrad,
        )
    if isinstance(opt, Adam):
        return ref.Adam(
            beta_1=opt.beta_1, beta_2=opt.beta_2, eps=opt.epsilon, amsgrad=opt.amsgrad
        )
    if isinstance(opt, RMSprop):
        return ref.RMSprop(
            alpha=opt.rho, eps=opt.epsilon, momentum=opt.momentum, centered=opt.centered
        )
    if isinstance(opt, Adagrad):
        return ref.Adagrad(
            eps=opt.epsilon, initial_accumulator_value=opt.initial_accumulator_value
        )
    if isinstance(opt, SGD):
        return ref.SGD(
            momentum=opt.momentum, dampening=opt.dampening, nesterov=opt.nesterov
        )
    raise TypeError(type(opt))


def _problem(n=N_PARAMS, n_steps=N_STEPS, seed=0):
    """Start values, a gradient per step (scale jumping between steps, so amsgrad's
    running max matters) and a varying learning rate."""
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=n)
    p0[[1, 5]] = 0.0  # exact zeros: sign(0) = 0 in the l1 term at step 1
    grads = [np.exp(rng.normal()) * rng.normal(size=n) for _ in range(n_steps)]
    for g in grads:
        g[3] = 0.0  # a coordinate that never gets a gradient
    lrs = 0.05 * (1.0 + 0.5 * np.sin(np.arange(n_steps)))
    return p0, grads, lrs


def _run_kernel(opt, p0, grads, lrs, dtype, n_weights, l2=0.0, l1=0.0, n_threads=1):
    """Returns the params after every step, and the final state."""
    params = np.ascontiguousarray(p0, dtype=dtype).copy()
    state = opt._init_state(params.shape[0], dtype)
    assert isinstance(state, np.ndarray) and state.dtype == dtype
    history = []
    for k, (g, lr) in enumerate(zip(grads, lrs)):
        g = np.ascontiguousarray(g, dtype=dtype)
        opt._step(
            params,
            g,
            state,
            lr=float(lr),
            t=k + 1,
            n_weights=n_weights,
            l2=l2,
            l1=l1,
            n_threads=n_threads,
        )
        assert params.dtype == dtype
        history.append(params.copy())
    return history, state


def _run_reference(opt, p0, grads, lrs, dtype, n_weights, l2=0.0, l1=0.0):
    """The reference in float64, from the same (dtype-rounded) inputs."""
    r = _reference_for(opt)
    p = np.asarray(p0, dtype=dtype).astype(np.float64)
    mask = np.arange(p.shape[0]) < n_weights
    history = []
    for g, lr in zip(grads, lrs):
        g = np.asarray(g, dtype=dtype).astype(np.float64)
        w = p[:n_weights]
        g[:n_weights] = g[:n_weights] + l2 * w + l1 * np.sign(w)
        r.step([p], [g], lr=float(lr), decay_mask=[mask])
        history.append(p.copy())
    return history


def _assert_trajectories(got, want, tol, what):
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, **tol, err_msg=f"{what}: step {k + 1}")


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_float64_equals_reference(case):
    p0, grads, lrs = _problem()
    got, _ = _run_kernel(CASES[case](), p0, grads, lrs, np.float64, N_WEIGHTS)
    want = _run_reference(CASES[case](), p0, grads, lrs, np.float64, N_WEIGHTS)
    _assert_trajectories(got, want, F64, case)


@pytest.mark.parametrize("case", list(CASES))
def test_float32_close_to_reference(case):
    p0, grads, lrs = _problem()
    got, state = _run_kernel(CASES[case](), p0, grads, lrs, np.float32, N_WEIGHTS)
    want = _run_reference(CASES[case](), p0, grads, lrs, np.float32, N_WEIGHTS)
    assert state.dtype == np.float32
    _assert_trajectories(got, want, F32, case)


@pytest.mark.parametrize("n_weights", [0, N_WEIGHTS, N_PARAMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_coupled_regularization_on_weights_only(case, dtype, n_weights):
    p0, grads, lrs = _problem(seed=1)
    l2, l1 = 0.03, 0.01
    got, _ = _run_kernel(CASES[case](), p0, grads, lrs, dtype, n_weights, l2=l2, l1=l1)
    want = _run_reference(CASES[case](), p0, grads, lrs, dtype, n_weights, l2=l2, l1=l1)
    _assert_trajectories(got, want, F64 if dtype == np.float64 else F32, case)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_zero_gradient_biases_untouched_by_regularization_and_decay(case, dtype):
    # With zero gradients every rule leaves a coordinate where it is, unless a
    # penalty (l2, l1) or AdamW's decay moves it: weights move, biases must not.
    n, n_weights = N_PARAMS, N_WEIGHTS
    p0, _, lrs = _problem(seed=2)
    p0 = p0.astype(dtype)
    grads = [np.zeros(n, dtype=dtype) for _ in lrs]
    got, _ = _run_kernel(
        CASES[case](), p0, grads, lrs, dtype, n_weights, l2=0.5, l1=0.1
    )
    np.testing.assert_array_equal(got[-1][n_weights:], p0[n_weights:])
    moved = got[-1][:n_weights] != p0[:n_weights]
    assert moved[p0[:n_weights] != 0].all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("adamw")])
def test_adamw_decay_applies_to_weights_only(case, dtype):
    # zero gradients, no coupled penalty: Adam's step is exactly 0 and only the
    # decoupled decay acts, p = p * (1 - lr * weight_decay) on the weights.
    opt = CASES[case]()
    p0, _, lrs = _problem(seed=3)
    p0 = p0.astype(dtype)
    grads = [np.zeros(N_PARAMS, dtype=dtype) for _ in lrs]
    got, _ = _run_kernel(opt, p0, grads, lrs, dtype, N_WEIGHTS)
    np.testing.assert_array_equal(got[-1][N_WEIGHTS:], p0[N_WEIGHTS:])
    shrink = np.prod([1.0 - lr * opt.weight_decay for lr in lrs])
    np.testing.assert_allclose(
        got[-1][:N_WEIGHTS],
        p0[:N_WEIGHTS] * shrink,
        **(F64 if dtype == np.float64 else F32),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_grads_are_not_modified(case, dtype):
    p0, grads, lrs = _problem(seed=4)
    grads = [np.ascontiguousarray(g, dtype=dtype) for g in grads]
    before = [g.copy() for g in grads]
    _run_kernel(CASES[case](), p0, grads, lrs, dtype, N_WEIGHTS, l2=0.1, l1=0.05)
    for g, g0 in zip(grads, before):
        np.testing.assert_array_equal(g, g0)


def test_returned_penalty_matches_reference():
    # _step returns the coupled penalty l2/2 ||w||^2 + l1 ||w||_1 before the update
    p0, grads, _ = _problem(seed=5)
    opt = Adam()
    params = p0.copy()
    state = opt._init_state(N_PARAMS, np.float64)
    pen = opt._step(
        params, grads[0], state, lr=0.01, t=1, n_weights=N_WEIGHTS, l2=0.2, l1=0.05
    )
    w = p0[:N_WEIGHTS]
    assert pen == pytest.approx(
        0.1 * np.sum(w * w) + 0.05 * np.sum(np.abs(w)), rel=1e-12
    )


def test_test_data_exercises_every_option():
    # Guard against vacuous comparisons: on this data every option changes the
    # reference trajectory clearly, so a kernel ignoring it fails the tests above.
    p0, grads, lrs = _problem()

    def final(opt):
        return _run_reference(opt, p0, grads, lrs, np.float64, N_WEIGHTS)[-1]

    pairs = [
        (SGD(), SGD(momentum=0.9)),
        (SGD(momentum=0.8), SGD(momentum=0.8, dampening=0.3)),
        (SGD(momentum=0.9), SGD(momentum=0.9, nesterov=True)),
        (Adagrad(), Adagrad(initial_accumulator_value=0.1)),
        (RMSprop(), RMSprop(rho=0.9)),
        (RMSprop(), RMSprop(centered=True)),
        (RMSprop(), RMSprop(momentum=0.7)),
        (Adam(), Adam(amsgrad=True)),
        (Adam(), Adam(beta_1=0.3)),
        (Adam(), Adam(beta_2=0.9)),
        (Adam(), AdamW(weight_decay=0.05)),
    ]
    for a, b in pairs:
        diff = np.max(np.abs(final(a) - final(b)))
        assert diff > 1e-6, (a, b, diff)
    # dampening acts from step 2 on only (torch: the first buffer is the raw gradient)
    one = _run_reference(
        SGD(momentum=0.8, dampening=0.3), p0, grads[:1], lrs[:1], np.float64, N_WEIGHTS
    )[-1]
    np.testing.assert_array_equal(
        one, _run_reference(SGD(), p0, grads[:1], lrs[:1], np.float64, N_WEIGHTS)[-1]
    )


# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_two_threads_bit_identical_to_one(case, dtype):
    # large enough for the kernel's parallel path; odd size and a weights/biases
    # boundary that no block edge is likely to hit
    n, n_weights, n_steps = 200_003, 150_001, 4
    p0, grads, lrs = _problem(n=n, n_steps=n_steps, seed=6)
    h1, s1 = _run_kernel(
        CASES[case](), p0, grads, lrs, dtype, n_weights, l2=0.01, l1=0.001, n_threads=1
    )
    h2, s2 = _run_kernel(
        CASES[case](), p0, grads, lrs, dtype, n_weights, l2=0.01, l1=0.001, n_threads=2
    )
    for k, (a, b) in enumerate(zip(h1, h2)):
        np.testing.assert_array_equal(a, b, err_msg=f"{case}: step {k + 1}")
    np.testing.assert_array_equal(s1, s2)
    if dtype == np.float64:  # and the parallel result is the right one
        want = _run_reference(
            CASES[case](), p0, grads, lrs, dtype, n_weights, l2=0.01, l1=0.001
        )
        _assert_trajectories(h2, want, F64, case)


# ---------------------------------------------------------------------------
# scikit-learn parameter handling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(DOCUMENTED_DEFAULTS))
def test_default_params(cls):
    assert cls().get_params() == DOCUMENTED_DEFAULTS[cls]


@pytest.mark.parametrize("case", list(CASES))
def test_get_set_params_clone_pickle_roundtrip(case):
    opt = CASES[case]()
    params = opt.get_params()
    assert set(params) == set(DOCUMENTED_DEFAULTS[type(opt)])

    rebuilt = type(opt)().set_params(**params)
    assert rebuilt.get_params() == params
    cloned = clone(opt)
    assert cloned is not opt and type(cloned) is type(opt)
    assert cloned.get_params() == params
    unpickled = pickle.loads(pickle.dumps(opt))
    assert unpickled.get_params() == params

    # the hyperparameters, however set, drive the kernel: identical trajectories
    p0, grads, lrs = _problem(seed=7)
    want, _ = _run_kernel(opt, p0, grads, lrs, np.float64, N_WEIGHTS)
    for other in (rebuilt, cloned, unpickled):
        got, _ = _run_kernel(other, p0, grads, lrs, np.float64, N_WEIGHTS)
        np.testing.assert_array_equal(got[-1], want[-1])


def test_set_params_changes_the_update():
    opt = Adam()
    assert opt.set_params(beta_1=0.3, amsgrad=True) is opt
    assert opt.beta_1 == 0.3 and opt.amsgrad is True
    p0, grads, lrs = _problem(seed=8)
    got, _ = _run_kernel(opt, p0, grads, lrs, np.float64, N_WEIGHTS)
    want = _run_reference(
        Adam(beta_1=0.3, amsgrad=True), p0, grads, lrs, np.float64, N_WEIGHTS
    )
    _assert_trajectories(got, want, F64, "Adam(beta_1=0.3, amsgrad=True)")


# ---------------------------------------------------------------------------
# validation and names
# ---------------------------------------------------------------------------

INVALID = [
    (lambda: SGD(momentum=1.0), "momentum", r"\[0\.0, 1\.0\)"),
    (lambda: SGD(momentum=-0.1), "momentum", r"\[0\.0, 1\.0\)"),
    (lambda: SGD(momentum=math.nan), "momentum", "nan"),
    (lambda: SGD(momentum=True), "momentum", "True"),
    (lambda: SGD(dampening=1.5), "dampening", r"\[0\.0, 1\.0\]"),
    (lambda: SGD(nesterov="yes"), "nesterov", "bool"),
    (lambda: Adagrad(epsilon=0.0), "epsilon", r"\(0\.0, inf\)"),
    (lambda: Adagrad(epsilon=math.inf), "epsilon", r"\(0\.0, inf\)"),
    (lambda: Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value", ""),
    (lambda: RMSprop(rho=1.0), "rho", r"\[0\.0, 1\.0\)"),
    (lambda: RMSprop(epsilon=-1e-8), "epsilon", ""),
    (lambda: RMSprop(momentum=1.0), "momentum", ""),
    (lambda: RMSprop(centered=None), "centered", "bool"),
    (lambda: Adam(beta_1=1.0), "beta_1", ""),
    (lambda: Adam(beta_2="0.9"), "beta_2", "'0.9'"),
    (lambda: Adam(epsilon=0.0), "epsilon", ""),
    (lambda: Adam(amsgrad=1), "amsgrad", "bool"),
    (lambda: AdamW(weight_decay=-0.1), "weight_decay", r"\[0\.0, inf\)"),
    (lambda: AdamW(weight_decay=math.inf), "weight_decay", ""),
    (lambda: AdamW(beta_1=-0.5), "beta_1", ""),
]


@pytest.mark.parametrize(
    "factory, param, valid",
    INVALID,
    ids=[f"{p}{i}" for i, (_, p, _) in enumerate(INVALID)],
)
def test_invalid_hyperparameter_message_names_it_and_its_valid_values(
    factory, param, valid
):
    opt = factory()  # construction never validates
    pattern = rf"'{param}' parameter of {type(opt).__name__} must be .*{valid}"
    with pytest.raises(ValueError, match=pattern):
        opt._validate_params()
    with pytest.raises(ValueError, match=pattern):  # no kernel runs on them
        opt._init_state(N_PARAMS, np.float64)
    with pytest.raises(ValueError, match=pattern):
        resolve_optimizer(opt)


@pytest.mark.parametrize(
    "opt", [SGD(nesterov=True), SGD(momentum=0.9, dampening=0.1, nesterov=True)]
)
def test_nesterov_needs_momentum_and_no_dampening(opt):
    with pytest.raises(ValueError, match=r"nesterov=True.*momentum > 0.*dampening"):
        resolve_optimizer(opt)


@pytest.mark.parametrize(
    "opt",
    [
        SGD(momentum=0.0, dampening=1.0),
        SGD(momentum=np.float32(0.5), nesterov=np.True_),
        Adagrad(epsilon=1e-300, initial_accumulator_value=0),
        RMSprop(rho=0.0, momentum=0),
        Adam(beta_1=0, beta_2=np.float64(0.5), epsilon=1),
        AdamW(weight_decay=0),
    ],
)
def test_boundary_values_are_valid(opt):
    assert resolve_optimizer(opt) is opt
    opt._init_state(N_PARAMS, np.float64)


def test_optimizer_names_come_from_the_registry():
    from fastfit import optimizers

    assert OPTIMIZER_NAMES == tuple(optimizers._OPTIMIZERS)
    assert isinstance(OPTIMIZER_NAMES, tuple)
    assert "{names}" not in resolve_optimizer.__doc__
    for name in OPTIMIZER_NAMES:
        assert f"``{name!r}``" in resolve_optimizer.__doc__, name
        assert isinstance(resolve_optimizer(name), Optimizer)
    with pytest.raises(ValueError) as excinfo:
        resolve_optimizer("lbfgs")
    message = str(excinfo.value)
    assert "optimizer" in message and "'lbfgs'" in message
    for name in OPTIMIZER_NAMES:
        assert repr(name) in message


@pytest.mark.parametrize("bad", [3, None, Adam, ["adam"]])
def test_resolve_optimizer_type_error(bad):
    with pytest.raises(TypeError, match="optimizer"):
        resolve_optimizer(bad)


RESOLVE_CASES = [
    # name, keyword arguments, expected optimizer (as scikit-learn's MLP means it)
    ("sgd", {}, SGD(momentum=0.9, nesterov=True)),
    ("sgd", {"nesterovs_momentum": False}, SGD(momentum=0.9)),
    ("sgd", {"momentum": 0.0}, SGD()),  # no Nesterov without momentum
    ("momentum", {"momentum": 0.5}, SGD(momentum=0.5)),
    ("nesterov", {"momentum": 0.5}, SGD(momentum=0.5, nesterov=True)),
    ("adagrad", {"epsilon": 0.1}, Adagrad()),  # ignores the MLP parameters
    ("rmsprop", {"beta_1": 0.1}, RMSprop()),
    ("adam", {}, Adam()),
    ("adam", {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-6}, Adam(0.5, 0.9, 1e-6)),
    ("adamw", {"beta_1": 0.5, "epsilon": 1e-6}, AdamW(beta_1=0.5, epsilon=1e-6)),
]


@pytest.mark.parametrize("name, kwargs, expected", RESOLVE_CASES)
def test_resolve_optimizer_names(name, kwargs, expected):
    opt = resolve_optimizer(name, **kwargs)
    assert type(opt) is type(expected)
    assert opt.get_params() == expected.get_params()


def test_resolve_optimizer_validates_what_the_names_build():
    with pytest.raises(ValueError, match="'momentum' parameter of SGD"):
        resolve_optimizer("momentum", momentum=1.5)
    with pytest.raises(ValueError, match="nesterov=True"):
        resolve_optimizer("nesterov", momentum=0.0)
    with pytest.raises(ValueError, match="'beta_2' parameter of Adam"):
        resolve_optimizer("adam", beta_2=1.0)
