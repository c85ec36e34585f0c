"""The training loop end to end on a tiny model (gramgan.train.loop), in-process."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from gramgan.models import RRDBNet, VGGWeightsNotFoundError
from gramgan.train.checkpoint import list_checkpoints, load_checkpoint
from gramgan.train.config import ConfigError, load_config
from gramgan.train.loop import Trainer
from gramgan.train.schedule import lr_at

GAN_TERMS = {"loss/total", "loss/d", "loss/content", "loss/perceptual", "loss/disc_perceptual", "loss/texture",
             "loss/adversarial", "d_real", "d_fake"}


def _run(tmp_path, tiny, *overrides, preset="demo", name="run"):
    cfg = load_config(preset=preset, overrides=[*tiny, *overrides])
    messages: list[str] = []
    result = Trainer(cfg, tmp_path / name, say=messages.append).fit()
    return cfg, result, messages


def test_psnr_then_gan_run_leaves_logs_checkpoint_pictures_and_metrics(tmp_path, tiny, isolated_vgg):
    cfg, result, messages = _run(
        tmp_path,
        tiny,
        "train.psnr_iters=4",
        "train.total_iters=8",
        "schedule.cycle_iters=[4, 4]",
        "train.save_every=4",
        "train.val_every=4",
        "train.keep_checkpoints=1",
    )
    out = result.output_dir
    assert any("perceptual loss is OFF" in m for m in messages)
    assert any(m.startswith("final: iteration 8") and "PSNR-Y" in m for m in messages)

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["iteration"] for r in train] == [2, 4, 6, 8]
    assert [r["stage"] for r in train] == ["psnr", "psnr", "gan", "gan"]
    assert "loss/l1" in train[0] and "d_real" not in train[0]
    for r in train[2:]:
        assert set(r) >= GAN_TERMS and r["loss/perceptual"] == 0.0 and r["lr_d"] == r["lr_g"]
    for r in train:  # the lr of the window's last step, as the schedule says
        assert r["lr_g"] == pytest.approx(lr_at(r["iteration"] - 1, cfg.schedule, 8))
    val = [r for r in records if r["kind"] == "val"]
    assert [r["iteration"] for r in val] == [4, 8]
    assert {"psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"} <= set(val[0])
    assert result.metrics["psnr_y"] == val[-1]["psnr_y"]

    assert [it for it, _ in list_checkpoints(out / "checkpoints")] == [8]
    state = load_checkpoint(out / "checkpoints" / "iter_00000008.pt")
    assert state["iteration"] == 8 and state["arch"] == cfg.model.arch()
    assert state["config"]["train"]["psnr_iters"] == 4
    assert state["data"] == {"epoch": 1, "offset": 2}  # 12 samples / batch 2 = 6 batches an epoch
    for key, value in result.generator.state_dict().items():
        assert torch.equal(state["generator"][key], value)
    assert all(torch.equal(state["generator_ema"][k], v) for k, v in result.generator_ema.state_dict().items())
    assert not all(torch.equal(state["generator_ema"][k], v) for k, v in state["generator"].items())
    assert state["discriminator"] and state["optimizer_d"] and state["scheduler_d"] == {"last_iter": 8}
    assert len(state["rng"]) == 1 and len(state["fingerprints"]) == 1

    with Image.open(out / "samples" / "iter_00000004" / "chelsea.png") as picture:
        width, height = picture.size
        assert width == 3 * 64 + 2 * 4 and height > 64  # bicubic | SR | HR, a label band below
    assert (out / "loss_curves.png").stat().st_size > 1000
    assert json.loads((out / "metrics.json").read_text())["iteration"] == 8
    exported = torch.load(out / "generator.pth", weights_only=True)
    RRDBNet(**cfg.model.arch()).load_state_dict(exported["params_ema"])
    assert (out / "config.yaml").read_text().startswith("name: tiny")


def test_psnr_stage_starts_from_pretrained_weights_and_stage_gan_follows(tmp_path, tiny, isolated_vgg):
    arch = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    torch.manual_seed(5)
    pretrained = RRDBNet(**arch).state_dict()
    torch.save({"params_ema": pretrained}, tmp_path / "basicsr.pth")
    # One iteration: its lr is the warm-up's 0, so G must still equal the pretrained weights.
    _, result, messages = _run(
        tmp_path, tiny, "train.stage=psnr", "train.total_iters=1", f"model.pretrained={tmp_path / 'basicsr.pth'}"
    )
    assert any("initialised from" in m for m in messages)
    assert all(torch.equal(result.generator.state_dict()[k], v) for k, v in pretrained.items())

    psnr_ckpt = result.checkpoint
    with pytest.raises(ConfigError, match="stage"):
        Trainer(load_config(preset="demo", overrides=tiny), tmp_path / "x", resume=psnr_ckpt, say=print)
    gan = Trainer(load_config(preset="demo", overrides=[*tiny, f"model.pretrained={psnr_ckpt}"]), tmp_path / "g")
    assert all(torch.equal(gan.run.g.state_dict()[k], v) for k, v in pretrained.items())
    wrong = load_config(preset="demo", overrides=[*tiny, "model.num_feat=16", f"model.pretrained={psnr_ckpt}"])
    with pytest.raises(ConfigError, match="num_feat=8"):
        Trainer(wrong, tmp_path / "w")


def test_paper_preset_without_vgg_weights_fails_with_the_way_out(tmp_path, tiny, isolated_vgg):
    cfg = load_config(preset="paper", overrides=[*tiny, "train.total_iters=1", "train.psnr_iters=1"])
    with pytest.raises(VGGWeightsNotFoundError, match="loss.perceptual_optional=true"):
        Trainer(cfg, tmp_path / "paper")


def test_too_small_a_dataset_is_a_config_error(tmp_path, tiny, isolated_vgg):
    cfg = load_config(preset="demo", overrides=[*tiny, "train.batch_size=13"])
    with pytest.raises(ConfigError, match="data.repeat"):
        Trainer(cfg, tmp_path / "small")


def test_bf16_autocasts_on_the_device_and_cuda_needs_a_gpu(tmp_path, tiny):
    from gramgan.train.builders import autocast_context

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with autocast_context("bf16", torch.device("cpu"))():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ConfigError, match="bf16 needs a CUDA or CPU device"):
        autocast_context("bf16", torch.device("meta"))
    with pytest.raises(ConfigError, match="train.device.*CUDA is not available"):
        Trainer(load_config(preset="demo", overrides=[*tiny, "train.device=cuda"]), tmp_path / "cuda")


def test_the_loader_pins_batches_for_cuda_only(tiny):
    """Pinned batches (copied with non_blocking=True by the trainer) on CUDA; the CPU's loader unchanged."""
    from gramgan.train.distributed import DistInfo
    from gramgan.train.run import _build_data

    cfg = load_config(preset="demo", overrides=tiny)
    loaders = {kind: _build_data(cfg, DistInfo(), torch.device(kind), lambda _: None)[0] for kind in ("cpu", "cuda")}
    assert {kind: loader.pin_memory for kind, loader in loaders.items()} == {"cpu": False, "cuda": True}


def test_a_new_run_never_mixes_with_an_old_runs_checkpoints(tmp_path, tiny, isolated_vgg):
    _run(tmp_path, tiny, "train.stage=psnr", "train.total_iters=2")
    with pytest.raises(ConfigError, match="--resume"):
        _run(tmp_path, tiny, "train.stage=psnr", "train.total_iters=2")


def test_stage_gan_refuses_a_random_generator(tmp_path, tiny, isolated_vgg):
    with pytest.raises(ConfigError, match=r"model.pretrained.*train.psnr_iters > 0"):
        _run(tmp_path, tiny, "train.psnr_iters=0", "train.total_iters=2")
