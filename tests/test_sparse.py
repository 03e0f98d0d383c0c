"""Sparse X: the engine reads CSR rows in place and trains what dense X trains.

scikit-learn's MLPs accept CSR, CSC and COO input (``accept_sparse``); so do
fastfit's, for ``fit``, ``partial_fit``, ``predict``/``predict_proba`` and
L-BFGS. The first layer's products run over the stored entries only, so a
sparse fit equals the dense fit up to summation order, is bit-identical for any
thread count, predicts each row alone, and never densifies X.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfit import MLPClassifier, MLPRegressor
from fastfit._engine import ACTIVATIONS, LOSS_KINDS, CSRInput, Network, Trainer
from fastfit._layout import Layout
from fastfit._sparse import engine_input
from fastfit.optimizers import SGD


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kwargs)


def _data(n=240, d=60, density=0.08, seed=0, classes=3):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng)
    X.data = rng.uniform(-2, 2, X.nnz)
    w = rng.randn(d, classes)
    y = np.argmax(X @ w + 0.1 * rng.randn(n, classes), axis=1)
    return X, y


def _csr(X, dtype):
    return engine_input(sp.csr_matrix(X), dtype)


# ------------------------------------------------------------------ engine


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_objective_gradient_matches_finite_differences(dtype):
    """The sparse first-layer weight gradient is the derivative of the loss."""
    X, _ = _data(n=40, d=12, density=0.3)
    rng = np.random.RandomState(1)
    layout = Layout([12, 5, 3])
    network = Network(
        layout.sizes,
        [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]],
        LOSS_KINDS["squared_error"],
    )
    rule = SGD()
    trainer = Trainer(
        network, rule._engine_kind, rule._hyper(),
        rule._init_state(layout.n_params, np.float64), 1, 0.1,
    )  # fmt: skip
    params = rng.uniform(-0.5, 0.5, layout.n_params)
    Y = rng.randn(40, 3)
    sw = rng.uniform(0.5, 2, 40)
    Xc = _csr(X, np.float64)
    grads = np.empty_like(params)
    f0 = trainer.objective_gradient(params, Xc, Y, sw, grads)
    eps = 1e-6
    numeric = np.empty_like(params)
    for i in range(layout.n_params):
        step = np.zeros_like(params)
        step[i] = eps
        g = np.empty_like(params)
        numeric[i] = (
            trainer.objective_gradient(params + step, Xc, Y, sw, g)
            - trainer.objective_gradient(params - step, Xc, Y, sw, g)
        ) / (2 * eps)
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    # and it is the dense objective and gradient
    dense = np.empty_like(params)
    assert trainer.objective_gradient(params, X.toarray(), Y, sw, dense) == (
        pytest.approx(f0, rel=1e-12)
    )
    np.testing.assert_allclose(grads, dense, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(1, 70), min_size=2, max_size=4),
    n=st.integers(1, 300),
    chunk=st.integers(1, 400),
    n_threads=st.integers(1, 2),
    dtype=st.sampled_from([np.float32, np.float64]),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_sparse_forward_rows_are_independent_and_match_dense(
    sizes, n, chunk, n_threads, dtype, density, seed
):
    rng = np.random.RandomState(seed)
    layout = Layout(sizes)
    hidden = [ACTIVATIONS["relu"]] * (layout.n_layers - 1)
    network = Network(
        layout.sizes, hidden + [ACTIVATIONS["identity"]], LOSS_KINDS["squared_error"]
    )
    params = rng.uniform(-0.5, 0.5, layout.n_params).astype(dtype)
    X = sp.random(n, sizes[0], density=density, format="csr", random_state=rng)
    X = X.astype(dtype)

    def forward(rows, chunk_size, threads, sparse=True):
        out = np.empty((len(rows), sizes[-1]), dtype)
        Xr = X[rows] if sparse else X[rows].toarray()
        network.forward(params, engine_input(Xr, dtype), out, chunk_size, threads)
        return out

    reference = np.concatenate([forward([i], 1, 1) for i in range(n)])
    np.testing.assert_array_equal(forward(np.arange(n), chunk, n_threads), reference)
    order = rng.permutation(n)
    np.testing.assert_array_equal(forward(order, chunk, n_threads), reference[order])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        forward(np.arange(n), chunk, n_threads, sparse=False),
        reference,
        rtol=tol,
        atol=tol,
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "data": a["data"].astype(np.int64)}, "float32 or float64"),
        (lambda a: {**a, "indices": a["indices"].astype(np.int64)}, "int32"),
        (lambda a: {**a, "indptr": a["indptr"][:-1]}, "n_rows"),
        (lambda a: {**a, "indptr": a["indptr"][::-1].copy()}, "indptr must rise"),
        (lambda a: {**a, "indices": a["indices"] + 60}, r"in \[0, 60\)"),
        (lambda a: {**a, "indices": a["indices"] - 100}, r"in \[0, 60\)"),
        (lambda a: {**a, "data": a["data"][:-1]}, "of one length"),
        (lambda a: {**a, "shape": (240, 0)}, "invalid sparse shape"),
    ],
)
def test_csr_input_rejects_what_is_not_a_csr_matrix(change, message):
    X, _ = _data()
    arrays = dict(
        data=X.data,
        indices=X.indices.astype(np.int32),
        indptr=X.indptr.astype(np.intp),
        shape=X.shape,
    )
    with pytest.raises(ValueError, match=message):
        CSRInput(**change(arrays))


def test_sparse_input_of_the_other_dtype_is_refused():
    X, _ = _data(d=12)
    network = Network([12, 3], [ACTIVATIONS["identity"]], LOSS_KINDS["squared_error"])
    params = np.zeros(network.n_params)
    out = np.empty((X.shape[0], 3))
    with pytest.raises(ValueError, match="sparse X is float32"):
        network.forward(params, engine_input(X, np.float32), out, 64, 1)


# --------------------------------------------------------------- estimators


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_format_fits_as_dense_does(fmt, dtype):
    X, y = _data()
    kw = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0, dtype=dtype)
    dense = _quiet(MLPClassifier(**kw), X.toarray(), y)
    sparse = _quiet(MLPClassifier(**kw), X.asformat(fmt), y)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(
        dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_
    ):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        dense.predict_proba(X.toarray()), sparse.predict_proba(X.asformat(fmt)),
        rtol=tol, atol=tol,
    )  # fmt: skip
    np.testing.assert_array_equal(sparse.predict(X), sparse.predict(X.toarray()))


@pytest.mark.parametrize(
    "kw",
    [
        dict(optimizer="sgd", shuffle=False, batch_size=32),
        dict(optimizer="adam", batch_size=300),  # one batch, BLAS-sized
        dict(optimizer="adamw", clip_norm=0.5),  # whole-gradient step
        dict(optimizer="lbfgs", max_iter=40),
        dict(early_stopping=True, validation_fraction=0.2),
    ],
    ids=["sgd-in-order", "one-batch", "clipped", "lbfgs", "early-stopping"],
)
def test_training_paths_on_sparse_match_dense(kw):
    X, y = _data(n=300)
    params = dict(
        hidden_layer_sizes=(20,), max_iter=10, random_state=0, dtype=np.float64
    )
    params.update(kw)
    sw = np.random.RandomState(3).uniform(0.2, 2.0, X.shape[0])
    dense = _quiet(MLPClassifier(**params), X.toarray(), y, sample_weight=sw)
    sparse = _quiet(MLPClassifier(**params), X, y, sample_weight=sw)
    assert sparse.n_iter_ == dense.n_iter_
    np.testing.assert_allclose(sparse.loss_, dense.loss_, rtol=1e-9)
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-8, atol=1e-10)


def test_regressor_and_partial_fit_take_sparse():
    X, y = _data(n=200)
    target = np.asarray(X.sum(axis=1)).ravel()
    kw = dict(hidden_layer_sizes=(8,), random_state=0, dtype=np.float64)
    dense, sparse = MLPRegressor(**kw), MLPRegressor(**kw)
    for _ in range(3):
        dense.partial_fit(X.toarray(), target)
        sparse.partial_fit(X.tocsc(), target)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-9)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X[:100], y[:100], classes=np.unique(y))
    clf.partial_fit(X[100:].tocoo(), y[100:])
    assert clf.predict(X).shape == (200,)


def test_fit_is_bit_identical_for_any_thread_count():
    X, y = _data(n=600, d=3000, density=0.01)
    kw = dict(hidden_layer_sizes=(256,), batch_size=200, max_iter=3, random_state=0)
    fits = [_quiet(MLPClassifier(n_threads=t, **kw), X, y) for t in (1, 2)]
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)
    lbfgs = [
        _quiet(MLPClassifier(optimizer="lbfgs", n_threads=t, **kw), X, y)
        for t in (1, 2)
    ]
    np.testing.assert_array_equal(lbfgs[0].coefs_[0], lbfgs[1].coefs_[0])


def test_unsorted_and_duplicate_entries_mean_what_scipy_says():
    X, y = _data()
    # each row's entries reversed, and every entry stored as two halves
    data, indices, indptr = [], [], [0]
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        idx, val = X.indices[lo:hi][::-1], X.data[lo:hi][::-1]
        indices += [*idx, *idx]
        data += [*(val / 2), *(val / 2)]
        indptr.append(len(indices))
    messy = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not messy.has_canonical_format
    before = (messy.data.copy(), messy.indices.copy(), messy.indptr.copy())
    kw = dict(hidden_layer_sizes=(10,), max_iter=5, random_state=0, dtype=np.float64)
    clean = _quiet(MLPClassifier(**kw), X, y)
    fitted = _quiet(MLPClassifier(**kw), messy, y)
    np.testing.assert_allclose(fitted.coefs_[0], clean.coefs_[0], rtol=1e-9, atol=1e-12)
    # the user's matrix is left as it was: not sorted, not summed
    for a, b in zip(before, (messy.data, messy.indices, messy.indptr)):
        np.testing.assert_array_equal(a, b)
    assert not messy.has_canonical_format


def test_input_matrix_is_not_modified_nor_copied_needlessly():
    X, y = _data()
    X64 = X.astype(np.float64)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    before = (X64.data.copy(), X64.indices.copy(), X64.indptr.copy())
    _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=2), X64, y)
    for a, b in zip(before, (X64.data, X64.indices, X64.indptr)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    # a CSR of the engine's dtypes is wrapped, not copied
    Xc = X.astype(np.float32)
    Xc.indices = Xc.indices.astype(np.int32)
    wrapped = engine_input(Xc, np.float32)
    assert np.shares_memory(wrapped.data, Xc.data)
    assert np.shares_memory(wrapped.indices, Xc.indices)


def test_fit_memory_stays_near_the_matrix_and_the_parameters():
    """A wide, very sparse X is never densified, nor gathered in dense batches.

    20,000 x 100,000 at 0.1% density: the dense matrix would be 8 GB in
    float32; tracemalloc follows NumPy's allocations.
    """
    rng = np.random.RandomState(0)
    n, d, nnz = 20_000, 100_000, 2_000_000
    rows = np.sort(rng.randint(0, n, nnz))
    X = sp.csr_matrix(
        (rng.uniform(0, 1, nnz).astype(np.float32), (rows, rng.randint(0, d, nnz))),
        shape=(n, d),
    )
    X.indices = X.indices.astype(np.int32)
    y = rng.randint(0, 2, n)
    matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    est = MLPClassifier(hidden_layer_sizes=(32,), batch_size=500, max_iter=1)
    tracemalloc.start()
    try:
        _quiet(est, X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    param_bytes = est._params.nbytes
    # parameters, gradient, two Adam moments, best/last-good copies, the
    # indptr as intp: a few times the parameters; X itself is not copied
    assert peak < matrix_bytes + 8 * param_bytes, (peak, matrix_bytes, param_bytes)
    assert est.predict(X[:10]).shape == (10,)
