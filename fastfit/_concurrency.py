"""What two Python threads may do with one estimator.

The contract is scikit-learn's: one estimator per thread for ``fit`` and
``partial_fit`` (``sklearn.base.clone`` makes one); ``predict`` and ``score``
on a fitted model that nothing refits may run in any number of threads. The
engine trusts none of it (every entry point checks its arrays against the
network, so no race can make it read or write out of bounds), and this module
turns the two misuses into a clear ``RuntimeError`` instead of a mixed model:

- a ``fit`` / ``partial_fit`` while another one runs on the same estimator;
- a prediction that overlapped a fit of the same estimator (the weights it
  read may have been updated mid-pass).

Each estimator has a fit counter, a seqlock: odd while a fit runs. It lives in
a weak table here, not on the estimator, so pickles, copies and clones never
carry it.
"""

import contextlib
import threading
import weakref

_lock = threading.Lock()
_fits = weakref.WeakKeyDictionary()  # estimator -> completed + running fit count


@contextlib.contextmanager
def exclusive_fit(estimator):
    """Run a fit of ``estimator``, refusing one already running on it.

    Raises
    ------
    RuntimeError
        If another thread is fitting the same estimator.
    """
    with _lock:
        count = _fits.get(estimator, 0)
        if count % 2:
            raise RuntimeError(
                f"{type(estimator).__name__}.fit / partial_fit called while another "
                "thread is fitting the same estimator. Use one estimator per "
                "thread (sklearn.base.clone makes one)."
            )
        _fits[estimator] = count + 1
    try:
        yield
    finally:
        with _lock:
            _fits[estimator] = _fits[estimator] + 1


def fit_count(estimator):
    """The seqlock value: odd while a fit of ``estimator`` runs."""
    with _lock:
        return _fits.get(estimator, 0)


def check_not_fitting(estimator, before):
    """Raise unless no fit of ``estimator`` ran since :func:`fit_count` gave
    ``before`` (nor was running then).

    Raises
    ------
    RuntimeError
        If a prediction overlapped a fit of the same estimator.
    """
    if before % 2 or fit_count(estimator) != before:
        raise RuntimeError(
            f"{type(estimator).__name__} was being fitted in another thread while "
            "it predicted; predict on a model that no thread is fitting, or on "
            "a copy of it."
        )
