"""L-BFGS and sparse input against scikit-learn (``scikit_learn_paths.py``).

Printed, with the medians in the JSON of ``--benchmark-json`` runs through
``extra_info``; asserted are only the properties that do not depend on timing:
the two L-BFGS fits reach the same loss, a sparse fit trains, and its memory
stays within a small multiple of the matrix plus the parameters.
"""

import pytest

from benchmarks.worker import run_job


@pytest.mark.parametrize("problem", ["digits", "diabetes"])
def test_lbfgs_time_to_sklearns_loss(problem, threads):
    r = run_job("lbfgs", problem, threads)
    print(
        f"\nlbfgs {problem} {r['shape']}, hidden {r['hidden_layer_sizes']}: fastfit "
        f"{r['fastfit_seconds']:.3f} s, scikit-learn {r['sklearn_seconds']:.3f} s "
        f"({r['speedup']:.1f}x); loss {r['fastfit_loss']:.10g} vs "
        f"{r['sklearn_loss']:.10g} (rel. diff {r['loss_rel_diff']:.1e}), "
        f"{r['fastfit_n_iter']} vs {r['sklearn_n_iter']} iterations"
    )
    assert r["loss_rel_diff"] < 1e-6


def test_sparse_tfidf_epochs(threads):
    r = run_job("sparse_epochs", threads)
    print(
        f"\nTF-IDF {r['shape']} ({r['nnz']} entries), hidden "
        f"{r['hidden_layer_sizes']}, batch {r['batch_size']}: fastfit "
        f"{r['fastfit_seconds_per_epoch']:.3f} s/epoch, scikit-learn "
        f"{r['sklearn_seconds_per_epoch']:.3f} s/epoch ({r['speedup']:.1f}x); "
        f"train accuracy {r['fastfit_train_accuracy']:.3f} vs "
        f"{r['sklearn_train_accuracy']:.3f}"
    )
    assert r["fastfit_train_accuracy"] > 0.5


def test_sparse_fit_memory(threads):
    r = run_job("sparse_fit_memory", threads=threads)
    gib = 2**30
    print(
        f"\nCSR {r['shape']} ({r['nnz']} entries, {r['matrix_bytes'] / gib:.2f} GiB), "
        f"parameters {r['params_bytes'] / gib:.2f} GiB: fit allocated "
        f"{r['traced_peak_bytes'] / gib:.2f} GiB at peak "
        f"({r['traced_peak_over_matrix_and_params']:.2f}x matrix + parameters), "
        f"RSS grew {r['peak_rss_growth_bytes'] / gib:.2f} GiB "
        f"({r['rss_growth_over_matrix_and_params']:.2f}x), {r['fit_seconds']:.1f} s"
    )
    assert r["traced_peak_over_matrix_and_params"] < 3
