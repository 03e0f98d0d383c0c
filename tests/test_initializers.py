"""Initial weights: ``init`` and ``bias_init``, reproducible from random_state."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

from fastfit import MLPClassifier, MLPRegressor
from fastfit._layout import Layout
from fastfit._mlp import INITIALIZERS

FAN_IN, FAN_OUT = 600, 400


def _draw(init, bias_init="init", activation="relu", seed=0):
    est = MLPRegressor(init=init, bias_init=bias_init, activation=activation)
    layout = Layout([FAN_IN, FAN_OUT, 1])
    params = est._initial_params(layout, np.random.RandomState(seed), np.float64)
    coefs, intercepts = layout.views(params)
    return coefs[0], intercepts[0]


# (uniform bound or None, std) of the first layer's weights
EXPECTED = {
    "glorot_uniform": (np.sqrt(6 / (FAN_IN + FAN_OUT)), None),
    "glorot_normal": (None, np.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_uniform": (np.sqrt(6 / FAN_IN), None),
    "he_normal": (None, np.sqrt(2 / FAN_IN)),
    "lecun_normal": (None, np.sqrt(1 / FAN_IN)),
}


def test_every_initializer_is_tested():
    assert set(EXPECTED) == set(INITIALIZERS)


@pytest.mark.parametrize("init", sorted(EXPECTED))
def test_initial_weights_follow_their_formula(init):
    W, b = _draw(init)
    bound, std = EXPECTED[init]
    if bound is not None:
        assert np.abs(W).max() <= bound
        std = bound / np.sqrt(3)  # of U(-bound, bound)
    # 240k draws: the sample std is within 1 % of the true one
    assert abs(W.std() / std - 1) < 0.01
    assert abs(W.mean()) < 5 * std / np.sqrt(W.size)
    # the biases are drawn like the weights of their layer
    assert abs(b.std() / std - 1) < 0.15


def test_the_default_is_scikit_learns_including_logistic():
    W, _ = _draw("glorot_uniform", activation="logistic")
    assert np.abs(W).max() <= np.sqrt(2 / (FAN_IN + FAN_OUT))
    assert np.abs(W).max() > 0.99 * np.sqrt(2 / (FAN_IN + FAN_OUT))


@pytest.mark.parametrize("init", sorted(EXPECTED))
def test_zero_biases_and_reproducibility(init):
    W0, b0 = _draw(init, bias_init="zeros")
    assert not b0.any()
    W1, _ = _draw(init, bias_init="zeros")
    np.testing.assert_array_equal(W0, W1)
    W2, _ = _draw(init, bias_init="zeros", seed=1)
    assert not np.array_equal(W0, W2)


def test_init_is_a_plain_hyperparameter():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0),
        {"init": ["he_normal", "lecun_normal"], "bias_init": ["init", "zeros"]},
        cv=2,
    )
    with pytest.warns(Warning):
        search.fit(X, y)
    assert search.best_params_["init"] in ("he_normal", "lecun_normal")
    a = MLPClassifier(init="he_normal", max_iter=3, random_state=0).fit(X, y)
    b = MLPClassifier(init="he_normal", max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


@pytest.mark.parametrize(("param", "value"), [("init", "xavier"), ("bias_init", 0)])
def test_unknown_initializers_are_refused(param, value):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=param):
        MLPClassifier(**{param: value}).fit(X, y)
