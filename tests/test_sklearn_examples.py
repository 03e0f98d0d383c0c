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
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
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


def _documents(n, seed):
    """Short synthetic documents of three topics, each with its own words
    over a shared vocabulary (no corpus download)."""
    rng = np.random.RandomState(seed)
    vocabulary = np.array([f"w{i}" for i in range(3000)])
    topics = [rng.choice(3000, 150, replace=False) for _ in range(3)]
    labels = rng.randint(0, 3, n)
    docs = []
    for label in labels:
        n_words = rng.randint(15, 40)
        own = rng.choice(topics[label], n_words // 3)
        common = rng.randint(0, 3000, n_words - n_words // 3)
        docs.append(" ".join(vocabulary[np.r_[own, common]]))
    return docs, np.array(["sports", "politics", "science"])[labels]


def test_text_classification_with_a_tfidf_pipeline():
    # a TfidfVectorizer -> MLPClassifier pipeline (X is CSR, 3000 wide)
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs, labels = _documents(900, seed=0)
    d_train, d_test, y_train, y_test = train_test_split(docs, labels, random_state=0)
    kw = dict(hidden_layer_sizes=(32,), max_iter=20, random_state=0)
    ours = make_pipeline(TfidfVectorizer(), MLPClassifier(**kw)).fit(d_train, y_train)
    theirs = make_pipeline(TfidfVectorizer(), SkMLPClassifier(**kw)).fit(
        d_train, y_train
    )
    assert ours[0].transform(d_test[:1]).format == "csr"
    assert set(ours.predict(d_test)) <= set(labels)
    ours_score, theirs_score = ours.score(d_test, y_test), theirs.score(d_test, y_test)
    assert ours_score > 0.9
    assert abs(ours_score - theirs_score) <= 0.05


def test_column_transformer_with_a_high_cardinality_one_hot_column():
    # a ColumnTransformer whose one-hot output of 400 categories turns sparse
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    n = 3000
    city = rng.randint(0, 400, n)
    city_effect = rng.randn(400)
    frame = pd.DataFrame(
        {
            "city": [f"city-{c}" for c in city],
            "age": rng.uniform(18, 80, n),
            "income": rng.lognormal(10, 1, n),
        }
    )
    y = (city_effect[city] + (frame["age"] - 50) / 15 + rng.randn(n) * 0.3) > 0
    preprocess = ColumnTransformer(
        [
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("numbers", StandardScaler(), ["age", "income"]),
        ]
    )
    assert preprocess.fit_transform(frame).format == "csr"
    X_train, X_test, y_train, y_test = train_test_split(frame, y, random_state=0)
    kw = dict(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        ours = make_pipeline(preprocess, MLPClassifier(**kw)).fit(X_train, y_train)
        theirs = make_pipeline(preprocess, SkMLPClassifier(**kw)).fit(X_train, y_train)
    ours_score, theirs_score = ours.score(X_test, y_test), theirs.score(X_test, y_test)
    assert ours_score > 0.8
    assert abs(ours_score - theirs_score) <= 0.05
    assert ours.predict_proba(X_test).shape == (len(X_test), 2)
