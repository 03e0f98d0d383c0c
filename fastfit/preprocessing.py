"""Preprocessing for the estimators' inputs.

``RobustScaleSmoothClip`` is the numerical-feature preprocessing of RealMLP
(Holzmüller, Grinsztajn and Steinwart, "Better by Default: Strong Pre-Tuned
MLPs and Boosted Trees on Tabular Data", NeurIPS 2024): a robust scaling
followed by a smooth clip, the paper's "RS+SC".
"""

import numbers
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from fastfit._params import NumberInterval

__all__ = ["RobustScaleSmoothClip"]

# Added to the spread before its reciprocal, as RealMLP does: it caps the
# factor at 1e30, finite in float32 and float64 even for a subnormal spread.
_SPREAD_EPS = 1e-30


class RobustScaleSmoothClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale features robustly, then clip them smoothly (RealMLP's "RS+SC").

    Each column is centred on its median and scaled by the inverse of its
    interquartile range, with a min-max fallback for columns whose quartiles
    coincide; the result is then squashed by a smooth clip into
    ``(-clip_scale, clip_scale)``, almost linear near zero, so outliers keep
    their order without dominating the first layer of a network.

    For column ``j`` of the training data, with ``q_lo`` and ``q_hi`` its
    quantiles at ``quantile_range`` (NumPy's linear interpolation, NaN
    ignored) and ``p = (quantile_range[1] - quantile_range[0]) / 100``::

        d_j = q_hi - q_lo                 if q_hi != q_lo
              p * (max_j - min_j)         otherwise
        s_j = 1 / (d_j + 1e-30)           if d_j > 0
              0                           otherwise (a constant column)
        z   = s_j * (x - median_j)
        out = z / sqrt(1 + (z / clip_scale) ** 2)

    With the default ``quantile_range=(25.0, 75.0)`` and ``clip_scale=3.0``
    this is RealMLP's transformation exactly (its fallback is
    ``0.5 * (max_j - min_j)``); ``p`` generalises the fallback so that both
    measures agree on uniformly distributed data. The clip is evaluated without
    overflow: a ``z`` beyond the dtype's range still maps to ``±clip_scale``.

    Parameters
    ----------
    clip_scale : float or None, default=3.0
        The bound ``c`` of the smooth clip ``z / sqrt(1 + (z / c) ** 2)``, which
        maps the real line onto ``(-c, c)`` with slope 1 at 0. ``None`` skips the
        clip: the output is the robust scaling ``z`` alone.

    quantile_range : tuple (q_min, q_max), 0.0 <= q_min < q_max <= 100.0, \
            default=(25.0, 75.0)
        The percentiles whose distance is the column's spread, as in
        :class:`sklearn.preprocessing.RobustScaler`.

    copy : bool, default=True
        If False, ``transform`` works in place on an input that is already a
        C- or F-ordered float32 or float64 NumPy array; other inputs are
        still copied.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,), dtype float64
        The median of each column (0 for a column that was entirely NaN).

    scale_ : ndarray of shape (n_features,), dtype float64
        The factor ``s_j`` each centred column is multiplied by (0 for a
        constant or entirely NaN column).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.preprocessing.RobustScaler : Median and interquartile range,
        without the fallback and the clip.

    Notes
    -----
    NaN is handled as :class:`sklearn.preprocessing.RobustScaler` handles it:
    ignored by ``fit`` and kept by ``transform``. Infinite values are refused.
    A column that is constant (or entirely NaN) in the training data is
    transformed to 0, whatever the value it has later; NaN stays NaN.

    Sparse input is refused: centring on the median makes a sparse matrix
    dense.

    There is no ``inverse_transform``: in floating point the clip saturates
    (in float32, ``z`` beyond about 3000 clip scales maps to exactly
    ``clip_scale``), and constant columns are mapped to 0, so the values
    ``transform`` returns do not determine its input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastfit.preprocessing import RobustScaleSmoothClip
    >>> X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [100.0, 5.0]])
    >>> RobustScaleSmoothClip().fit_transform(X).round(3)
    array([[-0.949,  0.   ],
           [-0.493,  0.   ],
           [ 0.   ,  0.   ],
           [ 0.493,  0.   ],
           [ 2.994,  0.   ]])
    """

    _parameter_constraints = {
        "clip_scale": [NumberInterval(Real, 0, None, closed="neither"), None],
        "quantile_range": [tuple],
        "copy": ["boolean"],
    }

    def __init__(self, *, clip_scale=3.0, quantile_range=(25.0, 75.0), copy=True):
        self.clip_scale = clip_scale
        self.quantile_range = quantile_range
        self.copy = copy

    def fit(self, X, y=None):
        """Compute each column's median and scale factor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training data; NaN entries are ignored.

        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._validate_params()
        q_min, q_max = self._check_quantile_range()
        _refuse_sparse(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan",
        )

        # Statistics in float64 whatever X's dtype, so the differences below
        # are exact. Entirely NaN columns are left out (NumPy would warn and
        # return NaN) and keep zeros: they are treated as constant.
        n_features = X.shape[1]
        lower, median, upper, low, high = (np.zeros(n_features) for _ in range(5))
        nan = np.isnan(X)
        seen = ~nan.all(axis=0)
        if seen.any():
            Xs = X if seen.all() else X[:, seen]
            if nan.any():
                quantile, xmin, xmax = np.nanquantile, np.nanmin, np.nanmax
            else:
                quantile, xmin, xmax = np.quantile, np.min, np.max
            q = quantile(Xs, [q_min / 100, 0.5, q_max / 100], axis=0)
            lower[seen], median[seen], upper[seen] = q
            low[seen], high[seen] = xmin(Xs, axis=0), xmax(Xs, axis=0)

        spread = upper - lower
        flat = spread == 0
        spread[flat] = (q_max - q_min) / 100 * (high[flat] - low[flat])
        scale = np.zeros(n_features)
        varies = spread > 0
        scale[varies] = 1.0 / (spread[varies] + _SPREAD_EPS)

        self.center_ = median
        self.scale_ = scale
        return self

    def transform(self, X):
        """Scale and clip ``X`` with the statistics of ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data to transform; NaN entries stay NaN.

        Returns
        -------
        X_tr : ndarray of shape (n_samples, n_features)
            The transformed data, float32 for float32 input, else float64.
        """
        check_is_fitted(self)
        _refuse_sparse(X)
        X = validate_data(
            self,
            X,
            reset=False,
            copy=self.copy,
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan",
            force_writeable=True,
        )
        dtype = X.dtype

        # Constant columns are set to 0 rather than multiplied by it: x - center
        # can overflow to inf, and 0 * inf is NaN.
        constant = self.scale_ == 0
        if constant.any():
            fixed = np.where(np.isnan(X[:, constant]), np.nan, 0.0).astype(dtype)

        # An overflow to inf is the right limit (the clip maps it to
        # +-clip_scale); 0 * inf in constant columns is overwritten below.
        with np.errstate(over="ignore", invalid="ignore"):
            X -= self.center_.astype(dtype)
            X *= self.scale_.astype(dtype)

        if self.clip_scale is not None:
            _smooth_clip(X, dtype.type(self.clip_scale))

        if constant.any():
            X[:, constant] = fixed
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_quantile_range(self):
        qr = self.quantile_range
        valid = (
            len(qr) == 2
            and all(isinstance(q, numbers.Real) and not isinstance(q, bool) for q in qr)
            and 0 <= qr[0] < qr[1] <= 100
        )
        if not valid:
            raise ValueError(
                "quantile_range must be a pair (q_min, q_max) of percentiles with "
                f"0 <= q_min < q_max <= 100, got {qr!r}."
            )
        return float(qr[0]), float(qr[1])


def _refuse_sparse(X):
    if sp.issparse(X):
        raise TypeError(
            "RobustScaleSmoothClip does not accept sparse input: centring on the "
            "median makes a sparse matrix dense. Convert it with X.toarray() if "
            "the dense array fits in memory."
        )


def _smooth_clip(Z, c):
    """``Z / sqrt(1 + (Z / c) ** 2)`` in place, without overflow.

    Squaring ``Z / c`` overflows (and the result falls to 0) once it exceeds
    the square root of the dtype's maximum, and ``Z / c`` itself overflows for
    ``c < 1``. So the ratio in the root is kept at most 1: ``Z / c`` where
    ``|Z| <= c`` and ``c / Z`` elsewhere, where the clip is
    ``copysign(c, Z) / sqrt(1 + (c / Z) ** 2)``; an infinite ``Z`` gives
    ``±c``, NaN stays NaN.
    """
    outer = np.abs(Z) > c
    inner = ~outer
    root = np.empty_like(Z)
    np.divide(Z, c, out=root, where=inner)
    np.divide(c, Z, out=root, where=outer)
    np.hypot(1, root, out=root)
    np.copysign(c, Z, out=Z, where=outer)
    np.divide(Z, root, out=Z)
