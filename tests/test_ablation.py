"""python -m gramgan.ablation end to end on a toy setting (two variants, a few iterations, a tiny RRDB),
plus the plan's override rules and the Gram-distance score."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from gramgan.ablation import load_plan
from gramgan.ablation.__main__ import main
from gramgan.ablation.plan import AblationError
from gramgan.ablation.scoring import gram_distance

pytestmark = pytest.mark.filterwarnings("ignore:gramgan.ops:RuntimeWarning")

TOY = {
    "name": "toy",
    "base": {
        "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "discriminator": {"num_feat": 8},
        "data": {"hr_crop": 64, "repeat": 1, "num_workers": 0, "val_crop": 64},
        "loss": {"perceptual_optional": True, "vgg_download": False},
        "schedule": {"warmup_iters": 0, "cycle_iters": [10]},
        "train": {
            "batch_size": 2,
            "val_every": 0,
            "save_every": 2,
            "keep_checkpoints": 1,
            "progress": False,
            "val_images_saved": 0,
            "log_every": 2,
            "num_threads": 1,
        },
    },
    "psnr": {"train": {"total_iters": 4}, "schedule": {"base_lr": 1.0e-3}},
    "gan": {"train": {"total_iters": 3}},
    "variants": [
        {"name": "psnr", "stage": "psnr", "note": "L1 only"},
        {"name": "gramgan", "note": "all terms", "overrides": {"loss.texture_weight": 1.0e4}},
    ],
    "eval": {"test_sets": {"held-out": None}, "picture_crop": 32, "picture_zoom": 1},
}


@pytest.fixture
def toy_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRAMGAN_OFFLINE", "1")
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY))
    return path


def _run(config: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(config), "--output", str(out), *extra])


def _mtimes(out: Path) -> dict[str, int]:
    files = [*out.glob("*/generator.pth"), *out.glob("*/checkpoints/*.pt")]
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files}


def test_ablation_end_to_end_rerun_and_only(toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    # --only psnr: the shared generator alone; the table says gramgan has not run.
    assert _run(toy_config, out, "--only", "psnr") == 0
    first = json.loads((out / "ablation.json").read_text())
    assert [v["name"] for v in first["variants"]] == ["psnr"] and first["not_run"] == ["gramgan"]
    psnr_mtime = (out / "psnr" / "generator.pth").stat().st_mtime_ns

    # The whole ablation: psnr reused (not retrained), gramgan trained from it.
    capsys.readouterr()
    assert _run(toy_config, out) == 0
    log = capsys.readouterr().out
    assert "psnr: finished earlier" in log and "gramgan: training from psnr" in log
    assert (out / "psnr" / "generator.pth").stat().st_mtime_ns == psnr_mtime
    results = json.loads((out / "ablation.json").read_text())
    assert [v["name"] for v in results["variants"]] == ["psnr", "gramgan"] and results["not_run"] == []
    gramgan = results["variants"][1]
    assert gramgan["iterations"] == 3 and gramgan["status"] == "trained" and gramgan["train_time_s"] > 0
    assert gramgan["terms"] == "L1 + VGG(off: no weights) + texture(local) + D-perceptual + RaGAN(masked)"
    assert "OFF in gramgan" in results["perceptual"]
    (test_set,) = results["test_sets"]
    assert test_set["num_images"] == 1 and test_set["pictures"] == ["pictures/held-out/chelsea.png"]

    # The table has one row per variant plus bicubic, with the JSON's numbers.
    table = (out / "ablation.md").read_text()
    for name, scores in [("bicubic", results["bicubic"]["scores"])] + [
        (v["name"], v["scores"]) for v in results["variants"]
    ]:
        mean = scores["held-out"]["mean"]
        assert set(mean) == {"psnr", "ssim", "gram"}  # no LPIPS offline
        row = re.search(rf"^\| {re.escape(name)} \|.*$", table, re.M)
        assert row and f"{mean['psnr']:.2f}" in row.group(0) and f"{mean['gram'] * 1e3:.3f}" in row.group(0)
    assert results["bicubic"]["scores"]["held-out"]["mean"]["psnr"] > 20  # bicubic is a sane baseline

    # One picture: bicubic | psnr | gramgan | HR, crops of 32 px with 4 px gaps under a label band.
    picture = Image.open(out / test_set["pictures"][0])
    assert picture.size == (4 * (32 + 4) + 4, 32 + 30 + 4)
    assert (out / "gramgan" / "sr" / "held-out" / "chelsea.png").is_file()

    # A re-run trains nothing and rewrites the same numbers.
    before = _mtimes(out)
    assert _run(toy_config, out) == 0
    assert _mtimes(out) == before
    again = json.loads((out / "ablation.json").read_text())
    assert [v["scores"] for v in again["variants"]] == [v["scores"] for v in results["variants"]]
    assert all(v["status"] == "reused" for v in again["variants"])

    # An interrupted variant (state "running", no final weights) resumes from its newest checkpoint.
    state_path = out / "gramgan" / "ablation_variant.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "status": "running"}))
    (out / "gramgan" / "generator.pth").unlink()
    psnr_sr = out / "psnr" / "sr" / "held-out" / "chelsea.png"
    psnr_sr.unlink()  # scores whose SR image is gone are computed again
    capsys.readouterr()
    assert _run(toy_config, out, "--only", "gramgan") == 0
    assert psnr_sr.is_file()
    assert "gramgan: resuming from iter_00000003.pt" in capsys.readouterr().out
    assert (out / "gramgan" / "generator.pth").is_file()
    assert json.loads(state_path.read_text())["status"] == "finished"

    # Another configuration in the same folder is refused, naming the key.
    assert _run(toy_config, out, "gan.train.total_iters=5") == 2
    assert "differs in: train.total_iters" in capsys.readouterr().err
    # ... and a finished variant of another configuration is left out of the table, saying why.
    assert _run(toy_config, out, "--only", "psnr", "gan.train.total_iters=5") == 0
    assert "gramgan: left out of the table" in capsys.readouterr().out
    assert json.loads((out / "ablation.json").read_text())["not_run"] == ["gramgan"]


def test_overrides_reach_the_right_variants(toy_config: Path) -> None:
    plan = load_plan(
        path=toy_config, overrides=["gan.train.total_iters=7", "model.num_feat=12", "eval.picture_crop=48"]
    )
    psnr = plan.train_config(plan.variant("psnr"))
    gan = plan.train_config(plan.variant("gramgan"), psnr_generator="g.pth")
    assert (psnr.train.total_iters, gan.train.total_iters) == (4, 7)
    assert psnr.model.num_feat == gan.model.num_feat == 12
    assert (psnr.train.stage, gan.train.stage, gan.model.pretrained) == ("psnr", "gan", "g.pth")
    assert gan.loss.terms.texture_weight == 1.0e4 and plan.eval.picture_crop == 48


def test_shipped_presets_build_every_variant() -> None:
    for preset in ("tiny", "paper"):
        plan = load_plan(preset=preset)
        names = [v.name for v in plan.variants]
        assert names == ["psnr", "esrgan", "+texture", "+dperc", "+mask", "gramgan", "gramgan-global"]
        configs = {v.name: plan.train_config(v, psnr_generator="g.pth") for v in plan.variants}
        terms = {name: c.loss.terms for name, c in configs.items()}
        assert terms["esrgan"].adversarial_masked is False and terms["+mask"].adversarial_masked
        assert terms["esrgan"].texture_weight == 0 and terms["+texture"].texture_weight > 0
        assert terms["+dperc"].disc_perceptual_weight > 0 and terms["esrgan"].disc_perceptual_weight == 0
        assert terms["gramgan-global"].texture_scope == "global"
        gan_iters = {c.train.total_iters for n, c in configs.items() if n != "psnr"}
        assert len(gan_iters) == 1  # every GAN variant trains as long


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["variants=[]"], "no variants"), (["eval.picture_zoom=0"], "picture_zoom"), (["bogus"], "key=value")],
)
def test_bad_plans_are_refused_with_the_key(toy_config: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(AblationError, match=message):
        load_plan(path=toy_config, overrides=overrides)


def test_unknown_variant_is_an_error(toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(toy_config, tmp_path / "x", "--only", "nope") == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err


def test_gram_distance() -> None:
    hr = torch.rand(3, 16, 16)
    assert gram_distance(hr, hr) == 0.0
    # Constant images: every patch's Gram is v v^T; (0.5)^2 everywhere -> Frobenius norm 3 * 0.25.
    assert gram_distance(torch.full((3, 16, 16), 0.5), torch.zeros(3, 16, 16), k=4, border=2) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same shape"):
        gram_distance(hr, hr[:, :8])


def test_list_shows_each_variants_terms_and_refuses_typos(toy_config: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--config", str(toy_config), "--list", "gan.train.total_iters=9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["psnr", "4", "iterations", "L1"]
    assert lines[1].startswith("gramgan") and " 9 iterations" in lines[1] and "texture(local)" in lines[1]
    assert main(["--config", str(toy_config), "--list", "model.nufeat=3"]) == 2
    assert "did you mean 'model.num_feat'" in capsys.readouterr().err
