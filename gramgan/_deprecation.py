"""Old names of public keyword arguments, kept working with a ``DeprecationWarning`` after a rename."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def renamed_keyword(old: str, new: str) -> Callable[[T], T]:
    """Decorate a function (or a class, for its ``__init__``) whose keyword ``old`` is now ``new``.

    ``old=`` is passed on as ``new=`` with a ``DeprecationWarning``; giving both is a ``TypeError``.
    Positional calls are unchanged (the parameter keeps its place).
    """

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{function.__qualname__}() got {new}= and its old name {old}=: give only {new}=")
                warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return call

    def decorate(target: T) -> T:
        if isinstance(target, type):
            target.__init__ = wrap(target.__init__)  # type: ignore[misc]
            return target
        return wrap(target)  # type: ignore[arg-type, return-value]

    return decorate
