"""The fast training path (``train.fast``, ``docs/training.md#the-fast-path``): what it turns on, and
applying it to a run's networks and optimisers.

One setting, ``train.fast`` (``auto``: on with a CUDA device), resolves to a :class:`FastPlan`; the
keys ``train.precision``, ``channels_last``, ``compile`` and ``fused_adam`` each override their part.
Every part leaves the objective unchanged:

- bf16 autocast runs G's and VGG19's convolutions in bfloat16; the loss promotes SR to float32 before
  its terms, and the texture op runs with autocast off, so the Gram scores that select the candidates
  are accumulated in float32 (``gramgan.losses``). The discriminator stays float32
  (:func:`float32_forward`).
- channels_last only changes the memory layout of G's, D's and VGG19's weights and activations.
- ``torch.compile`` compiles G, D and VGG19 in place (their state dicts keep their keys): G block by
  block (its 23 RRDBs share one compiled graph: :func:`compile_in_place`), D and VGG19 each whole.
  The loss itself stays eager: its random draws (warps, mask offset) keep the eager RNG stream, so a
  resumed run continues bitwise (on the CPU).
- fused Adam does the same update in one kernel for all parameters.
- Validation (:func:`gramgan.train.validation.validate`) runs in float32 whatever the precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gramgan.train.config_schema import LoopConfig

__all__ = [
    "FastPlan",
    "compile_in_place",
    "float32_forward",
    "match_state_layout",
    "resolve_fast",
    "to_channels_last",
]


@dataclass(frozen=True)
class FastPlan:
    """The parts of the fast path a run uses (each resolved from ``train.fast`` and its own key)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_backend: str = "inductor"
    fused_adam: bool = False

    @property
    def any(self) -> bool:
        return self.precision != "fp32" or self.channels_last or self.compile or self.fused_adam

    def describe(self) -> str:
        """One line for the run's log, e.g. ``bf16 autocast, channels_last, torch.compile (inductor), fused Adam``."""
        parts = []
        if self.precision == "bf16":
            parts.append("bf16 autocast")
        if self.channels_last:
            parts.append("channels_last")
        if self.compile:
            parts.append(f"torch.compile ({self.compile_backend})")
        if self.fused_adam:
            parts.append("fused Adam")
        return ", ".join(parts) or "fp32 eager"


def resolve_fast(t: LoopConfig, device: torch.device) -> FastPlan:
    """The plan of ``train.fast`` on ``device`` (``auto`` = on for CUDA), with each part's own key
    (``train.precision`` ...) taking precedence when it is set (not null)."""
    on = device.type == "cuda" if t.fast == "auto" else bool(t.fast)

    def pick(value: bool | None) -> bool:
        return on if value is None else bool(value)

    return FastPlan(
        precision=t.precision if t.precision is not None else ("bf16" if on else "fp32"),
        channels_last=pick(t.channels_last),
        compile=pick(t.compile),
        compile_backend=t.compile_backend,
        fused_adam=pick(t.fused_adam),
    )


def to_channels_last(*modules: nn.Module | None) -> None:
    """Convert the 4-D weights (and so the activations of the convolutions) to channels_last, in place."""
    for module in modules:
        if module is not None:
            module.to(memory_format=torch.channels_last)


def float32_forward(module: nn.Module | None) -> None:
    """Make ``module`` compute in float32 even when called inside a bf16 autocast region, in place (its
    state dict and callers unchanged): floating inputs are cast to float32, autocast is off inside.

    The fast path does this to the discriminator. Its RaGAN gradient is a small difference of the real
    and fake branches' large, nearly equal contributions, and bf16 activations blur it: measured on the
    CPU, D's bf16 gradient on the same inputs is 36-43 % off fp32's (cosine 0.91-0.94, nf 4 and 64,
    batch 4), and in a full Gram-GAN step it pointed elsewhere altogether (cosine -0.35)."""
    if module is None:
        return
    inner = module.forward

    def forward(x: torch.Tensor, *args, **kwargs):
        with torch.autocast(x.device.type, enabled=False):
            return inner(x.float(), *args, **kwargs)

    module.forward = forward


def compile_in_place(module: nn.Module | None, backend: str, fullgraph: bool = True) -> None:
    """``torch.compile`` a network in place (``nn.Module.compile``): callers, DDP wrappers and the state
    dict's keys stay as they are. ``fullgraph``: a graph break is an error, not a slow path.

    A network that names its repeated blocks (``repeated_blocks``: RRDBNet's RRDBs) has each block
    compiled rather than the whole (regional compilation). The blocks share one compiled graph, so the
    warm-up is one block's, not 23's: the whole RRDBNet with D and VGG19 took 160-170 s to compile on an
    H200. The few convolutions around the blocks run eager, and they lose little, because inductor hands
    convolutions to cuDNN in either case."""
    if module is None:
        return
    for part in getattr(module, "repeated_blocks", None) or (module,):
        part.compile(backend=backend, fullgraph=fullgraph)


def match_state_layout(*optimizers: torch.optim.Optimizer | None) -> None:
    """Give every per-parameter optimiser tensor (Adam's moments) its parameter's memory format.

    A checkpoint written by a run in the other format (fast path on or off) loads moments whose strides
    differ from the parameters'; the fused and foreach kernels need them to agree."""
    for optimizer in optimizers:
        if optimizer is None:
            continue
        for param, state in optimizer.state.items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
