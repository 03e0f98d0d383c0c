"""The fresh-process worker every benchmark measurement runs in.

The frameworks bring different thread runtimes (fastfit: the system
libgomp + OpenBLAS pinned to 1 thread; scikit-learn: OpenBLAS's pthreads;
PyTorch: its own bundled libgomp + MKL/oneDNN; JAX: XLA's own thread pool).
Threads of one runtime that spin while another wants the core slow runs down
many times, so no two frameworks ever share a process: every measurement
builds its object in a fresh interpreter and drives it over a pipe, one JSON
line per message.

* :class:`Remote` -- an object living in a worker: a trainer
  (``Remote("trainer", "torch", "wide", 2)``), a predictor
  (``Remote("predictor", "fastfit", 2)``) or the jobs (``Remote("jobs")``:
  the functions of :data:`JOBS`). ``remote.call(method, *args)`` runs there
  and returns its result. A round trip costs ~0.1 ms: the pytest suite times
  ``call`` from the parent; ``tools/profile_epoch.py`` attaches a profiler
  to ``remote.proc.pid``.
* :func:`run_job` -- one job in a worker of its own, as ``tools/compare.py``
  and the memory tests use it.

``python -m benchmarks.worker --run JOB ARG...`` runs one job and prints its
JSON (``--run epochs fastfit tiny 2``), for a look at what the parent gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
import types

import numpy as np

from benchmarks.probes import CpuProbe, fit_memory, predict_memory, sgemm_peak
from benchmarks.scikit_learn_paths import (
    lbfgs_time_to_loss,
    sparse_epochs,
    sparse_fit_memory,
)
from benchmarks.sweep import sweep_epochs
from benchmarks.toolbox import toolbox_epochs
from benchmarks.trainers import TRAINERS, Predictor, time_epochs, time_predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "XLA_FLAGS",
)

JOBS = {
    "epochs": time_epochs,
    "peak": sgemm_peak,
    "predict": time_predict,
    "fit_memory": fit_memory,
    "predict_memory": predict_memory,
    "lbfgs": lbfgs_time_to_loss,
    "sparse_epochs": sparse_epochs,
    "sparse_fit_memory": sparse_fit_memory,
    "toolbox_epochs": toolbox_epochs,
    "sweep": sweep_epochs,
}


def worker_env():
    """Environment of a worker: the repo on the path; no thread-count overrides
    leak in from the parent (each trainer sets its own thread count)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = ROOT + (os.pathsep + path if path else "")
    for var in THREAD_VARS:
        env.pop(var, None)
    return env


class Remote:
    """An object built in its own fresh interpreter, driven by line-JSON pipes.

    ``other_cores`` collects, per call, the cores other processes kept busy
    while it ran. ``timeout`` (seconds per call) kills a worker that hangs.
    The worker's stderr goes to a temporary file; its tail comes with errors.
    """

    def __init__(self, kind, *args, timeout=None):
        self.timeout = timeout
        self.other_cores = []
        self._stderr = tempfile.TemporaryFile()
        spec = json.dumps({"kind": kind, "args": args})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", spec],
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._read()  # "ready" (or the error building the object)

    def stderr_tail(self, size=4000):
        """The last ``size`` bytes the worker wrote to stderr."""
        fd = self._stderr.fileno()
        end = os.fstat(fd).st_size
        return os.pread(fd, size, max(0, end - size)).decode(errors="replace")

    def _read(self):
        timer = None
        if self.timeout:
            timer = threading.Timer(self.timeout, self.proc.kill)
            timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            if timer is not None:
                timer.cancel()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(
                f"worker exited ({code}; timeout {self.timeout} s):\n"
                + self.stderr_tail()
            )
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError("worker: " + msg["error"])
        if msg.get("other_cores") is not None:
            self.other_cores.append(msg["other_cores"])
        return msg.get("result")

    def call(self, method, *args, **kwargs):
        msg = {"method": method, "args": args, "kwargs": kwargs}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_job(job, *args, timeout=1800, **kwargs):
    """``JOBS[job](*args, **kwargs)`` in a fresh worker; returns its result."""
    with Remote("jobs", timeout=timeout) as remote:
        return remote.call(job, *args, **kwargs)


# ------------------------------------------------------------- worker side
def _build(kind, args):
    if kind == "trainer":
        framework, *rest = args
        return TRAINERS[framework](*rest)
    if kind == "predictor":
        return Predictor(*args)
    if kind == "jobs":
        return types.SimpleNamespace(**JOBS)
    raise ValueError(f"unknown worker kind {kind!r}")


def _reply(out, **msg):
    out.write(json.dumps(msg) + "\n")
    out.flush()


def _serve(spec):
    """The worker's loop: build the object, then answer one line per call."""
    out = sys.stdout
    sys.stdout = sys.stderr  # keep the protocol channel clean of stray prints
    try:
        obj = _build(spec["kind"], spec["args"])
    except Exception:
        _reply(out, error=traceback.format_exc())
        return 1
    _reply(out, result="ready")
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            with CpuProbe() as probe:
                method = getattr(obj, msg["method"])
                result = method(*msg["args"], **msg.get("kwargs", {}))
        except Exception:
            _reply(out, error=traceback.format_exc())
            continue
        if isinstance(result, np.ndarray):
            result = None
        _reply(out, result=result, other_cores=probe.other_cores)
    return 0


def _cli_arg(text):
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--run" and len(argv) > 1:
        job, *args = argv[1:]
        print(json.dumps(run_job(job, *map(_cli_arg, args))))
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(
            "usage: python -m benchmarks.worker --run JOB [ARG...]  "
            f"(JOB: {', '.join(JOBS)})",
            file=sys.stderr,
        )
        return 2
    return _serve(json.loads(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
