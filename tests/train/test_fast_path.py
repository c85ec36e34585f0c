"""The fast training path (``train.fast``): what it resolves to, and that it trains the same objective.

Faithfulness is checked on the CPU with tiny networks: one Gram-GAN step of the fast path (bf16 autocast,
channels_last, ``torch.compile`` with the tracing-only ``aot_eager`` backend, fused Adam) against the
fp32 eager step, from the same weights, batch and random draws: same losses and gradients within bf16
tolerance, and the texture selection computed in float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from gramgan import ops
from gramgan.models.rrdbnet import RRDBNet
from gramgan.train.config import load_config
from gramgan.train.config_schema import ConfigError, LoopConfig
from gramgan.train.fast import FastPlan, compile_in_place, float32_forward, match_state_layout, resolve_fast
from gramgan.train.run import Run, build_run
from gramgan.train.steps import gan_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
FAST_ON_CPU = ["train.fast=true", "train.compile_backend=aot_eager"]  # aot_eager: traces, generates no code


# ---------------------------------------------------------------- the one setting


def test_auto_is_on_for_cuda_and_off_for_the_cpu():
    assert resolve_fast(LoopConfig(), CUDA) == FastPlan("bf16", True, True, "inductor", True)
    assert resolve_fast(LoopConfig(), CPU) == FastPlan()
    assert not FastPlan().any and FastPlan().describe() == "fp32 eager"


def test_each_part_overrides_fast():
    plan = resolve_fast(LoopConfig(fast=True, precision="fp32", compile=False), CPU)
    assert plan == FastPlan("fp32", True, False, "inductor", True)
    plan = resolve_fast(LoopConfig(fast=False, channels_last=True), CUDA)
    assert plan == FastPlan("fp32", True, False, "inductor", False)


@pytest.mark.parametrize(
    ("override", "key"),
    [("train.fast=sometimes", "train.fast"), ("train.fast=2", "train.fast"),
     ("train.compile_backend=eager", "train.compile_backend"), ("train.precision=fp16", "train.precision")],
)  # fmt: skip
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(preset="demo", overrides=[override])


def test_yaml_on_and_off_read_as_the_switch():
    assert load_config(preset="demo", overrides=["train.fast=on"]).train.fast is True
    assert load_config(preset="demo", overrides=["train.fast=off"]).train.fast is False
    assert load_config(preset="demo").train.fast == "auto"


# ---------------------------------------------------------------- faithfulness


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    """VGG19 features up to conv4_4 with random weights, in torchvision's key layout (no download)."""
    from gramgan.models.vgg import VGG19FeatureExtractor

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "RANDOM weights": intended
        vgg = VGG19FeatureExtractor(layers=("conv2_2", "conv4_2", "conv4_4"), allow_random_weights=True)
    path = tmp_path_factory.mktemp("vgg") / "vgg19_random.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, path)
    return path


def _build(tmp_path: Path, name: str, tiny: list[str], vgg_file: Path, *extra: str) -> Run:
    overrides = [
        *tiny, "train.device=cpu", "train.psnr_iters=1", "train.total_iters=4", "schedule.cycle_iters=[3, 10]",
        f"loss.vgg_weights={vgg_file}", "loss.backend=cpu", *extra,
    ]  # fmt: skip
    return build_run(load_config(preset="demo", overrides=overrides), tmp_path / name, say=lambda _: None)


def _gan_step(run: Run) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """One G step and one D step on a fixed batch with fixed random draws: the logged values and the
    gradients of G and of D (each flattened into one vector)."""
    gen = torch.Generator().manual_seed(3)
    hr = torch.rand(4, 3, 64, 64, generator=gen)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    torch.manual_seed(11)  # the warps and the mask offset
    values = gan_step(run, lr, hr)
    grads = {net: torch.cat([p.grad.float().flatten() for p in module.parameters()])
             for net, module in (("g", run.g), ("d", run.d))}  # fmt: skip
    return {k: float(v) for k, v in values.items()}, grads


@pytest.fixture(scope="module")
def steps(tmp_path_factory, vgg_file, tiny_for_module):
    """One Gram-GAN step of fp32 eager, of the fast path, and of the fast path in fp32 (channels_last,
    compile, fused Adam only), each with its run: ``{name: (run, values, grads)}``."""
    tmp = tmp_path_factory.mktemp("fast")
    torch.set_num_threads(1)
    out = {}
    for name, extra in (("reference", ["train.fast=false"]), ("fast", FAST_ON_CPU),
                        ("fast_fp32", [*FAST_ON_CPU, "train.precision=fp32"])):  # fmt: skip
        torch._dynamo.reset()  # each run compiles its own D variants (a process trains one run)
        run = _build(tmp, name, tiny_for_module, vgg_file, *extra)
        out[name] = (run, *_gan_step(run))
    return out


def test_fast_run_uses_every_part(steps):
    reference, fast = steps["reference"][0], steps["fast"][0]
    assert reference.fast == FastPlan()
    assert fast.fast == FastPlan("bf16", True, True, "aot_eager", True)
    conv = fast.g.conv_first.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert fast.opt_g.defaults["fused"] and fast.opt_d.defaults["fused"]
    compiled = [m for m in fast.g.modules() if m._compiled_call_impl is not None]
    assert compiled == list(fast.g.body)  # G block by block (compile_in_place)
    assert all(m._compiled_call_impl is None for m in fast.ema.module.modules())  # validation runs eager
    assert fast.d._compiled_call_impl is not None
    assert list(fast.g.state_dict()) == list(reference.g.state_dict())  # checkpoints keep their keys
    assert list(fast.d.state_dict()) == list(reference.d.state_dict())
    assert fast.loss_fn.perceptual is not None  # the VGG19 term is in the comparison


def test_rrdb_blocks_share_one_compiled_graph():
    """G is compiled block by block, and its RRDBs (same code, same shapes) share one graph: the
    compile warm-up is one block's, however many blocks G has."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    g = RRDBNet(num_feat=8, num_block=3, num_grow_ch=4)
    counter = CompileCounter()
    compile_in_place(g, counter)
    g(torch.rand(1, 3, 8, 8)).sum().backward()
    assert counter.frame_count == 1 and counter.op_count > 0
    assert g._compiled_call_impl is None and all(block._compiled_call_impl is not None for block in g.body)
    torch._dynamo.reset()


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value - reference).norm() / reference.norm())


def test_fast_step_in_fp32_is_fp32_eager(steps):
    """channels_last, compile and fused Adam change no number beyond float32 rounding."""
    _, ref_values, ref_grads = steps["reference"]
    _, values, grads = steps["fast_fp32"]
    for key, ref in ref_values.items():
        assert values[key] == pytest.approx(ref, rel=1e-4, abs=1e-5), key
    assert _relative_error(grads["g"], ref_grads["g"]) < 1e-4
    assert _relative_error(grads["d"], ref_grads["d"]) < 1e-2  # BatchNorm sums in another order: measured 2e-4


def test_fast_step_has_the_losses_and_g_gradient_of_fp32_eager(steps):
    """Within bf16 tolerance: every loss term to 3 % (measured: under 1 %), D's mean logits to 0.05
    (they sit near 0; measured 0.03), G's gradient to 5 % with cosine > 0.999 (measured 1.3 %, 0.99992).

    D's own gradient is left out on purpose: at initialisation it is a near-cancellation of the real and
    fake branches, so it moves by tens of percent when SR moves by bf16 rounding, even with D in float32
    (measured: cosine -0.2 between the two steps). D's arithmetic itself is checked below."""
    _, ref_values, ref_grads = steps["reference"]
    _, fast_values, fast_grads = steps["fast"]
    assert ref_values.keys() == fast_values.keys()
    for key, ref in ref_values.items():
        if key in ("d_real", "d_fake"):
            assert abs(fast_values[key] - ref) < 0.05, key
        else:
            assert fast_values[key] == pytest.approx(ref, rel=0.03, abs=1e-6), key
    assert _relative_error(fast_grads["g"], ref_grads["g"]) < 0.05
    assert torch.nn.functional.cosine_similarity(fast_grads["g"], ref_grads["g"], dim=0) > 0.999


def test_discriminator_computes_in_float32_inside_autocast():
    """The fast path's D (``float32_forward``) gives, inside bf16 autocast, fp32's logits and gradients to
    the bit; without it, D's bf16 gradient is far off (the reason it exists)."""
    from gramgan.losses import discriminator_loss
    from gramgan.models.discriminator import VGGStyleDiscriminator

    torch.manual_seed(0)
    real = torch.rand(4, 3, 64, 64)
    fake = (real + 0.05 * torch.randn_like(real)).clamp(0, 1)

    def d_step(d: torch.nn.Module, bf16: bool) -> tuple[float, torch.Tensor]:
        d.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = discriminator_loss(d, fake, real)
        loss.backward()
        return float(loss.detach()), torch.cat([p.grad.flatten() for p in d.parameters()])

    torch.manual_seed(1)
    d = VGGStyleDiscriminator(num_feat=4, input_size=64)
    loss32, grad32 = d_step(d, bf16=False)
    _, grad16 = d_step(d, bf16=True)
    assert _relative_error(grad16, grad32) > 0.1  # measured 0.43
    float32_forward(d)
    loss, grad = d_step(d, bf16=True)
    assert loss == loss32 and torch.equal(grad, grad32)


def test_fast_path_keeps_the_texture_selection_in_float32(tmp_path, tiny, vgg_file, monkeypatch):
    """Under bf16 autocast the texture op sees float32 SR and candidates with autocast off, so its Gram
    scores (which choose the candidate of each patch) are accumulated in float32."""
    seen = []
    original = ops.gram_texture_loss_sampled

    def spy(sr, hr, half, thetas, **kwargs):
        seen.append((sr.dtype, hr.dtype, half.dtype, torch.is_autocast_enabled("cpu")))
        return original(sr, hr, half, thetas, **kwargs)

    monkeypatch.setattr(ops, "gram_texture_loss_sampled", spy)
    run = _build(tmp_path, "fast", tiny, vgg_file, "train.fast=true", "train.compile=false")
    with run.autocast():
        sr = run.g_ddp(torch.rand(2, 3, 16, 16))
        assert sr.dtype == torch.bfloat16  # the network itself did run in bf16
        run.loss_fn(sr, torch.rand(2, 3, 64, 64), run.d)
    assert seen == [(torch.float32, torch.float32, torch.float32, False)]


def test_resume_gives_adam_moments_the_parameters_layout():
    param = torch.nn.Parameter(torch.rand(4, 3, 3, 3).to(memory_format=torch.channels_last))
    opt = torch.optim.Adam([param])
    opt.state[param] = {"exp_avg": torch.rand(4, 3, 3, 3), "step": torch.tensor(1.0)}
    before = opt.state[param]["exp_avg"].clone()
    match_state_layout(opt, None)
    moved = opt.state[param]["exp_avg"]
    assert moved.stride() == param.stride() and torch.equal(moved, before)
