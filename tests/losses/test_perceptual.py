"""The VGG perceptual loss and the discriminator perceptual loss (Eq. 5)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from gramgan.losses import PerceptualLoss, discriminator_perceptual_loss, perceptual_layer_weights
from gramgan.models import VGG19FeatureExtractor


def _grad(p: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient, zeros when it got none (layers past the last tap)."""
    return torch.zeros_like(p) if p.grad is None else p.grad.clone()  # gradients here are ~1e-6: compare relatively


def test_presets():
    assert perceptual_layer_weights("gramgan") == {"conv2_2": 1.0, "conv4_2": 0.1, "conv4_4": 0.01}
    assert perceptual_layer_weights("bebygan") == {"conv3_4": 1 / 8, "conv4_4": 1 / 4, "conv5_4": 1 / 2}
    with pytest.raises(ValueError, match="unknown perceptual preset"):
        perceptual_layer_weights("esrgan")


def test_perceptual_is_weighted_l1_with_constant_hr(tiny_extractor, images):
    sr, hr = images
    hr = hr.clone().requires_grad_(True)
    weights = perceptual_layer_weights("gramgan")
    loss = PerceptualLoss(tiny_extractor, weights)(sr, hr)
    fs, fh = tiny_extractor(sr.detach()), tiny_extractor(hr.detach())
    want = sum(w * F.l1_loss(fs[n], fh[n]) for n, w in weights.items())
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert hr.grad is None  # HR features computed without gradient
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_perceptual_needs_the_layers(tiny_extractor):
    with pytest.raises(ValueError, match="conv5_4"):
        PerceptualLoss(tiny_extractor, perceptual_layer_weights("bebygan"))


def test_perceptual_with_vgg19_random_weights(monkeypatch, tmp_path, images):
    monkeypatch.delenv("GRAMGAN_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: random weights, no download
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = VGG19FeatureExtractor(layers=("conv2_2", "conv4_2", "conv4_4"), allow_random_weights=True, download=False)
    sr, hr = images
    loss = PerceptualLoss(vgg, perceptual_layer_weights("gramgan"))(sr, hr)
    fs, fh = vgg(sr.detach()), vgg(hr)
    want = F.l1_loss(fs["conv2_2"], fh["conv2_2"]) + 0.1 * F.l1_loss(fs["conv4_2"], fh["conv4_2"])
    want = want + 0.01 * F.l1_loss(fs["conv4_4"], fh["conv4_4"])
    torch.testing.assert_close(loss, want)
    assert loss.item() > 0


def test_discriminator_perceptual_gradients_go_to_the_generator_only(discriminator, images):
    """D frozen (as the loop does): SR and the generator get gradients, D's parameters none."""
    sr_leaf, hr = images
    generator = torch.nn.Conv2d(3, 3, 3, padding=1)
    sr = generator(sr_leaf.detach())
    _, f_sr = discriminator(sr)
    with torch.no_grad():
        _, f_hr = discriminator(hr)
    loss = discriminator_perceptual_loss(f_sr, f_hr)
    assert loss.item() > 0
    loss.backward()
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in discriminator.parameters())


def test_discriminator_perceptual_detaches_the_hr_features(discriminator, images):
    sr, hr = images
    hr = hr.clone().requires_grad_(True)
    for p in discriminator.parameters():
        p.requires_grad_(True)
    discriminator.eval()  # fixed BN statistics so the two computations below see the same network
    _, f_sr = discriminator(sr)
    _, f_hr = discriminator(hr)  # HR features WITH a graph: the loss must cut it
    discriminator_perceptual_loss(f_sr, f_hr).backward()
    assert hr.grad is None
    grads = [_grad(p) for p in discriminator.parameters()]
    discriminator.zero_grad(set_to_none=True)
    _, f_sr = discriminator(sr)
    _, f_hr = discriminator(hr.detach())
    sum(F.mse_loss(a, b.detach()) for a, b in zip(f_sr, f_hr)).backward()
    assert any(g.abs().sum() > 0 for g in grads)
    for got, want in zip(grads, (_grad(p) for p in discriminator.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_discriminator_perceptual_value(images):
    a = [torch.ones(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    b = [torch.zeros(1, 2, 4, 4), torch.full((1, 3, 2, 2), 2.0)]
    assert discriminator_perceptual_loss(a, b).item() == pytest.approx(1.0 + 4.0)
    with pytest.raises(ValueError):
        discriminator_perceptual_loss(a, b[:1])
