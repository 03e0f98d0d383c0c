"""The compiled engine, one build per instruction-set level, chosen at import.

``setup.py`` compiles the same sources (``_core.pxi``) once per level: ``baseline``
(any x86-64, or the compiler's default elsewhere), ``avx2`` (x86-64-v3: AVX2 and
FMA) and ``avx512`` (x86-64-v4). Importing this package loads the fastest build
the CPU runs. ``FASTFIT_ISA`` forces one (``baseline``, ``avx2``, ``avx512``,
or ``native`` for a ``FASTFIT_NATIVE=1`` build), so each code path can be tested
on one machine; an unknown, unbuilt or unsupported choice raises ImportError.

Every name of the engine is re-exported here: ``Network``, ``Trainer``, the
kernel ids (``ACTIVATIONS``, ``LOSS_KINDS``, ``OPTIMIZER_KINDS``) and the
Python twins of the kernels used by the tests.
"""

import importlib
import importlib.util
import os

from fastfit._engine._cpu import x86_64_level

# fastest first; the x86-64 level each needs
LEVELS = {"native": 0, "avx512": 4, "avx2": 3, "baseline": 0}


def built_isas():
    """The engine builds present, fastest first."""
    return [
        isa
        for isa in LEVELS
        if importlib.util.find_spec(f"{__name__}._core_{isa}") is not None
    ]


def supported_isas():
    """The engine builds present that this CPU can run, fastest first."""
    level = x86_64_level()
    return [isa for isa in built_isas() if LEVELS[isa] <= level]


def _load():
    forced = os.environ.get("FASTFIT_ISA", "").strip().lower()
    if forced:
        if forced not in LEVELS:
            raise ImportError(
                f"FASTFIT_ISA={forced!r}: the engine builds are {list(LEVELS)}"
            )
        if forced not in supported_isas():
            raise ImportError(
                f"FASTFIT_ISA={forced!r}: that engine build is "
                + (
                    "not supported by this CPU"
                    if forced in built_isas()
                    else "not built"
                )
                + f"; available here: {supported_isas()}"
            )
        isa = forced
    else:
        choices = supported_isas()
        if not choices:
            raise ImportError("no engine build runs on this CPU; rebuild fastfit")
        isa = choices[0]
    return isa, importlib.import_module(f"{__name__}._core_{isa}")


ISA, _core = _load()


def _usable_cores():
    """Cores this process may use: affinity and cgroup quotas respected."""
    from joblib import cpu_count

    return max(1, cpu_count())


# cores this process may use, read once: the blocking follows it, and it caps
# an explicit n_threads
USABLE_CORES = _usable_cores()
_core.set_machine_cores(USABLE_CORES)

ACTIVATIONS = _core.ACTIVATIONS
LOSS_KINDS = _core.LOSS_KINDS
MAX_EXP_ARG = _core.MAX_EXP_ARG
MAX_LAYERS = _core.LAYER_LIMIT
OPTIMIZER_KINDS = _core.OPTIMIZER_KINDS
STATE_BUFFERS = _core.STATE_BUFFERS
HYPER_LENGTHS = _core.HYPER_LENGTHS
CSRInput = _core.CSRInput
Network = _core.Network
Trainer = _core.Trainer
gemm_py = _core.gemm_py
count_outside = _core.count_outside
gemm_small_py = _core.gemm_small_py
small_gemm_panel_py = _core.small_gemm_panel_py
blocking_plan = _core.blocking_plan
denormals_flushed_py = _core.denormals_flushed_py
loss_gradient_py = _core.loss_gradient_py
dropout_mask = _core.dropout_mask
optimizer_step_py = _core.optimizer_step_py
gradient_norm_sq_py = _core.gradient_norm_sq_py
openmp_enabled = _core.openmp_enabled
openmp_max_threads = _core.openmp_max_threads
openmp_team_size = _core.openmp_team_size
bounds_checked = _core.bounds_checked
address_sanitized = _core.address_sanitized
