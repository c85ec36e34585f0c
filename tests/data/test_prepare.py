"""``python -m gramgan.data.prepare``: the crop rule, the LR, re-runs, atomicity, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.datasets import ImageReadError, read_image, synthesize_lr
from gramgan.data.prepare import crop_boxes, main, prepare


def _image(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    Image.fromarray(_image(70, 100, 0)).save(folder / "0001.png")  # 2 x 3 crops of 32
    Image.fromarray(_image(32, 40, 1)).save(folder / "0002.png")  # 1 x 1
    Image.fromarray(_image(20, 90, 2)).save(folder / "0003.png")  # too small: 0
    return folder


def test_crop_rule_is_non_overlapping_stride_crop_remainder_dropped():
    assert crop_boxes(70, 100, 32) == [(0, 0), (0, 32), (0, 64), (32, 0), (32, 32), (32, 64)]
    assert crop_boxes(1356, 2040, 192) == [(192 * i, 192 * j) for i in range(7) for j in range(10)]
    assert crop_boxes(191, 500, 192) == []


def test_prepare_writes_crops_and_their_bicubic_lr(src, tmp_path):
    dst = tmp_path / "out"
    result = prepare(src, dst, crop=32, scale=4, progress=False)
    assert (result.images, result.crops, result.written, result.skipped) == (3, 7, 7, 0)
    names = sorted(p.name for p in (dst / "hr").iterdir())
    assert names == [f"0001_s{k:03d}.png" for k in range(1, 7)] + ["0002_s001.png"]
    assert sorted(p.name for p in (dst / "lr_x4").iterdir()) == names
    original = read_image(src / "0001.png")
    hr5 = read_image(dst / "hr" / "0001_s005.png")  # row 1, column 1
    assert torch.equal(hr5, original[:, 32:64, 32:64])
    lr5 = read_image(dst / "lr_x4" / "0001_s005.png")
    expected = torch.round(synthesize_lr(hr5.float() / 255, 4) * 255).to(torch.uint8)
    assert torch.equal(lr5, expected)
    assert not [p for p in dst.rglob("*") if "tmp" in p.name]
    assert '"crops": 7' in (dst / "prepare.json").read_text()


def test_rerun_skips_complete_crops_and_repairs_missing_ones(src, tmp_path):
    dst = tmp_path / "out"
    prepare(src, dst, crop=32, scale=4, progress=False)
    stamp = (dst / "hr" / "0001_s001.png").stat().st_mtime_ns
    (dst / "lr_x4" / "0001_s003.png").unlink()
    (dst / "hr" / "0002_s001.png").write_bytes(b"truncated")
    again = prepare(src, dst, crop=32, scale=4, progress=False)
    assert (again.crops, again.written, again.skipped) == (7, 2, 5)
    assert (dst / "hr" / "0001_s001.png").stat().st_mtime_ns == stamp
    assert read_image(dst / "hr" / "0002_s001.png").shape == (3, 32, 32)


def test_corrupt_source_names_the_file(src, tmp_path):
    (src / "0004.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match="0004.png"):
        prepare(src, tmp_path / "out", crop=32, scale=4, progress=False)


def test_cli_reports_the_count_and_uses_workers(src, tmp_path, capsys):
    assert main([str(src), str(tmp_path / "out"), "--crop", "32", "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "7 crops of 32x32 from 3 images (7 written, 0 already complete)" in out
    assert main([str(tmp_path / "missing"), str(tmp_path / "o2"), "--no-progress"]) == 1
    assert "missing" in capsys.readouterr().err
