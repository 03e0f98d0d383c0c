"""Helpers shared by the estimators and the hyperparameter objects of
optimizers and schedules.

All validate with scikit-learn's own machinery
(``sklearn.utils._param_validation``); this module adds what it lacks: an
interval that refuses bools, validation that repeats only for the parameters
that changed (:class:`ValidatedOnce`), and a docstring list of the names of a
registry.
"""

import inspect

import numpy as np
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = ["NumberInterval", "ValidatedOnce", "document_names"]

# Parameter values whose validity cannot change once checked: the same object
# is the same value. Exact types, so a subclass with state of its own is
# checked again.
_IMMUTABLE_TYPES = frozenset({type(None), bool, int, float, complex, str, bytes})
_PARAM_NAMES = {}  # class -> its __init__'s parameter names


def _immutable(value):
    if type(value) in _IMMUTABLE_TYPES:
        return True
    if type(value) is tuple:
        return all(_immutable(v) for v in value)
    return isinstance(value, (np.generic, np.dtype, type))


class ValidatedOnce:
    """Mixin for a ``BaseEstimator``: ``_validate_params`` checks again only
    the parameters that may have changed since they last passed.

    scikit-learn's check of every parameter costs about 0.3 ms for an MLP,
    more than a ``partial_fit`` on a small chunk; the estimators check on every
    call, so that a parameter set between calls reaches no kernel unchecked.
    A parameter is skipped when its value is the very object that passed last
    time and that object cannot change (a number, a string, None, a type, a
    tuple of those); anything else (a list, an array, an optimizer or a
    schedule instance, which may have been mutated in place) is checked every
    time. The record of what passed is per instance and is not pickled.
    """

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads the __init__ signature on every get_params
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = super()._get_param_names()
        return names

    def _validate_params(self):
        params = {name: getattr(self, name) for name in self._get_param_names()}
        passed = self.__dict__.get("_params_passed")
        if passed is not None:
            params_to_check = {
                name: value
                for name, value in params.items()
                if not (name in passed and passed[name] is value and _immutable(value))
            }
        else:
            params_to_check = params
        if params_to_check:
            validate_parameter_constraints(
                self._parameter_constraints,
                params_to_check,
                caller_name=type(self).__name__,
            )
        # what passed: this call's own snapshot, never values read later
        self.__dict__["_params_passed"] = params

    def __getstate__(self):
        # a copy: object.__getstate__ returns the instance's own __dict__
        state = dict(super().__getstate__())
        state.pop("_params_passed", None)  # checked again after unpickling
        return state


class NumberInterval(Interval):
    """scikit-learn's ``Interval``, refusing bools.

    ``Interval(Real, ...)`` and ``Interval(Integral, ...)`` accept ``True`` as 1,
    but a flag passed where a number belongs is a mistake worth reporting. NaN is
    rejected by ``Interval`` itself, and infinity by an open or absent bound
    (``Interval`` does not allow an absent bound to be closed).
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


def document_names(registry, marker="{names}"):
    """Decorator: replace the line ``marker`` of a docstring by the registry's names.

    Each name becomes a bullet ``- ``'name'``: <docstring of its factory>``, so
    the list in the docs cannot drift from the names the function accepts.

    Parameters
    ----------
    registry : dict of str to callable
        Names and their factories; every factory has a docstring.
    marker : str, default="{names}"
        The placeholder, alone on its line; the list takes its indentation.

    Returns
    -------
    decorator : callable
        Returns the function it is given, with the docstring filled in.
    """

    def decorate(func):
        if func.__doc__ is None:  # docstrings stripped (python -OO)
            return func
        lines = func.__doc__.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip() == marker)
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        items = []
        for name, factory in registry.items():
            first, *rest = inspect.cleandoc(factory.__doc__).splitlines()
            items.append(f"{indent}- ``{name!r}``: {first}")
            items.extend(f"{indent}  {line}" if line else "" for line in rest)
        lines[at : at + 1] = items
        func.__doc__ = "\n".join(lines)
        return func

    return decorate
