"""Write the reference weights that tests/test_reference_weights.py compares against.

Each configuration is fitted with a fixed ``random_state`` and its flat weights
are stored per engine code path. The file was first written by the engine as it
stood before the engine object existed; a change that alters any of these
weights changes the rounding of training and must say why.

Run in a subprocess per code path, with BLAS pinned to one kernel
(``OPENBLAS_CORETYPE=Haswell``) so that the result depends on fastfit's code
only::

    FASTFIT_ISA=avx2 OPENBLAS_CORETYPE=Haswell python tests/data/make_reference_weights.py avx2 out.npz
"""

import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_regression

CONFIGS = {
    # small-batch kernel, shuffled rows read in place, fused Adam
    "clf_adam_b32": dict(
        kind="clf",
        hidden_layer_sizes=(32, 16),
        optimizer="adam",
        batch_size=32,
        max_iter=3,
    ),
    # BLAS products (batch > 128), clipping (unfused step), elastic net, tanh
    "reg_nesterov_clip": dict(
        kind="reg",
        hidden_layer_sizes=(48,),
        optimizer="sgd",
        activation="tanh",
        batch_size=150,
        clip_norm=1.0,
        penalty="elasticnet",
        alpha=1e-3,
        learning_rate_init=1e-3,
        max_iter=3,
    ),
    # wide enough for several column blocks, RMSprop, logistic, early stopping
    "clf_rmsprop_wide": dict(
        kind="clf",
        hidden_layer_sizes=(256,),
        optimizer="rmsprop",
        activation="logistic",
        batch_size=64,
        early_stopping=True,
        max_iter=3,
    ),
    # layers split by the rows of W (split-K forward, owned update blocks)
    "reg_adam_split": dict(
        kind="reg_wide",
        hidden_layer_sizes=(128, 64),
        optimizer="adam",
        batch_size=64,
        max_iter=3,
    ),
    # full batch AdamW, binary target, a schedule
    "bin_adamw_full": dict(
        kind="bin",
        hidden_layer_sizes=(20, 20),
        optimizer="adamw",
        batch_size="full",
        schedule="cosine",
        max_iter=5,
    ),
}


def data(kind):
    if kind.startswith("reg"):
        n_features = 128 if kind == "reg_wide" else 30
        X, y = make_regression(
            n_samples=600, n_features=n_features, noise=1.0, random_state=0
        )
        return X / X.std(0), y / y.std()
    X, y = load_digits(return_X_y=True)
    X = X[:900] / 16.0
    y = y[:900]
    return (X, (y >= 5).astype(int)) if kind == "bin" else (X, y)


def fit_weights(name, dtype):
    from fastfit import MLPClassifier, MLPRegressor

    params = dict(CONFIGS[name])
    kind = params.pop("kind")
    X, y = data(kind)
    cls = MLPRegressor if kind.startswith("reg") else MLPClassifier
    est = cls(random_state=0, dtype=dtype, n_threads=2, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_])


def all_weights():
    return {
        f"{name}/{np.dtype(dt).name}": fit_weights(name, dt)
        for name in CONFIGS
        for dt in (np.float32, np.float64)
    }


if __name__ == "__main__":
    path, out = sys.argv[1], sys.argv[2]
    np.savez(out, **{f"{path}/{k}": v for k, v in all_weights().items()})
