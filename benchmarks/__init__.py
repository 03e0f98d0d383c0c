"""fastfit speed benchmarks (pytest-benchmark); shared cases in ``cases``."""
