"""fastfit._plotting.plot_learning_curve: lines, labels, errors."""

import builtins
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastfit import MLPClassifier, MLPRegressor
from fastfit._plotting import plot_learning_curve
from fastfit.schedules import StepLR


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=200, n_features=8, random_state=0)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_training_loss_and_learning_rate(plt, data):
    X, y = data
    est = _fit(
        MLPClassifier(
            (8,), max_iter=6, random_state=0, schedule=StepLR(step_size=2, gamma=0.5)
        ),
        X,
        y,
    )
    ax = plot_learning_curve(est)
    lines = _lines(ax)
    assert set(lines) == {"training loss"}  # no validation curve without early stopping
    x, loss = lines["training loss"].get_data()
    np.testing.assert_array_equal(x, np.arange(1, est.n_iter_ + 1))
    np.testing.assert_allclose(loss, est.loss_curve_)
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss"

    # learning rate on a twin y-axis sharing the epochs
    lr_ax = ax.lr_ax_
    assert lr_ax is not None and lr_ax is not ax and lr_ax in ax.figure.axes
    assert lr_ax.get_ylabel() == "learning rate"
    (lr_line,) = lr_ax.get_lines()
    assert lr_line.get_label() == "learning rate"
    x, lr = lr_line.get_data()
    np.testing.assert_array_equal(x, np.arange(1, est.n_iter_ + 1))
    np.testing.assert_allclose(lr, est.learning_rate_curve_)
    np.testing.assert_allclose(lr, [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])

    # one legend listing every curve of both axes
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "training loss",
        "learning rate",
    ]


def test_validation_loss_when_early_stopping(plt, data):
    X, y = data
    est = _fit(
        MLPClassifier(
            (8,), max_iter=5, random_state=0, early_stopping=True, n_iter_no_change=50
        ),
        X,
        y,
    )
    fig, ax = plt.subplots()
    assert plot_learning_curve(est, ax=ax) is ax  # draws on the given Axes
    lines = _lines(ax)
    assert set(lines) == {"training loss", "validation loss"}
    np.testing.assert_allclose(
        lines["validation loss"].get_ydata(), est.validation_loss_curve_
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training loss",
        "validation loss",
        "learning rate",
    ]


def test_regressor_and_pipeline(plt):
    rng = np.random.RandomState(0)
    X = rng.randn(100, 3)
    y = X @ [1.0, -2.0, 0.5]
    pipe = _fit(
        make_pipeline(StandardScaler(), MLPRegressor((5,), max_iter=4, random_state=0)),
        X,
        y,
    )
    ax = plot_learning_curve(pipe)
    np.testing.assert_allclose(
        _lines(ax)["training loss"].get_ydata(), pipe[-1].loss_curve_
    )


def test_sklearn_mlp_without_learning_rate_curve(plt, data):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = data
    est = _fit(SkMLP((4,), max_iter=3, random_state=0), X, y)
    ax = plot_learning_curve(est)
    assert set(_lines(ax)) == {"training loss"}
    assert ax.lr_ax_ is None


def test_unfitted_estimator_raises(plt):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        plot_learning_curve(MLPClassifier())


def test_missing_matplotlib_raises_clear_import_error(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(
        ImportError,
        match="plot_learning_curve needs matplotlib: pip install matplotlib",
    ):
        plot_learning_curve(MLPClassifier())
