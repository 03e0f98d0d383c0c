"""Benchmarks of the paths scikit-learn users arrive by: L-BFGS and sparse X.

* :func:`lbfgs_time_to_loss` -- fastfit's and scikit-learn's ``lbfgs`` on the
  same problem from the same initial weights (fastfit draws scikit-learn's
  Glorot initialisation for a ``random_state``): both run the same L-BFGS-B
  iterations, so the time to scikit-learn's final loss is the time of the fit,
  and the losses are reported to show they agree.
* :func:`sparse_epochs` -- seconds per epoch of Adam on a TF-IDF-shaped CSR
  matrix (documents over a Zipf-distributed vocabulary), fastfit against
  scikit-learn's MLP on the same float32 CSR input.
* :func:`sparse_fit_memory` -- what a fit on a large, very sparse CSR matrix
  allocates (tracemalloc) and its resident-set growth, against the matrix and
  the parameters.

Each runs in a fresh worker (``python -m benchmarks.worker --run JOB``);
timings are medians of ``repeats`` runs in that process, both frameworks with
the same thread count.
"""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from benchmarks.probes import RssSampler, quiet_warnings, traced_peak

LBFGS_PROBLEMS = {
    # name: (loader, estimator, hidden layers, L-BFGS iterations)
    "digits": ("load_digits", "MLPClassifier", (100,), 200),
    "diabetes": ("load_diabetes", "MLPRegressor", (100, 50), 50),
}


def _lbfgs_problem(name):
    import sklearn.datasets
    from sklearn.preprocessing import StandardScaler

    loader, estimator, hidden, max_iter = LBFGS_PROBLEMS[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if estimator == "MLPRegressor":
        y = (y - y.mean()) / y.std()
    return X, y, estimator, dict(hidden_layer_sizes=hidden, max_iter=max_iter)


def _median_fit(make, X, y, repeats):
    seconds, model = [], None
    for _ in range(repeats):
        model = make()
        start = time.perf_counter()
        model.fit(X, y)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), model


def lbfgs_time_to_loss(problem="digits", threads=2, repeats=5):
    """Median seconds of an L-BFGS fit (float64) in fastfit and scikit-learn.

    Returns the medians, their ratio (scikit-learn / fastfit), both final
    losses and iteration counts, and their relative loss difference.
    """
    import sklearn.neural_network as sk_nn
    from threadpoolctl import threadpool_limits

    import fastfit

    quiet_warnings()
    X, y, estimator, params = _lbfgs_problem(problem)
    params.update(random_state=0)
    with threadpool_limits(threads):
        sk_s, theirs = _median_fit(
            lambda: getattr(sk_nn, estimator)(solver="lbfgs", **params), X, y, repeats
        )
    ff_s, ours = _median_fit(
        lambda: getattr(fastfit, estimator)(
            optimizer="lbfgs", dtype=np.float64, n_threads=threads, **params
        ),
        X,
        y,
        repeats,
    )
    return {
        "problem": problem,
        "shape": list(X.shape),
        **params,
        "fastfit_seconds": ff_s,
        "sklearn_seconds": sk_s,
        "speedup": sk_s / ff_s,
        "fastfit_loss": ours.loss_,
        "sklearn_loss": theirs.loss_,
        "loss_rel_diff": abs(ours.loss_ - theirs.loss_) / abs(theirs.loss_),
        "fastfit_n_iter": ours.n_iter_,
        "sklearn_n_iter": theirs.n_iter_,
    }


def tfidf_matrix(n_docs=20_000, n_terms=50_000, terms_per_doc=120, seed=0):
    """A TF-IDF-shaped float32 CSR matrix and labels of 5 classes.

    Term ids follow a Zipf law (a few common words, a long tail); each class
    favours its own slice of the vocabulary. Rows are TF-IDF weighted and
    L2-normalised by scikit-learn's TfidfTransformer, as TfidfVectorizer does.
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n_docs)
    counts = rng.poisson(terms_per_doc, n_docs).clip(1)
    rows = np.repeat(np.arange(n_docs), counts)
    terms = (rng.zipf(1.3, rows.size) - 1) % n_terms
    topical = rng.random(rows.size) < 0.2
    terms[topical] = y[rows[topical]] * (n_terms // 5) + rng.integers(
        0, 500, topical.sum()
    )
    tf = sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, terms)), shape=(n_docs, n_terms)
    )
    tf.sum_duplicates()
    X = TfidfTransformer().fit_transform(tf).astype(np.float32)
    return X.tocsr(), y


def sparse_epochs(threads=2, epochs=2, repeats=3, hidden=(100,), batch_size=200):
    """Median seconds per epoch of Adam on :func:`tfidf_matrix`, both
    frameworks in float32 on the same CSR input."""
    import sklearn.neural_network as sk_nn
    from threadpoolctl import threadpool_limits

    import fastfit

    quiet_warnings()
    X, y = tfidf_matrix()
    params = dict(
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        random_state=0,
    )
    with threadpool_limits(threads):
        sk_s, theirs = _median_fit(lambda: sk_nn.MLPClassifier(**params), X, y, repeats)
    ff_s, ours = _median_fit(
        lambda: fastfit.MLPClassifier(n_threads=threads, **params), X, y, repeats
    )
    return {
        "shape": list(X.shape),
        "nnz": int(X.nnz),
        **params,
        "fastfit_seconds_per_epoch": ff_s / epochs,
        "sklearn_seconds_per_epoch": sk_s / epochs,
        "speedup": sk_s / ff_s,
        "fastfit_train_accuracy": float(ours.score(X, y)),
        "sklearn_train_accuracy": float(theirs.score(X, y)),
    }


def sparse_fit_memory(
    n=200_000, d=100_000, density=0.001, hidden=(100,), threads=2, epochs=1
):
    """Peak memory of a float32 fit on an n x d CSR matrix of that density.

    Returns the matrix's bytes (data, int32 indices, indptr), the parameter
    buffer's, the traced peak of the fit (NumPy's allocations, so any copy or
    densified part of X counts in full) and the growth of the resident set,
    each also as a multiple of matrix + parameters.
    """
    import scipy.sparse as sp

    import fastfit

    quiet_warnings()
    rng = np.random.default_rng(0)
    nnz = int(n * d * density)
    rows = np.sort(rng.integers(0, n, nnz))
    X = sp.csr_matrix(
        (
            rng.random(nnz, dtype=np.float32),
            (rows, rng.integers(0, d, nnz)),
        ),
        shape=(n, d),
    )
    X.indices = X.indices.astype(np.int32)
    y = rng.integers(0, 2, n)
    del rows
    gc.collect()
    matrix = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    est = fastfit.MLPClassifier(
        hidden_layer_sizes=hidden, max_iter=epochs, n_threads=threads, random_state=0
    )
    start = time.perf_counter()
    with RssSampler() as rss:
        peak = traced_peak(est.fit, X, y)
    seconds = time.perf_counter() - start
    params = est._params.nbytes
    return {
        "shape": [n, d],
        "nnz": int(X.nnz),
        "matrix_bytes": matrix,
        "params_bytes": params,
        "traced_peak_bytes": peak,
        "peak_rss_growth_bytes": rss.growth,
        "traced_peak_over_matrix_and_params": peak / (matrix + params),
        "rss_growth_over_matrix_and_params": rss.growth / (matrix + params),
        "fit_seconds": seconds,
    }
