"""``python -m gramgan.info``: runs, exits 0, and reports every backend, the extension and the weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gramgan.info as info
from gramgan import _C
from gramgan._build_sources import source_digest
from gramgan.ops import backend_availability


def test_the_command_reports_backends_extension_and_weights(tmp_path: Path) -> None:
    weights = tmp_path / "vgg19-dcbb9e9d.pth"
    weights.write_bytes(b"stand-in")  # found, not loaded
    env = {**os.environ, "GRAMGAN_VGG19_WEIGHTS": str(weights), "GRAMGAN_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "gramgan.info"], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for name in backend_availability("cpu"):
        assert f"{name} (cpu tensors)" in out
    for word in ("torch", "triton", "CUDA code", "torch threads", "LPIPS"):
        assert word in out
    assert f"VGG19  found: {weights}" in out


def test_missing_vgg_weights_name_the_config_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GRAMGAN_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    vgg = info.weights()["VGG19"]
    assert vgg.startswith("not found") and "loss.vgg_weights" in vgg and str(tmp_path) in vgg


def test_recorded_cuda_architectures_are_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    record = tmp_path / "_build_info.json"
    record.write_text(json.dumps({"cuda": True, "torch_cuda_arch_list": "8.0;9.0"}))
    monkeypatch.setattr(info, "BUILD_INFO_FILE", record)
    monkeypatch.setattr(_C, "built_with_cuda", lambda: True)
    ext = info.extension()
    assert ext["CUDA code"] == "yes" and ext["built for"] == "8.0;9.0"
    record.unlink()
    assert "not recorded" in info.extension()["built for"]


def test_a_cpu_only_build_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    record = tmp_path / "_build_info.json"
    why = "torch sees no GPU, and neither FORCE_CUDA=1 nor TORCH_CUDA_ARCH_LIST is set"
    record.write_text(json.dumps({"cuda": False, "torch_cuda_arch_list": None, "why": why}))
    monkeypatch.setattr(info, "BUILD_INFO_FILE", record)
    monkeypatch.setattr(_C, "built_with_cuda", lambda: False)
    text = info.extension()["CUDA code"]
    assert text.startswith("no (CPU kernels only") and why in text and "FORCE_CUDA=1" in text


def test_arguments_are_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        info.main(["--json"])
    assert stop.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        info.main(["--help"])
    assert stop.value.code == 0 and "backends" in capsys.readouterr().out


def _checkout(root: Path) -> Path:
    """A stand-in checkout: csrc/ with a source the build compiles and one only the tests do."""
    (root / "csrc" / "cuda").mkdir(parents=True)
    (root / "csrc" / "emulation").mkdir()
    (root / "csrc" / "cuda" / "kernel.cu").write_text("// v1\n")
    (root / "csrc" / "emulation" / "shim.h").write_text("// v1\n")
    return root


def test_the_source_digest_follows_the_built_sources(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    first = source_digest(root)
    assert first is not None and len(first) == 16
    (root / "csrc" / "emulation" / "shim.h").write_text("// v2\n")  # not in the extension
    (root / "csrc" / "notes.txt").write_text("not a source\n")
    assert source_digest(root) == first
    (root / "csrc" / "cuda" / "kernel.cu").write_text("// v2\n")
    assert source_digest(root) != first
    assert source_digest(tmp_path / "elsewhere") is None  # an installed wheel has no csrc/


def test_a_build_of_other_sources_is_called_stale(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    built_from = source_digest(root)
    assert info.sources_state(built_from, root).startswith("this checkout's csrc/")
    (root / "csrc" / "cuda" / "kernel.cu").write_text("// edited after the build\n")
    stale = info.sources_state(built_from, root)
    assert stale.startswith("STALE") and built_from in stale and "pip install" in stale
    assert info.sources_state(None, root).startswith("not recorded")
    assert info.sources_state(built_from, tmp_path / "wheel") == f"built from csrc/ {built_from}"


def test_this_build_records_its_sources() -> None:
    """setup.py wrote the digest of the csrc/ it compiled: the checkout's own, unless csrc/ changed since."""
    record = info.build_record()
    if record is None:
        pytest.skip("no _build_info.json next to gramgan._C")
    assert record.get("sources") is not None
    assert "sources" in info.extension()
