"""A checkpoint option given a file that is not a checkpoint: ``upscale --checkpoint``, ``evaluate
--checkpoint`` and ``train --resume`` each say so in one line (the file and what was expected) and exit
2, for a text file, JSON and a PNG; never torch's advice to load with ``weights_only=False``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from PIL import Image


def write_not_checkpoint(folder: Path, kind: str) -> Path:
    if kind == "text":
        path = folder / "notes.txt"
        path.write_text("e - remember to try a larger patch size\n")
    elif kind == "json":
        path = folder / "settings.json"
        path.write_text('{"scale": 4, "model": "RRDB_ESRGAN_x4.pth"}\n')
    else:
        path = folder / "photo.png"
        Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def run_command(command: str, checkpoint: Path, tmp_path: Path) -> int:
    """The command's ``main`` with ``checkpoint`` where a checkpoint belongs; returns its exit status."""
    image = tmp_path / "input.png"
    Image.new("RGB", (16, 16)).save(image)
    if command == "upscale":
        return importlib.import_module("gramgan.upscale").main(
            ["--checkpoint", str(checkpoint), str(image), "-o", str(tmp_path / "out"), "--device", "cpu"]
        )
    if command == "evaluate":
        return importlib.import_module("gramgan.evaluate").main(
            ["--checkpoint", str(checkpoint), "--data", str(tmp_path), "--device", "cpu", "--no-lpips"]
        )
    return importlib.import_module("gramgan.train.__main__").main(["--resume", str(checkpoint)])


@pytest.mark.parametrize("kind", ["text", "json", "png"])
@pytest.mark.parametrize("command", ["upscale", "evaluate", "train"])
def test_a_file_that_is_not_a_checkpoint_is_one_line_and_exit_2(command, kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # train resolves its output folder from here; nothing is written
    checkpoint = write_not_checkpoint(tmp_path, kind)
    status = run_command(command, checkpoint, tmp_path)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    assert f"{checkpoint} is not a checkpoint: expected a " in err
    assert ("training checkpoint" if command == "train" else "generator checkpoint") in err
    for torch_words in ("weights_only", "_use_new_zipfile_serialization", "Traceback", "pickle"):
        assert torch_words not in err


@pytest.mark.parametrize("zipfile", [True, False])
def test_files_torch_save_wrote_still_load(zipfile, tmp_path):
    """Both of torch.save's formats pass the check (the legacy one without mmap, which it cannot do)."""
    load_checkpoint_file = importlib.import_module("gramgan.checkpoint_file").load_checkpoint_file
    path = tmp_path / "state.pt"
    torch.save({"w": torch.arange(3.0)}, path, _use_new_zipfile_serialization=zipfile)
    state = load_checkpoint_file(path, "a test state", mmap=True)
    assert torch.equal(state["w"], torch.arange(3.0))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint_file(tmp_path / "missing.pt", "a test state")
