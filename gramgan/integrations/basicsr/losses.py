"""``GramTextureLoss``: the texture loss (docs/losses.md, Eq. 4) as a BasicSR loss, ``type: GramTextureLoss``.

It is :func:`gramgan.losses.texture_loss` (candidates sampled in-kernel in the local scope) times
``loss_weight``; the YAML keys are those of :data:`~gramgan.integrations.basicsr.options.TEXTURE_OPT_DEFAULTS`.
"""

from __future__ import annotations

from typing import Any

from basicsr.utils.registry import LOSS_REGISTRY
from torch import Tensor, nn

from gramgan.integrations.basicsr.options import OptionsError, texture_settings
from gramgan.losses.texture import texture_loss

__all__ = ["GramTextureLoss"]


@LOSS_REGISTRY.register()
class GramTextureLoss(nn.Module):
    """``loss_weight * texture_loss(pred, target, ...)``; gradient to ``pred`` only.

    Args (the YAML keys; defaults in brackets):
        loss_weight: λ_t [1e4, calibrated for the gram target, mse and the local scope].
        patch_size: k of the Gram patches [4]; the crop must be a multiple of 2k (local) or k (global).
        scope: ``local`` (co-located candidates) or ``global`` (Beby-GAN-style search) [local].
        target: ``gram`` or ``pixel`` [gram]. criterion: ``mse`` or ``l1`` [mse].
        num_affine_warps: J random affine warps of HR among the candidates [4].
        warp_magnitude: bound m of the warps [0.003].
        gt_weight: β of the selection score; ~ means the scope's default (0 local, 1 global) [~].
        clamp: clip the bicubic-downsampled candidates to [0, 1] [true].
        backend: a ``gramgan.ops`` backend, ~ for the process default [~].

    A bad value raises ``ValueError`` naming the key (``texture_opt.<key>``).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        try:
            settings = texture_settings(options)
        except OptionsError as err:
            raise ValueError(f"GramTextureLoss: {err}") from None
        self.loss_weight = settings.pop("loss_weight")
        scope = settings["scope"]
        settings["gt_weight"] = settings["gt_weight"] if settings["gt_weight"] is not None else float(scope == "global")
        self.settings = settings

    def forward(self, pred: Tensor, target: Tensor, **_: Any) -> Tensor:
        s = self.settings
        return self.loss_weight * texture_loss(
            pred,
            target,
            scope=s["scope"],
            num_affine_warps=s["num_affine_warps"],
            magnitude=s["warp_magnitude"],
            patch_size=s["patch_size"],
            gt_weight=s["gt_weight"],
            target=s["target"],
            criterion=s["criterion"],
            clamp=s["clamp"],
            backend=s["backend"],
        )

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight:g}, " + ", ".join(f"{k}={v}" for k, v in self.settings.items())
