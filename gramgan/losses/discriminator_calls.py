"""Calling a discriminator: what the losses need from it, and the errors when it does not provide it.

Two interfaces are accepted (docs/drop-in.md, "What a discriminator must provide"):

- **logits only** — ``D(x) -> logits``, any tensor (``(B, 1)``, ``(B,)``, a patch map): enough for the
  RaGAN terms, the generator's and the discriminator's;
- **logits and taps** — ``D(x, taps=(i, j, ...)) -> (logits, [features_i, features_j, ...])``, as
  :class:`gramgan.models.VGGStyleDiscriminator` does: needed only by the discriminator perceptual
  term (``disc_perceptual_weight > 0``), which compares the tapped features of SR and HR.

A discriminator whose ``forward`` takes a ``taps`` argument (or ``**kwargs``, as DDP and
``torch.compile`` wrappers do) is called with ``taps=()`` when only logits are wanted.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["TAPS_INTERFACE", "accepts_taps", "discriminator_logits", "discriminator_taps"]

TAPS_INTERFACE = "forward(x, taps=(i, ...)) -> (logits, [features, ...])"


def accepts_taps(discriminator: nn.Module) -> bool:
    """Whether ``discriminator.forward`` takes a ``taps`` keyword (or any keyword, ``**kwargs``)."""
    try:
        parameters = inspect.signature(discriminator.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C-implemented forward: no way to tell, assume not
        return False
    return any(p.name == "taps" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _name(discriminator: nn.Module) -> str:
    return type(discriminator).__name__


def _logits_of(discriminator: nn.Module, out: object) -> Tensor:
    """The logits in ``out``: the tensor itself, or the first item of a ``(logits, ...)`` pair."""
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    if isinstance(out, Tensor):
        return out
    raise TypeError(
        f"the discriminator {_name(discriminator)} returned a {type(out).__name__}; the GAN terms need "
        "D(x) -> logits (a tensor) or D(x, taps=...) -> (logits, [features, ...])"
    )


def discriminator_logits(discriminator: nn.Module, x: Tensor) -> Tensor:
    """``D(x)``'s logits: ``D(x, taps=())[0]`` for a discriminator with taps, else ``D(x)``."""
    if accepts_taps(discriminator):
        return _logits_of(discriminator, discriminator(x, taps=()))
    return _logits_of(discriminator, discriminator(x))


def discriminator_taps(discriminator: nn.Module, x: Tensor, taps: Sequence[int]) -> tuple[Tensor, list[Tensor]]:
    """``(logits, features)`` of ``D(x, taps=taps)``, one feature map per tap, in the order of ``taps``.

    Raises ``TypeError`` naming the missing interface when the discriminator takes no ``taps`` or
    returns something other than ``(logits, [one tensor per tap])``.
    """
    taps = tuple(taps)
    fix = (
        "set disc_perceptual_weight=0 to train with a plain D(x) -> logits, or give the discriminator "
        "that interface (gramgan.models.VGGStyleDiscriminator has it)"
    )
    if not accepts_taps(discriminator):
        raise TypeError(
            f"the discriminator perceptual term (disc_perceptual_weight > 0) needs a discriminator with "
            f"{TAPS_INTERFACE}; {_name(discriminator)}.forward takes no 'taps' argument: {fix}"
        )
    out = discriminator(x, taps=taps)
    ok = (
        isinstance(out, (tuple, list))
        and len(out) == 2
        and isinstance(out[0], Tensor)
        and isinstance(out[1], (tuple, list))
        and len(out[1]) == len(taps)
        and all(isinstance(f, Tensor) for f in out[1])
    )
    if not ok:
        raise TypeError(
            f"the discriminator perceptual term needs {TAPS_INTERFACE} with one feature map per tap "
            f"({len(taps)} for taps={taps}); {_name(discriminator)} returned {_describe(out)}: {fix}"
        )
    return out[0], list(out[1])


def _describe(out: object) -> str:
    if isinstance(out, Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} items ({', '.join(type(o).__name__ for o in out)})"
    return f"a {type(out).__name__}"
