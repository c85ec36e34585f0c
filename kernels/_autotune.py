"""Autotuning: a small set of configurations on a GPU, a single one under the interpreter."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import triton

from ._interpreter_compat import patch_interpreter_index


def _interpreting() -> bool:
    """Whether ``@triton.jit`` makes interpreted functions here (TRITON_INTERPRET was set).

    The probe is local so that it is no kernel of this package (the AOT check compiles every one).
    """

    @triton.jit
    def probe():
        pass

    return type(probe).__name__ == "InterpretedFunction"


INTERPRET: bool = _interpreting()
if INTERPRET:
    patch_interpreter_index()  # Triton 3.6's interpreter with NumPy >= 2.4 (see _interpreter_compat)

# GRAMGAN_TRITON_AUTOTUNE=0 keeps only the first GPU configuration of each kernel: correctness runs
# (the GPU tests) then compile each kernel once per shape instead of once per configuration.
AUTOTUNE: bool = os.environ.get("GRAMGAN_TRITON_AUTOTUNE", "1") != "0"


def tuned(
    gpu: Sequence[tuple[dict[str, Any], int]],
    interpreter: dict[str, Any],
    key: Sequence[str],
) -> Callable:
    """``triton.autotune`` over ``gpu`` (``(meta, num_warps)`` pairs), or ``interpreter`` alone.

    The interpreter runs one program at a time in numpy, so its single configuration uses large
    blocks (fewer programs); autotuning there would only multiply the run time.
    """
    if INTERPRET:
        configs = [triton.Config(dict(interpreter), num_warps=1)]
    else:
        configs = [triton.Config(dict(meta), num_warps=warps) for meta, warps in gpu[: None if AUTOTUNE else 1]]
    return triton.autotune(configs=configs, key=list(key))
