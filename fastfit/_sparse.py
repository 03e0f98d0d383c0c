"""Sparse input: scipy sparse matrices and arrays as the engine reads them.

The estimators accept any scipy sparse X (scikit-learn's ``accept_sparse``);
validation turns it into CSR of the training dtype, and :func:`engine_input`
wraps that, without copying, in the engine's :class:`CSRInput` (int32 column
indices, intp row pointers). The engine reads its rows in place: a sparse X is
never densified (``fastfit/_engine/_sparse.pxi``).
"""

import numpy as np
import scipy.sparse as sp

from fastfit._engine import CSRInput


def engine_input(X, dtype):
    """X as the engine's entry points take it.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix or array of shape (n_samples, n_features)
    dtype : {np.float32, np.float64}

    Returns
    -------
    ndarray or CSRInput
        A C-contiguous array of ``dtype``, or a CSRInput over X's CSR arrays
        (copied only where their dtypes differ from the engine's).
    """
    if not sp.issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    X = X.tocsr()
    return CSRInput(
        X.data.astype(dtype, copy=False),
        X.indices.astype(np.int32, copy=False),
        X.indptr.astype(np.intp, copy=False),
        X.shape,
    )
