"""``python -m gramgan.data.prepare``: the crop rule, the LR, re-runs, atomicity, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.lr import synthesize_lr
from gramgan.data.prepare import crop_boxes, main, prepare
from gramgan.images import ImageReadError
from gramgan.images import read_rgb8 as read_image


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
    assert main([str(tmp_path / "missing"), str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "missing" in capsys.readouterr().err


def _run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "gramgan.data.prepare", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_cli_broken_image_one_line_and_nothing_written(src, tmp_path):
    """A text file renamed .png: exit 2, one line naming the file, no traceback, no crop written."""
    (src / "0002b.png").write_text("this is not an image")
    dst = tmp_path / "out"
    done = _run_cli(src, dst, "--crop", "32", "--workers", "0", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "0002b.png" in lines[0] and lines[0].startswith("error: cannot read image")
    assert "Traceback" not in done.stderr
    assert not dst.exists() or not list(dst.rglob("*.png"))


def test_cli_skip_broken_skips_and_counts(src, tmp_path):
    (src / "0002b.png").write_text("this is not an image")
    done = _run_cli(src, tmp_path / "out", "--crop", "32", "--workers", "2", "--skip-broken", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "0002b.png" in done.stderr and "Traceback" not in done.stderr
    assert "7 crops of 32x32 from 3 images" in done.stdout and "1 unreadable images skipped" in done.stdout


def test_truncated_image_is_skipped_in_a_worker_with_skip_broken(src, tmp_path):
    """A valid header with a cut-off body fails only when decoded, inside a worker process."""
    data = (src / "0001.png").read_bytes()
    (src / "0001.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="0001.png"):
        prepare(src, tmp_path / "a", crop=32, scale=4, workers=2, progress=False)
    result = prepare(src, tmp_path / "b", crop=32, scale=4, workers=2, progress=False, skip_broken=True)
    assert [p.name for p in result.broken] == ["0001.png"] and result.crops == 1


def test_cli_usage_and_input_errors_exit_2(tmp_path):
    assert _run_cli(cwd=tmp_path).returncode == 2  # missing arguments (argparse)
    folder = tmp_path / "src"
    folder.mkdir()
    Image.fromarray(_image(32, 32, 0)).save(folder / "a.png")
    done = _run_cli(folder, tmp_path / "out", "--crop", "30", "--scale", "4", cwd=tmp_path)
    assert done.returncode == 2 and "multiple of the scale" in done.stderr


def test_prepared_files_follow_the_umask(src, tmp_path):
    old = os.umask(0o022)
    try:
        prepare(src, tmp_path / "out", crop=32, scale=4, progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o644}
