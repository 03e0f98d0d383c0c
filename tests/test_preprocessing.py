"""fastfit.preprocessing: RealMLP's robust scaling and smooth clipping.

Checked against a NumPy transcription of the formula, on constant, NaN and
extreme columns, for dtype preservation and untouched inputs, and against
scikit-learn's contract (estimator checks, Pipeline, clone, pickle).
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import estimator_checks_generator

from fastfit import MLPClassifier
from fastfit.preprocessing import RobustScaleSmoothClip


def reference(X_fit, X, quantile_range=(25.0, 75.0), clip_scale=3.0):
    """The formula, transcribed column by column (no NaN)."""
    q_min, q_max = quantile_range
    out = np.empty(X.shape)
    for j in range(X.shape[1]):
        col = X_fit[:, j].astype(np.float64)
        median = np.median(col)
        spread = np.percentile(col, q_max) - np.percentile(col, q_min)
        if spread == 0:
            spread = (q_max - q_min) / 100 * (col.max() - col.min())
        s = 1 / (spread + 1e-30) if spread > 0 else 0.0
        z = s * (X[:, j] - median)
        out[:, j] = z if clip_scale is None else z / np.sqrt(1 + (z / clip_scale) ** 2)
    return out


def _data(n=200, seed=0):
    """Columns of several shapes: normal, heavy-tailed with outliers, skewed,
    mostly one value (equal quartiles, the min-max fallback), integers, and
    constant."""
    rng = np.random.RandomState(seed)
    spiky = np.zeros(n)
    spiky[:5] = rng.uniform(-4, 9, size=5)
    return np.column_stack(
        [
            rng.normal(10, 3, n),
            rng.standard_cauchy(n) * 100,
            rng.lognormal(0, 2, n),
            spiky,
            rng.randint(0, 4, n).astype(float),
            np.full(n, 7.5),
        ]
    )


# --------------------------------------------------------------------------
# the formula
# --------------------------------------------------------------------------


def test_matches_the_formula_on_training_and_new_data():
    X, X_new = _data(seed=0), _data(seed=1) * 3 - 1
    tr = RobustScaleSmoothClip().fit(X)
    np.testing.assert_allclose(tr.transform(X), reference(X, X), rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        tr.transform(X_new), reference(X, X_new), rtol=1e-12, atol=0
    )


def test_the_fallback_and_the_constant_column_are_exercised():
    X = _data()
    tr = RobustScaleSmoothClip().fit(X)
    # column 3 has equal quartiles but a range: 1 / (0.5 * (max - min))
    assert np.percentile(X[:, 3], 25) == np.percentile(X[:, 3], 75)
    assert tr.scale_[3] == 1 / (0.5 * (X[:, 3].max() - X[:, 3].min()))
    # column 5 is constant
    assert tr.scale_[5] == 0
    assert tr.center_[5] == 7.5


@pytest.mark.parametrize("quantile_range", [(25.0, 75.0), (10, 90), (0, 100), (5, 50)])
@pytest.mark.parametrize("clip_scale", [3.0, 1, 0.5, None])
def test_matches_the_formula_for_every_parameter(quantile_range, clip_scale):
    X, X_new = _data(seed=2), _data(seed=3)
    tr = RobustScaleSmoothClip(quantile_range=quantile_range, clip_scale=clip_scale)
    tr.fit(X)
    expected = reference(X, X_new, quantile_range, clip_scale)
    np.testing.assert_allclose(tr.transform(X_new), expected, rtol=1e-12, atol=0)


def test_the_clip_is_odd_monotone_bounded_and_linear_at_zero():
    tr = RobustScaleSmoothClip(clip_scale=2.0, quantile_range=(0, 100))
    tr.fit(np.array([[-1.0], [0.0], [1.0]]))
    assert tr.center_[0] == 0 and tr.scale_[0] == 0.5
    v = np.logspace(-8, 8, 1001)
    X = np.concatenate([-v[::-1], [0.0], v])[:, None]
    out = tr.transform(X)[:, 0]
    np.testing.assert_array_equal(out, -out[::-1])
    assert np.all(np.diff(out) >= 0) and np.all(np.diff(out[900:-900]) > 0)
    assert np.all(np.abs(out) <= 2) and out[-1] > 2 - 1e-12
    # slope 1 at zero: z = 0.5 x passes unchanged
    np.testing.assert_allclose(out[1002:1102], 0.5 * v[:100], rtol=1e-12)


@pytest.mark.parametrize("clip_scale", [3.0, 0.25])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturates_without_overflow(dtype, clip_scale):
    # z far beyond sqrt(finfo.max) (where squaring overflows), z / clip_scale
    # overflowing (clip_scale < 1) and x - center overflowing to inf all end at
    # +-clip_scale, never 0 or NaN
    big = np.finfo(dtype).max
    X = np.array([[-1.0], [0.0], [1.0]], dtype=dtype)
    tr = RobustScaleSmoothClip(clip_scale=clip_scale).fit(X)
    X_far = np.array([[big], [-big], [big / 1e6], [-np.sqrt(big) * 10]], dtype=dtype)
    c = clip_scale
    np.testing.assert_array_equal(tr.transform(X_far)[:, 0], [c, -c, c, -c])
    tr.center_ = np.array([-big], dtype=np.float64)  # x - center overflows
    assert tr.transform(np.array([[big]], dtype=dtype))[0, 0] == c


def test_the_factor_stays_finite_for_a_subnormal_spread():
    X = np.array([[0.0], [5e-324], [1e-323], [1.5e-323]])
    tr = RobustScaleSmoothClip().fit(X)
    assert np.isfinite(tr.scale_).all() and tr.scale_[0] > 0
    assert np.isfinite(tr.transform(X)).all()


# --------------------------------------------------------------------------
# constant columns and NaN
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_columns_give_zero(dtype):
    big = np.finfo(dtype).max
    X = np.column_stack([np.full(10, 3.0), np.full(10, -big), np.arange(10.0)])
    X = X.astype(dtype)
    tr = RobustScaleSmoothClip().fit(X)
    X_new = np.array([[3.0, big, 1.0], [-1e30, -big, 2.0], [1e6, 0.0, 3.0]], dtype)
    out = tr.transform(X_new)
    assert np.all(out[:, :2] == 0) and not np.signbit(out[:, :2]).any()
    assert np.isfinite(out).all()
    for clip_scale in (None, 1.0):
        out = RobustScaleSmoothClip(clip_scale=clip_scale).fit(X).transform(X_new)
        assert np.all(out[:, :2] == 0)


def test_a_single_row_gives_zeros():
    X = np.array([[1.0, -2.0, 1e10]])
    out = RobustScaleSmoothClip().fit_transform(X)
    np.testing.assert_array_equal(out, np.zeros((1, 3)))


def test_nan_is_ignored_by_fit_and_kept_by_transform():
    X = _data()
    rng = np.random.RandomState(0)
    X_nan = X.copy()
    X_nan[rng.uniform(size=X.shape) < 0.2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = RobustScaleSmoothClip().fit(X_nan)
        out = tr.transform(X_nan)
    # each column's statistics are those of its non-NaN values
    for j in range(X.shape[1]):
        col = X_nan[:, j]
        kept = col[~np.isnan(col)][:, None]
        ref = RobustScaleSmoothClip().fit(kept)
        np.testing.assert_allclose(tr.center_[j], ref.center_[0], rtol=1e-15)
        np.testing.assert_allclose(tr.scale_[j], ref.scale_[0], rtol=1e-15)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X_nan))
    filled = np.where(np.isnan(X_nan), tr.center_, X_nan)
    np.testing.assert_array_equal(
        out[~np.isnan(X_nan)], tr.transform(filled)[~np.isnan(X_nan)]
    )


def test_an_all_nan_column_is_treated_as_constant():
    X = np.column_stack([np.arange(5.0), np.full(5, np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = RobustScaleSmoothClip().fit(X)
    assert tr.center_[1] == 0 and tr.scale_[1] == 0
    out = tr.transform(np.array([[1.0, 4.0], [2.0, np.nan]]))
    assert out[0, 1] == 0 and np.isnan(out[1, 1])


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_is_refused(value):
    X = _data()
    X[3, 1] = value
    with pytest.raises(ValueError, match="infinity"):
        RobustScaleSmoothClip().fit(X)
    tr = RobustScaleSmoothClip().fit(_data())
    with pytest.raises(ValueError, match="infinity"):
        tr.transform(X)


# --------------------------------------------------------------------------
# dtypes, copies, refused input, parameters
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.float16, np.float64),
    ],
)
def test_dtype(dtype, expected):
    X = (_data() * 10).astype(dtype)
    tr = RobustScaleSmoothClip().fit(X)
    assert tr.center_.dtype == tr.scale_.dtype == np.float64
    out = tr.transform(X)
    assert out.dtype == expected
    np.testing.assert_allclose(
        out, reference(X.astype(np.float64), X.astype(np.float64)), rtol=2e-6, atol=1e-6
    )


def test_float32_agrees_with_float64():
    X = _data().astype(np.float32)
    out32 = RobustScaleSmoothClip().fit_transform(X)
    out64 = RobustScaleSmoothClip().fit_transform(X.astype(np.float64))
    np.testing.assert_allclose(out32, out64, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_inputs_are_not_modified(dtype, order):
    X = np.asarray(_data(), dtype=dtype, order=order)
    X[::7, 2] = np.nan
    before = X.copy()
    tr = RobustScaleSmoothClip(copy=False).fit(X)  # fit never writes
    np.testing.assert_array_equal(X, before)
    out = tr.set_params(copy=True).transform(X)
    np.testing.assert_array_equal(X, before)
    assert not np.shares_memory(out, X)
    np.testing.assert_array_equal(RobustScaleSmoothClip().fit_transform(X), out)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_false_transforms_in_place(dtype):
    X = _data().astype(dtype)
    expected = RobustScaleSmoothClip().fit(X).transform(X)
    tr = RobustScaleSmoothClip(copy=False).fit(X)
    out = tr.transform(X)
    assert np.shares_memory(out, X)
    np.testing.assert_array_equal(X, expected)
    # a read-only array is copied, not written
    X_ro = _data().astype(dtype)
    X_ro.flags.writeable = False
    np.testing.assert_array_equal(tr.transform(X_ro), expected)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_is_refused(fmt):
    X = sp.random(20, 4, density=0.3, format=fmt, random_state=0)
    with pytest.raises(TypeError, match="sparse input.*dense"):
        RobustScaleSmoothClip().fit(X)
    tr = RobustScaleSmoothClip().fit(X.toarray())
    with pytest.raises(TypeError, match="sparse input"):
        tr.transform(X)


@pytest.mark.parametrize(
    "quantile_range",
    [(75.0, 25.0), (50, 50), (-1, 50), (25, 101), (25,), (1, 2, 3), (True, 50)],
)
def test_invalid_quantile_range(quantile_range):
    with pytest.raises(ValueError, match="quantile_range"):
        RobustScaleSmoothClip(quantile_range=quantile_range).fit(_data())


@pytest.mark.parametrize(
    "params",
    [
        {"clip_scale": 0.0},
        {"clip_scale": -1.0},
        {"clip_scale": np.inf},
        {"clip_scale": True},
        {"clip_scale": "3"},
        {"quantile_range": [25, 75]},
        {"copy": "yes"},
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        RobustScaleSmoothClip(**params).fit(_data())


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = _data()
    names = [f"f{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=names)
    tr = RobustScaleSmoothClip().fit(df)
    assert list(tr.feature_names_in_) == names
    assert list(tr.get_feature_names_out()) == names
    np.testing.assert_array_equal(
        tr.transform(df), RobustScaleSmoothClip().fit(X).transform(X)
    )
    out = tr.set_output(transform="pandas").transform(df)
    assert list(out.columns) == names
    assert list(RobustScaleSmoothClip().fit(X).get_feature_names_out()) == [
        f"x{j}" for j in range(X.shape[1])
    ]


# --------------------------------------------------------------------------
# scikit-learn's contract
# --------------------------------------------------------------------------


def _check_id(check):
    func = getattr(check, "func", check)
    kwargs = getattr(check, "keywords", {})
    extra = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    return func.__name__ + (f"({extra})" if extra else "")


@pytest.mark.parametrize(
    "estimator, check",
    [
        pytest.param(est, check, id=_check_id(check))
        for est, check in estimator_checks_generator(
            RobustScaleSmoothClip(), legacy=True
        )
    ],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_in_a_pipeline_before_the_classifier():
    X, y = make_classification(
        n_samples=400, n_features=8, n_informative=5, random_state=0
    )
    rng = np.random.RandomState(0)
    X = X * rng.lognormal(0, 2, size=8) + rng.normal(0, 100, size=8)
    X[rng.uniform(size=X.shape) < 0.01] *= 1e4  # outliers
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    params = dict(
        hidden_layer_sizes=(16,), max_iter=40, learning_rate_init=0.01, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(RobustScaleSmoothClip(), MLPClassifier(**params))
        pipe.fit(X_train, y_train)
        # the pipeline is the transform followed by the model, bit for bit
        tr = RobustScaleSmoothClip().fit(X_train)
        clf = MLPClassifier(**params).fit(tr.transform(X_train), y_train)
        # the outliers dominate standard scaling
        standard = make_pipeline(StandardScaler(), MLPClassifier(**params))
        standard.fit(X_train, y_train)
    np.testing.assert_array_equal(
        pipe.predict_proba(X_test), clf.predict_proba(tr.transform(X_test))
    )
    assert pipe.score(X_test, y_test) > 0.85
    assert pipe.score(X_test, y_test) > standard.score(X_test, y_test) + 0.2


def test_clone_and_pickle():
    X = _data()
    tr = RobustScaleSmoothClip(clip_scale=2.0, quantile_range=(10, 90)).fit(X)
    twin = clone(tr)
    assert twin.get_params() == tr.get_params()
    assert not hasattr(twin, "scale_")
    restored = pickle.loads(pickle.dumps(tr))
    np.testing.assert_array_equal(restored.transform(X), tr.transform(X))
    np.testing.assert_array_equal(twin.fit(X).transform(X), tr.transform(X))
