"""The compiled engine against NumPy: gemm, gradients, forward pass, one step."""

import itertools
import platform
import warnings

import numpy as np
import pytest
import reference as ref

from fastfit import MLPClassifier, MLPRegressor
from fastfit._engine import (
    ACTIVATIONS,
    LOSS_KINDS,
    OPTIMIZER_KINDS,
    STATE_BUFFERS,
    Network,
    Trainer,
    blocking_plan,
    count_outside,
    denormals_flushed_py,
    gemm_py,
    gemm_small_py,
    loss_gradient_py,
    small_gemm_panel_py,
)
from fastfit._layout import Layout
from fastfit.optimizers import SGD

DTYPES = [np.float32, np.float64]
LOSSES = list(LOSS_KINDS)
# the loss parameter of the reference's loss functions (their defaults)
DEFAULT_LOSS_PARAM = {"huber": 1.0, "quantile": 0.5}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", itertools.product([False, True], repeat=2))
def test_gemm_matches_numpy(dtype, trans_a, trans_b):
    rng = np.random.RandomState(0)
    m, n, k = 7, 5, 3
    A = rng.randn(*((k, m) if trans_a else (m, k))).astype(dtype)
    B = rng.randn(*((n, k) if trans_b else (k, n))).astype(dtype)
    C = rng.randn(m, n).astype(dtype)
    expected = 0.5 * (A.T if trans_a else A) @ (B.T if trans_b else B) + 2.0 * C
    gemm_py(trans_a, trans_b, dtype(0.5), A, B, dtype(2.0), C)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, expected, rtol=rtol, atol=rtol)


def test_gemm_rejects_bad_shapes():
    A = np.ones((2, 3))
    with pytest.raises(ValueError):
        gemm_py(False, False, 1.0, A, np.ones((2, 3)), 0.0, np.ones((2, 3)))


# m: every remainder of the 6-row tile; n: below, at and across the 16/8-wide
# panels (the columns past the last panel go to BLAS); k: across the 256-deep
# k blocks (the first block writes C, the next ones accumulate into it)
SMALL_SHAPES = [
    (1, 1, 1),
    (1, 16, 5),
    (5, 16, 3),
    (6, 17, 40),
    (7, 33, 255),
    (12, 48, 256),
    (32, 256, 784),
    (13, 31, 513),
    (128, 10, 128),
    (200, 100, 784),
    (9, 70, 33),
    (3, 7, 1000),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)]
)
@pytest.mark.parametrize("m, n, k", SMALL_SHAPES)
def test_small_batch_gemm_matches_numpy(dtype, trans_a, trans_b, m, n, k):
    rng = np.random.RandomState(m * 1000 + n + k)
    A = rng.randn(*((k, m) if trans_a else (m, k))).astype(dtype)
    B = rng.randn(*((n, k) if trans_b else (k, n))).astype(dtype)
    # C starts as garbage (NaN): the kernel must overwrite, not accumulate
    C = np.full((m, n), np.nan, dtype)
    A0, B0 = A.copy(), B.copy()
    gemm_small_py(trans_a, A, B, C, trans_b=trans_b)
    expected = (A.T if trans_a else A).astype(np.float64) @ (B.T if trans_b else B)
    tol = (1e-5 if dtype == np.float32 else 1e-13) * np.sqrt(k)
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_batch_gemm_does_not_depend_on_column_split(dtype):
    """The engine hands column blocks of one product to different threads:
    a block must give the same bits as the same columns of the whole product."""
    rng = np.random.RandomState(3)
    A = rng.randn(20, 300).astype(dtype)
    B = rng.randn(300, 96).astype(dtype)
    whole = np.empty((20, 96), dtype)
    gemm_small_py(False, A, B, whole)
    for j0, j1 in [(0, 32), (32, 64), (64, 96), (16, 48)]:
        part = np.empty((20, j1 - j0), dtype)
        gemm_small_py(False, A, np.ascontiguousarray(B[:, j0:j1]), part)
        np.testing.assert_array_equal(part, whole[:, j0:j1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", [(32, 256, 128), (128, 100, 37), (7, 33, 300)])
def test_small_batch_gemm_of_b_transposed_is_the_product_with_its_copy(dtype, m, n, k):
    """An input gradient D @ W^T: the kernel copies W^T into its panels
    transposed, so each column it covers has the bits of the same product
    with W^T made contiguous first; a column block of it (a block of W's
    rows, as the engine's threads take them) has the same bits again."""
    rng = np.random.RandomState(11)
    D = rng.randn(m, k).astype(dtype)
    W = rng.randn(n, k).astype(dtype)
    C = np.full((m, n), np.nan, dtype)
    gemm_small_py(False, D, W, C, trans_b=True)
    C2 = np.empty_like(C)
    gemm_small_py(False, D, np.ascontiguousarray(W.T), C2)
    panel = small_gemm_panel_py(dtype)
    covered = n - n % panel if panel else 0
    np.testing.assert_array_equal(C[:, :covered], C2[:, :covered])
    j0 = panel if panel and covered > panel else 0
    part = np.empty((m, n - j0), dtype)
    gemm_small_py(False, D, np.ascontiguousarray(W[j0:]), part, trans_b=True)
    np.testing.assert_array_equal(part, C[:, j0:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("m, n, k", [(5, 16, 300), (32, 48, 20), (7, 20, 9)])
def test_small_batch_gemm_reads_rows_through_pointers(dtype, trans_a, m, n, k):
    """The gather-free path: rows of the operand picked from a bigger matrix
    (a shuffled batch of X), at a column offset (a block of W's rows)."""
    rng = np.random.RandomState(5)
    a_col = 3
    n_rows = k if trans_a else m
    big = rng.randn(400, a_col + (m if trans_a else k) + 4).astype(dtype)
    idx = rng.permutation(400)[:n_rows].astype(np.intp)
    S = big[idx, a_col : a_col + (m if trans_a else k)]
    B = rng.randn(k, n).astype(dtype)
    C = np.full((m, n), np.nan, dtype)
    gemm_small_py(trans_a, big, B, C, idx, a_col)
    expected = (S.T if trans_a else S).astype(np.float64) @ B
    tol = (1e-5 if dtype == np.float32 else 1e-13) * np.sqrt(k)
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)
    # on the kernel's whole panels, bit-identical to the same product on the
    # gathered copy (whose last columns BLAS computes)
    C2 = np.empty_like(C)
    gemm_small_py(trans_a, np.ascontiguousarray(S), B, C2)
    panel = small_gemm_panel_py(dtype)
    covered = n - n % panel if panel else 0
    np.testing.assert_array_equal(C[:, :covered], C2[:, :covered])


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_by_pointer_give_every_column_the_same_bits_in_any_block(dtype):
    # through row pointers the kernel computes a narrow last panel itself:
    # a column has the same bits whichever panel, full or narrow, holds it
    rng = np.random.RandomState(3)
    A = rng.randn(20, 300).astype(dtype)
    B = rng.randn(300, 100).astype(dtype)
    rows = np.arange(20, dtype=np.intp)
    whole = np.empty((20, 100), dtype)
    gemm_small_py(False, A, B, whole, rows)
    for j0, j1 in [(0, 32), (64, 96), (96, 100), (90, 100), (3, 40), (0, 5)]:
        part = np.empty((20, j1 - j0), dtype)
        gemm_small_py(False, A, np.ascontiguousarray(B[:, j0:j1]), part, rows)
        np.testing.assert_array_equal(part, whole[:, j0:j1])


def test_the_blocking_uses_rows_where_columns_leave_cores_idle():
    # scikit-learn's default network at batch 200: 100 columns make one column
    # block, so the rows are split between the cores
    first, last = blocking_plan((784, 100, 10), 200, 2)
    assert first["forward"] == (1, 2)
    assert last["forward"] == (1, 1)  # too little work to split
    # wide layers split columns first; 16 cores take rows as well
    plan = blocking_plan((784, 256, 128, 10), 128, 16)
    assert plan[0]["forward"] == (4, 4) and plan[1]["forward"] == (2, 8)
    assert plan[1]["input_grad"] == (4, 4) and plan[0]["input_grad"] == (0, 0)
    for cores in (1, 2, 3, 16, 64, 1000):
        for layer in blocking_plan((1024, 2048, 2048, 10), 512, cores):
            c, r = layer["forward"]
            assert 1 <= c * r <= max(1, min(cores, 64))
            assert 1 <= layer["weight_grad"] <= max(1, min(cores, 64))


def test_a_small_batch_forward_is_split_by_the_rows_the_update_owns():
    # on 2 cores the forward of batches up to 128 rows follows the update's
    # row blocks of W; the 10-output layer is too small to split
    for batch in (32, 128):
        plan = blocking_plan((784, 256, 128, 10), batch, 2)
        assert [layer["forward_split"] for layer in plan] == [2, 2, 1]
        assert [layer["weight_grad"] for layer in plan[:2]] == [2, 2]
    # larger batches keep the column and row blocks
    assert blocking_plan((784, 100, 10), 200, 2)[0]["forward_split"] == 1
    # on 64 cores a batch of 128 has more column x row blocks (4 x 8) than
    # rows of W to split (12): no split; a batch of 32 has fewer (4 x 2)
    assert blocking_plan((784, 256, 128, 10), 128, 64)[0]["forward_split"] == 1
    assert blocking_plan((784, 256, 128, 10), 32, 64)[0]["forward_split"] == 12


def test_small_batch_gemm_rejects_bad_shapes():
    with pytest.raises(ValueError):
        gemm_small_py(False, np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError):
        gemm_small_py(
            False,
            np.ones((4, 3)),
            np.ones((3, 3)),
            np.ones((2, 3)),
            np.array([0, 4], dtype=np.intp),
        )


def _problem(loss, n=6, sizes=(4, 5, 3), n_out=3, seed=0, dtype=np.float64):
    """Random network, inputs and encoded targets for the loss."""
    rng = np.random.RandomState(seed)
    layout = Layout(list(sizes) + [n_out])
    params = rng.uniform(-0.7, 0.7, layout.n_params).astype(dtype)
    X = rng.randn(n, sizes[0]).astype(dtype)
    if loss == "softmax_cross_entropy":
        y_ref = rng.randint(0, n_out, n)
        Y = y_ref.astype(dtype).reshape(-1, 1)
    elif loss == "sigmoid_log_loss":
        Y = rng.randint(0, 2, (n, n_out)).astype(dtype)
        y_ref = Y
    elif loss == "poisson":
        Y = rng.poisson(1.5, (n, n_out)).astype(dtype)
        y_ref = Y
    else:
        Y = rng.randn(n, n_out).astype(dtype)
        y_ref = Y
    return layout, params, X, Y, y_ref


def _objective(
    layout, params, X, Y, act, loss, sw=None, alpha=0.0, l1_ratio=0.0, delta=None
):
    # the loss parameter: Huber's delta (1 by default), the quantile (0.5, the
    # reference's default), the label smoothing of the classification losses (0)
    if delta is None:
        delta = DEFAULT_LOSS_PARAM.get(loss, 0.0)
    grads = np.zeros_like(params)
    sw_arr = np.empty(0, params.dtype) if sw is None else sw.astype(params.dtype)
    network = _network(layout, act, loss, delta)
    trainer = Trainer(
        network,
        OPTIMIZER_KINDS["sgd"],
        [0.0, 0.0, 0.0],
        np.zeros((1, layout.n_params), params.dtype),
        1,
        alpha,
        l1_ratio,
    )
    value = trainer.objective_gradient(params, X, Y, sw_arr, grads)
    return value, grads


def _network(layout, activation, loss, loss_param=0.0):
    """The engine's Network: ``activation`` on every hidden layer."""
    hidden = [ACTIVATIONS[activation]] * (layout.n_layers - 1)
    return Network(
        layout.sizes, hidden + [ACTIVATIONS["identity"]], LOSS_KINDS[loss], loss_param
    )


def _train_epoch(
    layout,
    params,
    state,
    X,
    Y,
    sw,
    order,
    batch_size,
    activation,
    loss,
    optimizer,
    hyper,
    lr,
    alpha,
    l1_ratio,
    clip_norm,
    n_threads,
):
    """One epoch through a Trainer; (objective_sum, weight_sum, n_steps)."""
    trainer = Trainer(
        _network(layout, activation, loss),
        OPTIMIZER_KINDS[optimizer],
        hyper,
        state,
        batch_size,
        alpha,
        l1_ratio,
        clip_norm,
        n_threads,
    )
    n_batches = -(-(len(order) or X.shape[0]) // batch_size)
    return trainer.run_batches(
        params, X, Y, sw, order, 0, n_batches, np.full(n_batches, lr), 0
    )


def _finite_difference(f, params, eps=1e-6):
    grad = np.empty_like(params)
    for i in range(params.size):
        p_plus, p_minus = params.copy(), params.copy()
        p_plus[i] += eps
        p_minus[i] -= eps
        grad[i] = (f(p_plus) - f(p_minus)) / (2 * eps)
    return grad


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_matches_finite_differences(activation, loss):
    layout, params, X, Y, _ = _problem(loss)
    value, grads = _objective(layout, params, X, Y, activation, loss)
    fd = _finite_difference(
        lambda p: _objective(layout, p, X, Y, activation, loss)[0], params
    )
    rel = np.linalg.norm(fd - grads) / (np.linalg.norm(fd) + np.linalg.norm(grads))
    assert np.isfinite(value)
    assert rel < 1e-6, rel


@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_with_weights_and_penalties(loss):
    layout, params, X, Y, _ = _problem(loss, seed=3)
    sw = np.random.RandomState(1).uniform(0.1, 3.0, X.shape[0])
    kw = dict(sw=sw, alpha=0.3, l1_ratio=0.4)
    _, grads = _objective(layout, params, X, Y, "tanh", loss, **kw)
    fd = _finite_difference(
        lambda p: _objective(layout, p, X, Y, "tanh", loss, **kw)[0], params
    )
    rel = np.linalg.norm(fd - grads) / (np.linalg.norm(fd) + np.linalg.norm(grads))
    assert rel < 1e-6, rel


def test_huber_gradient_both_branches():
    # residuals straddle delta, so both the quadratic and linear parts are used
    layout, params, X, Y, _ = _problem("huber", seed=5)
    Y = Y * 3
    _, grads = _objective(layout, params, X, Y, "relu", "huber", delta=0.5)
    fd = _finite_difference(
        lambda p: _objective(layout, p, X, Y, "relu", "huber", delta=0.5)[0], params
    )
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", LOSSES)
def test_objective_gradient_matches_reference_backprop(activation, loss):
    layout, params, X, Y, y_ref = _problem(loss, seed=7)
    sw = np.random.RandomState(2).uniform(0.5, 2.0, X.shape[0])
    value, grads = _objective(
        layout, params, X, Y, activation, loss, sw=sw, alpha=0.1, l1_ratio=0.25
    )
    coefs, intercepts = layout.views(params)
    ref_value, ref_cg, ref_ig = ref.backprop(
        coefs,
        intercepts,
        X,
        y_ref,
        activation,
        loss,
        sample_weight=sw,
        alpha=0.1,
        l1_ratio=0.25,
    )
    ref_flat, _ = ref.flatten(ref_cg, ref_ig)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(grads, ref_flat, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_kernel_values_match_reference(loss):
    rng = np.random.RandomState(0)
    Z = rng.randn(9, 4)
    _, _, _, Y, y_ref = _problem(loss, n=9, n_out=4)
    G = np.empty_like(Z)
    param = DEFAULT_LOSS_PARAM.get(loss, 0.0)  # no label smoothing
    value = loss_gradient_py(LOSS_KINDS[loss], Z, Y, None, param, G)
    fn = ref.LOSSES[loss][0]
    ref_value, ref_grad = fn(Z, y_ref)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(G, ref_grad, rtol=1e-12, atol=1e-15)


def test_extreme_logits_stay_finite():
    Z = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 1e4]])
    G = np.empty_like(Z)
    for loss, Y in [
        ("softmax_cross_entropy", np.array([[1.0], [0.0]])),
        ("sigmoid_log_loss", np.array([[1.0, 0, 1], [0, 1, 0]])),
    ]:
        value = loss_gradient_py(LOSS_KINDS[loss], Z, Y, None, 0.0, G)
        assert np.isfinite(value) and np.all(np.isfinite(G))


# ------------------------------------------------------------ estimator level
def _fitted_classifier(dtype, activation="tanh", n_classes=3):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 5)
    y = rng.randint(0, n_classes, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(
            hidden_layer_sizes=(7, 6),
            activation=activation,
            max_iter=5,
            random_state=0,
            dtype=dtype,
        ).fit(X, y)
    return clf, X


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_predict_proba_matches_numpy_forward(activation, dtype, rtol, n_classes):
    clf, X = _fitted_classifier(dtype, activation, n_classes)
    out = "softmax" if n_classes > 2 else "logistic"
    expected = ref.forward(
        clf.coefs_, clf.intercepts_, X.astype(dtype).astype(np.float64), activation, out
    )[-1]
    if n_classes == 2:
        expected = np.hstack([1 - expected, expected])
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(
        np.exp(clf.predict_log_proba(X)), proba, rtol=rtol * 10, atol=rtol
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "estimator, loss",
    [
        (MLPClassifier, "softmax_cross_entropy"),
        (MLPClassifier, "sigmoid_log_loss"),
        (MLPRegressor, "squared_error"),
    ],
)
def test_one_full_batch_sgd_step_matches_numpy_backprop(dtype, estimator, loss):
    rng = np.random.RandomState(42)
    n, d, h = 30, 4, 6
    X = rng.randn(n, d)
    if loss == "softmax_cross_entropy":
        y = rng.randint(0, 3, n)
        k, y_ref = 3, y
    elif loss == "sigmoid_log_loss":
        y = rng.randint(0, 2, n)
        k, y_ref = 1, y.reshape(-1, 1).astype(float)
    else:
        y = rng.randn(n)
        k, y_ref = 1, y.reshape(-1, 1)
    coefs = [rng.uniform(-0.5, 0.5, (d, h)), rng.uniform(-0.5, 0.5, (h, k))]
    intercepts = [rng.uniform(-0.5, 0.5, h), rng.uniform(-0.5, 0.5, k)]
    est = estimator(
        hidden_layer_sizes=(h,),
        activation="tanh",
        optimizer=SGD(),
        batch_size="full",
        shuffle=False,
        learning_rate_init=0.3,
        alpha=0.05,
        max_iter=1,
        warm_start=True,
        dtype=dtype,
    )
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    c32 = [c.astype(dtype).astype(float) for c in coefs]
    b32 = [b.astype(dtype).astype(float) for b in intercepts]
    value, cg, ig = ref.backprop(
        c32, b32, X.astype(dtype).astype(float), y_ref, "tanh", loss, alpha=0.05
    )
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for got, w, g in zip(est.coefs_ + est.intercepts_, c32 + b32, cg + ig):
        np.testing.assert_allclose(got, w - 0.3 * g, rtol=tol, atol=tol)
    np.testing.assert_allclose(est.loss_curve_[0], value, rtol=tol)
    assert est.coefs_[0].dtype == dtype


def _assert_shuffled_epoch_trains_like_in_order_rows(
    seed, sizes, n_rows, batch_size, dtype, n_threads
):
    """A shuffled Adam epoch over X trains exactly as the same epoch on
    X[order] visited in order (contiguous batches, nothing gathered)."""
    rng = np.random.RandomState(seed)
    layout = Layout(sizes)
    X = rng.randn(n_rows, sizes[0]).astype(dtype)
    Y = rng.randint(0, sizes[-1], (n_rows, 1)).astype(dtype)
    sw = rng.uniform(0.5, 2, n_rows).astype(dtype)
    order = rng.permutation(n_rows).astype(np.intp)
    p0 = rng.uniform(-0.3, 0.3, layout.n_params).astype(dtype)
    kind = OPTIMIZER_KINDS["adam"]
    hyper = np.array([0.9, 0.999, 1e-8, 0.0, 0.0])
    results = []
    for X_run, Y_run, sw_run, order_run in [
        (X, Y, sw, order),
        (X[order], Y[order], sw[order], np.empty(0, np.intp)),
    ]:
        params = p0.copy()
        state = np.zeros((STATE_BUFFERS[kind], layout.n_params), dtype)
        out = _train_epoch(
            layout,
            params,
            state,
            X_run,
            Y_run,
            sw_run,
            order_run,
            batch_size,
            "relu",
            "softmax_cross_entropy",
            "adam",
            hyper,
            1e-2,
            1e-3,
            0.0,
            0.0,
            n_threads,
        )
        results.append((params, state, out))
    (p_a, s_a, out_a), (p_b, s_b, out_b) = results
    assert not np.array_equal(p_a, p0)
    np.testing.assert_array_equal(p_a, p_b)
    np.testing.assert_array_equal(s_a, s_b)
    assert out_a == out_b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_shuffled_epoch_reads_rows_in_place_like_a_gathered_copy(dtype, n_threads):
    """A shuffled epoch whose batches fit the small-batch kernel reads X's rows
    through pointers; it must train exactly as the same epoch on X[order]
    visited in order."""
    # first layer: a whole number of the kernel's panels, and enough work for
    # its weight gradient to be split in row blocks (row pointers at an offset)
    _assert_shuffled_epoch_trains_like_in_order_rows(
        0, [256, 128, 16, 3], 100, 32, dtype, n_threads
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_shuffled_epoch_gathers_a_large_batch_like_in_order_rows(dtype, n_threads):
    """Batches too large for row pointers are gathered, and a gather of this
    size is split between the threads; the epoch must train exactly as the
    same epoch on X[order] visited in order, for any thread count."""
    # batch 200 x 200 features: over the parallel gather's size, and over
    # the row pointers' batch limit; 450 rows end in a short batch
    _assert_shuffled_epoch_trains_like_in_order_rows(
        1, [200, 40, 3], 450, 200, dtype, n_threads
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("batch", [24, 200])
def test_fused_layer_updates_match_backward_then_one_optimizer_pass(dtype, opt, batch):
    """The fused path (each layer's step right after its weight gradient, in
    row blocks; small-batch kernel at batch 24, BLAS at 200) against the
    unfused one (the whole gradient, then one optimizer pass), which the
    engine takes with clipping: a clip norm no gradient reaches changes
    nothing else, so the two are bit-identical. Widths span several kernel
    panels plus a remainder, and the penalty (weights only) is on."""
    rng = np.random.RandomState(1)
    layout = Layout([300, 70, 40, 5])
    X = rng.randn(400, 300).astype(dtype)
    Y = rng.randn(400, 5).astype(dtype)
    # batches in order: both paths read X in place, so they differ by the
    # fusion only (a shuffled batch is read through row pointers by the fused
    # path and gathered by the clipped one, whose last columns BLAS computes;
    # test_shuffled_epoch_reads_rows_in_place_like_a_gathered_copy)
    order = np.empty(0, dtype=np.intp)
    p0 = rng.uniform(-0.1, 0.1, layout.n_params).astype(dtype)
    kind = OPTIMIZER_KINDS[opt]
    hyper = {
        "adam": [0.9, 0.999, 1e-8, 0.0, 0.0],
        "sgd": [0.9, 0.0, 1.0],
        "rmsprop": [0.99, 1e-8, 0.5, 0.0],
    }[opt]
    hyper = np.array(hyper, dtype=np.float64)
    n_steps = -(-400 // batch)
    runs = []
    for clip in (0.0, 1e30):
        params = p0.copy()
        state = np.zeros((STATE_BUFFERS[kind], layout.n_params), dtype)
        out = _train_epoch(
            layout,
            params,
            state,
            X,
            Y,
            np.empty(0, dtype),
            order,
            batch,
            "tanh",
            "squared_error",
            opt,
            hyper,
            1e-3,
            1e-2,
            0.3,
            clip,
            2,
        )
        runs.append((params, state, out))
    (p_f, s_f, out_f), (p_u, s_u, out_u) = runs
    assert out_f[2] == out_u[2] == n_steps
    assert not np.allclose(p_f, p0)
    # the same products and the same elementwise step, in other blocks
    np.testing.assert_array_equal(p_f, p_u)
    np.testing.assert_array_equal(s_f, s_u)
    # the penalty's partial sums follow the blocks (layer rows or the whole
    # buffer's blocks), so the objective may differ in the last bits
    np.testing.assert_allclose(out_f[0], out_u[0], rtol=1e-12)


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="denormals are flushed through x86's MXCSR",
)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_engine_flushes_denormals_and_gives_the_mode_back(n_threads):
    # denormals slow x86 arithmetic many times over: the engine reads and
    # writes them as zero, in every thread, and restores the caller's mode
    tiny = np.finfo(np.float32).smallest_normal / 4  # a denormal float32
    layout = Layout([1, 1])
    network = _network(layout, "identity", "squared_error")
    params = np.array([1.0, 0.0], np.float32)  # w = 1, b = 0
    out = np.empty((3, 1), np.float32)
    X = np.array([[tiny], [1.0], [-tiny]], np.float32)
    network.forward(params, X, out, 256, n_threads)
    np.testing.assert_array_equal(out[:, 0], [0.0, 1.0, 0.0])
    assert not denormals_flushed_py()
    # the rest of the process keeps gradual underflow
    assert np.float32(tiny) * np.float32(0.5) > 0
    # and a fit of float32 weights decaying towards zero ends free of them
    X = np.random.RandomState(0).randn(256, 8).astype(np.float32)
    est = MLPRegressor(
        (16,), optimizer="sgd", momentum=0.0, learning_rate_init=0.5, alpha=60.0,
        batch_size=32, max_iter=12, n_threads=n_threads, random_state=0, tol=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, np.zeros(256))
    for coef in est.coefs_:
        magnitude = np.abs(coef[coef != 0])
        assert (magnitude >= np.finfo(np.float32).smallest_normal).all()
    assert not denormals_flushed_py()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [[784, 256, 10], [37, 100, 70, 3], [5, 1]])
def test_forward_rows_do_not_depend_on_the_batch(dtype, sizes):
    """A row's raw output is the same bits whatever rows share its call, its
    chunk size or the thread count (scikit-learn's subset invariance): the
    prediction pass never lets BLAS, whose summation order follows m, in."""
    rng = np.random.RandomState(0)
    layout = Layout(sizes)
    network = _network(layout, "tanh", "squared_error")
    params = rng.uniform(-0.2, 0.2, layout.n_params).astype(dtype)
    X = rng.randn(300, sizes[0]).astype(dtype)

    def forward(rows, chunk, n_threads):
        out = np.empty((len(rows), sizes[-1]), dtype)
        network.forward(params, np.ascontiguousarray(X[rows]), out, chunk, n_threads)
        return out

    full = forward(np.arange(300), 256, 1)
    np.testing.assert_array_equal(forward(np.arange(7), 256, 1), full[:7])
    np.testing.assert_array_equal(forward(np.arange(300), 5, 2), full)
    order = rng.permutation(300)
    np.testing.assert_array_equal(forward(order, 64, 2), full[order])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_count_outside_counts_every_entry_beyond_the_bound_and_nan(dtype, n_threads):
    """The one-pass check of X: exact counts in blocks of any size, the
    bound itself inside, NaN and infinities outside."""
    bound = float(np.sqrt(np.finfo(dtype).max))
    # several blocks of at least 2**16 values and a ragged last one
    x = np.random.default_rng(0).standard_normal(5 * 2**16 + 7).astype(dtype)
    assert count_outside(x, bound, n_threads) == 0
    x[[0, 2**16, 3 * 2**16 + 5, -1]] = [bound, -bound, np.nan, np.inf]
    assert count_outside(x, bound, n_threads) == 2
    x[[1, 2**17]] = [np.nextafter(dtype(bound), dtype(np.inf)), -np.inf]
    assert count_outside(x, bound, n_threads) == 4
    assert count_outside(x[:0], bound, n_threads) == 0
    assert count_outside(np.array([np.nan], dtype), bound, n_threads) == 1
