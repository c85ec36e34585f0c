"""Triton 3.6's interpreter with NumPy >= 2.4: scalar kernel arguments as loop bounds.

The interpreter holds a scalar argument (``K`` in ``for j in range(1, K)``) as a one-element 1-D
array, and Triton 3.6 turns it into a Python int with ``int(array)``, which NumPy 2.4 no longer
allows for arrays of one or more dimensions ("only 0-dimensional arrays can be converted to Python
scalars"). Triton 3.8 converts through ``squeeze()``. :func:`patch_interpreter_index` gives older
interpreters the same conversion (``.item()``); compiled kernels never run this code.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def numpy_refuses_1d_int() -> bool:
    """True when ``int()`` of a one-element 1-D array raises (NumPy >= 2.4)."""
    try:
        int(np.ones(1, dtype=np.int32))
    except TypeError:
        return True
    return False


def patch_interpreter_index() -> bool:
    """Make the interpreter's ``tensor.__index__`` accept one-element arrays; True when patched.

    Wraps ``triton.runtime.interpreter._patch_lang_tensor`` (which installs ``__index__`` for the
    duration of each interpreted launch) so that it installs the ``.item()`` conversion afterwards.
    Does nothing when NumPy still converts 1-D arrays, or when the interpreter has no such hook.
    """
    if not numpy_refuses_1d_int():
        return False
    from triton.runtime import interpreter

    original = getattr(interpreter, "_patch_lang_tensor", None)
    if original is None or getattr(original, "_gramgan_index_patch", False):
        return original is not None

    def patched(tensor: Any, scope: Any) -> None:
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.item()))

    patched._gramgan_index_patch = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patched
    return True
