"""The tabular recipe (``examples/tabular_recipe.py``) against scikit-learn's
default MLP, on scikit-learn's bundled data sets and a noisy synthetic one.

``python -m benchmarks.tabular [--seeds N] [--skip-large]`` prints a table of
the mean test score (accuracy, or R^2 for diabetes) over seeds. Each seed
draws its own 75/25 split; scikit-learn's MLP gets standardised inputs (and,
for regression, a standardised target, as the recipe has).
"""

import argparse
import importlib.util
import os
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_classification,
)
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_recipe():
    """The example module (examples/ is not a package)."""
    path = os.path.join(ROOT, "examples", "tabular_recipe.py")
    spec = importlib.util.spec_from_file_location("tabular_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def datasets(large=True):
    """name -> (X, y, is_classification)."""
    out = {
        "digits": (*load_digits(return_X_y=True), True),
        "breast_cancer": (*load_breast_cancer(return_X_y=True), True),
        "wine": (*load_wine(return_X_y=True), True),
        "diabetes": (*load_diabetes(return_X_y=True), False),
    }
    if large:
        X, y = make_classification(
            50_000, n_features=20, n_informative=10, flip_y=0.1, class_sep=0.8,
            random_state=0,
        )  # fmt: skip
        out["synthetic_50k"] = (X, y, True)
    return out


def sklearn_default(classification, seed):
    if classification:
        return make_pipeline(StandardScaler(), MLPClassifier(random_state=seed))
    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), MLPRegressor(random_state=seed)),
        transformer=StandardScaler(),
    )


def compare(seeds=5, large=True, names=None):
    """{name: (recipe mean, sklearn mean, recipe seconds, sklearn seconds)}."""
    recipe = load_recipe()
    results = {}
    for name, (X, y, classification) in datasets(large).items():
        if names is not None and name not in names:
            continue
        scores = {"recipe": [], "sklearn": []}
        seconds = {"recipe": 0.0, "sklearn": 0.0}
        for seed in range(seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.25, random_state=seed,
                stratify=y if classification else None,
            )  # fmt: skip
            for kind in ("recipe", "sklearn"):
                if kind == "recipe":
                    make = recipe.tabular_classifier if classification else (
                        recipe.tabular_regressor)  # fmt: skip
                    model = make(seed)
                else:
                    model = sklearn_default(classification, seed)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X_tr, y_tr)
                seconds[kind] += time.perf_counter() - start
                scores[kind].append(model.score(X_te, y_te))
        results[name] = (
            float(np.mean(scores["recipe"])), float(np.mean(scores["sklearn"])),
            seconds["recipe"] / seeds, seconds["sklearn"] / seeds,
        )  # fmt: skip
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    results = compare(args.seeds, not args.skip_large)
    print(f"| data set | recipe | scikit-learn default | recipe s/fit | "
          f"scikit-learn s/fit |  ({args.seeds} seeds)")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, (r, s, tr, ts) in results.items():
        print(f"| {name} | {r:.4f} | {s:.4f} | {tr:.1f} | {ts:.1f} |")


if __name__ == "__main__":
    main()
