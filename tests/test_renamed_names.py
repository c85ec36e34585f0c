"""The loss's ``num_warps`` is now ``num_affine_warps`` (Triton's kernels have a ``num_warps`` of their own):
the old keyword and the old config key keep working, with a warning, and give what the new name gives."""

from __future__ import annotations

import pytest
import torch

from gramgan.losses import GramGANLossConfig, build_candidates, texture_loss
from gramgan.losses.candidates import build_global_candidates, build_local_candidates, random_affine_thetas
from gramgan.train.config import ConfigError, load_config
from gramgan.train.renamed_keys import with_current_keys

HR = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
SR = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))

CALLS = {  # each public function that took num_warps=, called with a non-default J of 2
    "random_affine_thetas": lambda **j: random_affine_thetas(1, magnitude=0.1, generator=_seeded(), **j),
    "build_local_candidates": lambda **j: build_local_candidates(HR, generator=_seeded(), **j),
    "build_global_candidates": lambda **j: torch.cat(build_global_candidates(HR, generator=_seeded(), **j)[3:]),
    "build_candidates": lambda **j: build_candidates(HR, "local", generator=_seeded(), **j),
    "texture_loss": lambda **j: texture_loss(SR, HR, generator=_seeded(), backend="reference", **j),
}


def _seeded() -> torch.Generator:
    return torch.Generator().manual_seed(7)


@pytest.mark.parametrize("name", CALLS)
def test_old_keyword_warns_and_means_the_new_one(name):
    call = CALLS[name]
    expected = call(num_affine_warps=2)
    with pytest.warns(DeprecationWarning, match=r"num_warps= is deprecated, use num_affine_warps="):
        got = call(num_warps=2)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    if name != "texture_loss":  # J reached the function: two warps, not one
        assert got.shape != call(num_affine_warps=1).shape
    with pytest.raises(TypeError, match="give only num_affine_warps="):
        call(num_warps=2, num_affine_warps=2)


def test_loss_config_takes_the_old_keyword():
    with pytest.warns(DeprecationWarning, match="num_warps= is deprecated"):
        cfg = GramGANLossConfig(num_warps=2, texture_weight=3.0)
    assert cfg == GramGANLossConfig(num_affine_warps=2, texture_weight=3.0)


def test_old_config_key_in_an_override_warns_and_sets_the_new_one(tmp_path):
    with pytest.warns(FutureWarning, match=r"'loss.num_warps' is deprecated, use 'loss.num_affine_warps'"):
        cfg = load_config(preset="demo", overrides=["loss.num_warps=2"])
    assert cfg.loss.terms.num_affine_warps == 2
    path = tmp_path / "new.yaml"
    path.write_text("loss:\n  num_affine_warps: 3\n")  # the file has the new name: the old-name override wins
    with pytest.warns(FutureWarning, match="'loss.num_warps' is deprecated"):
        assert load_config(path, overrides=["loss.num_warps=1"]).loss.terms.num_affine_warps == 1


def test_old_config_key_in_a_file_or_checkpoint_warns_and_sets_the_new_one(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("loss:\n  num_warps: 3\n  texture_weight: 2.0\n")
    with pytest.warns(FutureWarning, match="'loss.num_warps' is deprecated"):
        assert load_config(path).loss.terms.num_affine_warps == 3
    saved = {"loss": {"num_warps": 5}}  # a checkpoint's config from before the rename, resumed with the new key
    with pytest.warns(FutureWarning, match="'loss.num_warps' is deprecated"):
        assert load_config(base=saved, overrides=["loss.num_affine_warps=6"]).loss.terms.num_affine_warps == 6
    assert saved == {"loss": {"num_warps": 5}}  # the caller's dict is left as it was


def test_both_config_names_at_once_are_an_error():
    with pytest.raises(ConfigError, match="'loss.num_warps' and 'loss.num_affine_warps' are one setting"):
        with_current_keys({"loss": {"num_warps": 2, "num_affine_warps": 4}})


def test_new_names_raise_no_warning(tmp_path, recwarn):
    load_config(preset="demo", overrides=["loss.num_affine_warps=2"])
    GramGANLossConfig(num_affine_warps=2)
    build_local_candidates(HR, num_affine_warps=1)
    assert not [w for w in recwarn if issubclass(w.category, (DeprecationWarning, FutureWarning))]
