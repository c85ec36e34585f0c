"""Validation pictures (labelled bicubic | SR | HR) and the image check run before training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.train.data_check import DataError, checked_images, image_problem
from gramgan.train.validation import comparison_strip, labelled_comparison


def test_comparison_pictures_carry_a_label_band_below_the_panels():
    torch.manual_seed(0)
    panels = [torch.rand(3, 40, 48) for _ in range(3)]
    strip = comparison_strip(panels)
    picture = np.asarray(labelled_comparison(panels, ["bicubic\n24.31 dB", "SR\n25.10 dB", "HR\n"]))
    assert picture.shape[1] == strip.shape[1] and picture.shape[0] > strip.shape[0]
    assert np.array_equal(picture[: strip.shape[0]], strip)  # the images themselves are untouched
    band = picture[strip.shape[0] :]
    assert (band < 128).any() and (band == 255).mean() > 0.5  # dark text on white
    unlabelled = np.asarray(labelled_comparison(panels, ["\n", "\n", "\n"]))
    assert unlabelled.shape == picture.shape and not np.array_equal(unlabelled, picture)


def test_image_check_names_what_is_wrong(tmp_path):
    rng = np.random.default_rng(1)
    good = tmp_path / "good.png"
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-200])  # the header opens; verify() finds the damage
    text = tmp_path / "text.png"
    text.write_text("not an image")
    assert image_problem(good) is None and image_problem(good, min_size=70) is None
    assert "smaller than the 71-pixel training crop" in image_problem(good, min_size=71)
    assert image_problem(truncated).startswith("not a readable image")
    assert image_problem(text).startswith("not a readable image")
    with pytest.raises(DataError, match=r"data.train_hr: .*truncated.png: not a readable image"):
        checked_images([good, truncated], skip=False, key="data.train_hr")
    said: list[str] = []
    assert checked_images([good, truncated, text], skip=True, key="k", say=said.append) == [good]
    assert len(said) == 3 and said[-1] == "WARNING: 2 of 3 image files of k skipped (data.skip_unreadable)"
    with pytest.raises(DataError, match="none of the 1 image files can be used"):
        checked_images([text], skip=True, key="k", say=said.append)


def test_validation_folders_are_checked_too(tmp_path):
    from gramgan.train.builders import build_val_dataset
    from gramgan.train.config import DataConfig

    rng = np.random.default_rng(2)
    for folder, size in (("hr", (80, 72)), ("lr", (20, 18))):
        (tmp_path / folder).mkdir()
        for name in ("a", "b"):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / folder / f"{name}.png")
        (tmp_path / folder / "notes.png").write_text("text")
    hr, lr = str(tmp_path / "hr"), str(tmp_path / "lr")
    with pytest.raises(DataError, match=r"data.val_hr: .*notes.png"):
        build_val_dataset(DataConfig(val_hr=hr), scale=4)
    said: list[str] = []
    assert len(build_val_dataset(DataConfig(val_hr=hr, skip_unreadable=True), scale=4, say=said.append)) == 2
    paired = build_val_dataset(DataConfig(val_hr=hr, val_lr=lr, skip_unreadable=True), scale=4, say=said.append)
    assert len(paired) == 2 and paired[1]["lr"].shape == (3, 20, 18)
    assert said[-1] == "WARNING: 2 of 6 image files of data.val_hr/val_lr skipped (data.skip_unreadable)"


def _record_forward_precision(model: torch.nn.Module) -> list[tuple[bool, torch.dtype]]:
    """Each forward of ``model`` from now on appends (autocast on for the CPU?, output dtype)."""
    seen: list[tuple[bool, torch.dtype]] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append((torch.is_autocast_enabled("cpu"), out.dtype)))
    return seen


def test_validation_runs_the_generator_in_float32_inside_autocast():
    from gramgan.train.validation import validate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(3, 3, 3, padding=1))
    hr = torch.rand(3, 16, 16)
    dataset = [{"lr": torch.nn.functional.avg_pool2d(hr[None], 2)[0], "hr": hr, "name": "a"}]
    seen = _record_forward_precision(model)
    plain = validate(model, dataset, torch.device("cpu"), scale=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = validate(model, dataset, torch.device("cpu"), scale=2)
    assert seen == [(False, torch.float32)] * 2
    assert inside == plain


def test_a_bf16_run_reports_float32_validation(tmp_path, tiny):
    """The trainer validates the EMA generator in float32 when it trains in bf16: the numbers it reports
    are those of the same weights validated on their own, so they do not depend on train.precision."""
    from gramgan.train.config import load_config
    from gramgan.train.loop import Trainer
    from gramgan.train.validation import validate

    overrides = [*tiny, "train.device=cpu", "train.stage=psnr", "train.total_iters=1", "train.precision=bf16"]
    trainer = Trainer(load_config(preset="demo", overrides=overrides), tmp_path / "run", say=lambda _: None)
    assert trainer.run.fast.precision == "bf16"
    with torch.no_grad():  # lift the untrained output (near 0, clamped) to mid-grey, where bf16 rounding would show
        trainer.run.ema.module.conv_last.bias.add_(0.5)
    seen = _record_forward_precision(trainer.run.ema.module)
    result = trainer.fit()
    assert seen and all(precision == (False, torch.float32) for precision in seen)
    alone = validate(result.generator_ema, trainer.run.val_set, torch.device("cpu"), scale=4)
    assert result.metrics == alone
