"""The parts gramgan registers in BasicSR: the texture loss equals the op it wraps, gradient included;
bad options fail with one line naming the key, before BasicSR starts."""

from __future__ import annotations

import pytest
import torch
import yaml

pytest.importorskip("basicsr", reason="BasicSR is not installed (pip install 'gramgan[basicsr]'; CI installs it)")

from basicsr.archs import build_network  # noqa: E402
from basicsr.losses import build_loss  # noqa: E402
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY  # noqa: E402

from gramgan import ops  # noqa: E402
from gramgan.integrations.basicsr import (  # noqa: E402
    GramGANDiscriminator,
    GramGANModel,
    GramGANSampleDataset,
    GramTextureLoss,
    OptionsError,
    example_options_path,
)
from gramgan.integrations.basicsr.__main__ import main  # noqa: E402
from gramgan.losses import build_candidates  # noqa: E402


def test_importing_registers_every_part():
    assert LOSS_REGISTRY.get("GramTextureLoss") is GramTextureLoss
    assert ARCH_REGISTRY.get("GramGANDiscriminator") is GramGANDiscriminator
    assert MODEL_REGISTRY.get("GramGANModel") is GramGANModel
    assert DATASET_REGISTRY.get("GramGANSampleDataset") is GramGANSampleDataset


def test_registered_discriminator_gives_logits_and_taps():
    net_d = build_network({"type": "GramGANDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 64})
    logits, taps = net_d(torch.rand(2, 3, 64, 64), taps=(5, 11))
    assert logits.shape == (2, 1) and [t.shape[1] for t in taps] == [16, 32]


@pytest.mark.parametrize(
    "settings",
    [
        {"scope": "local", "target": "gram", "criterion": "mse", "num_affine_warps": 2},
        {"scope": "global", "target": "pixel", "criterion": "l1", "num_affine_warps": 1, "gt_weight": 0.5},
    ],
    ids=["local-gram-mse", "global-pixel-l1"],
)
def test_registered_texture_loss_equals_the_op_with_gradient(settings):
    loss = build_loss({"type": "GramTextureLoss", "loss_weight": 3.0, "patch_size": 4, **settings})
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 32, 32)
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1).requires_grad_(True)
    sr_ref = sr.detach().clone().requires_grad_(True)

    torch.manual_seed(7)  # the warps are drawn from torch's RNG: the same draw for both
    value = loss(sr, hr)
    value.backward()
    torch.manual_seed(7)
    candidates = build_candidates(hr, settings["scope"], settings["num_affine_warps"], 0.003, 4)
    gt_weight = settings.get("gt_weight", 0.0)
    expected = 3.0 * ops.gram_texture_loss(
        sr_ref,
        candidates,
        k=4,
        scope=settings["scope"],
        gt_weight=gt_weight,
        target=settings["target"],
        criterion=settings["criterion"],
    )
    expected.backward()
    assert float(value.detach()) > 0
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(sr.grad, sr_ref.grad, rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize(
    ("options", "key"),
    [({"scope": "nearby"}, "scope"), ({"patch_size": 0}, "patch_size"), ({"radius": 3}, "radius")],
)
def test_texture_loss_option_errors_name_the_key(options, key):
    with pytest.raises(ValueError, match=rf"GramTextureLoss: texture_opt\.{key}\b"):
        build_loss({"type": "GramTextureLoss", **options})


def _example() -> dict:
    return yaml.safe_load(example_options_path().read_text(encoding="utf-8"))


def _set(opt: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = opt
    for key in parents:
        node = node[key]
    node[last] = value
    return opt


BAD_OPTIONS = [
    ("train.texture_opt.scope", "nearby", "unknown value 'nearby'"),
    ("train.texture_opt.patch_size", 48, "does not fit the crop datasets.train.gt_size=128"),
    ("train.gramgan_opt.mask_mode", "sliding-ish", "mask_mode"),
    ("train.gramgan_opt.disc_taps", [5, 13], "convolutions 1..12"),
    ("train.gramgan_opt.adversarial", 0.1, "unknown key"),
    ("datasets.train.gt_size", 100, "does not fit the crop datasets.train.gt_size=100"),
]


@pytest.mark.parametrize(("key", "value", "says"), BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_command_rejects_bad_options_with_one_line_naming_the_key(tmp_path, capsys, key, value, says):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(_set(_example(), key, value)), encoding="utf-8")
    assert main(["-opt", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "Traceback" not in err, err
    expected_key = "train.texture_opt.patch_size" if key == "datasets.train.gt_size" else key
    assert f"{expected_key}:" in err and says in err, err
    assert not (tmp_path / "experiments").exists()  # BasicSR never started


def test_discriminator_crop_rule_names_gt_size(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(_set(_example(), "datasets.train.gt_size", 80)), encoding="utf-8")
    assert main(["-opt", str(path)]) == 2
    err = capsys.readouterr().err
    assert "datasets.train.gt_size: GramGANDiscriminator needs a crop that is a multiple of 32" in err


def test_model_checks_its_options_before_building_anything():
    opt = _set(_example(), "train.texture_opt.scope", "nearby")
    with pytest.raises(OptionsError, match=r"^train\.texture_opt\.scope: unknown value 'nearby'"):
        GramGANModel({**opt, "is_train": True})


def test_d_only_iterations_train_d_on_the_masked_pair_then_g_steps_log_every_term(tmp_path, tiny_options):
    """``net_d_init_iters``: the first iterations update D alone (on a masked pair made without a G step)."""
    opt = tiny_options(tmp_path)
    opt["train"]["net_d_init_iters"] = 1
    model = GramGANModel({**opt, "is_train": True, "dist": False, "rank": 0, "world_size": 1, "num_gpu": 0})
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 64, 64)
    model.feed_data({"lq": torch.nn.functional.avg_pool2d(hr, 4), "gt": hr})

    def snapshot():
        return [[p.detach().clone() for p in net.parameters()] for net in (model.net_g, model.net_d)]

    def changed(before, after):
        return [any(not torch.equal(a, b) for a, b in zip(x, y)) for x, y in zip(before, after)]

    before = snapshot()
    model.optimize_parameters(1)
    assert set(model.log_dict) == {"l_d", "out_d_real", "out_d_fake"}
    after = snapshot()
    assert changed(before, after) == [False, True]  # D trained, G untouched
    model.optimize_parameters(2)
    assert {"l_g_pix", "l_g_texture", "l_g_dperc", "l_g_gan", "l_d"} <= set(model.log_dict)
    assert changed(after, snapshot()) == [True, True]


def test_example_options_use_the_registered_parts_and_sample_dataset():
    opt = _example()
    assert opt["model_type"] == "GramGANModel" and opt["network_d"]["type"] == "GramGANDiscriminator"
    assert opt["train"]["texture_opt"]["type"] == "GramTextureLoss"
    assert {d["type"] for d in opt["datasets"].values()} == {"GramGANSampleDataset"}
    train = GramGANSampleDataset({**opt["datasets"]["train"], "phase": "train", "scale": 4})
    item = train[0]
    assert item["gt"].shape == (3, 128, 128) and item["lq"].shape == (3, 32, 32) and len(train) == 16 * 6
    val = GramGANSampleDataset({**opt["datasets"]["val"], "phase": "val", "scale": 4})
    assert len(val) == 1 and val[0]["gt"].shape == (3, 256, 256) and val[0]["lq_path"] == "chelsea"
