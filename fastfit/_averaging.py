"""Weight averaging: the weights a fit predicts with, beside those it trains.

Two averages of the trained weights, one at a time:

- an exponential moving average over optimizer steps (``ema_decay``, Keras's
  ``use_ema``: after every step ``average = decay * average + (1 - decay) *
  weights``, the first step copying), updated by the engine in its optimizer
  pass over the flat buffer;
- stochastic weight averaging over epochs (``swa_start``, the recipe of
  ``torch.optim.swa_utils.AveragedModel``: the equal-weight mean of the
  weights at the end of every epoch from ``swa_start`` on), one pass over the
  flat buffer per epoch.

The estimator's ``coefs_`` / ``intercepts_`` (its ``_params``) hold the
average after every epoch, so the validation score, early stopping's best
epoch and ``predict`` all see it; the trained weights go on in ``weights``.
"""

from numbers import Integral

import numpy as np

from fastfit._layout import aligned_empty


def _copy(params):
    out = aligned_empty(params.shape[0], params.dtype)
    out[...] = params
    return out


class WeightAverage:
    """The trained weights of a fit and their running average.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The weights training starts from.
    ema_decay : float or None
    swa_start : int or None
        Exactly one of them is set.
    """

    def __init__(self, params, ema_decay=None, swa_start=None):
        self.ema_decay = ema_decay
        self.swa_start = swa_start
        self.weights = _copy(params)
        self.average = _copy(params)
        self.epochs = 0  # finished epochs
        self.count = 0  # epochs in the SWA mean

    @property
    def engine_decay(self):
        """The Trainer's ``ema_decay`` (0: the engine keeps no average)."""
        return 0.0 if self.ema_decay is None else float(self.ema_decay)

    def end_epoch(self, steps):
        """Fold a finished epoch in; ``steps``: optimizer steps taken so far."""
        self.epochs += 1
        if self.swa_start is not None and self.epochs >= self.swa_start:
            self.count += 1
            # AveragedModel's running mean: avg + (w - avg) / n
            self.average += (self.weights - self.average) / self.count
        elif self.ema_decay is not None and steps == 0:
            self.average[...] = self.weights

    @property
    def current(self):
        """The weights to predict with: the average, or the trained weights
        while SWA has not started."""
        if self.swa_start is not None and self.count == 0:
            return self.weights
        return self.average

    def snapshot(self):
        """What :meth:`restore` puts back (a diverged or interrupted epoch)."""
        return self.weights.copy(), self.average.copy(), self.epochs, self.count

    def restore(self, snapshot):
        weights, average, self.epochs, self.count = snapshot
        self.weights[...] = weights
        self.average[...] = average

    def same_rule(self, ema_decay, swa_start):
        """Whether this average continues under these hyperparameters."""
        return (self.ema_decay is None) == (ema_decay is None) and (
            self.swa_start == swa_start
        )

    def check(self, n_params, dtype):
        """Raise ValueError unless this is an average a fit of ``n_params``
        parameters of ``dtype`` left (partial_fit continues it)."""
        for name in ("weights", "average"):
            value = getattr(self, name, None)
            if not (
                isinstance(value, np.ndarray)
                and value.dtype == dtype
                and value.shape == (n_params,)
                and value.flags.c_contiguous
                and value.flags.writeable
                and np.isfinite(value).all()
            ):
                raise ValueError(
                    f"_weight_average.{name} must be a finite ({n_params},) array "
                    f"of {np.dtype(dtype)}"
                )
        for name in ("epochs", "count"):
            value = getattr(self, name, None)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise ValueError(f"_weight_average.{name} must be a count")
        decay, start = (
            getattr(self, "ema_decay", None),
            getattr(self, "swa_start", None),
        )
        if (decay is None) == (start is None):
            raise ValueError("_weight_average needs one of ema_decay, swa_start")
        if decay is not None and not 0 < decay < 1:
            raise ValueError(f"_weight_average.ema_decay is {decay!r}")
