"""scikit-learn's MLP examples, run with fastfit (only the two renames changed).

Each test is the example's code on bundled or synthetic data, with
``solver`` -> ``optimizer`` and ``learning_rate`` -> ``schedule``, checking that
it runs and reaches what the example shows.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_circles, make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from fastfit import MLPClassifier


def test_compare_stochastic_learning_strategies():
    # "Compare Stochastic learning strategies for MLPClassifier"
    params = [
        {
            "optimizer": "sgd",
            "schedule": "constant",
            "momentum": 0,
            "learning_rate_init": 0.2,
        },
        {
            "optimizer": "sgd",
            "schedule": "constant",
            "momentum": 0.9,
            "nesterovs_momentum": False,
            "learning_rate_init": 0.2,
        },
        {
            "optimizer": "sgd",
            "schedule": "constant",
            "momentum": 0.9,
            "nesterovs_momentum": True,
            "learning_rate_init": 0.2,
        },
        {
            "optimizer": "sgd",
            "schedule": "invscaling",
            "momentum": 0,
            "learning_rate_init": 0.2,
        },
        {
            "optimizer": "sgd",
            "schedule": "invscaling",
            "momentum": 0.9,
            "nesterovs_momentum": True,
            "learning_rate_init": 0.2,
        },
        {"optimizer": "adam", "learning_rate_init": 0.01},
    ]
    X, y = load_digits(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    for param in params:
        mlp = MLPClassifier(random_state=0, max_iter=15, **param)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            mlp.fit(X, y)
        assert len(mlp.loss_curve_) == mlp.n_iter_
        assert mlp.loss_curve_[-1] < mlp.loss_curve_[0]
        assert mlp.score(X, y) > 0.85


@pytest.mark.parametrize("alpha", np.logspace(-1, 1, 3))
def test_varying_regularization(alpha):
    # "Varying regularization in Multi-layer Perceptron": lbfgs on three data
    # sets; in float64 fastfit lands where scikit-learn does (alpha=10
    # underfits in both, as the example shows)
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    datasets = [
        make_moons(noise=0.3, random_state=0),
        make_circles(noise=0.2, factor=0.5, random_state=1),
        make_classification(
            n_features=2,
            n_redundant=0,
            n_informative=2,
            random_state=0,
            n_clusters_per_class=1,
        ),
    ]
    kw = dict(
        alpha=alpha,
        random_state=1,
        max_iter=2000,
        early_stopping=True,
        hidden_layer_sizes=[10, 10],
    )
    for X, y in datasets:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.4, random_state=42
        )
        clf = make_pipeline(StandardScaler(), MLPClassifier(optimizer="lbfgs", **kw))
        clf.fit(X_train, y_train)
        assert clf.predict_proba(X_test).shape == (len(X_test), 2)
        ours = make_pipeline(
            StandardScaler(),
            MLPClassifier(optimizer="lbfgs", dtype=np.float64, **kw),
        ).fit(X_train, y_train)
        theirs = make_pipeline(
            StandardScaler(), SkMLPClassifier(solver="lbfgs", **kw)
        ).fit(X_train, y_train)
        # up to 2000 iterations of a non-convex fit amplify last-bit
        # differences of summation order (BLAS kernels, the engine's blocks)
        assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.05
        if alpha >= 10:  # a strongly regularised fit: one minimum, reached alike
            np.testing.assert_allclose(ours[-1].loss_, theirs[-1].loss_, rtol=1e-6)


def test_visualization_of_mlp_weights():
    # "Visualization of MLP weights on MNIST" (digits here: the 8x8 images)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=0, test_size=0.3
    )
    mlp = MLPClassifier(
        hidden_layer_sizes=(40,),
        max_iter=8,
        alpha=1e-4,
        optimizer="sgd",
        verbose=0,
        random_state=1,
        learning_rate_init=0.2,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        mlp.fit(X_train, y_train)
    assert mlp.score(X_test, y_test) > 0.9
    vmin, vmax = mlp.coefs_[0].min(), mlp.coefs_[0].max()
    images = [coef.reshape(8, 8) for coef in mlp.coefs_[0].T[:16]]
    assert len(images) == 16 and vmin < 0 < vmax
