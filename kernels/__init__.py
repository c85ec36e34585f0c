"""Triton kernels of gramgan's fused operations (docs/ops.md), one module per op family.

* ``gram``          per-patch Gram matrices, forward and backward;
* ``texture_loss``  candidate selection and the texture loss, local and global scope;
* ``texture_loss_sampled``  the local texture loss over candidates sampled from HR, its half-size
  image and affine maps, never stored;
* ``texture_mask``  the texture mask (grid and sliding) and the masked image pair.

The modules hold only ``@triton.jit`` kernels and their autotuning configurations; the
``torch.library`` wiring that launches them is ``gramgan.ops._triton`` (with ``_triton_sampled``).
Importing this package imports ``triton`` and so fails where triton is missing.

``INTERPRET`` is true when the kernels were created under ``TRITON_INTERPRET=1`` (Triton's CPU
interpreter): the variable must be set before this package is first imported.
"""

from ._autotune import INTERPRET

__all__ = ["INTERPRET"]
