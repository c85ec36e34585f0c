"""The models, optimisers and batch of one GAN training iteration, shared by the training benchmarks.

``Trainer(size, device).iteration(loss_fn)`` is one G step then one D step as ``gramgan/train/steps.py``
runs them: ``benchmarks/train_step.py`` times it with and without the Gram-GAN terms and
``benchmarks/esrgan_compare.py`` against BasicSR's ESRGAN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from gramgan.losses import (
    GramGANLoss,
    GramGANLossConfig,
    content_loss,
    discriminator_loss,
    perceptual_layer_weights,
    ragan_generator_loss,
)
from gramgan.models import RRDBNet, VGG19FeatureExtractor, VGGStyleDiscriminator

SCALE = 4


@dataclass(frozen=True)
class Size:
    """Model and batch size of a run."""

    blocks: int
    features: int
    batch: int
    lr_size: int
    disc_features: int = 64  # nf of the discriminator (docs/networks.md: 64)

    @property
    def hr_size(self) -> int:
        return self.lr_size * SCALE


class Trainer:
    """Models, optimisers and one fixed batch; ``iteration(loss_fn)`` is one G step then one D step."""

    def __init__(self, size: Size, device: torch.device, perceptual: bool = True, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.generator = RRDBNet(num_feat=size.features, num_block=size.blocks).to(device)
        self.discriminator = VGGStyleDiscriminator(num_feat=size.disc_features, input_size=size.hr_size).to(device)
        self.vgg: nn.Module | None = None
        if perceptual:
            layers = tuple(perceptual_layer_weights("gramgan"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "RANDOM weights": intended, the timing does not depend on them
                vgg = VGG19FeatureExtractor(layers=layers, allow_random_weights=True, download=False)
            self.vgg = vgg.to(device)
        betas = (0.9, 0.999)
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=1e-4, betas=betas)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=1e-4, betas=betas)
        gen = torch.Generator(device=device).manual_seed(seed)
        self.hr = torch.rand(size.batch, 3, size.hr_size, size.hr_size, generator=gen, device=device)
        self.lr = torch.nn.functional.avg_pool2d(self.hr, SCALE)

    def gramgan_loss(self, config: GramGANLossConfig) -> GramGANLoss:
        return GramGANLoss(config, vgg=self.vgg)

    def iteration(self, loss_fn: nn.Module | None) -> torch.Tensor:
        """One G step (D frozen) and one D step; ``loss_fn=None`` is the ESRGAN baseline."""
        d = self.discriminator
        d.requires_grad_(False)
        sr = self.generator(self.lr)
        if loss_fn is None:
            g_loss, fake, real = self._esrgan_loss(sr), sr, self.hr
        else:
            out = loss_fn(sr, self.hr, d)
            g_loss, fake, real = out.total, out.masked_sr, out.masked_hr
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        d.requires_grad_(True)
        d_loss, _ = discriminator_loss(d, fake.detach(), real)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        return g_loss.detach()

    def _esrgan_loss(self, sr: torch.Tensor) -> torch.Tensor:
        """docs/losses.md without the Gram-GAN terms: λ_c L1 + λ_p perceptual + λ_a RaGAN on unmasked images."""
        cfg = GramGANLossConfig()
        if not hasattr(self, "_perceptual"):
            self._perceptual = GramGANLoss(cfg, vgg=self.vgg).perceptual  # None without VGG
        fake_logits, _ = self.discriminator(sr, taps=())
        with torch.no_grad():
            real_logits, _ = self.discriminator(self.hr, taps=())
        total = cfg.content_weight * content_loss(sr, self.hr)
        if self._perceptual is not None:
            total = total + cfg.perceptual_weight * self._perceptual(sr, self.hr)
        return total + cfg.adversarial_weight * ragan_generator_loss(real_logits, fake_logits)
