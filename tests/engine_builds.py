"""A copy of the package built with other engine flags, for the tests that
run the debug and sanitizer builds in a subprocess."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_copy(root, **env_flags):
    """Copy the package source to ``root`` and build its engine in place with
    the environment variables ``env_flags`` (e.g. ``FASTFIT_DEBUG="1"``).

    Returns
    -------
    log : str
        The build's output (asserted successful).
    """
    root = Path(root)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, root / name)
    shutil.copytree(
        REPO / "fastfit",
        root / "fastfit",
        ignore=shutil.ignore_patterns(
            "*.so", "*.pyd", "*.c", "*.html", "__pycache__", "build"
        ),
    )
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "--parallel", "2"],
        cwd=root,
        env=dict(os.environ, **env_flags),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"build {env_flags} failed:\n{log[-6000:]}"
    assert list((root / "fastfit" / "_engine").glob("_core_*.so"))
    return log
