"""GramGANLoss: every term, the weighted total, the RNG contract, the mask, the gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gramgan import ops
from gramgan.losses import (
    TERM_NAMES,
    GramGANLoss,
    GramGANLossConfig,
    PerceptualLoss,
    discriminator_loss,
    perceptual_layer_weights,
    ragan_generator_loss,
)
from gramgan.losses.candidates import build_global_candidates, build_local_candidates

pytestmark = pytest.mark.filterwarnings("ignore:gramgan.ops:RuntimeWarning")


def _grad(p: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient, zeros when it got none (layers past the last tap)."""
    return torch.zeros_like(p) if p.grad is None else p.grad.clone()  # gradients here are ~1e-6: compare relatively


class Recorder(torch.nn.Module):
    """Wraps a discriminator and records every input it is given (and the taps asked for)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[torch.Tensor, tuple[int, ...]]] = []

    def forward(self, x, taps=(5, 11)):
        self.calls.append((x.detach().clone(), tuple(taps)))
        return self.inner(x, taps=taps)


def test_config_defaults_are_the_spec():
    cfg = GramGANLossConfig()
    assert (cfg.content_weight, cfg.perceptual_weight, cfg.adversarial_weight) == (0.01, 1.0, 0.005)
    assert cfg.perceptual_preset == "gramgan" and cfg.disc_taps == (5, 11)
    assert (cfg.patch_size, cfg.num_affine_warps, cfg.warp_magnitude) == (4, 4, 0.003)
    assert (cfg.texture_scope, cfg.texture_target, cfg.texture_criterion) == ("local", "gram", "mse")
    assert (cfg.mask_threshold, cfg.mask_patch_size, cfg.mask_random_offset, cfg.mask_mode) == (0.005, 4, True, "grid")
    assert cfg.effective_gt_weight == 0.0
    assert GramGANLossConfig(texture_scope="global").effective_gt_weight == 1.0
    assert GramGANLossConfig(texture_scope="global", gt_weight=0.5).effective_gt_weight == 0.5
    assert GramGANLossConfig(disc_taps=[3, 7]).disc_taps == (3, 7)
    assert cfg.disc_perceptual_masked is False


@pytest.mark.parametrize(
    "change",
    [
        {"perceptual_preset": "vgg"},
        {"texture_weight": -1.0},
        {"adversarial_weight": float("nan")},
        {"texture_scope": "everywhere"},
        {"texture_target": "features"},
        {"mask_mode": "random"},
        {"disc_taps": ()},
        {"disc_taps": (0, 5)},
        {"patch_size": 0},
        {"backend": "opencl"},
    ],
)
def test_config_rejects_bad_values(change):
    with pytest.raises(ValueError):
        GramGANLossConfig(**change)


def test_all_terms_and_weighted_total(discriminator, images, tiny_extractor):
    sr, hr = images
    cfg = GramGANLossConfig(texture_weight=50.0, disc_perceptual_weight=0.1)
    out = GramGANLoss(cfg, vgg=tiny_extractor)(sr, hr, discriminator)
    assert set(out.terms) == set(TERM_NAMES) == set(out.weighted)
    for name in TERM_NAMES:
        assert out.terms[name].shape == () and not out.terms[name].requires_grad
        assert out.terms[name].item() > 0, name
        assert out.weighted[name].item() == pytest.approx(cfg.weights()[name] * out.terms[name].item(), rel=1e-6)
    assert out.total.item() == pytest.approx(sum(out.weighted[n].item() for n in TERM_NAMES), rel=1e-5)
    assert out.terms["content"].item() == pytest.approx(F.l1_loss(sr, hr).item(), rel=1e-6)
    want_p = PerceptualLoss(tiny_extractor, perceptual_layer_weights("gramgan"))(sr, hr)
    assert out.terms["perceptual"].item() == pytest.approx(want_p.item(), rel=1e-6)
    out.total.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in discriminator.parameters())  # frozen D gets nothing


def test_perceptual_off_without_vgg(discriminator, images):
    sr, hr = images
    loss_fn = GramGANLoss(GramGANLossConfig(perceptual_weight=1.0), vgg=None)
    assert loss_fn.active_weights()["perceptual"] == 0.0
    out = loss_fn(sr, hr, discriminator)
    assert out.terms["perceptual"].item() == 0.0 and out.weighted["perceptual"].item() == 0.0
    assert out.total.item() == pytest.approx(sum(out.weighted[n].item() for n in TERM_NAMES), rel=1e-5)


def test_texture_term_is_the_op_on_the_builders_candidates(images):
    sr, hr = images
    cfg = GramGANLossConfig(adversarial_weight=0.0, disc_perceptual_weight=0.0)
    torch.manual_seed(42)
    out = GramGANLoss(cfg)(sr, hr, None)  # RNG order: the warps first, then the mask offset
    torch.manual_seed(42)
    candidates = build_local_candidates(hr, num_affine_warps=4, magnitude=0.003, patch_size=4)
    want = ops.gram_texture_loss(sr.detach(), candidates, k=4)
    torch.testing.assert_close(out.terms["texture"], want)
    offset = tuple(torch.randint(0, 4, (2,)).tolist())
    assert out.mask_offset == offset
    # A different draw of the warps gives a different term: the candidates are not fixed.
    candidates_other = build_local_candidates(hr, num_affine_warps=4, magnitude=0.05)
    assert ops.gram_texture_loss(sr.detach(), candidates_other, k=4).item() != pytest.approx(want.item(), rel=1e-7)


def test_global_scope(images):
    sr, hr = images
    cfg = GramGANLossConfig(texture_scope="global", adversarial_weight=0.0, disc_perceptual_weight=0.0)
    torch.manual_seed(9)
    out = GramGANLoss(cfg)(sr, hr, None)
    torch.manual_seed(9)
    candidates = build_global_candidates(hr, num_affine_warps=4, magnitude=0.003, patch_size=4)
    want = ops.gram_texture_loss(sr.detach(), candidates, k=4, scope="global", gt_weight=1.0)
    torch.testing.assert_close(out.terms["texture"], want)
    out.total.backward()
    assert sr.grad.abs().sum() > 0


def test_gan_terms_match_hand_computation(discriminator, images):
    sr, hr = images
    disc = Recorder(discriminator)
    cfg = GramGANLossConfig(texture_weight=0.0, mask_random_offset=False)
    out = GramGANLoss(cfg)(sr, hr, disc)
    assert [taps for _, taps in disc.calls] == [(5, 11), (5, 11), (), ()]  # unmasked taps, then masked logits
    mask = ops.texture_mask(hr, k=4, threshold=0.005)
    torch.testing.assert_close(out.masked_hr, hr * mask)
    torch.testing.assert_close(out.masked_sr, sr * mask)
    with torch.no_grad():
        _, f_sr = discriminator(sr)
        _, f_hr = discriminator(hr)
        want_dp = sum(F.mse_loss(a, b) for a, b in zip(f_sr, f_hr))
        want_adv = ragan_generator_loss(discriminator(hr * mask, taps=())[0], discriminator(sr * mask, taps=())[0])
    assert out.terms["disc_perceptual"].item() == pytest.approx(want_dp.item(), rel=1e-5)
    assert out.terms["adversarial"].item() == pytest.approx(want_adv.item(), rel=1e-5)
    d_loss, d_terms = discriminator_loss(discriminator, out.masked_sr.detach(), out.masked_hr)
    assert d_terms["d_loss"].item() == pytest.approx(d_loss.item()) and d_loss.item() > 0


def test_mask_zeroes_flat_regions_for_the_discriminator(discriminator):
    g = torch.Generator().manual_seed(4)
    hr = torch.rand(2, 3, 64, 64, generator=g)
    hr[..., :, :32] = 0.4  # a flat left half
    sr = torch.rand(2, 3, 64, 64, generator=g).requires_grad_(True)
    disc = Recorder(discriminator)
    loss_fn = GramGANLoss(GramGANLossConfig(texture_weight=0.0, disc_perceptual_weight=0.0))
    for _ in range(4):  # several random grid offsets: cells reach at most 3 px across the edge
        disc.calls.clear()
        out = loss_fn(sr, hr, disc)
        for masked in (out.masked_sr, out.masked_hr, *(x for x, _ in disc.calls)):
            assert masked[..., :, :28].abs().max() == 0
            assert (masked[..., :, 36:] != 0).float().mean() > 0.9
        assert len(disc.calls) == 2  # the adversarial passes see only masked images


def test_mask_offset_is_random_and_used(discriminator, images):
    sr, hr = images
    loss_fn = GramGANLoss(GramGANLossConfig(texture_weight=0.0, disc_perceptual_weight=0.0, adversarial_weight=0.0))
    torch.manual_seed(0)
    offsets = {loss_fn(sr, hr, None).mask_offset for _ in range(30)}
    assert len(offsets) > 4 and all(0 <= o < 4 for pair in offsets for o in pair)
    out = loss_fn(sr, hr, None)
    torch.testing.assert_close(out.masked_hr, hr * ops.texture_mask(hr, offset=out.mask_offset))
    fixed = GramGANLoss(dataclasses.replace(loss_fn.config, mask_random_offset=False))
    assert {fixed(sr, hr, None).mask_offset for _ in range(5)} == {(0, 0)}


def test_discriminator_gets_no_gradient_and_hr_branch_is_detached(discriminator, images):
    """Even with D's parameters trainable, the only D-gradient is the one through the SR branch."""
    sr, hr = images
    for p in discriminator.parameters():
        p.requires_grad_(True)
    discriminator.eval()
    cfg = GramGANLossConfig(
        content_weight=0.0, texture_weight=0.0, adversarial_weight=0.0, disc_perceptual_weight=1.0
    )
    GramGANLoss(cfg)(sr, hr, discriminator).total.backward()
    got = [_grad(p) for p in discriminator.parameters()]
    assert any(g.abs().sum() > 0 for g in got)
    discriminator.zero_grad(set_to_none=True)
    _, f_sr = discriminator(sr.detach())
    with torch.no_grad():
        _, f_hr = discriminator(hr)
    sum(F.mse_loss(a, b) for a, b in zip(f_sr, f_hr)).backward()
    for a, b in zip(got, (_grad(p) for p in discriminator.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_zero_weights_skip_terms_and_need_no_discriminator(images):
    sr, hr = images
    cfg = GramGANLossConfig(disc_perceptual_weight=0.0, adversarial_weight=0.0, texture_weight=0.0)
    out = GramGANLoss(cfg)(sr, hr, None)
    assert out.terms["texture"].item() == 0 and out.terms["adversarial"].item() == 0
    assert out.total.item() == pytest.approx(0.01 * F.l1_loss(sr, hr).item(), rel=1e-6)
    with pytest.raises(ValueError, match="discriminator is needed"):
        GramGANLoss(GramGANLossConfig())(sr, hr, None)
    with pytest.raises(ValueError, match="same shape"):
        GramGANLoss(cfg)(sr, hr[..., :32], None)


def test_low_precision_sr_is_promoted(discriminator, images):
    sr, hr = images
    out = GramGANLoss(GramGANLossConfig())(sr.detach().bfloat16().requires_grad_(True), hr, discriminator)
    assert out.masked_hr.dtype == torch.float32 and torch.isfinite(out.total)
    torch.testing.assert_close(out.masked_hr, hr * ops.texture_mask(hr, offset=out.mask_offset))


def test_texture_term_is_computed_in_float32_under_autocast(images):
    sr, hr = images
    loss_fn = GramGANLoss(GramGANLossConfig(adversarial_weight=0.0, disc_perceptual_weight=0.0))
    torch.manual_seed(5)
    plain = loss_fn(sr, hr, None).terms["texture"]
    torch.manual_seed(5)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under = loss_fn(sr, hr, None).terms["texture"]
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, plain, rtol=1e-6, atol=0)


def test_disc_perceptual_on_the_masked_pair_when_asked(discriminator, images):
    sr, hr = images
    hr = hr.clone()
    hr[:, :, :32] = 0.5  # a flat half: the mask hides it
    cfg = GramGANLossConfig(texture_weight=0.0, adversarial_weight=0.0, mask_random_offset=False)
    unmasked = GramGANLoss(cfg)(sr, hr, discriminator)
    masked = GramGANLoss(dataclasses.replace(cfg, disc_perceptual_masked=True))(sr, hr, discriminator)
    with torch.no_grad():
        _, f_sr = discriminator(masked.masked_sr)
        _, f_hr = discriminator(masked.masked_hr)
        want = sum(F.mse_loss(a, b) for a, b in zip(f_sr, f_hr))
    assert masked.terms["disc_perceptual"].item() == pytest.approx(want.item(), rel=1e-5)
    assert masked.terms["disc_perceptual"].item() != pytest.approx(unmasked.terms["disc_perceptual"].item(), rel=1e-3)
