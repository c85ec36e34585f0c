"""Shared by the BasicSR tests: the shipped example options shrunk to tiny networks and crops."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY_G = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def _tiny_options(experiments: Path) -> dict:
    """The example options with tiny networks, 64 px crops, 3 iterations, a log line and a save at each."""
    from gramgan.integrations.basicsr import example_options_path  # imports BasicSR: only when used

    opt = yaml.safe_load(example_options_path().read_text(encoding="utf-8"))
    opt["network_g"].update(TINY_G)
    opt["network_d"].update(num_feat=4, input_size=64)
    opt["datasets"]["train"].update(gt_size=64, batch_size_per_gpu=2, repeat=1)
    opt["datasets"]["val"]["crop"] = 64
    opt["train"]["total_iter"] = 3
    opt["logger"].update(print_freq=1, save_checkpoint_freq=3)
    opt["val"]["val_freq"] = 3
    opt["path"]["experiments_root"] = str(experiments)
    return opt


@pytest.fixture(scope="session")
def tiny_options():
    """``tiny_options(experiments_folder) -> dict``: see :func:`_tiny_options`."""
    return _tiny_options
