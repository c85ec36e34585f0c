"""Feature-matching losses: the VGG19 perceptual loss and the discriminator perceptual loss (Eq. 5).

- :class:`PerceptualLoss`: ``sum_l w_l * L1(phi_l(SR), phi_l(HR))`` over pre-ReLU VGG19 features,
  layer weights from a preset of :data:`VGG19_LAYER_PRESETS` (``gramgan``:
  conv2_2, conv4_2, conv4_4 with 1.0, 0.1, 0.01; ``bebygan``: conv3_4, conv4_4, conv5_4 with 1/8,
  1/4, 1/2). The HR features are computed without gradient.
- :func:`discriminator_perceptual_loss`: ``sum_l MSE(D_l(SR), D_l(HR))`` over the discriminator's
  tapped activations, with the HR features taken as constants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VGG19_LAYER_PRESETS", "PerceptualLoss", "discriminator_perceptual_loss", "perceptual_layer_weights"]

# Layer weights of the perceptual loss, by preset name (see docs/losses.md); the config key is
# ``loss.perceptual_preset``.
VGG19_LAYER_PRESETS: dict[str, dict[str, float]] = {
    "gramgan": {"conv2_2": 1.0, "conv4_2": 0.1, "conv4_4": 0.01},
    "bebygan": {"conv3_4": 1 / 8, "conv4_4": 1 / 4, "conv5_4": 1 / 2},
}


def perceptual_layer_weights(preset: str) -> dict[str, float]:
    """The ``{layer: weight}`` of a VGG19 preset (a copy); ``ValueError`` for an unknown name. The one
    check of a preset name: the loss config and the training set-up call this."""
    if preset not in VGG19_LAYER_PRESETS:
        raise ValueError(f"unknown perceptual preset {preset!r}; available: {', '.join(VGG19_LAYER_PRESETS)}")
    return dict(VGG19_LAYER_PRESETS[preset])


class PerceptualLoss(nn.Module):
    """``sum_l w_l * L1(phi_l(SR), phi_l(HR))`` with a frozen feature extractor ``phi``.

    Args:
        extractor: a module whose ``forward(x)`` returns ``{layer_name: features}`` and that covers
            every layer of ``layer_weights`` (normally ``gramgan.models.VGG19FeatureExtractor``
            built with ``layers=tuple(layer_weights)``).
        layer_weights: ``{layer_name: weight}``, e.g. ``perceptual_layer_weights("gramgan")``.
    """

    def __init__(self, extractor: nn.Module, layer_weights: Mapping[str, float]) -> None:
        super().__init__()
        if not layer_weights:
            raise ValueError("PerceptualLoss needs at least one layer weight")
        provided = getattr(extractor, "layers", None)
        if provided is not None:
            missing = [name for name in layer_weights if name not in provided]
            if missing:
                raise ValueError(
                    f"the feature extractor does not compute layer(s) {missing} (it has {list(provided)}); "
                    f"build it with layers={tuple(layer_weights)}"
                )
        self.extractor = extractor
        self.layer_weights = {str(name): float(w) for name, w in layer_weights.items()}

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        if sr.shape != hr.shape:
            raise ValueError(f"sr has shape {tuple(sr.shape)} but hr has {tuple(hr.shape)}: they must match")
        sr_feats = self.extractor(sr)
        with torch.no_grad():
            hr_feats = self.extractor(hr.detach())
        total = sr.new_zeros((), dtype=torch.float32)
        for name, weight in self.layer_weights.items():
            if name not in sr_feats:
                raise KeyError(f"the feature extractor returned no layer {name!r} (got {list(sr_feats)})")
            total = total + weight * F.l1_loss(sr_feats[name].float(), hr_feats[name].float())
        return total


def discriminator_perceptual_loss(sr_feats: Sequence[Tensor], hr_feats: Sequence[Tensor]) -> Tensor:
    """``sum_l MSE(D_l(SR), D_l(HR))`` (Eq. 5); the HR features are detached (constants).

    ``sr_feats`` and ``hr_feats`` are the discriminator's tapped activations, in the same order.
    """
    if len(sr_feats) != len(hr_feats) or not sr_feats:
        raise ValueError(
            f"need the same non-zero number of SR and HR feature maps, got {len(sr_feats)} and {len(hr_feats)}"
        )
    total = sr_feats[0].new_zeros((), dtype=torch.float32)
    for i, (fake, real) in enumerate(zip(sr_feats, hr_feats)):
        if fake.shape != real.shape:
            raise ValueError(f"tap {i}: SR features {tuple(fake.shape)} and HR features {tuple(real.shape)} differ")
        total = total + F.mse_loss(fake.float(), real.detach().float())
    return total
