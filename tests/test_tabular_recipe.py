"""The tabular recipe of ``examples/tabular_recipe.py``: a plain scikit-learn
pipeline of public hyperparameters that scores at least as well as
scikit-learn's default MLP (the full table: ``python -m benchmarks.tabular``)."""

import importlib.util
import os
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split

from benchmarks.tabular import sklearn_default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location(
        "tabular_recipe", os.path.join(ROOT, "examples", "tabular_recipe.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mean_scores(make_recipe, X, y, classification, seeds=(0, 1)):
    ours, theirs = [], []
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.25, random_state=seed,
            stratify=y if classification else None,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours.append(make_recipe(seed).fit(X_tr, y_tr).score(X_te, y_te))
            theirs.append(
                sklearn_default(classification, seed).fit(X_tr, y_tr).score(X_te, y_te)
            )
    return np.mean(ours), np.mean(theirs)


def test_the_recipe_is_plain_hyperparameters(recipe):
    model = recipe.tabular_classifier(0)
    params = model.get_params()
    assert params["mlpclassifier__dropout"] == 0.15
    assert params["mlpclassifier__activation"] == "selu"
    assert params["mlpclassifier__schedule"] == "coslog4"
    assert params["mlpclassifier__label_smoothing"] == 0.1
    assert params["mlpclassifier__optimizer"].beta_2 == 0.95
    assert clone(model).get_params()["mlpclassifier__max_iter"] == 256


def test_the_recipe_matches_or_beats_scikit_learn_on_breast_cancer(recipe):
    X, y = load_breast_cancer(return_X_y=True)
    ours, theirs = _mean_scores(recipe.tabular_classifier, X, y, True)
    assert ours >= theirs - 1e-9, (ours, theirs)


def test_the_regression_recipe_matches_or_beats_scikit_learn_on_diabetes(recipe):
    X, y = load_diabetes(return_X_y=True)
    ours, theirs = _mean_scores(recipe.tabular_regressor, X, y, False)
    assert ours >= theirs, (ours, theirs)
