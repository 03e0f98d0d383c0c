"""Hyperparameter search and out-of-core training on a Dask cluster.

1. A successive-halving search over ``max_iter`` (scikit-learn's
   ``HalvingRandomSearchCV``) whose fits run on the cluster's workers through
   joblib's Dask backend: the search code is unchanged, only the backend is.
2. dask-ml's ``Incremental`` training one model over a dask array, one
   ``partial_fit`` per block, as for data that does not fit in memory.

The cluster here is a ``LocalCluster`` on this machine (loopback only); for a
real one, pass the scheduler's address to ``Client`` instead. Each worker has
one thread (``threads_per_worker=1``): its nanny sets OMP_NUM_THREADS=1, which
fastfit's default ``n_threads=None`` follows, so parallel fits do not compete
for the cores. With one worker per machine, pass ``n_threads`` explicitly to
train each fit on several cores.

Run it: ``pip install -e ".[dask]"`` then ``python examples/dask_search.py``.
"""

import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingRandomSearchCV, train_test_split

from fastfit import MLPClassifier


def search(X, y):
    """Successive halving: many candidates on a few epochs, the best ones on
    more (``max_iter`` is the resource)."""
    import joblib

    space = {
        "hidden_layer_sizes": [(32,), (64,), (64, 32)],
        "alpha": [1e-5, 1e-4, 1e-3, 1e-2],
        "learning_rate_init": [1e-3, 3e-3, 1e-2],
        "optimizer": ["adam", "adamw", "sgd"],
    }
    halving = HalvingRandomSearchCV(
        MLPClassifier(batch_size=64, random_state=0),
        space,
        resource="max_iter",
        min_resources=5,
        max_resources=40,
        factor=2,
        cv=3,
        random_state=0,
        n_jobs=-1,
    )
    with warnings.catch_warnings():
        # the short fits stop at max_iter on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend("dask"):
            halving.fit(X, y)
    print(
        f"halving search: {halving.n_candidates_} candidates over "
        f"{halving.n_iterations_} rounds (max_iter {halving.n_resources_})"
    )
    print(f"  best {halving.best_params_}, cv accuracy {halving.best_score_:.3f}")
    return halving.best_params_


def incremental(X, y, X_test, y_test, params, passes=10):
    """One model trained block by block over a dask array (here made from
    NumPy; ``dask.array.from_zarr``, ``from_npy_stack`` or dask.dataframe
    read data larger than memory the same way)."""
    import dask.array as da
    from dask_ml.wrappers import Incremental

    X_blocks = da.from_array(X, chunks=(1000, X.shape[1]))  # 1000 rows a block
    y_blocks = da.from_array(y, chunks=1000)
    model = Incremental(MLPClassifier(**params), scoring="accuracy")
    for _ in range(passes):
        # each pass: one partial_fit (one epoch) per block, blocks shuffled
        model.partial_fit(X_blocks, y_blocks, classes=np.unique(y))
    print(
        f"Incremental: {passes} passes over {X_blocks.numblocks[0]} blocks, "
        f"test accuracy {model.score(X_test, y_test):.3f}"
    )


def main():
    from distributed import Client, LocalCluster

    X, y = make_classification(
        n_samples=6000, n_features=20, n_informative=10, random_state=0
    )
    X = X.astype(np.float32)  # fastfit trains in float32: no copy per block
    X, X_test, y, y_test = train_test_split(X, y, random_state=0)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        ) as cluster,
        Client(cluster),
    ):
        best = search(X, y)
        best.pop("max_iter")
        incremental(X, y, X_test, y_test, {**best, "batch_size": 64, "random_state": 0})


if __name__ == "__main__":  # the workers are processes that import this file
    main()
