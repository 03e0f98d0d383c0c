"""Checks of data-parallel training, run on every rank by tests/test_mpi.py:

    mpiexec -n 2 python tests/mpi_worker.py CHECK [CHECK ...]

Each check prints ``ok CHECK`` on rank 0 when it passed on every rank. An
uncaught exception on one rank aborts the job (a peer would otherwise wait in
its next collective until the test's timeout).
"""

import copy
import pickle
import sys
import warnings

import numpy as np
from mpi4py import MPI
from sklearn.base import clone

from fastfit import MLPClassifier, MLPRegressor

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def _abort_on_error(kind, value, tb):
    sys.__excepthook__(kind, value, tb)
    sys.stderr.flush()
    comm.Abort(1)


sys.excepthook = _abort_on_error
warnings.simplefilter("ignore")


def flat(model):
    return np.concatenate(
        [c.ravel() for c in model.coefs_] + [b.ravel() for b in model.intercepts_]
    )


def same_everywhere(values):
    """Whether every rank holds bit-identical ``values``."""
    everyone = comm.allgather(np.ascontiguousarray(values))
    return all(np.array_equal(everyone[0], v) for v in everyone)


def data(n, n_features=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features)
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.3).astype(int) + (X[:, 2] > 1)
    return X, y, rng.uniform(0.5, 2.0, n)


def shards(b):
    """Row ranges of each rank's shard and the order of the rows of one
    process with batch ``size * b`` that takes global batch k as rank 0's
    batch k, then rank 1's, ... Every rank has 3 batches of b rows but the
    last, whose last batch is short (b // 4 rows): every global batch but the
    last is full, so the two fits see the same batches, and the rows of the
    last rank's short batch keep their place (the same dropout masks)."""
    sizes = [3 * b] * (size - 1) + [2 * b + b // 4]
    starts = np.cumsum([0] + sizes)
    ranges = [np.arange(starts[r], starts[r + 1]) for r in range(size)]
    order = [ranges[r][k * b : (k + 1) * b] for k in range(3) for r in range(size)]
    return ranges, np.concatenate(order), int(starts[-1])


def check_equivalence():
    """2 ranks with per-rank batch b on unequal shards == one process with
    batch size * b on the rows in the matching order (dropout, weights,
    penalty, Adam, float64); replicas bit-identical."""
    b = 16
    ranges, order, n = shards(b)
    X, y, sw = data(n)
    params = dict(
        hidden_layer_sizes=(12, 8), dropout=0.2, alpha=1e-3, shuffle=False,
        max_iter=4, random_state=0, dtype=np.float64, learning_rate_init=1e-2,
    )  # fmt: skip
    mine = ranges[rank]
    dp = MLPClassifier(batch_size=b, communicator=comm, **params)
    dp.fit(X[mine], y[mine], sample_weight=sw[mine])
    alone = MLPClassifier(batch_size=size * b, **params)
    alone.fit(X[order], y[order], sample_weight=sw[order])
    assert same_everywhere(flat(dp)), "replicas differ"
    np.testing.assert_allclose(flat(dp), flat(alone), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dp.loss_curve_, alone.loss_curve_, rtol=1e-10)
    assert dp.t_ == alone.t_ == n * params["max_iter"]
    # overlapped per-layer reductions: the same sums, so the same fit
    ov = MLPClassifier(
        batch_size=b, communicator=comm, overlap_allreduce=True, **params
    )
    ov.fit(X[mine], y[mine], sample_weight=sw[mine])
    assert np.array_equal(flat(ov), flat(dp)), "overlap changed the fit"
    return dp


def check_replicas():
    """float32, shuffled, Adam, clip_norm, shards of different sizes and
    classes missing from one shard: replicas bit-identical, every class
    known; predict, pickle, clone and partial_fit on the result."""
    X, y, _ = data(500, seed=1)
    mine = np.arange(rank, 500, size)[: 200 + 40 * rank]
    if rank == 1:
        mine = mine[y[mine] != 2]  # this shard lacks class 2
    clf = MLPClassifier(
        (16,), communicator=comm, batch_size=20, max_iter=3, clip_norm=1.0,
        random_state=None,
    )  # fmt: skip
    clf.fit(X[mine], y[mine])
    assert list(clf.classes_) == [0, 1, 2], clf.classes_
    assert same_everywhere(flat(clf)), "replicas differ"
    assert same_everywhere(np.array(clf.loss_curve_))
    pred = clf.predict(X)
    assert same_everywhere(pred)
    back = pickle.loads(pickle.dumps(clf))
    assert back.communicator is None
    assert np.array_equal(back.predict(X), pred)
    twin = clone(clf)
    assert twin.communicator is comm and not hasattr(twin, "coefs_")
    dup = comm.Dup()
    assert clone(MLPRegressor(communicator=dup)).communicator is dup
    assert copy.deepcopy(clf).communicator is None  # as a pickle
    dup.Free()
    # partial_fit continues together, then alone after unpickling
    clf.partial_fit(X[mine], y[mine])
    assert same_everywhere(flat(clf))
    back.partial_fit(X[mine], y[mine])
    assert back.predict(X).shape == (500,)
    # a regressor, local SGD with warm-up: replicas equal after every epoch
    reg = MLPRegressor(
        (8,), communicator=comm, sync_every=3, sync_warmup=5, batch_size=10,
        max_iter=3, random_state=0,
    )  # fmt: skip
    reg.fit(X[mine], X[mine, 0] - X[mine, 1])
    assert same_everywhere(flat(reg)) and reg.n_iter_ == 3


def check_early_stopping():
    """Early stopping decided from every rank's validation rows: every rank
    stops at the same epoch with the same best weights."""
    X, y, _ = data(600, seed=2)
    mine = np.arange(rank, 600, size)
    clf = MLPClassifier(
        (16,), communicator=comm, early_stopping=True, n_iter_no_change=2,
        max_iter=200, learning_rate_init=0.05, random_state=3, tol=1e-3,
        dtype=np.float64,
    )  # fmt: skip
    clf.fit(X[mine], y[mine])
    assert clf.n_iter_ < 200
    assert same_everywhere(np.array([clf.n_iter_]))
    assert same_everywhere(np.array(clf.validation_scores_))
    assert same_everywhere(flat(clf))


def check_local_sgd():
    """Local SGD with sync_every=1 and plain SGD is synchronous training
    (equal shares: the average of the replicas' steps is the step of the
    whole batch)."""
    X, y, _ = data(256, seed=4)
    mine = np.arange(rank * 128, (rank + 1) * 128)
    params = dict(
        hidden_layer_sizes=(10,), optimizer="sgd", momentum=0.0, alpha=1e-3,
        batch_size=16, max_iter=3, random_state=0, dtype=np.float64,
        learning_rate_init=0.05, communicator=comm,
    )  # fmt: skip
    sync = MLPClassifier(**params).fit(X[mine], y[mine])
    local = MLPClassifier(sync_every=1, **params).fit(X[mine], y[mine])
    assert same_everywhere(flat(local))
    np.testing.assert_allclose(flat(local), flat(sync), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(local.loss_curve_, sync.loss_curve_, rtol=1e-10)


def check_divergence():
    """A loss that overflows on one rank only stops the step on every rank:
    the epoch is rolled back everywhere, the replicas stay equal and finite."""
    X, _, _ = data(200, seed=6)
    y = X[:, 0].copy()
    if rank == size - 1:
        y[-5:] = 1e20  # its squared error overflows float32
    reg = MLPRegressor((8,), communicator=comm, batch_size=20, max_iter=3,
                       random_state=0)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.fit(X, y)
    assert any("diverged" in str(w.message) for w in caught)
    assert reg.n_iter_ == 0 and np.isfinite(flat(reg)).all()
    assert same_everywhere(flat(reg))


def check_bad_input():
    """A bad input on one rank is a ValueError on every rank, and the
    communicator still works afterwards."""
    X, y, _ = data(100, seed=5)
    cases = {
        "nan": lambda X: np.where(np.arange(X.shape[1]) == 0, np.nan, X),
        "features": lambda X: X[:, :-1],
    }
    for name, spoil in cases.items():
        Xr = spoil(X) if rank == size - 1 else X
        try:
            MLPClassifier((4,), communicator=comm, max_iter=2).fit(Xr, y)
        except ValueError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}: no error on rank {rank}")
        if rank != size - 1 and name == "nan":
            assert f"rank {size - 1}" in message, message
    # a lone label type error on one rank (continuous targets)
    yr = y + 0.5 if rank == 0 else y
    try:
        MLPClassifier((4,), communicator=comm, max_iter=2).fit(X, yr)
    except ValueError:
        pass
    else:
        raise AssertionError("continuous y accepted")
    assert comm.allreduce(1) == size


CHECKS = {
    "equivalence": check_equivalence,
    "replicas": check_replicas,
    "early_stopping": check_early_stopping,
    "local_sgd": check_local_sgd,
    "divergence": check_divergence,
    "bad_input": check_bad_input,
}

if __name__ == "__main__":
    for name in sys.argv[1:]:
        CHECKS[name]()
        comm.Barrier()
        if rank == 0:
            print(f"ok {name}", flush=True)
