"""``python -m gramgan.train`` end to end on what a new user hits (in-process, gramgan.train.__main__.main):
broken images, truncated and finished runs, file permissions, overrides anywhere, exit codes."""

from __future__ import annotations

import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from gramgan.train.__main__ import main
from gramgan.train.checkpoint import list_checkpoints

PSNR_RUN = ["train.stage=psnr", "train.total_iters=4", "train.save_every=2", "train.keep_checkpoints=5"]


def _folder_with_a_broken_image(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    (folder / "notes.png").write_text("a text file, renamed\n")
    return folder


def test_a_broken_image_stops_the_run_before_training_or_is_skipped_when_asked(tmp_path, tiny, capsys, isolated_vgg):
    photos = _folder_with_a_broken_image(tmp_path / "photos")
    out = tmp_path / "run"
    args = ["--output", str(out), *tiny, *PSNR_RUN, f"data.train_hr={photos}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(photos / "notes.png") in err and "not a readable image" in err and "data.skip_unreadable" in err
    assert not (out / "checkpoints").exists() and not (out / "log.jsonl").exists()  # nothing trained

    assert main([*args, "data.skip_unreadable=true"]) == 0
    printed = capsys.readouterr().out
    assert f"skipping {photos / 'notes.png'}: not a readable image" in printed
    assert "1 of 3 image files of data.train_hr skipped" in printed
    assert [it for it, _ in list_checkpoints(out / "checkpoints")] == [2, 4]


def test_missing_data_folder_and_bad_usage_exit_2(tmp_path, tiny, capsys, isolated_vgg):
    assert main(["--output", str(tmp_path / "run"), *tiny, *PSNR_RUN, f"data.train_hr={tmp_path / 'nowhere'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data: image folder not found") and str(tmp_path / "nowhere") in err
    (tmp_path / "g.pth").write_text("not weights")
    assert main(["--output", str(tmp_path / "run"), *tiny, *PSNR_RUN, f"model.pretrained={tmp_path / 'g.pth'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: model.pretrained={tmp_path / 'g.pth'}: ") and "Traceback" not in err
    with pytest.raises(SystemExit) as usage:
        main(["--no-such-option"])
    assert usage.value.code == 2


def test_overrides_stand_on_both_sides_of_an_option(tmp_path, capsys):
    assert main(["train.batch_size=3", "--output", str(tmp_path), "train.seed=5", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "batch_size: 3" in printed and "seed: 5" in printed


def test_files_get_the_permissions_of_the_umask(finished_run):
    samples = next((finished_run / "samples").rglob("*.png"))
    for path in (finished_run / "checkpoints" / "iter_00000004.pt", finished_run / "metrics.json",
                 finished_run / "generator.pth", finished_run / "config.yaml", samples):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # 0666 & ~022, not mkstemp's 0600


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resuming_a_finished_run_changes_nothing(finished_run, capsys):
    before = _snapshot(finished_run)
    assert main(["--output", str(finished_run), "--resume"]) == 0
    assert "is complete at 4 iterations (train.total_iters=4)" in capsys.readouterr().out
    assert _snapshot(finished_run) == before


def test_a_run_killed_before_its_final_files_writes_them_on_resume(finished_run, tmp_path, capsys):
    """Killed after the last checkpoint but before generator.pth / metrics.json: resuming trains no
    further and writes them, rather than calling the run complete without its weights."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "generator.pth").unlink()
    (run / "metrics.json").unlink()
    assert main(["--output", str(run), "--resume"]) == 0
    assert "is complete" not in capsys.readouterr().out
    assert (run / "generator.pth").is_file() and (run / "metrics.json").is_file()
    assert [it for it, _ in list_checkpoints(run / "checkpoints")][-1] == 4


def test_resume_skips_a_truncated_newest_checkpoint_and_names_a_bad_one(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    newest = run / "checkpoints" / "iter_00000004.pt"
    newest.write_bytes(newest.read_bytes()[:5000])

    assert main(["--output", str(run), "--resume", "train.total_iters=6"]) == 0
    captured = capsys.readouterr()
    assert f"WARNING: cannot load checkpoint {newest}" in captured.err
    assert f"resumed from {run / 'checkpoints' / 'iter_00000002.pt'} at iteration 2" in captured.out
    assert [it for it, _ in list_checkpoints(run / "checkpoints")][-1] == 6

    (run / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["--resume", str(run / "bad.pt"), "--output", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'bad.pt'} is not a checkpoint" in err
