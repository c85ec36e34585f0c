"""``GramGANDiscriminator``: this project's VGG-style discriminator with perceptual taps, for BasicSR's
``network_d`` (``type: GramGANDiscriminator``).

BasicSR's own ``VGGStyleDiscriminator`` (same layer names) returns logits only; this one also returns
the activations the discriminator perceptual term compares: ``forward(x, taps=(5, 11)) -> (logits,
[features])`` (:class:`gramgan.models.VGGStyleDiscriminator`). Options: ``num_in_ch``, ``num_feat``,
``input_size`` (the crop: a multiple of 32, >= 64).
"""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY

from gramgan.models.discriminator import VGGStyleDiscriminator

__all__ = ["GramGANDiscriminator"]


@ARCH_REGISTRY.register()
class GramGANDiscriminator(VGGStyleDiscriminator):
    """:class:`gramgan.models.VGGStyleDiscriminator` under a name BasicSR's registry does not already hold."""
