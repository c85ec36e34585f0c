"""``gramgan.models``'s old path to the perceptual presets: deprecated, and unused by the package itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gramgan.models
from gramgan.losses.perceptual import VGG19_LAYER_PRESETS


def test_old_preset_path_warns_and_still_works():
    with pytest.warns(DeprecationWarning, match="gramgan.losses.perceptual"):
        presets = gramgan.models.VGG19_LAYER_PRESETS
    assert presets is VGG19_LAYER_PRESETS
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        gramgan.models.nothing  # noqa: B018


def test_training_builds_its_loss_without_the_old_path():
    """build_loss (the only user of the shim, once) must import the presets from their real module."""
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "from gramgan.train.builders import _vgg_layers\n"
        "print(_vgg_layers('gramgan'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "conv2_2" in done.stdout
