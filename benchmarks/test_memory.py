"""Memory properties of fastfit (asserted: they do not depend on timing).

Measured with tracemalloc in a fresh worker process: NumPy reports its array
allocations to tracemalloc and the engine allocates its buffers as NumPy
arrays, so any copy of X (a cast, ``ascontiguousarray``, a fancy-indexed
shuffle) would be counted in full. See ``probes.fit_memory`` for the allowance.
"""

from benchmarks.worker import run_job


def _mib(b):
    return f"{b / 2**20:.1f} MiB"


def test_fit_makes_no_copy_of_float32_c_X(threads):
    m = run_job("fit_memory", threads=threads)
    print(
        f"\nX {_mib(m['X_bytes'])}: fit allocated "
        f"{_mib(m['traced_peak_bytes'])} at peak ({m['traced_peak_over_X']:.1%} of X); "
        f"allowance {_mib(m['allowance_bytes'])}; "
        f"peak RSS grew {_mib(m['peak_rss_growth_bytes'])}"
    )
    assert m["ok"], (
        f"fit allocated {_mib(m['traced_peak_bytes'])} at peak, more than 10% of X "
        f"({_mib(m['X_bytes'])}) plus parameter ({_mib(m['params_bytes'])}), batch "
        f"({_mib(m['batch_bytes'])}) and per-row ({_mib(m['per_row_bytes'])}) buffers: "
        "X (or a large part of it) was copied"
    )


def test_predict_memory_is_chunked(threads):
    m = run_job("predict_memory", threads=threads)
    print(
        f"\npredict peaks {m['peaks']} -> {m['bytes_per_row']:.0f} bytes per extra row"
    )
    assert m["ok"], (
        f"predict memory grows by {m['bytes_per_row']:.0f} bytes per row; an unchunked "
        f"forward pass needs >= {m['unchunked_bytes_per_row_at_least']} bytes per row"
    )
