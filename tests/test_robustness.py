"""Robustness of the estimators at their boundary.

What a user can throw at ``fit`` / ``predict`` / ``partial_fit`` must end in a
clear ``ValueError`` / ``TypeError`` (scikit-learn's ``InvalidParameterError`` and
``NotFittedError`` are subclasses of ``ValueError``), never in a crash, a silent
NaN model, or a modified input array:

1. validation of data and hyperparameters, with messages a user understands;
2. memory layouts and dtypes of the inputs all give the same model;
3. the divergence guard (huge learning rate) returns the last finite model;
4. determinism for a fixed ``random_state`` and ``n_threads``;
7. a battery of bad inputs in one subprocess never kills the process;
8. fits in Python threads give the sequential results (the engine releases
   the GIL) and leave the process' BLAS settings as they found them.

(5, the hypothesis fuzzer, is ``test_fuzz.py``; 6, the debug build, is
``test_debug_build.py``.) Networks are tiny and fits short; the BLAS and crash
scenarios run in subprocesses. The file runs in about 20 s on 2 cores.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning

import fastfit
from fastfit import MLPClassifier, MLPRegressor, _engine
from fastfit.losses import CLASSIFIER_LOSSES, REGRESSOR_LOSSES
from fastfit.optimizers import OPTIMIZER_NAMES, SGD, Adagrad, Adam, AdamW, RMSprop
from fastfit.schedules import (
    SCHEDULE_NAMES,
    CosineAnnealingLR,
    ExponentialLR,
    InverseScaling,
    LinearLR,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
    Warmup,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = tuple(_engine.ACTIVATIONS)
ESTIMATORS = (MLPClassifier, MLPRegressor)
DTYPES = (np.float32, np.float64)
# Any clean, catchable error. InvalidParameterError and NotFittedError are
# ValueErrors.
CLEAN = (ValueError, TypeError)

_rng = np.random.RandomState(0)
# Values exactly representable in float32, so that every input dtype and layout
# casts to the same numbers whatever the estimator's dtype.
X = _rng.randn(24, 3).astype(np.float32).astype(np.float64)
Y_CLF = np.arange(24) % 3
Y_REG = _rng.randn(24).astype(np.float32).astype(np.float64)


def _y_for(est_cls):
    return Y_CLF if est_cls is MLPClassifier else Y_REG


def _small(est_cls, **params):
    """A tiny, fast, seeded estimator."""
    base = dict(hidden_layer_sizes=(3,), max_iter=3, batch_size=5, random_state=0)
    base.update(params)
    return est_cls(**base)


def _flat(est):
    return np.concatenate([a.ravel() for a in list(est.coefs_) + list(est.intercepts_)])


def _assert_same_model(a, b):
    assert len(a.coefs_) == len(b.coefs_)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert ca.dtype == cb.dtype
        np.testing.assert_array_equal(ca, cb)
    for ia, ib in zip(a.intercepts_, b.intercepts_):
        np.testing.assert_array_equal(ia, ib)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_curve_ == b.loss_curve_


def _with_nan(A, value=np.nan):
    A = np.array(A, dtype=np.float64)
    A[1, 1] = value
    return A


# =============================================================================
# 1. Validation at the boundary
# =============================================================================


def _fit(X_, y_, **kw):
    return lambda est: est.fit(X_, y_, **kw)


def _csr_with_column(X, column):
    """X as CSR whose first entry claims a column outside the matrix (scipy's
    constructor does not check column bounds)."""
    csr = scipy.sparse.csr_matrix(X)
    indices = csr.indices.copy()
    indices[0] = column
    return scipy.sparse.csr_matrix((csr.data, indices, csr.indptr), shape=X.shape)


def _fit_then(method, X_):
    def run(est):
        est.fit(X, _y_for(type(est)))
        return getattr(est, method)(X_)

    return run


# (id, action(est), match) for both estimators; y is the estimator's own.
def _data_cases(y):
    Xs = np.array([["a", "b", "c"]] * len(y))
    Xo = np.empty((len(y), 3), dtype=object)
    Xo[:] = object()
    return [
        ("nan-in-X", _fit(_with_nan(X), y), r"Input X contains NaN"),
        ("inf-in-X", _fit(_with_nan(X, np.inf), y), r"Input X contains infinity"),
        ("X-beyond-float32", _fit(X * 1e39, y), r"infinity or a value too large"),
        ("1d-X", _fit(X[:, 0], y), r"Expected 2D array, got 1D array"),
        ("3d-X", _fit(X[:, :, None], y), r"dim 3"),
        ("X-y-length-mismatch", _fit(X, y[:-1]), r"inconsistent numbers of samples"),
        ("empty-X", _fit(X[:0], y[:0]), r"0 sample\(s\)"),
        ("zero-features", _fit(X[:, :0], y), r"0 feature\(s\)"),
        ("string-X", _fit(Xs, y), r"could not convert string to float"),
        ("object-X", _fit(Xo, y), r"float\(\) argument must be"),
        ("complex-X", _fit(X + 1j, y), r"Complex data not supported"),
        (
            "sparse-X-nan",
            _fit(scipy.sparse.csr_matrix(_with_nan(X)), y),
            r"Input X contains NaN",
        ),
        (
            "sparse-X-column-outside",
            _fit(_csr_with_column(X, 7), y),
            r"column indices must lie in \[0, 3\)",
        ),
        (
            "predict-wrong-n-features",
            _fit_then("predict", X[:, :2]),
            r"X has 2 features, but \w+ is expecting 3 features",
        ),
        ("predict-nan", _fit_then("predict", _with_nan(X)), r"Input X contains NaN"),
        ("predict-1d", _fit_then("predict", X[0]), r"Expected 2D array"),
        ("predict-before-fit", lambda est: est.predict(X), r"not fitted yet"),
        (
            "sample_weight-negative",
            _fit(X, y, sample_weight=np.r_[-1.0, np.ones(len(y) - 1)]),
            r"Negative values in data passed to `sample_weight`",
        ),
        (
            "sample_weight-wrong-length",
            _fit(X, y, sample_weight=np.ones(len(y) - 1)),
            r"sample_weight\.shape == \(23,\), expected \(24,\)",
        ),
        (
            "sample_weight-2d",
            _fit(X, y, sample_weight=np.ones((len(y), 1))),
            r"Sample weights must be 1D",
        ),
        (
            "sample_weight-nan",
            _fit(X, y, sample_weight=np.r_[np.nan, np.ones(len(y) - 1)]),
            r"sample_weight contains NaN",
        ),
        (
            "sample_weight-inf",
            _fit(X, y, sample_weight=np.r_[np.inf, np.ones(len(y) - 1)]),
            r"sample_weight contains infinity",
        ),
        (
            "sample_weight-all-zero",
            _fit(X, y, sample_weight=np.zeros(len(y))),
            r"(?i)non-zero|positive sum",
        ),
    ]


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", [c[0] for c in _data_cases(Y_CLF)])
def test_bad_data_raises_clear_error(est_cls, case):
    action, match = {i: (a, m) for i, a, m in _data_cases(_y_for(est_cls))}[case]
    with pytest.raises(CLEAN, match=match):
        action(_small(est_cls))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "value, match",
    [(np.nan, r"Input y contains NaN"), (np.inf, r"Input y contains infinity")],
)
def test_non_finite_y_raises(est_cls, value, match):
    y = np.array(_y_for(est_cls), dtype=np.float64)
    y[3] = value
    with pytest.raises(CLEAN, match=match):
        _small(est_cls).fit(X, y)


def test_classifier_fits_a_single_class_and_predicts_it():
    # scikit-learn's MLPClassifier fits one class and predicts it; fastfit
    # also gives it probability 1 (scikit-learn returns two columns)
    est = _small(MLPClassifier).fit(X, np.full(len(X), 7))
    np.testing.assert_array_equal(est.classes_, [7])
    np.testing.assert_array_equal(est.predict(X), np.full(len(X), 7))
    np.testing.assert_array_equal(est.predict_proba(X), np.ones((len(X), 1)))
    np.testing.assert_array_equal(est.predict_log_proba(X), np.zeros((len(X), 1)))


def test_classifier_rejects_continuous_y_and_points_to_the_regressor():
    with pytest.raises(CLEAN, match=r"Unknown label type: 'continuous'.*MLPRegressor"):
        _small(MLPClassifier).fit(X, Y_REG)


def test_classifier_rejects_object_labels_of_mixed_types():
    y = np.array([1, "a"] * (len(X) // 2), dtype=object)
    with pytest.raises(CLEAN, match=r"(?i)label type|mix"):
        _small(MLPClassifier).fit(X, y)


def test_classifier_class_weight_for_unknown_class():
    with pytest.raises(CLEAN, match=r"not in class_weight|class_weight"):
        _small(MLPClassifier, class_weight={7: 2.0}).fit(X, Y_CLF)


def test_poisson_rejects_negative_y():
    y = np.abs(Y_REG)
    y[2] = -1.0
    with pytest.raises(CLEAN, match=r"poisson.*y >= 0"):
        _small(MLPRegressor, loss="poisson").fit(X, y)


@pytest.mark.parametrize("scale", [1e39, 1e300])
def test_regressor_rejects_y_beyond_float32_range(scale):
    # y is finite in float64 (so scikit-learn's check passes) but overflows to inf
    # when cast to the training dtype float32. That must be a clear error at the
    # boundary, not a "training diverged" warning and an untrained model.
    y = Y_REG * scale
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # today: overflow in cast, "diverged in epoch 1"
        with pytest.raises(CLEAN, match=r"(?i)\by\b.*(too large|float32|infinity)"):
            _small(MLPRegressor, dtype=np.float32).fit(X, y)
    # float64 training holds these values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _small(MLPRegressor, dtype=np.float64, max_iter=1).fit(X, Y_REG * 1e39)


# ---------------------------------------------------------------- names
@pytest.mark.parametrize(
    "est_cls, param, valid",
    [
        (MLPClassifier, "loss", CLASSIFIER_LOSSES),
        (MLPRegressor, "loss", REGRESSOR_LOSSES),
        (MLPClassifier, "optimizer", OPTIMIZER_NAMES),
        (MLPRegressor, "optimizer", OPTIMIZER_NAMES),
        (MLPClassifier, "schedule", SCHEDULE_NAMES),
        (MLPRegressor, "schedule", SCHEDULE_NAMES),
        (MLPClassifier, "activation", ACTIVATIONS),
        (MLPRegressor, "activation", ACTIVATIONS),
        (MLPClassifier, "penalty", ("l2", "l1", "elasticnet")),
        (MLPClassifier, "early_stopping_monitor", ("loss", "score")),
        (MLPRegressor, "best_epoch", ("first", "last")),
    ],
)
def test_unknown_name_lists_the_valid_ones(est_cls, param, valid):
    with pytest.raises(CLEAN, match=rf"{param}.*'no-such-name'") as info:
        _small(est_cls, **{param: "no-such-name"}).fit(X, _y_for(est_cls))
    message = str(info.value)
    missing = [name for name in valid if repr(name) not in message]
    assert not missing, f"valid names missing from the message: {missing}: {message}"


@pytest.mark.parametrize("param", ["optimizer", "schedule"])
def test_wrong_type_for_optimizer_or_schedule(param):
    with pytest.raises(CLEAN, match=param):
        _small(MLPClassifier, **{param: 3.5}).fit(X, Y_CLF)


def test_unknown_schedule_name_inside_warmup_lists_the_valid_ones():
    with pytest.raises(
        CLEAN, match=r"'after' parameter of Warmup must be .*'cosine'.*Got 'nope'"
    ):
        _small(MLPClassifier, schedule=Warmup(after="nope")).fit(X, Y_CLF)


# ----------------------------------------------------- hyperparameter values
BAD_HYPERPARAMETERS = [
    # (estimator-level parameters, fragment the message must contain)
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": "big"}, "batch_size"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"learning_rate_init": -1e-3}, "learning_rate_init"),
    ({"learning_rate_init": np.nan}, "learning_rate_init"),
    ({"learning_rate_init": np.inf}, "learning_rate_init"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": 0}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (3, -1)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (2.5,)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (True,)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "abc"}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": (1,) * 70}, "hidden layers"),
    ({"alpha": -1.0}, "alpha"),
    ({"alpha": np.nan}, "alpha"),
    ({"alpha": np.inf}, "alpha"),
    ({"l1_ratio": 1.5}, "l1_ratio"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"validation_fraction": 1.0, "early_stopping": True}, "validation_fraction"),
    ({"validation_fraction": 0.0, "early_stopping": True}, "validation_fraction"),
    ({"n_iter_no_change": 0}, "n_iter_no_change"),
    ({"clip_norm": 0.0}, "clip_norm"),
    ({"clip_norm": -1.0}, "clip_norm"),
    ({"clip_norm": np.nan}, "clip_norm"),
    ({"momentum": 1.5}, "momentum"),
    ({"momentum": -0.1}, "momentum"),
    ({"beta_1": 1.0}, "beta_1"),
    ({"beta_1": -0.5}, "beta_1"),
    ({"beta_2": 1.5}, "beta_2"),
    ({"epsilon": 0.0}, "epsilon"),
    ({"power_t": -1.0}, "power_t"),
    ({"n_threads": 0}, "n_threads"),
    ({"n_threads": 1.5}, "n_threads"),
    ({"dtype": "int32"}, "dtype"),
    ({"dtype": np.int32}, "dtype"),
    ({"dtype": np.float16}, "dtype"),
    ({"verbose": "loud"}, "verbose"),
    # optimizer instances
    ({"optimizer": Adam(beta_1=1.5)}, "beta_1"),
    ({"optimizer": Adam(beta_2=1.0)}, "beta_2"),
    ({"optimizer": Adam(beta_1=np.nan)}, "beta_1"),
    ({"optimizer": Adam(beta_1="0.9")}, "beta_1"),
    ({"optimizer": Adam(epsilon=-1e-8)}, "epsilon"),
    ({"optimizer": AdamW(weight_decay=-0.1)}, "weight_decay"),
    ({"optimizer": SGD(momentum=1.5)}, "momentum"),
    ({"optimizer": SGD(momentum=-0.1)}, "momentum"),
    ({"optimizer": SGD(dampening=2.0)}, "dampening"),
    ({"optimizer": SGD(nesterov=True)}, "Nesterov"),
    ({"optimizer": RMSprop(rho=1.0)}, "rho"),
    ({"optimizer": RMSprop(momentum=1.0)}, "momentum"),
    (
        {"optimizer": Adagrad(initial_accumulator_value=-1.0)},
        "initial_accumulator_value",
    ),
    # schedule instances
    ({"schedule": StepLR(gamma=-1)}, "gamma"),
    ({"schedule": StepLR(step_size=0)}, "step_size"),
    ({"schedule": ExponentialLR(gamma=2.0)}, "gamma"),
    ({"schedule": MultiStepLR(milestones=[5, 2])}, "milestones"),
    ({"schedule": LinearLR(start_factor=0.0)}, "start_factor"),
    ({"schedule": CosineAnnealingLR(T_max=0)}, "T_max"),
    ({"schedule": InverseScaling(power_t=-1.0)}, "power_t"),
    ({"schedule": ReduceLROnPlateau(factor=1.0)}, "factor"),
    ({"schedule": Warmup(epochs=0)}, "epochs"),
    ({"schedule": Warmup(after=StepLR(gamma=-1))}, "gamma"),
]


def _hp_id(case):
    params, _ = case
    return ",".join(f"{k}={v!r}" for k, v in params.items())[:60]


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "params, fragment",
    BAD_HYPERPARAMETERS,
    ids=[_hp_id(c) for c in BAD_HYPERPARAMETERS],
)
def test_bad_hyperparameter_raises_naming_it(est_cls, params, fragment):
    with pytest.raises(CLEAN, match=re.escape(fragment)):
        _small(est_cls, **params).fit(X, _y_for(est_cls))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "params, fit_kw",
    [
        ({"schedule": StepLR(gamma=-1)}, {}),
        ({"schedule": Warmup(epochs=0)}, {}),
        ({"optimizer": Adam(beta_1=1.5)}, {}),
        ({"hidden_layer_sizes": (0,)}, {}),
        ({}, {"sample_weight": -np.ones(len(X))}),
    ],
    ids=["bad-schedule", "bad-warmup", "bad-optimizer", "bad-hidden", "bad-weights"],
)
def test_a_failed_fit_leaves_the_estimator_unfitted(est_cls, params, fit_kw):
    """After fit raised, predict must not serve a half-initialised model."""
    est = _small(est_cls, **params)
    with pytest.raises(CLEAN):
        est.fit(X, _y_for(est_cls), **fit_kw)
    assert not hasattr(est, "coefs_"), "fit raised but left coefs_ behind"
    with pytest.raises(CLEAN, match=r"not fitted"):
        est.predict(X)


def test_bad_regressor_hyperparameters():
    with pytest.raises(CLEAN, match="huber_delta"):
        _small(MLPRegressor, loss="huber", huber_delta=0.0).fit(X, Y_REG)


def test_bad_class_weight():
    with pytest.raises(CLEAN, match="class_weight"):
        _small(MLPClassifier, class_weight="often").fit(X, Y_CLF)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_optimizer_instance_epsilon_zero_is_rejected_like_the_estimator_parameter(
    est_cls,
):
    # The estimator's `epsilon` must be > 0 (Interval closed="neither"); an Adam
    # instance accepts 0, and then any parameter whose gradient has been exactly
    # zero so far (a dead ReLU, a constant feature) is updated by 0 / 0 = NaN.
    with pytest.raises(CLEAN, match="epsilon"):
        _small(est_cls, epsilon=0.0).fit(X, _y_for(est_cls))
    for opt in (
        Adam(epsilon=0.0),
        AdamW(epsilon=0.0),
        RMSprop(epsilon=0.0),
        Adagrad(epsilon=0.0),
    ):
        with pytest.raises(CLEAN, match="epsilon"):
            _small(est_cls, optimizer=opt).fit(X, _y_for(est_cls))


@pytest.mark.parametrize(
    "dtype", [np.dtype("float32"), np.dtype("float64"), float, "float32", np.float64]
)
def test_dtype_spellings_numpy_users_write(dtype):
    # MLPClassifier(dtype=X.dtype) is a natural thing to write.
    est = _small(MLPClassifier, dtype=dtype, max_iter=1).fit(X, Y_CLF)
    assert est.coefs_[0].dtype == np.dtype(dtype)


# ------------------------------------------------------------- partial_fit
def test_partial_fit_classifier_first_call_needs_classes():
    with pytest.raises(CLEAN, match=r"classes must be passed"):
        _small(MLPClassifier).partial_fit(X, Y_CLF)


def test_partial_fit_classifier_unseen_labels():
    est = _small(MLPClassifier).partial_fit(X, Y_CLF, classes=[0, 1, 2])
    y = Y_CLF.copy()
    y[0] = 7
    with pytest.raises(CLEAN, match=r"(?i)not seen.*\b7\b|\b7\b.*not seen"):
        est.partial_fit(X, y)
    # labels absent from `classes` on the first call are unseen as well
    y = np.where(Y_CLF == 2, 1, Y_CLF)
    y[0] = 2
    with pytest.raises(CLEAN, match=r"(?i)not seen.*\b2\b"):
        _small(MLPClassifier).partial_fit(X, y, classes=[0, 1])


def test_partial_fit_classifier_classes_changed():
    est = _small(MLPClassifier).partial_fit(X, Y_CLF, classes=[0, 1, 2])
    with pytest.raises(CLEAN, match=r"classes"):
        est.partial_fit(X, Y_CLF, classes=[0, 1, 2, 3])


def test_partial_fit_classifier_single_class_in_classes():
    # as fit: one class is learned and predicted (scikit-learn's behaviour)
    est = _small(MLPClassifier).partial_fit(X, np.zeros(len(X), int), classes=[0])
    np.testing.assert_array_equal(est.predict(X), np.zeros(len(X), int))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_partial_fit_wrong_number_of_features(est_cls):
    est = _small(est_cls)
    kw = {"classes": [0, 1, 2]} if est_cls is MLPClassifier else {}
    est.partial_fit(X, _y_for(est_cls), **kw)
    with pytest.raises(CLEAN, match=r"X has 2 features"):
        est.partial_fit(X[:, :2], _y_for(est_cls))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_partial_fit_bad_sample_weight(est_cls):
    est = _small(est_cls)
    kw = {"classes": [0, 1, 2]} if est_cls is MLPClassifier else {}
    with pytest.raises(CLEAN, match=r"Negative values"):
        est.partial_fit(X, _y_for(est_cls), sample_weight=-np.ones(len(X)), **kw)
    with pytest.raises(CLEAN, match=r"sample_weight\.shape"):
        est.partial_fit(X, _y_for(est_cls), sample_weight=np.ones(3), **kw)


def test_partial_fit_regressor_number_of_outputs_changed():
    est = _small(MLPRegressor).partial_fit(X, Y_REG)
    with pytest.raises(CLEAN, match=r"outputs"):
        est.partial_fit(X, np.c_[Y_REG, Y_REG])


def test_partial_fit_poisson_negative_y():
    est = _small(MLPRegressor, loss="poisson").partial_fit(X, np.abs(Y_REG))
    with pytest.raises(CLEAN, match=r"poisson.*y >= 0"):
        est.partial_fit(X, Y_REG)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_partial_fit_with_early_stopping_raises(est_cls):
    # scikit-learn: "partial_fit does not support early_stopping=True" (a
    # stream has no held-out validation set), from scratch or after fit
    est = _small(est_cls, early_stopping=True)
    kw = {"classes": [0, 1, 2]} if est_cls is MLPClassifier else {}
    with pytest.raises(CLEAN, match=r"partial_fit does not support early_stopping"):
        est.partial_fit(X, _y_for(est_cls), **kw)
    assert not hasattr(est, "coefs_")


# ---------------------------------------------- assigned / corrupted weights
def _fitted(est_cls, **params):
    return _small(est_cls, **params).fit(X, _y_for(est_cls))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_assigned_coefs_with_wrong_shape(est_cls):
    est = _fitted(est_cls)
    est.coefs_[0] = np.zeros((5, 5))
    with pytest.raises(CLEAN, match=r"coefs_\[0\].*shape"):
        est.predict(X)
    est = _fitted(est_cls, warm_start=True)
    est.intercepts_[-1] = np.zeros(7)
    with pytest.raises(CLEAN, match=r"intercepts_\[1\].*shape"):
        est.fit(X, _y_for(est_cls))
    est = _fitted(est_cls)
    est.coefs_ = est.coefs_[:1]
    with pytest.raises(CLEAN, match=r"one entry per layer"):
        est.predict(X)


def test_assigned_coefs_shape_message_is_readable():
    est = _fitted(MLPClassifier)
    est.coefs_[0] = np.zeros((5, 5))
    with pytest.raises(CLEAN) as info:
        est.predict(X)
    # "(np.int64(3), np.int64(3))" is NumPy 2's repr leaking into the message.
    assert "np.int64" not in str(info.value), str(info.value)
    assert "(3, 3)" in str(info.value)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_assigned_non_finite_coefs(est_cls):
    est = _fitted(est_cls)
    est.coefs_[0] = np.full(est.coefs_[0].shape, np.nan)
    with pytest.raises(CLEAN, match=r"NaN or infinity"):
        est.predict(X)


def test_coefs_assigned_to_an_unfitted_estimator_then_predict():
    est = MLPClassifier(hidden_layer_sizes=(3,))
    est.coefs_ = [np.zeros((3, 3)), np.zeros((3, 3))]
    est.intercepts_ = [np.zeros(3), np.zeros(3)]
    # Not fitted: no classes_, no layout. A NotFittedError (a ValueError) says so;
    # an AttributeError about a private attribute does not.
    with pytest.raises(CLEAN, match=r"not fitted"):
        est.predict(X)


# =============================================================================
# 2. Layouts and dtypes of the inputs
# =============================================================================


def _readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _layouts(A):
    """The same values in every layout and container the estimators accept."""
    A = np.asarray(A)
    wide = np.zeros((A.shape[0], 2 * A.shape[1]), dtype=A.dtype)
    wide[:, ::2] = A
    tall = np.repeat(A, 2, axis=0)
    return {
        "fortran": np.asfortranarray(A),
        "strided-rows": tall[::2],
        "strided-columns": wide[:, ::2],
        "column-slice": np.concatenate([A, A], axis=1)[:, : A.shape[1]],
        "readonly": _readonly(A),
        "readonly-fortran": _readonly(np.asfortranarray(A)),
        "list": A.tolist(),
        "float32": A.astype(np.float32),
        "float32-fortran": np.asfortranarray(A.astype(np.float32)),
        "int64": None,  # see test_integer_inputs
    }


LAYOUTS = [k for k in _layouts(X) if k != "int64"]


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_input_layouts_give_the_same_model(est_cls, dtype, layout):
    y = _y_for(est_cls)
    ref = _small(est_cls, dtype=dtype).fit(X, y)
    Xv = _layouts(X)[layout]
    est = _small(est_cls, dtype=dtype).fit(Xv, y)
    _assert_same_model(ref, est)
    # the same numbers, rounded to float32 when both the model and X are float32
    # (scikit-learn keeps float32)
    pred = est.predict(Xv)
    np.testing.assert_array_equal(ref.predict(X).astype(pred.dtype), pred)
    if est_cls is MLPClassifier:
        proba = est.predict_proba(Xv)
        np.testing.assert_array_equal(ref.predict_proba(X).astype(proba.dtype), proba)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_target_and_weight_layouts_give_the_same_model(est_cls, dtype):
    y = _y_for(est_cls)
    # float32-representable, so float32 and float64 weights are the same numbers
    sw = np.linspace(0.5, 2.0, len(y)).astype(np.float32).astype(np.float64)
    ref = _small(est_cls, dtype=dtype).fit(X, y, sample_weight=sw)
    for yv, swv in [
        (y.tolist(), sw.tolist()),
        (_readonly(y), _readonly(sw)),
        (np.repeat(y, 2)[::2], np.repeat(sw, 2)[::2]),
        (y.reshape(-1, 1) if est_cls is MLPRegressor else y, sw.astype(np.float32)),
    ]:
        est = _small(est_cls, dtype=dtype).fit(X, yv, sample_weight=swv)
        _assert_same_model(ref, est)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_integer_and_bool_inputs(est_cls, dtype):
    y = _y_for(est_cls)
    Xi = np.random.RandomState(1).randint(-3, 4, size=X.shape)
    ref = _small(est_cls, dtype=dtype).fit(Xi.astype(np.float64), y)
    for Xv in (
        Xi,
        Xi.astype(np.int32),
        np.asfortranarray(Xi),
        Xi.tolist(),
        _readonly(Xi),
    ):
        _assert_same_model(ref, _small(est_cls, dtype=dtype).fit(Xv, y))
    Xb = Xi > 0
    _assert_same_model(
        _small(est_cls, dtype=dtype).fit(Xb.astype(float), y),
        _small(est_cls, dtype=dtype).fit(Xb, y),
    )


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_readonly_everything(est_cls, dtype):
    """Read-only X, y, sample_weight through every path that touches them."""
    y = _y_for(est_cls)
    Xr, yr, swr = _readonly(X), _readonly(y), _readonly(np.linspace(0.5, 2, len(y)))
    kw = {"classes": _readonly([0, 1, 2])} if est_cls is MLPClassifier else {}
    for params in (
        {},
        {"early_stopping": True},
        {"shuffle": False},
        {"batch_size": "full", "clip_norm": 1.0},
    ):
        est = _small(est_cls, dtype=dtype, **params).fit(Xr, yr, sample_weight=swr)
        assert np.isfinite(_flat(est)).all()
        est.predict(Xr)
        est.score(Xr, yr, sample_weight=swr)
    est = _small(est_cls, dtype=dtype)
    est.partial_fit(Xr, yr, sample_weight=swr, **kw)
    est.partial_fit(Xr, yr, sample_weight=swr)
    est = _small(est_cls, dtype=dtype, warm_start=True).fit(Xr, yr)
    est.fit(Xr, yr)
    if est_cls is MLPClassifier:
        est.predict_proba(Xr)
        est.predict_log_proba(Xr)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_callers_arrays_are_never_modified(est_cls, dtype):
    """Inputs that need no copy (C-contiguous, the training dtype) included."""
    y = _y_for(est_cls)
    inputs = {
        "X": np.ascontiguousarray(X, dtype=dtype),
        "y": (
            np.array(y)
            if est_cls is MLPClassifier
            else np.ascontiguousarray(y, dtype=dtype)
        ),
        "y2d": np.ascontiguousarray(np.c_[Y_REG, -Y_REG], dtype=dtype),
        "sw": np.linspace(0.5, 2.0, len(y)).astype(dtype),
        "classes": np.array([0, 1, 2]),
    }
    before = {k: v.copy() for k, v in inputs.items()}
    a = inputs
    kw = {"classes": a["classes"]} if est_cls is MLPClassifier else {}
    for params in (
        {},
        {"early_stopping": True},
        {"shuffle": False},
        {"batch_size": "full"},
        {"class_weight": "balanced"},
    ):
        if "class_weight" in params and est_cls is MLPRegressor:
            continue
        est = _small(est_cls, dtype=dtype, **params).fit(
            a["X"], a["y"], sample_weight=a["sw"]
        )
        est.predict(a["X"])
        est.score(a["X"], a["y"], sample_weight=a["sw"])
        if est_cls is MLPClassifier:
            est.predict_proba(a["X"])
            est.predict_log_proba(a["X"])
    est = _small(est_cls, dtype=dtype)
    est.partial_fit(a["X"], a["y"], sample_weight=a["sw"], **kw)
    est.partial_fit(a["X"], a["y"], sample_weight=a["sw"])
    if est_cls is MLPRegressor:
        _small(est_cls, dtype=dtype).fit(a["X"], a["y2d"]).predict(a["X"])
    # warm start from user-assigned weights: the caller's weight arrays too
    est = _small(est_cls, dtype=dtype).fit(a["X"], a["y"])
    user_coefs = [c.copy() for c in est.coefs_]
    user_coefs_before = [c.copy() for c in user_coefs]
    est.coefs_ = user_coefs
    est.set_params(warm_start=True).fit(a["X"], a["y"])
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was modified")
    for c, c0 in zip(user_coefs, user_coefs_before):
        np.testing.assert_array_equal(c, c0, err_msg="assigned coefs_ were modified")


# =============================================================================
# 3. Divergence guard
# =============================================================================

_rng3 = np.random.RandomState(3)
X_UNSCALED = _rng3.randn(60, 4) * 1000.0 + 500.0
Y_UNSCALED_CLF = np.arange(60) % 3
Y_UNSCALED_REG = X_UNSCALED @ _rng3.randn(4) * 100.0


def _assert_finite_model(est):
    assert np.isfinite(_flat(est)).all(), "non-finite weights returned"
    assert all(np.isfinite(v) for v in est.loss_curve_)
    if isinstance(est, MLPClassifier):
        proba = est.predict_proba(X_UNSCALED)
        assert np.isfinite(proba).all(), "predict_proba is not finite"
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert np.isin(est.predict(X_UNSCALED), est.classes_).all()
    else:
        assert np.isfinite(est.predict(X_UNSCALED)).all(), "predictions are not finite"


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("optimizer", ["sgd", SGD()], ids=["sgd", "SGD()"])
def test_divergence_stops_with_a_warning_and_a_finite_model(est_cls, dtype, optimizer):
    y = Y_UNSCALED_CLF if est_cls is MLPClassifier else Y_UNSCALED_REG
    params = dict(
        hidden_layer_sizes=(5,),
        learning_rate_init=1e8,
        optimizer=optimizer,
        max_iter=30,
        batch_size=10,
        random_state=0,
        dtype=dtype,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = est_cls(**params).fit(X_UNSCALED, y)
    diverged = [
        w
        for w in caught
        if issubclass(w.category, ConvergenceWarning)
        and "diverg" in str(w.message).lower()
    ]
    assert diverged, [str(w.message) for w in caught]
    assert est.n_iter_ < 30
    assert len(est.loss_curve_) == est.n_iter_
    _assert_finite_model(est)
    if est.n_iter_ > 0:
        # "the last finite epoch's weights": a fit stopped there by max_iter.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = est_cls(**{**params, "max_iter": est.n_iter_}).fit(X_UNSCALED, y)
        np.testing.assert_array_equal(_flat(ref), _flat(est))


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_huge_learning_rate_never_returns_a_nan_model(est_cls, optimizer):
    y = Y_UNSCALED_CLF if est_cls is MLPClassifier else Y_UNSCALED_REG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = est_cls(
            hidden_layer_sizes=(5,),
            learning_rate_init=1e8,
            optimizer=optimizer,
            max_iter=10,
            batch_size=10,
            random_state=0,
        ).fit(X_UNSCALED, y)
    _assert_finite_model(est)


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_divergence_in_partial_fit_keeps_the_previous_model(est_cls):
    y = Y_UNSCALED_CLF if est_cls is MLPClassifier else Y_UNSCALED_REG
    kw = {"classes": [0, 1, 2]} if est_cls is MLPClassifier else {}
    est = est_cls(
        hidden_layer_sizes=(5,),
        learning_rate_init=1e8,
        optimizer="sgd",
        batch_size=10,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(6):
            est.partial_fit(X_UNSCALED, y, **kw)
            kw = {}
    _assert_finite_model(est)


def test_finite_weights_that_overflow_the_forward_pass_are_not_returned_silently():
    """Weights can be finite while the model's output is not (float32 overflow).

    The epoch loss is measured on each batch *before* its update, so the weights
    after the last update are never evaluated: here epoch 2 ends with weights
    ~1e21, the loss curve is finite, no divergence is reported, and every
    prediction is inf. With max_iter=3 the guard fires in epoch 3 and "restores"
    exactly those epoch-2 weights.
    """
    Xh = np.array([[1764052.34596766]])
    yh = np.array([0.40015721])
    for max_iter in (2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = MLPRegressor(
                hidden_layer_sizes=(1,),
                activation="identity",
                optimizer="sgd",
                batch_size=1,
                learning_rate_init=1e-6,
                max_iter=max_iter,
                shuffle=False,
                random_state=0,
            ).fit(Xh, yh)
        assert np.isfinite(_flat(est)).all()
        assert np.isfinite(est.predict(Xh)).all(), (
            f"max_iter={max_iter}: non-finite predictions {est.predict(Xh)} from "
            f"finite weights {_flat(est)}"
        )


def test_early_stopping_survives_a_diverging_epoch():
    """Validation scoring of a diverged epoch must not raise r2_score's error.

    With loss='poisson' the predictions are exp(raw): a diverging epoch gives inf
    validation predictions and r2_score raises "Input contains infinity", a
    message about no input the user passed. The divergence guard should handle
    it like a diverging training loss.
    """
    rng = np.random.RandomState(0)
    Xp = rng.rand(11, 3) > 0.5
    yp = np.full(11, 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPRegressor(
            hidden_layer_sizes=(2, 1),
            activation="tanh",
            optimizer="rmsprop",
            learning_rate_init=10.0,
            max_iter=5,
            shuffle=False,
            early_stopping=True,
            random_state=1,
            loss="poisson",
            alpha=0.0,
            n_iter_no_change=1,
            tol=0.0,
        ).fit(Xp, yp)
    assert np.isfinite(_flat(est)).all()
    assert np.isfinite(est.predict(Xp)).all()


# =============================================================================
# 4. Determinism
# =============================================================================


@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"early_stopping": True, "max_iter": 6},
        {"clip_norm": 0.5, "optimizer": "rmsprop"},
    ],
    ids=["plain", "early_stopping", "clip-rmsprop"],
)
def test_same_seed_and_threads_give_bit_identical_models(
    est_cls, dtype, n_threads, extra
):
    y = _y_for(est_cls)
    params = dict(
        shuffle=True,
        batch_size=7,
        dtype=dtype,
        n_threads=n_threads,
        random_state=42,
        **extra,
    )
    a = _small(est_cls, **params).fit(X, y)
    b = _small(est_cls, **params).fit(X, y)
    _assert_same_model(a, b)
    if extra.get("early_stopping"):
        assert a.validation_scores_ == b.validation_scores_
    # and a different seed gives a different model (the seed is used)
    c = _small(est_cls, **{**params, "random_state": 43}).fit(X, y)
    assert not np.array_equal(_flat(a), _flat(c))


# A network big enough that the engine's threaded paths run: every gemm of a
# batch has >= 2**22 multiply-adds (256 x 512 x 256, split into column blocks)
# and the optimizer sees >= 2**15 parameters (split into blocks).
_rngT = np.random.RandomState(7)
X_BIG = _rngT.randn(512, 512)
Y_BIG_CLF = _rngT.randint(0, 10, 512)
Y_BIG_REG = _rngT.randn(512, 2)
BIG = dict(
    hidden_layer_sizes=(256,), batch_size=256, max_iter=2, random_state=0, shuffle=True
)

needs_two_threads = pytest.mark.skipif(
    _engine.openmp_max_threads() < 2,
    reason="OpenMP allows one thread here (one core, OMP_NUM_THREADS=1 or no "
    "OpenMP): n_threads=2 is clipped to 1, the threaded paths cannot run",
)


def _big_fit(est_cls, **params):
    y = Y_BIG_CLF if est_cls is MLPClassifier else Y_BIG_REG
    return est_cls(**{**BIG, **params}).fit(X_BIG, y)


@needs_two_threads
@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("clip_norm", [None, 1.0])
def test_threaded_paths_are_bit_identical_for_fixed_n_threads(
    est_cls, dtype, clip_norm
):
    a = _big_fit(est_cls, dtype=dtype, n_threads=2, clip_norm=clip_norm)
    b = _big_fit(est_cls, dtype=dtype, n_threads=2, clip_norm=clip_norm)
    _assert_same_model(a, b)


@needs_two_threads
@pytest.mark.parametrize("est_cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"clip_norm": 1.0, "penalty": "elasticnet"},
        {"early_stopping": True, "max_iter": 3},
        # batches of 64 rows: the 512 -> 256 layer's forward is split by the
        # rows of W (split-K), its partial products added in block order
        {"batch_size": 64},
    ],
    ids=["plain", "clip-elasticnet", "early_stopping", "split-k"],
)
def test_n_threads_does_not_change_the_model(est_cls, dtype, extra):
    """n_threads=1 and n_threads=2 give bit-identical weights.

    The engine's column blocks and optimizer blocks depend on the shapes only,
    and partial sums are combined in block order, so the thread count only
    decides who computes a block. (With the first engine, whose blocks followed
    n_threads, float32 weights and every clip_norm run differed in the last
    bits: OpenBLAS does not round a column block of an sgemm as it rounds the
    whole product, and the clipping norm was summed per thread.)
    """
    one = _big_fit(est_cls, dtype=dtype, n_threads=1, **extra)
    two = _big_fit(est_cls, dtype=dtype, n_threads=2, **extra)
    _assert_same_model(one, two)
    np.testing.assert_array_equal(one.predict(X_BIG), two.predict(X_BIG))


def test_the_epoch_loss_does_not_depend_on_how_the_epoch_is_cut_into_calls(
    monkeypatch,
):
    """An epoch runs as engine calls sized by their duration (a tenth of a
    second each); the engine carries the loss sums from call to call, so the
    loss curve has the same bits whether every batch is its own call or the
    epoch is one."""
    from fastfit import _training

    sw = np.random.RandomState(0).uniform(0.1, 1.0, 400)
    curves = []
    for seconds in (1e-12, 1e12):
        monkeypatch.setattr(_training, "CALL_SECONDS", seconds)
        est = MLPRegressor(
            hidden_layer_sizes=(16,), batch_size=4, max_iter=5, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_BIG[:400], Y_BIG_REG[:400], sample_weight=sw)
        curves.append(est.loss_curve_)
    assert curves[0] == curves[1]


@needs_two_threads
@pytest.mark.parametrize(
    "est_cls, loss, y",
    [
        (MLPClassifier, None, Y_BIG_CLF),
        (MLPClassifier, None, Y_BIG_REG > 0),  # multilabel: sigmoid log loss
        (MLPRegressor, "squared_error", np.tile(Y_BIG_REG, 3)),
        (MLPRegressor, "absolute_error", np.tile(Y_BIG_REG, 3)),
        (MLPRegressor, "huber", np.tile(Y_BIG_REG, 3)),
        (MLPRegressor, "poisson", np.abs(np.tile(Y_BIG_REG, 3))),
        (MLPRegressor, "quantile", np.tile(Y_BIG_REG, 3)),
    ],
    ids=["softmax", "sigmoid", "squared", "absolute", "huber", "poisson", "quantile"],
)
def test_a_batch_loss_in_row_blocks_is_the_loss_of_one_thread(est_cls, loss, y):
    """A batch of at least 1024 outputs has its loss computed in row blocks
    on the threads; each row's term is added in row order by the caller, so
    the loss curve and the model keep their bits, sample weights included."""
    params = dict(BIG, batch_size=512, max_iter=3)
    if loss is not None:
        params["loss"] = loss
    sw = np.random.RandomState(4).rand(len(y)) + 0.5
    one = est_cls(**params, n_threads=1).fit(X_BIG, y, sample_weight=sw)
    two = est_cls(**params, n_threads=2).fit(X_BIG, y, sample_weight=sw)
    _assert_same_model(one, two)


@needs_two_threads
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_prediction_does_not_depend_on_n_threads(dtype):
    est = _big_fit(MLPRegressor, dtype=dtype, n_threads=2, max_iter=1)
    p2 = est.predict(X_BIG)
    np.testing.assert_array_equal(p2, est.predict(X_BIG))
    np.testing.assert_array_equal(p2, est.set_params(n_threads=1).predict(X_BIG))
    np.testing.assert_array_equal(p2, est.set_params(n_threads=None).predict(X_BIG))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize(
    "l1, l2", [(1e-4, 0.0), (0.0, 1e-4), (1e-4, 1e-4)], ids=["l1", "l2", "elasticnet"]
)
def test_penalty_value_does_not_depend_on_buffer_alignment(dtype, l1, l2):
    """The optimizer pass returns the penalty; it must not depend on where the
    parameter buffer happens to start in memory (which varies from fit to fit).

    BLAS asum (and, in principle, dot) kernels peel to an aligned boundary, so
    the summation order -- and the float result -- depends on the address: the
    reported loss_curve_ (used by tol / n_iter_no_change and the plateau
    schedules) then differs between two identical fits.
    """
    from fastfit._engine import OPTIMIZER_KINDS, optimizer_step_py

    n, n_weights = 70000, 65536
    p0 = np.random.RandomState(1).uniform(-0.1, 0.1, n)
    g0 = np.random.RandomState(2).randn(n)
    penalties = set()
    for offset in range(16):
        p = np.empty(n + 16, dtype)[offset : offset + n]
        p[...] = p0
        g = np.empty(n + 16, dtype)[offset : offset + n]
        g[...] = g0
        state = np.zeros((1, n), dtype)
        penalties.add(
            optimizer_step_py(
                OPTIMIZER_KINDS["sgd"],
                p,
                g,
                state,
                np.zeros(3),
                1e-3,
                1,
                n_weights,
                l2,
                l1,
                1.0,
                1,
            )
        )
    assert len(penalties) == 1, sorted(penalties)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_loss_curve_is_reproducible_with_l1_penalties(penalty):
    curves = set()
    keep = []
    for i in range(6):
        est = _big_fit(MLPClassifier, dtype=np.float32, n_threads=1, penalty=penalty)
        curves.add(tuple(est.loss_curve_))
        keep.append(np.empty(4 * i + 1, np.float32))  # vary the heap a little
    assert len(curves) == 1, sorted(curves)


# =============================================================================
# 7. Crash battery: bad inputs in one subprocess
# =============================================================================

_BATTERY = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from fastfit import MLPClassifier, MLPRegressor
from fastfit.optimizers import Adam, SGD
from fastfit.schedules import StepLR

rng = np.random.RandomState(0)
X = rng.randn(20, 3)
y = np.arange(20) % 2
yr = rng.randn(20)

def C(**k):
    p = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0); p.update(k)
    return MLPClassifier(**p)

def R(**k):
    p = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0); p.update(k)
    return MLPRegressor(**p)

def fitted(E=C, yy=None, **k):
    return E(**k).fit(X, y if yy is None else yy)

def assign(attr, index, value, then, **k):
    def run():
        est = fitted(**k)
        getattr(est, attr)[index] = value
        return then(est)
    return run

def bad_X_obj():
    A = np.empty((20, 3), dtype=object); A[:] = object(); return C().fit(A, y)

def unfitted_with_coefs():
    est = C(); est.coefs_ = [np.zeros((3, 3)), np.zeros((3, 1))]
    est.intercepts_ = [np.zeros(3), np.zeros(1)]
    return est.predict(X)

def warm_wrong_layers():
    est = fitted(warm_start=True); est.coefs_ = est.coefs_ + [np.zeros((1, 1))]
    est.intercepts_ = est.intercepts_ + [np.zeros(1)]; return est.fit(X, y)

def warm_shape_then_predict():
    est = fitted(warm_start=True); est.coefs_[1] = np.zeros((1, 3))
    try:
        est.fit(X, y)
    except ValueError:
        pass
    return est.predict(X)

def fortran_coefs():
    est = fitted(); est.coefs_[0] = np.asfortranarray(est.coefs_[0] * 2)
    return est.predict(X)

def float16_coefs_warm():
    est = fitted(warm_start=True); est.coefs_[0] = est.coefs_[0].astype(np.float16)
    return est.fit(X, y).predict(X)

def list_coefs():
    est = fitted(); est.coefs_ = [c.tolist() for c in est.coefs_]; return est.predict(X)

def partial_fit_then_wrong():
    est = C().partial_fit(X, y, classes=[0, 1])
    return est.partial_fit(X[:, :2], y)

def early_stopping_tiny():
    return C(early_stopping=True).fit(X[:3], y[:3])

CASES = {
    "predict-0-rows": lambda: fitted().predict(X[:0]),
    "predict_proba-0-rows": lambda: fitted().predict_proba(X[:0]),
    "regressor-predict-0-rows": lambda: fitted(R, yr).predict(X[:0]),
    "predict-0-features": lambda: fitted().predict(np.empty((5, 0))),
    "predict-wrong-features": lambda: fitted().predict(X[:, :1]),
    "predict-too-many-features": lambda: fitted().predict(np.c_[X, X]),
    "predict-1d": lambda: fitted().predict(X[0]),
    "predict-before-fit": lambda: C().predict(X),
    "fit-0-rows": lambda: C().fit(X[:0], y[:0]),
    "fit-1-row": lambda: R().fit(X[:1], yr[:1]).predict(X),
    "huge-batch_size": lambda: C(batch_size=2**62).fit(X, y).predict(X),
    "batch_size-1": lambda: C(batch_size=1).fit(X, y).predict(X),
    "y-nan": lambda: R().fit(X, np.full(20, np.nan)),
    "y-inf": lambda: R().fit(X, np.full(20, np.inf)),
    "y-object-None": lambda: C().fit(X, np.array([None] * 20, dtype=object)),
    "y-object-mixed": lambda: C().fit(X, np.array([1, "a"] * 10, dtype=object)),
    "y-wrong-length": lambda: C().fit(X, y[:5]),
    "y-3d": lambda: R().fit(X, np.zeros((20, 1, 1))),
    "y-0-columns": lambda: R().fit(X, np.zeros((20, 0))),
    "y-beyond-float32": lambda: R().fit(X, np.full(20, 1e39)).predict(X),
    "X-object-non-numeric": bad_X_obj,
    "X-object-None": lambda: C().fit(np.array([[None] * 3] * 20), y),
    "X-ragged": lambda: C().fit([[1, 2, 3], [1, 2]] * 10, y),
    "X-nan": lambda: C().fit(np.full((20, 3), np.nan), y),
    "X-3d": lambda: C().fit(X[:, :, None], y),
    "X-beyond-float32": lambda: C().fit(X * 1e39, y),
    "sample_weight-negative": lambda: C().fit(X, y, sample_weight=-np.ones(20)),
    "sample_weight-wrong-length": lambda: C().fit(X, y, sample_weight=np.ones(3)),
    "sample_weight-nan": lambda: C().fit(X, y, sample_weight=np.full(20, np.nan)),
    "sample_weight-strings": lambda: C().fit(X, y, sample_weight=np.array(["a"] * 20)),
    "coefs-wrong-shape-warm-fit": assign("coefs_", 0, np.zeros((5, 5)),
                                         lambda e: e.fit(X, y), warm_start=True),
    "coefs-wrong-shape-predict": assign("coefs_", 0, np.zeros((5, 5)),
                                        lambda e: e.predict(X)),
    "coefs-transposed-output": assign("coefs_", 1, np.zeros((1, 3)),
                                      lambda e: e.predict(X)),
    "coefs-3d": assign("coefs_", 0, np.zeros((3, 3, 1)), lambda e: e.predict(X)),
    "coefs-scalar": assign("coefs_", 0, 0.0, lambda e: e.predict(X)),
    "intercepts-wrong-shape": assign("intercepts_", 0, np.zeros(9),
                                     lambda e: e.predict_proba(X)),
    "intercepts-wrong-shape-warm-fit": assign("intercepts_", 1, np.zeros((2, 2)),
                                              lambda e: e.fit(X, y), warm_start=True),
    "coefs-nan": assign("coefs_", 0, np.full((3, 3), np.nan), lambda e: e.predict(X)),
    "coefs-strings": assign("coefs_", 0, np.full((3, 3), "a"), lambda e: e.predict(X)),
    "coefs-None": lambda: (lambda e: (setattr(e, "coefs_", None), e.predict(X)))(fitted()),
    "coefs-fortran": fortran_coefs,
    "coefs-float16-warm": float16_coefs_warm,
    "coefs-lists": list_coefs,
    "coefs-extra-layer-warm": warm_wrong_layers,
    "warm-failed-then-predict": warm_shape_then_predict,
    "unfitted-with-assigned-coefs": unfitted_with_coefs,
    "partial_fit-wrong-features": partial_fit_then_wrong,
    "partial_fit-no-classes": lambda: C().partial_fit(X, y),
    "early-stopping-tiny": early_stopping_tiny,
    "hidden-70-layers": lambda: C(hidden_layer_sizes=(1,) * 70).fit(X, y),
    "hidden-62-layers": lambda: C(hidden_layer_sizes=(1,) * 62, max_iter=1).fit(X, y).predict(X),
    "hidden-empty": lambda: C(hidden_layer_sizes=()).fit(X, y).predict_proba(X),
    "n_threads-huge": lambda: C(n_threads=10**6).fit(X, y).predict(X),
    "n_threads-very-negative": lambda: C(n_threads=-1000).fit(X, y).predict(X),
    "adam-beta-1.5": lambda: C(optimizer=Adam(beta_1=1.5)).fit(X, y),
    "steplr-gamma-neg": lambda: C(schedule=StepLR(gamma=-1)).fit(X, y),
    "lr-1e300": lambda: C(learning_rate_init=1e300, optimizer=SGD()).fit(X * 1e30, y).predict_proba(X),
    "alpha-1e300": lambda: C(alpha=1e300).fit(X, y).predict(X),
    "poisson-huge-y": lambda: R(loss="poisson").fit(X, np.full(20, 1e300)).predict(X),
    "dtype-int": lambda: C(dtype="int32").fit(X, y),
    "verbose-2-many-batches": lambda: C(verbose=2, batch_size=1, max_iter=1).fit(
        np.repeat(X, 3, axis=0), np.repeat(y, 3)),
}

only = sys.argv[1:]
results = {}
for name, case in CASES.items():
    if only and name not in only:
        continue
    # A marker before each case: if the process dies, the last marker names it.
    print("\nRUNNING " + name, flush=True)
    try:
        case()
        results[name] = "ok"
    except BaseException as exc:  # noqa: BLE001 - report everything, crash nothing
        results[name] = type(exc).__name__ + (
            " (ValueError)" if isinstance(exc, ValueError) else
            " (TypeError)" if isinstance(exc, TypeError) else "") + ": " + str(exc)[:200]
print("\nRESULTS " + json.dumps(results), flush=True)
"""


@pytest.fixture(scope="module")
def battery():
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _BATTERY],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return proc


def test_bad_inputs_never_crash_the_process(battery):
    proc = battery
    running = [l for l in proc.stdout.splitlines() if l.startswith("RUNNING ")]
    last = running[-1][len("RUNNING ") :] if running else "<none>"
    assert proc.returncode >= 0, (
        f"the process was killed by signal {-proc.returncode} during case {last!r}"
        f"\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert proc.returncode == 0, (
        f"exit code {proc.returncode} during case {last!r}\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert "RESULTS " in proc.stdout
    assert len(running) >= 30


def test_bad_inputs_end_in_clean_errors(battery):
    """Every case of the battery either works or raises ValueError/TypeError."""
    if battery.returncode != 0:
        pytest.fail(
            "the battery subprocess failed; see test_bad_inputs_never_crash_the_process"
        )
    line = [l for l in battery.stdout.splitlines() if l.startswith("RESULTS ")][-1]
    results = json.loads(line[len("RESULTS ") :])
    unclean = {
        k: v
        for k, v in results.items()
        if v != "ok"
        and "(ValueError)" not in v
        and "(TypeError)" not in v
        and not v.startswith("MemoryError")
    }
    assert not unclean, json.dumps(unclean, indent=1)
    # inputs that must not be accepted silently
    for name in [
        "y-nan",
        "y-inf",
        "X-nan",
        "coefs-nan",
        "coefs-wrong-shape-predict",
        "coefs-wrong-shape-warm-fit",
        "intercepts-wrong-shape",
        "sample_weight-negative",
        "partial_fit-no-classes",
        "dtype-int",
        "y-beyond-float32",
        "unfitted-with-assigned-coefs",
    ]:
        assert results[name] != "ok", f"{name} was accepted"


# =============================================================================
# 8. Thread safety: fits in concurrent Python threads
# =============================================================================


def _run_in_threads(jobs, stagger=0.0):
    errors = []

    def wrap(job):
        try:
            job()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
        time.sleep(stagger)
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a fit did not finish"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_two_small_fits_in_threads_match_sequential(dtype):
    Xl = np.random.RandomState(5).randn(400, 6)
    yc = (Xl[:, 0] > 0).astype(int) + (Xl[:, 1] > 0)
    yr = Xl @ np.arange(6.0)
    make = [
        lambda: MLPClassifier(
            (8,), max_iter=20, batch_size=16, random_state=1, dtype=dtype, n_threads=1
        ),
        lambda: MLPRegressor(
            (8,),
            max_iter=20,
            batch_size=16,
            random_state=2,
            dtype=dtype,
            n_threads=1,
            early_stopping=True,
        ),
    ]
    ys = [yc, yr]
    sequential = [make[i]().fit(Xl, ys[i]) for i in range(2)]
    for _ in range(3):
        models = [m() for m in make]
        _run_in_threads(
            [lambda i=i, models=models: models[i].fit(Xl, ys[i]) for i in range(2)]
        )
        for s, m in zip(sequential, models):
            _assert_same_model(s, m)
            np.testing.assert_array_equal(s.predict(Xl), m.predict(Xl))


_THREADS_SCRIPT = r"""
import json, sys, threading, time, warnings
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
warnings.simplefilter("ignore")
from fastfit import MLPClassifier, MLPRegressor

scenario, n_threads = sys.argv[1], int(sys.argv[2])
rng = np.random.RandomState(7)
X = rng.randn(512, 512)
yc = rng.randint(0, 10, 512)
yr = rng.randn(512, 2)
SHORT = dict(hidden_layer_sizes=(128,), batch_size=128, max_iter=20, random_state=0,
             n_threads=n_threads, tol=0.0, n_iter_no_change=10**6)
# several times the short fit's work, so that it outlives the short fit even
# when the two threads share the cores unevenly
LONG = dict(hidden_layer_sizes=(256,), batch_size=256, max_iter=100, random_state=1,
            n_threads=n_threads, tol=0.0, n_iter_no_change=10**6)

def blas():
    return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

def flat(est):
    return np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_])

def fitting(est):
    # inside its epochs: the first epoch has been recorded
    return len(getattr(est, "loss_curve_", ())) > 0

before = blas()
t0 = time.perf_counter()
ref_short = MLPClassifier(**SHORT).fit(X, yc)
t_short = time.perf_counter() - t0
t0 = time.perf_counter()
ref_long = MLPRegressor(**LONG).fit(X, yr)
t_long = time.perf_counter() - t0
a, b = MLPClassifier(**SHORT), MLPRegressor(**LONG)
out = {}
if scenario == "overlap":
    # the short fit starts first and ends first, the long one outlives it
    ta = threading.Thread(target=a.fit, args=(X, yc))
    tb = threading.Thread(target=b.fit, args=(X, yr))
    t0 = time.perf_counter()
    ta.start()
    # start the long fit once the short one has pinned BLAS (is inside its fit)
    deadline = time.perf_counter() + 30
    while not fitting(a) and time.perf_counter() < deadline:
        time.sleep(0.001)
    out["overlapped"] = ta.is_alive()
    tb.start()
    ta.join(); out["t_short_in_thread"] = time.perf_counter() - t0
    out["long_outlived_short"] = tb.is_alive()
    tb.join(); out["t_long_in_thread"] = time.perf_counter() - t0
    out["short_equal"] = bool(np.array_equal(flat(ref_short), flat(a)))
    out["long_equal"] = bool(np.array_equal(flat(ref_long), flat(b)))
elif scenario == "worker-while-main-limits":
    # the main thread holds a BLAS limit (user code, a library) while a worker
    # thread fits: the fit must still run the way it runs in the main thread
    with threadpool_limits(limits=before[-1], user_api="blas"):
        ta = threading.Thread(target=a.fit, args=(X, yc))
        t0 = time.perf_counter()
        ta.start(); ta.join()
        out["t_short_in_thread"] = time.perf_counter() - t0
    out["short_equal"] = bool(np.array_equal(flat(ref_short), flat(a)))
out["t_short_sequential"] = t_short
out["t_long_sequential"] = t_long
out["blas_before"] = before
out["blas_after"] = blas()
print("RESULT " + json.dumps(out))
"""


def _threads_scenario(scenario, n_threads):
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(fastfit.__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT, scenario, str(n_threads)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_overlapping_fits_in_threads_match_sequential_and_restore_blas():
    """A short fit and a long one overlap; the short one starts and ends first.

    Run in a subprocess: the process-wide BLAS thread setting is what is tested.
    Each fit pins BLAS to one thread with threadpoolctl while it runs. With
    OpenBLAS' pthreads layer (SciPy's wheels) threadpoolctl lets only one
    "controlling" thread set the limit and silently ignores the others: the long
    fit's pin is a no-op, the short fit's exit restores multi-threaded BLAS while
    the long fit still trains (different rounding, and BLAS threads on top of
    the engine's), and the long fit's exit then "restores" the value 1 it saw on
    entry, leaving BLAS single-threaded for the rest of the process.
    """
    r = _threads_scenario("overlap", 1)
    assert r["overlapped"] and r["long_outlived_short"], (
        f"the scenario did not overlap the two fits as intended: {r}"
    )
    assert r["short_equal"], f"the short fit differs from its sequential twin: {r}"
    assert r["long_equal"], f"the long fit differs from its sequential twin: {r}"
    assert r["blas_after"] == r["blas_before"], (
        f"concurrent fits changed the process' BLAS threads: {r}"
    )


def test_fit_in_a_worker_thread_while_main_thread_limits_blas():
    """A fit in a worker thread must not depend on what the main thread does.

    threadpoolctl ignores the worker's BLAS pin while another thread controls
    OpenBLAS, so the fit runs on multi-threaded BLAS: different rounding than the
    same fit in the main thread, and much slower (BLAS threads fight the engine's).
    """
    r = _threads_scenario("worker-while-main-limits", 1)
    assert r["short_equal"], f"the fit in the worker thread differs: {r}"
