"""VGG19 feature extractor: torchvision layout and values, frozen, and the weight search's errors.

Weight files here are small: random tensors with torchvision's ``features.*`` key names and shapes,
truncated after conv3_4. No test touches the network (the download step is replaced).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torchvision

from gramgan.models import (
    VGG19_LAYERS,
    VGG19FeatureExtractor,
    VGGWeightsHashError,
    VGGWeightsMismatchError,
    VGGWeightsNotFoundError,
)
from gramgan.models import vgg as vgg_module

LAYERS = ("conv1_1", "conv2_2", "conv3_4")
LAST = 16  # features index of conv3_4


def _torchvision_features() -> torch.nn.Sequential:
    with torch.device("meta"):
        return torchvision.models.vgg19(weights=None).features


def _random_state(last: int = LAST) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = {k: v.shape for k, v in _torchvision_features().state_dict().items()}
    return {
        f"features.{k}": torch.randn(s, generator=gen) * (0.05 if k.endswith("weight") else 0.1)
        for k, s in shapes.items()
        if int(k.split(".")[0]) <= last
    }


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No env configuration, an empty hub dir, downloads failing loudly if attempted."""
    monkeypatch.delenv("GRAMGAN_VGG19_WEIGHTS", raising=False)
    monkeypatch.delenv("GRAMGAN_OFFLINE", raising=False)
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def no_network(url, dst):
        pytest.fail(f"test tried to download {url}")  # BaseException: not caught as a failed download

    monkeypatch.setattr(vgg_module, "_download_file", no_network)
    return hub


@pytest.fixture
def weights_file(tmp_path) -> Path:
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(_random_state(), path)
    return path


def test_layer_table_matches_torchvision():
    feats = _torchvision_features()
    convs = [i for i, m in enumerate(feats) if isinstance(m, torch.nn.Conv2d)]
    assert sorted(VGG19_LAYERS.values()) == convs
    assert VGG19_LAYERS["conv2_2"] == 7 and VGG19_LAYERS["conv4_4"] == 25 and VGG19_LAYERS["conv5_4"] == 34
    assert all(isinstance(feats[i + 1], torch.nn.ReLU) for i in convs)


def test_features_match_torchvision_before_relu(clean_env, weights_file):
    model = VGG19FeatureExtractor(LAYERS, weights_path=weights_file)
    assert len(model.features) == LAST + 1  # truncated after the last layer in use
    ref = _torchvision_features()[: LAST + 1].to_empty(device="cpu")
    ref.load_state_dict({k[len("features.") :]: v for k, v in _random_state().items()})
    x = torch.rand(2, 3, 24, 20)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    xn = (x - mean) / std
    with torch.no_grad():
        out = model(x)
        assert list(out) == list(LAYERS)
        for name in LAYERS:
            want = ref[: VGG19_LAYERS[name] + 1](xn.clone())  # ends on the conv: pre-ReLU
            torch.testing.assert_close(out[name], want)
            assert (out[name] < 0).any()  # before the ReLU


def test_frozen_and_eval_but_differentiable_in_input(clean_env, weights_file):
    model = VGG19FeatureExtractor(("conv2_2",), weights_path=weights_file)
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training and not any(m.training for m in model.modules())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(x)["conv2_2"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert model.features[0].weight.grad is None


def test_search_order_env_then_hub_cache(clean_env, weights_file, monkeypatch):
    monkeypatch.setenv("GRAMGAN_VGG19_WEIGHTS", str(weights_file))
    assert VGG19FeatureExtractor(("conv1_1",)).weights_path == weights_file
    monkeypatch.delenv("GRAMGAN_VGG19_WEIGHTS")
    cached = clean_env / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights_file.read_bytes())
    assert VGG19FeatureExtractor(("conv1_1",)).weights_path == cached


def test_full_torchvision_file_with_classifier_keys_loads(clean_env, tmp_path):
    state = _random_state()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys are ignored
    path = tmp_path / "full.pth"
    torch.save(state, path)
    model = VGG19FeatureExtractor(("conv2_2",), weights_path=path)
    torch.testing.assert_close(model.features[7].weight, state["features.7.weight"])


def test_missing_everywhere_lists_the_places(clean_env, monkeypatch):
    monkeypatch.setenv("GRAMGAN_OFFLINE", "1")
    with pytest.raises(VGGWeightsNotFoundError) as info:
        VGG19FeatureExtractor()
    msg = str(info.value)
    for part in ("vgg19-dcbb9e9d.pth", "$GRAMGAN_VGG19_WEIGHTS", "loss.vgg_weights", str(clean_env / "checkpoints"),
                 "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "GRAMGAN_OFFLINE"):
        assert part in msg
    with pytest.raises(VGGWeightsNotFoundError, match="download=False"):
        VGG19FeatureExtractor(download=False)


def test_explicit_location_missing_is_an_error(clean_env, tmp_path, monkeypatch):
    with pytest.raises(VGGWeightsNotFoundError, match=r"weights_path: .*nope\.pth \(does not exist\)"):
        VGG19FeatureExtractor(weights_path=tmp_path / "nope.pth")
    monkeypatch.setenv("GRAMGAN_VGG19_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(VGGWeightsNotFoundError, match=r"GRAMGAN_VGG19_WEIGHTS: .*gone\.pth"):
        VGG19FeatureExtractor()


def test_wrong_shape_or_missing_key_names_the_key(clean_env, tmp_path):
    state = _random_state()
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    bad_shape = tmp_path / "shape.pth"
    torch.save(state, bad_shape)
    with pytest.raises(VGGWeightsMismatchError, match=r"'features.5.weight' has shape \(128, 32, 3, 3\)"):
        VGG19FeatureExtractor(("conv2_2",), weights_path=bad_shape)
    state = _random_state()
    del state["features.2.bias"]
    no_key = tmp_path / "key.pth"
    torch.save(state, no_key)
    with pytest.raises(VGGWeightsMismatchError, match="'features.2.bias' is missing"):
        VGG19FeatureExtractor(("conv2_2",), weights_path=no_key)
    # A file that only covers conv1_1 is fine for conv1_1 and names the first gap otherwise.
    short = tmp_path / "short.pth"
    torch.save(_random_state(last=0), short)
    VGG19FeatureExtractor(("conv1_1",), weights_path=short)
    with pytest.raises(VGGWeightsMismatchError, match="'features.2.weight' is missing"):
        VGG19FeatureExtractor(("conv1_2",), weights_path=short)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(VGGWeightsMismatchError, match="could not be read"):
        VGG19FeatureExtractor(("conv1_1",), weights_path=garbage)


def _fake_download(payload: bytes):
    def download(url, dst):
        assert url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
        Path(dst).write_bytes(payload)

    return download


def test_download_bad_hash_is_rejected_and_discarded(clean_env, weights_file, monkeypatch):
    monkeypatch.setattr(vgg_module, "_download_file", _fake_download(weights_file.read_bytes()))
    with pytest.raises(VGGWeightsHashError, match="does not start with 'dcbb9e9d'"):
        VGG19FeatureExtractor(download=True)
    assert list((clean_env / "checkpoints").iterdir()) == []  # nothing half-written is left


def test_download_good_hash_lands_in_hub_cache(clean_env, weights_file, monkeypatch):
    payload = weights_file.read_bytes()
    monkeypatch.setattr(vgg_module, "_download_file", _fake_download(payload))
    monkeypatch.setattr(vgg_module, "VGG19_HASH_PREFIX", hashlib.sha256(payload).hexdigest()[:8])
    model = VGG19FeatureExtractor(LAYERS)
    cached = clean_env / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert model.weights_path == cached and cached.read_bytes() == payload


def test_download_failure_is_reported_as_not_found(clean_env, monkeypatch):
    def offline(url, dst):
        raise OSError("no route to host")

    monkeypatch.setattr(vgg_module, "_download_file", offline)
    with pytest.raises(VGGWeightsNotFoundError, match="failed \\(OSError: no route to host\\)"):
        VGG19FeatureExtractor()


def test_random_weights_only_when_allowed(clean_env, monkeypatch):
    monkeypatch.setenv("GRAMGAN_OFFLINE", "1")
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model = VGG19FeatureExtractor(("conv1_2",), allow_random_weights=True)
    assert model.weights_path is None
    assert model(torch.rand(1, 3, 8, 8))["conv1_2"].shape == (1, 64, 8, 8)


def test_bad_arguments(clean_env, weights_file):
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGG19FeatureExtractor(("relu2_2",), weights_path=weights_file)
    with pytest.raises(ValueError, match="at least one layer"):
        VGG19FeatureExtractor((), weights_path=weights_file)
    model = VGG19FeatureExtractor(("conv1_1",), weights_path=weights_file)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 8, 8))
