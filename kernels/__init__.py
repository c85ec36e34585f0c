"""Triton kernels of gramgan's fused operations (docs/ops.md), one module per op family.

* ``gram``          per-patch Gram matrices, forward and backward;
* ``texture_loss``  candidate selection and the texture loss, local and global scope;
* ``texture_loss_sampled``  the local texture loss over candidates sampled from HR, its half-size
  image and affine maps, never stored;
* ``texture_mask``  the texture mask (grid and sliding) and the masked image pair;
* ``resize``        the half-size image (``imresize(x, 0.5)``) of the sampled candidates.

Rules that only Triton's GPU compiler enforces (the interpreter does not; CI compiles every launch the
tests make for sm_90, see tests/ops/aot_compile_kernels.py): a module global read inside a kernel is a
``tl.constexpr``; a float scalar parameter is annotated ``tl.float64`` (Triton's JIT then passes it as
inductor does) and cast to the kernel's working dtype where it meets the data, so that no type, and
no loop-carried value in particular, depends on how the scalar arrives.

The modules hold only ``@triton.jit`` kernels and their autotuning configurations; the
``torch.library`` wiring that launches them is ``gramgan.ops._triton`` (with ``_triton_sampled``).
Importing this package imports ``triton`` and so fails where triton is missing.

``INTERPRET`` is true when the kernels were created under ``TRITON_INTERPRET=1`` (Triton's CPU
interpreter): the variable must be set before this package is first imported.
"""

from ._autotune import INTERPRET

__all__ = ["INTERPRET"]
