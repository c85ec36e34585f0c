"""Configuration: defaults = the paper's (docs/training.md), presets, overrides, errors (gramgan.train.config)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from gramgan.configs import available_presets
from gramgan.losses import GramGANLossConfig
from gramgan.train.config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    diff_configs,
    load_config,
)


def test_defaults_are_the_paper_settings():
    cfg = TrainConfig()
    assert cfg.model.arch() == {
        "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64, "num_block": 23, "num_grow_ch": 32,
    }
    assert (cfg.train.batch_size, cfg.data.hr_crop, cfg.train.total_iters) == (8, 192, 600_000)
    assert cfg.train.adam_betas == [0.9, 0.999] and cfg.train.ema_decay == 0.999
    s = cfg.schedule
    assert (s.base_lr, s.min_lr, s.warmup_iters, s.cycle_iters) == (1e-4, 1e-7, 2000, [200_000])
    assert (cfg.data.hflip, cfg.data.vflip, cfg.data.rot90) == (True, True, True)
    assert cfg.train.stage == "gan" and cfg.loss.perceptual_optional is False
    # The loss section holds the losses' own config, its keys flat in YAML beside our VGG keys.
    assert type(cfg.loss.terms) is GramGANLossConfig and cfg.loss.terms == GramGANLossConfig()
    flat = config_to_dict(cfg)["loss"]
    assert flat["texture_weight"] == 1e4 and flat["vgg_weights"] is None and "terms" not in flat
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_paper_preset_is_the_papers_setting_to_the_letter():
    paper = load_config(preset="paper")
    assert config_to_dict(paper) == config_to_dict(dataclasses.replace(TrainConfig(), name="paper"))


def test_every_preset_loads_and_demo_is_the_default():
    names = available_presets()
    assert {"demo", "paper", "paper_psnr"} <= set(names)
    for name in names:
        load_config(preset=name)
    demo = load_config()
    assert demo.name == "demo" and demo.loss.perceptual_optional and demo.loss.vgg_download is False
    assert demo.train.stage == "gan" and 0 < demo.train.psnr_iters < demo.train.total_iters
    assert demo.data.train_hr is None  # the built-in samples
    assert load_config(preset="paper_psnr").train.stage == "psnr"


def test_overrides_are_typed_yaml_values():
    cfg = load_config(
        preset="paper",
        overrides=[
            "train.batch_size=4",
            "loss.texture_weight=1.0",
            "schedule.base_lr=2e-4",  # YAML 1.1 reads this as a string: still a float here
            "schedule.cycle_iters=[10000, 20000]",
            "model.pretrained=/x/y.pth",
            "data.val_crop=null",
            "loss.disc_taps=[3, 7]",
        ],
    )
    assert cfg.train.batch_size == 4 and cfg.loss.terms.texture_weight == 1.0 and cfg.schedule.base_lr == 2e-4
    assert cfg.schedule.cycle_iters == [10000, 20000] and cfg.model.pretrained == "/x/y.pth"
    assert cfg.data.val_crop is None and cfg.loss.terms.disc_taps == (3, 7)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batchsize=4", "did you mean 'train.batch_size'"),
        ("train.batch_size=four", "train.batch_size: expected an integer"),
        ("train.progress=3", "expected true/false"),
        ("train.stage=finetune", "train.stage must be one of"),
        ("data.hr_crop=50", "multiple of model.scale"),
        ("data.hr_crop=48", "multiple of 32 and >= 64"),
        ("loss.texture_scope=everywhere", "texture_scope"),
        ("model=3", "expected a section"),
        ("nonsense", "section.key=value"),
        ("train.precision=fp16", "train.precision"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(preset="paper", overrides=[override])


def test_yaml_round_trip_and_file_errors(tmp_path):
    cfg = load_config(overrides=["train.total_iters=7"])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    again = load_config(path)
    assert config_to_dict(again) == config_to_dict(cfg)
    assert diff_configs(config_to_dict(cfg), config_to_dict(load_config())) == ["train.total_iters"]
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="unknown preset 'papr'"):
        load_config(preset="papr")
    assert config_from_dict({}).name == "gramgan"
