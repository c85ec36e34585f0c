"""The Gram-GAN losses (docs/losses.md): content, VGG perceptual, discriminator perceptual, texture, RaGAN.

The training loop needs three names::

    from gramgan.losses import GramGANLoss, GramGANLossConfig, discriminator_loss

The texture loss and the mask reach the kernels only through :mod:`gramgan.ops`.
"""

from gramgan.losses.content import content_loss
from gramgan.losses.gan import discriminator_loss, ragan_discriminator_loss, ragan_generator_loss
from gramgan.losses.gramgan_loss import TERM_NAMES, GramGANLoss, GramGANLossConfig, GramGANLossOutput
from gramgan.losses.perceptual import PerceptualLoss, discriminator_perceptual_loss, perceptual_layer_weights
from gramgan.losses.texture import build_candidates, texture_loss

__all__ = [
    "TERM_NAMES",
    "GramGANLoss",
    "GramGANLossConfig",
    "GramGANLossOutput",
    "PerceptualLoss",
    "build_candidates",
    "content_loss",
    "discriminator_loss",
    "discriminator_perceptual_loss",
    "perceptual_layer_weights",
    "ragan_discriminator_loss",
    "ragan_generator_loss",
    "texture_loss",
]
