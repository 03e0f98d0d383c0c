"""Helpers shared by the hyperparameter objects of optimizers and schedules.

Both modules validate with scikit-learn's own machinery
(``sklearn.utils._param_validation``); this module adds the two things it lacks:
an interval that refuses bools, and a docstring list of the names of a registry.
"""

import inspect

from sklearn.utils._param_validation import Interval

__all__ = ["NumberInterval", "document_names"]


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
