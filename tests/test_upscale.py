"""``python -m gramgan.upscale`` end to end: RGB, grey, RGBA, 16-bit, outscale, tiling and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.resize import imresize
from gramgan.images.png16 import read_png16, write_png16
from gramgan.inference import read_image, super_resolve
from gramgan.models import RRDBNet
from gramgan.upscale import main

H, W = 12, 14


@pytest.fixture(scope="module")
def model() -> RRDBNet:
    torch.manual_seed(0)
    net = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    with torch.no_grad():  # output around mid-grey with some contrast (std ~30 levels), little clamped
        net.conv_last.bias.fill_(0.5)
        net.conv_last.weight.mul_(10)
    return net


@pytest.fixture
def checkpoint(tmp_path: Path, model: RRDBNet) -> Path:
    path = tmp_path / "x4.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (H, W), dtype=np.uint8)).save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8)).save(folder / "rgba.png")
    write_png16(folder / "rgb16.png", rng.integers(0, 65536, (H, W, 3), dtype=np.uint16))
    return folder


def _sr(model: RRDBNet, color: torch.Tensor) -> torch.Tensor:
    return super_resolve(model, color[None], scale=4)[0].clamp(0, 1)


def test_all_kinds_of_images(tmp_path: Path, model: RRDBNet, checkpoint: Path, inputs: Path) -> None:
    out = tmp_path / "out"
    assert main([str(inputs), "--checkpoint", str(checkpoint), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "rgb.png", "rgb16.png", "rgba.png"]

    src = read_image(inputs / "rgb.png")
    with Image.open(out / "rgb.png") as im:
        assert im.mode == "RGB" and im.size == (4 * W, 4 * H)
        expected = (_sr(model, src.color) * 255).round().byte().permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(np.asarray(im), expected)

    grey = read_image(inputs / "grey.png")
    with Image.open(out / "grey.png") as im:  # grey in, grey out: the luma of the RGB result
        assert im.mode == "L"
        sr = _sr(model, grey.color.expand(3, -1, -1))
        luma = 0.299 * sr[0] + 0.587 * sr[1] + 0.114 * sr[2]
        assert np.abs(np.asarray(im).astype(int) - (luma * 255).round().numpy()).max() <= 1

    rgba = read_image(inputs / "rgba.png")
    with Image.open(out / "rgba.png") as im:  # alpha: bicubic imresize, colour: the model
        assert im.mode == "RGBA"
        alpha = (imresize(rgba.alpha, scale=4).clamp(0, 1)[0] * 255).round().byte().numpy()
        np.testing.assert_array_equal(np.asarray(im)[..., 3], alpha)
        color = (_sr(model, rgba.color) * 255).round().byte().permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(np.asarray(im)[..., :3], color)

    deep = read_png16(out / "rgb16.png")  # 16 bits in, 16 bits out, at full precision
    assert deep.dtype == np.uint16 and deep.shape == (4 * H, 4 * W, 3)
    expected16 = (_sr(model, read_image(inputs / "rgb16.png").color).double() * 65535).round()
    assert np.abs(deep.astype(np.float64) - expected16.permute(1, 2, 0).numpy()).max() <= 1
    assert (deep % 257 != 0).mean() > 0.5  # not 8-bit values stretched to 16


def test_alpha_through_the_model(tmp_path: Path, model: RRDBNet, checkpoint: Path, inputs: Path) -> None:
    out = tmp_path / "out"
    args = [str(inputs / "rgba.png"), "--checkpoint", str(checkpoint), "-o", str(out), "--alpha-upsampler", "model"]
    assert main(args) == 0
    alpha = read_image(inputs / "rgba.png").alpha
    expected = (_sr(model, alpha.expand(3, -1, -1)).mean(0) * 255).round()
    with Image.open(out / "rgba.png") as im:
        assert np.abs(np.asarray(im)[..., 3].astype(int) - expected.numpy()).max() <= 1


def test_outscale_and_suffix(tmp_path: Path, model: RRDBNet, checkpoint: Path, inputs: Path) -> None:
    out = tmp_path / "out"
    args = [str(inputs / "rgb.png"), "--checkpoint", str(checkpoint), "-o", str(out), "--outscale", "2.5"]
    assert main([*args, "--suffix", "_x2.5", "--ext", "jpg"]) == 0
    with Image.open(out / "rgb_x2.5.jpg") as im:
        assert im.size == (round(W * 2.5), round(H * 2.5))
    assert main(args) == 0
    expected = imresize(_sr(model, read_image(inputs / "rgb.png").color), size=(30, 35)).clamp(0, 1)
    with Image.open(out / "rgb.png") as im:
        got = np.asarray(im).astype(int)
        np.testing.assert_array_equal(got, (expected * 255).round().permute(1, 2, 0).numpy().astype(int))


def test_tiled_cli_output_is_close_to_whole_image(tmp_path: Path, checkpoint: Path, inputs: Path) -> None:
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    rng = np.random.default_rng(1)  # larger than the 64 px below which images are mirror-padded
    Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    base = [str(tmp_path / "rgb.png"), "--checkpoint", str(checkpoint)]
    assert main([*base, "-o", str(whole)]) == 0
    assert main([*base, "-o", str(tiled), "--tile", "32", "--tile-overlap", "4"]) == 0
    with Image.open(whole / "rgb.png") as a, Image.open(tiled / "rgb.png") as b:
        diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    # The net's receptive field exceeds the 1-pixel margin: close, but not equal (so tiling did happen).
    assert 0 < diff.max() <= 40 and diff.mean() < 2


def test_half_and_bf16_need_cuda(tmp_path: Path, checkpoint: Path, inputs: Path, capsys: pytest.CaptureFixture) -> None:
    for flag in ("--half", "--bf16"):
        args = [str(inputs), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o"), "--device", "cpu", flag]
        assert main(args) == 2
        assert "needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_wrong_scale_and_wrong_architecture(
    tmp_path: Path, checkpoint: Path, inputs: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [str(inputs), "-o", str(tmp_path / "o")]
    assert main([*args, "--checkpoint", str(checkpoint), "--scale", "2"]) == 2
    assert "expected a x2 model" in capsys.readouterr().err
    torch.manual_seed(0)
    torch.save({"params": torch.nn.Linear(3, 3).state_dict()}, tmp_path / "linear.pth")
    assert main([*args, "--checkpoint", str(tmp_path / "linear.pth")]) == 2
    err = capsys.readouterr().err
    assert "not an RRDBNet checkpoint" in err and "'weight'" in err


def test_refuses_to_overwrite_inputs(checkpoint: Path, inputs: Path, capsys: pytest.CaptureFixture) -> None:
    before = (inputs / "rgb.png").read_bytes()
    assert main([str(inputs / "rgb.png"), "--checkpoint", str(checkpoint), "-o", str(inputs)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (inputs / "rgb.png").read_bytes() == before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("flag", ["--half", "--bf16"])
def test_half_precision_on_cuda(tmp_path: Path, checkpoint: Path, inputs: Path, flag: str) -> None:
    base = [str(inputs / "rgb.png"), "--checkpoint", str(checkpoint), "--device", "cuda"]
    assert main([*base, "-o", str(tmp_path / "fp32")]) == 0
    assert main([*base, "-o", str(tmp_path / "low"), flag]) == 0
    with Image.open(tmp_path / "fp32" / "rgb.png") as a, Image.open(tmp_path / "low" / "rgb.png") as b:
        diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    assert diff.max() <= 3


def test_a_broken_file_is_reported_and_the_rest_written(tmp_path: Path, checkpoint: Path, inputs: Path) -> None:
    """Through the real command line: the good images are written, the bad one is named with its
    reason at the end, exit 1, no traceback."""
    broken = inputs / "broken.png"
    broken.write_text("this is not a PNG")
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "gramgan.upscale", str(inputs), "--checkpoint", str(checkpoint), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "rgb.png", "rgb16.png", "rgba.png"]
    tail = run.stderr.splitlines()[-2:]
    assert tail[0] == "error: 1 of 5 image(s) failed:"
    assert str(broken) in tail[1] and "cannot read image" in tail[1]


@pytest.mark.parametrize("size", [(10, 10), (1, 1)])
def test_tiny_flat_images_come_back_flat(tmp_path: Path, model: RRDBNet, checkpoint: Path, size: tuple) -> None:
    """No dark corners or tinted ring: a flat 10x10 (or 1x1) image upscales to a flat image of the
    colour the network gives a large flat area."""
    colour = (200, 80, 50)
    Image.new("RGB", size[::-1], colour).save(tmp_path / "tiny.png")
    Image.new("RGB", (96, 96), colour).save(tmp_path / "large.png")
    out = tmp_path / "out"
    args = [str(tmp_path / "tiny.png"), str(tmp_path / "large.png"), "--checkpoint", str(checkpoint), "-o", str(out)]
    assert main(args) == 0
    with Image.open(out / "tiny.png") as tiny, Image.open(out / "large.png") as large:
        assert tiny.size == (size[1] * 4, size[0] * 4)
        expected = np.asarray(large)[192, 192].astype(int)
        assert np.abs(np.asarray(tiny).astype(int) - expected).max() <= 1


def test_outputs_get_the_umask_permissions(tmp_path: Path, checkpoint: Path, inputs: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main([str(inputs), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys(["grey.png", "rgb.png", "rgb16.png", "rgba.png"], 0o644)
