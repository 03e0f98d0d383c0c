"""fastfit speed benchmarks (pytest-benchmark); see ``docs/performance.md``."""
