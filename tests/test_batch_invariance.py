"""A row's prediction does not depend on the rows beside it.

``predict(X)[i]`` equals ``predict(X[i:i + 1])[0]`` bit for bit, whatever the
chunking of the prediction pass, the thread count, the row's position, the
dtype and the layer widths (outputs of 1 and widths that leave a remainder
after the small-batch kernel's panels included). The prediction pass computes
each row alone by construction: one summation order per output element.
"""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfit import MLPClassifier, MLPRegressor
from fastfit._engine import ACTIVATIONS, LOSS_KINDS, Network
from fastfit._layout import Layout


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(1, 70), min_size=2, max_size=4),
    n=st.integers(1, 300),
    chunk=st.integers(1, 400),
    n_threads=st.integers(1, 2),
    dtype=st.sampled_from([np.float32, np.float64]),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    seed=st.integers(0, 2**16),
)
def test_forward_rows_are_independent(
    sizes, n, chunk, n_threads, dtype, activation, seed
):
    rng = np.random.RandomState(seed)
    layout = Layout(sizes)
    hidden = [ACTIVATIONS[activation]] * (layout.n_layers - 1)
    network = Network(
        layout.sizes, hidden + [ACTIVATIONS["identity"]], LOSS_KINDS["squared_error"]
    )
    params = rng.uniform(-0.5, 0.5, layout.n_params).astype(dtype)
    X = rng.randn(n, sizes[0]).astype(dtype)

    def forward(rows, chunk_size, threads):
        out = np.empty((len(rows), sizes[-1]), dtype)
        network.forward(params, np.ascontiguousarray(X[rows]), out, chunk_size, threads)
        return out

    reference = np.concatenate([forward([i], 1, 1) for i in range(n)])
    np.testing.assert_array_equal(forward(np.arange(n), chunk, n_threads), reference)
    order = rng.permutation(n)
    np.testing.assert_array_equal(forward(order, chunk, n_threads), reference[order])


def test_estimators_predict_each_row_alone():
    rng = np.random.RandomState(0)
    X = rng.randn(700, 37)
    y_reg = X[:, :3].sum(1)
    y_clf = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dtype in (np.float32, np.float64):
            reg = MLPRegressor((50, 33), max_iter=2, random_state=0, dtype=dtype).fit(
                X, y_reg
            )
            clf = MLPClassifier((70,), max_iter=2, random_state=0, dtype=dtype).fit(
                X, y_clf
            )
            for predict in (reg.predict, clf.predict_proba):
                full = predict(X)
                for i in (0, 1, 5, 128, 129, 699):
                    np.testing.assert_array_equal(predict(X[i : i + 1])[0], full[i])
                np.testing.assert_array_equal(predict(X[::-1]), full[::-1])
