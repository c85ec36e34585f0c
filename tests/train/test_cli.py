"""``python -m gramgan.train`` argument handling (in-process: gramgan.train.__main__.main)."""

from __future__ import annotations

import yaml

from gramgan.train.__main__ import main


def test_print_config_resolves_preset_and_overrides(capsys):
    assert main(["--preset", "paper", "train.batch_size=2", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["name"] == "paper" and printed["train"]["batch_size"] == 2
    assert printed["schedule"]["cycle_iters"] == [200000]


def test_default_is_the_demo(capsys):
    assert main(["--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["name"] == "demo"


def test_errors_are_one_line_and_exit_2(capsys, tmp_path):
    assert main(["train.batchsize=3", "--print-config"]) == 2
    assert "did you mean 'train.batch_size'" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "none.pt"), "--print-config"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_resume_auto_without_checkpoints_starts_fresh(capsys, tmp_path):
    assert main(["--output", str(tmp_path), "--resume", "train.batch_size=2", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "no checkpoint in" in out and "batch_size: 2" in out
