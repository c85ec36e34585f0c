"""``python -m gramgan.evaluate`` end to end on a tiny folder, against scores recomputed by hand."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.lr import synthesize_lr
from gramgan.data.resize import imresize
from gramgan.evaluate import dataset_name, main, modcrop
from gramgan.inference import super_resolve
from gramgan.metrics import psnr_y, quantize_8bit, ssim_y
from gramgan.models import RRDBNet

SIZES = [(50, 45), (41, 38), (48, 48)]  # two are not multiples of the scale: modcrop


def _tiny(seed: int) -> RRDBNet:
    torch.manual_seed(seed)
    net = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)
    return net


@pytest.fixture(scope="module")
def models() -> tuple[RRDBNet, RRDBNet]:
    return _tiny(0), _tiny(1)  # generator, EMA


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "Set3" / "HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SIZES):
        base = torch.rand(3, h // 6 + 1, w // 6 + 1, generator=torch.Generator().manual_seed(i))
        smooth = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bicubic")[0].clamp(0, 1)
        img = (smooth.permute(1, 2, 0).numpy() * 255 + rng.normal(0, 3, (h, w, 3))).clip(0, 255)
        Image.fromarray(img.round().astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def ours(tmp_path: Path, models: tuple[RRDBNet, RRDBNet]) -> Path:
    gen, ema = models
    path = tmp_path / "ours.pt"
    ckpt = {
        "format": "gramgan-checkpoint-v1",
        "iteration": 7,
        "arch": gen.arch,
        "generator": gen.state_dict(),
        "generator_ema": ema.state_dict(),
    }
    torch.save(ckpt, path)
    return path


def _read(path: Path) -> torch.Tensor:
    """An 8-bit image file as float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1).double() / 255


def _expected(model: RRDBNet, hr_dir: Path) -> list[dict[str, dict[str, float]]]:
    """Scores recomputed directly from the library pieces, image by image."""
    out = []
    for path in sorted(hr_dir.glob("*.png")):
        hr = modcrop(_read(path).float(), 4)
        lr = synthesize_lr(hr, 4)
        sr = quantize_8bit(super_resolve(model, lr[None], scale=4)[0])
        bic = quantize_8bit(imresize(lr, scale=4))
        out.append(
            {
                m: {"psnr": float(psnr_y(x, hr, 4)), "ssim": float(ssim_y(x, hr, 4))}
                for m, x in (("model", sr), ("bicubic", bic))
            }
        )
    return out


def _run(tmp_path: Path, *args: str, name: str = "res") -> dict:
    out = tmp_path / name
    assert main([*args, "--output-dir", str(out), "--device", "cpu"]) == 0
    return json.loads((out / "results.json").read_text())


def test_scores_match_a_direct_computation(tmp_path: Path, models, hr_dir: Path, ours: Path) -> None:
    saved = tmp_path / "sr"
    res = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), "--save-images", str(saved))
    (ds,) = res["datasets"]
    assert res["scale"] == 4 and res["crop_border"] == 4 and "EMA" in res["weights"]
    assert ds["name"] == "Set3" and ds["num_images"] == 3
    assert [img["size"] for img in ds["images"]] == [[48, 44], [40, 36], [48, 48]]
    expected = _expected(models[1], hr_dir)  # the EMA weights
    for got, want in zip(ds["images"], expected, strict=True):
        for method in ("model", "bicubic"):
            assert got[method]["psnr"] == pytest.approx(want[method]["psnr"], rel=1e-12)
            assert got[method]["ssim"] == pytest.approx(want[method]["ssim"], rel=1e-12)
    mean_psnr = np.mean([w["bicubic"]["psnr"] for w in expected])
    assert ds["mean"]["bicubic"]["psnr"] == pytest.approx(mean_psnr, rel=1e-12)
    assert 20 < mean_psnr < 40  # a sane bicubic baseline on smooth images
    # The saved SR image is the one that was scored.
    sr, hr = _read(saved / "Set3" / "img2.png"), _read(hr_dir / "img2.png")
    assert float(psnr_y(sr, hr, 4)) == pytest.approx(ds["images"][2]["model"]["psnr"], rel=1e-12)
    md = (tmp_path / "res" / "results.md").read_text()
    assert "| Set3 | 3 | Bicubic | " in md and "| Set3 | 3 | Model | " in md
    assert f"{ds['mean']['model']['psnr']:.2f}" in md


def test_basicsr_checkpoint_and_no_ema(tmp_path: Path, models, hr_dir: Path, ours: Path) -> None:
    gen, ema = models
    basicsr = tmp_path / "basicsr.pth"
    torch.save({"params_ema": ema.state_dict(), "params": gen.state_dict()}, basicsr)
    a = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), name="a")
    b = _run(tmp_path, "--checkpoint", str(basicsr), "--data", str(hr_dir), name="b")
    c = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), "--no-ema", name="c")
    assert a["datasets"][0]["mean"] == b["datasets"][0]["mean"]
    assert c["datasets"][0]["mean"]["model"] != a["datasets"][0]["mean"]["model"]
    want = np.mean([e["model"]["psnr"] for e in _expected(gen, hr_dir)])
    assert c["datasets"][0]["mean"]["model"]["psnr"] == pytest.approx(want, rel=1e-12)


def test_paired_folders_match_made_lr(tmp_path: Path, hr_dir: Path, ours: Path) -> None:
    lr_dir = tmp_path / "Set3" / "LR"
    lr_dir.mkdir()
    for path in sorted(hr_dir.glob("*.png")):
        hr = modcrop(_read(path).float(), 4)
        lr = (synthesize_lr(hr, 4) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(lr).save(lr_dir / f"{path.stem}x4.png")  # DIV2K-style name
    made = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), name="made")
    given = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), "--lr-data", str(lr_dir), name="given")
    assert given["datasets"][0]["lr_dir"] == str(lr_dir)
    assert given["datasets"][0]["mean"] == made["datasets"][0]["mean"]


def test_bad_inputs_exit_with_a_message(
    tmp_path: Path, hr_dir: Path, ours: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["--checkpoint", str(ours), "--data", str(hr_dir), "--output-dir", str(tmp_path / "o")]
    lr_dir = tmp_path / "LR"
    lr_dir.mkdir()
    for name in ("img0", "img1", "img2"):
        Image.new("RGB", (5, 5)).save(lr_dir / f"{name}.png")
    assert main([*base, "--lr-data", str(lr_dir)]) == 2
    assert "x4 of it is 20x20" in capsys.readouterr().err
    assert main([*base, "--lr-data", str(lr_dir), str(lr_dir)]) == 2
    assert "one folder per --data folder" in capsys.readouterr().err
    assert main([*base, "--scale", "2"]) == 2
    assert "expected a x2 model" in capsys.readouterr().err
    assert main(["--checkpoint", str(ours), "--data", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None, reason="lpips is installed")
def test_lpips_is_skipped_with_a_message(
    tmp_path: Path, hr_dir: Path, ours: Path, capsys: pytest.CaptureFixture
) -> None:
    res = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir))
    assert "LPIPS skipped: the lpips package is not installed" in capsys.readouterr().err
    assert "lpips" not in res["datasets"][0]["mean"]["model"]
    assert "| – |" in (tmp_path / "res" / "results.md").read_text()


def test_lpips_code_path_with_a_stand_in_package(
    tmp_path: Path, hr_dir: Path, ours: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[float, float]] = []

    class FakeLPIPS(torch.nn.Module):  # mean |a - b| of [-1, 1] images, LPIPS's output shape
        def __init__(self, net: str, verbose: bool) -> None:
            super().__init__()
            assert net == "alex"

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            seen.append((float(torch.minimum(a, b).min()), float(torch.maximum(a, b).max())))
            return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)

    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=FakeLPIPS))
    saved = tmp_path / "sr"
    res = _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), "--save-images", str(saved))
    img = res["datasets"][0]["images"][0]
    sr, hr = _read(saved / "Set3" / "img0.png"), modcrop(_read(hr_dir / "img0.png"), 4)
    want = float(2 * (sr - hr)[:, 4:-4, 4:-4].abs().mean())  # on [-1, 1] and with the border cropped
    assert img["model"]["lpips"] == pytest.approx(want, rel=1e-5)
    assert all(lo >= -1 and hi <= 1 for lo, hi in seen) and min(lo for lo, _ in seen) < -0.5
    assert "LPIPS v0.1" in res["lpips"]


def test_dataset_names(tmp_path: Path) -> None:
    assert dataset_name(tmp_path / "Urban100" / "HR") == "Urban100"
    assert dataset_name(tmp_path / "DIV2K_valid_HR") == "DIV2K_valid_HR"


def test_same_folder_twice_gets_distinct_names(tmp_path: Path, hr_dir: Path, ours: Path) -> None:
    res = _run(
        tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir), str(hr_dir), "--save-images", str(tmp_path / "s")
    )
    assert [d["name"] for d in res["datasets"]] == ["Set3", "Set3-2"]
    assert res["datasets"][0]["mean"] == res["datasets"][1]["mean"]
    assert len(list((tmp_path / "s" / "Set3-2").glob("*.png"))) == 3


def test_a_broken_image_is_named_in_one_line(tmp_path: Path, hr_dir: Path, ours: Path) -> None:
    """Through the real command line: exit 2, one error line naming the file, no traceback."""
    broken = hr_dir / "img1.png"
    broken.write_text("this is not a PNG")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "gramgan.evaluate", "--checkpoint", str(ours), "--data", str(hr_dir)]
    run = subprocess.run(
        [*cmd, "--output-dir", str(out), "--device", "cpu", "--no-lpips"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(broken) in errors[0] and "cannot read image" in errors[0]
    assert not out.exists()


def test_results_are_never_overwritten_unless_asked(
    tmp_path: Path, hr_dir: Path, ours: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "res"
    base = ["--checkpoint", str(ours), "--data", str(hr_dir), "--output-dir", str(out), "--device", "cpu"]
    assert main(base) == 0
    first = {p.name: p.read_text() for p in out.iterdir()}
    (out / "results.md").write_text("my notes\n")  # a result the user edited
    assert main(base) == 0  # written beside
    assert "kept it (--overwrite replaces it)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["results-2.json", "results-2.md", "results.json", "results.md"]
    assert (out / "results.md").read_text() == "my notes\n"
    assert (out / "results.json").read_text() == first["results.json"]
    assert (out / "results-2.md").read_text() == first["results.md"]
    (out / "results-2.md").unlink()  # a pair is taken when either of its files exists
    assert main(base) == 0
    assert (out / "results-3.md").exists() and not (out / "results-2.md").exists()
    assert main([*base, "--overwrite"]) == 0  # asked: replaced in place
    assert (out / "results.md").read_text() == first["results.md"]
    assert not (out / "results-4.md").exists()


def test_results_get_the_umask_permissions(tmp_path: Path, hr_dir: Path, ours: Path) -> None:
    old = os.umask(0o022)
    try:
        _run(tmp_path, "--checkpoint", str(ours), "--data", str(hr_dir))
    finally:
        os.umask(old)
    for name in ("results.md", "results.json"):
        assert (tmp_path / "res" / name).stat().st_mode & 0o777 == 0o644


def test_saved_images_are_not_replaced_unless_asked(
    tmp_path: Path, hr_dir: Path, ours: Path, capsys: pytest.CaptureFixture
) -> None:
    saved = tmp_path / "sr"
    base = ["--checkpoint", str(ours), "--data", str(hr_dir), "--save-images", str(saved), "--device", "cpu"]
    assert main([*base, "--output-dir", str(tmp_path / "a")]) == 0
    (saved / "Set3" / "img0.png").write_bytes(b"an image from another model")
    assert main([*base, "--output-dir", str(tmp_path / "b")]) == 2
    assert "already holds SR images" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before any work
    assert (saved / "Set3" / "img0.png").read_bytes() == b"an image from another model"
    assert main([*base, "--output-dir", str(tmp_path / "b"), "--overwrite"]) == 0
    assert (saved / "Set3" / "img0.png").read_bytes()[:4] == b"\x89PNG"
