"""The tabular recipe (``examples/tabular_recipe.py``) against scikit-learn's
default MLP, on scikit-learn's bundled data sets and a noisy synthetic one.

``python -m benchmarks.tabular [--seeds N] [--skip-large] [--realmlp]``
prints a table of the mean test score (accuracy, or R^2 for diabetes) over
seeds. Each seed draws its own 75/25 split; scikit-learn's MLP gets
standardised inputs (and, for regression, a standardised target, as the
recipe has). ``--realmlp`` adds RealMLP-TD itself, pytabkit's
``RealMLP_TD_Classifier`` / ``RealMLP_TD_Regressor`` at their defaults (on
the CPU, one thread; ``pip install torch pytabkit``), on the same splits:
what the recipe transcribes, scored under the same protocol.
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


def realmlp(classification, seed):
    """pytabkit's RealMLP-TD at its defaults (its own validation split,
    preprocessing and target standardisation)."""
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    cls = RealMLP_TD_Classifier if classification else RealMLP_TD_Regressor
    return cls(random_state=seed, device="cpu", n_threads=1, verbosity=0)


def _score(model, X, y, classification):
    """Accuracy or R^2 (pytabkit's models are not scikit-learn scorers)."""
    pred = np.asarray(model.predict(X)).reshape(len(y))
    if classification:
        return float(np.mean(pred == y))
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - np.mean(y)) ** 2))


def compare(seeds=5, large=True, names=None, kinds=("recipe", "sklearn")):
    """{name: {kind: (mean score, seconds per fit)}} for each kind of model:
    'recipe', 'sklearn' and 'realmlp'."""
    recipe = load_recipe()
    makers = {"sklearn": sklearn_default, "realmlp": realmlp}
    results = {}
    for name, (X, y, classification) in datasets(large).items():
        if names is not None and name not in names:
            continue
        scores = {kind: [] for kind in kinds}
        seconds = {kind: 0.0 for kind in kinds}
        for seed in range(seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.25, random_state=seed,
                stratify=y if classification else None,
            )  # fmt: skip
            for kind in kinds:
                if kind == "recipe":
                    make = recipe.tabular_classifier if classification else (
                        recipe.tabular_regressor)  # fmt: skip
                    model = make(seed)
                else:
                    model = makers[kind](classification, seed)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X_tr, y_tr)
                seconds[kind] += time.perf_counter() - start
                scores[kind].append(_score(model, X_te, y_te, classification))
        results[name] = {
            kind: (float(np.mean(scores[kind])), seconds[kind] / seeds)
            for kind in kinds
        }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--realmlp",
        action="store_true",
        help="also pytabkit's RealMLP-TD (needs torch, pytabkit)",
    )
    args = parser.parse_args()
    kinds = ("recipe", "sklearn") + (("realmlp",) if args.realmlp else ())
    results = compare(args.seeds, not args.skip_large, kinds=kinds)
    titles = {
        "recipe": "recipe",
        "sklearn": "scikit-learn default",
        "realmlp": "RealMLP-TD (pytabkit)",
    }
    print(
        "| data set | "
        + " | ".join(titles[k] for k in kinds)
        + " | "
        + " | ".join(f"{k} s/fit" for k in kinds)
        + f" |  ({args.seeds} seeds)"
    )
    print("|---|" + "---|" * (2 * len(kinds)))
    for name, row in results.items():
        print(
            f"| {name} | "
            + " | ".join(f"{row[k][0]:.4f}" for k in kinds)
            + " | "
            + " | ".join(f"{row[k][1]:.1f}" for k in kinds)
            + " |"
        )


if __name__ == "__main__":
    main()
