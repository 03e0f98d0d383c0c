"""fastfit: fast CPU training of dense neural networks behind scikit-learn
estimators."""

import os

# libgomp's idle threads spin for up to 300,000 `pause` loops (milliseconds on
# recent x86 cores) after every parallel region before they sleep. On a busy
# machine that spinning takes the core from the thread doing the work and an
# epoch can run ten times slower. Too short a spin costs too: a thread that
# fell asleep in the gap between two parallel regions (the serial work of a
# step's small layers and loss, tens of microseconds) must be woken through
# the kernel, slow in a virtual machine. 5,000 loops, about 75 us where a
# `pause` takes 15 ns, bridge those gaps. libgomp reads this once, when the
# engine first loads it, so it is set before the engine is imported; a value
# the user set is kept.
os.environ.setdefault("GOMP_SPINCOUNT", "5000")

from fastfit._mlp import MLPClassifier, MLPRegressor  # noqa: E402
from fastfit._plotting import plot_learning_curve  # noqa: E402
from fastfit._version import __version__  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor", "plot_learning_curve", "__version__"]
