"""BasicSR's own training pipeline runs the example options (tiny networks) with GramGANModel and
GramTextureLoss; what it saves loads back in gramgan and, once exported, in BasicSR and ONNX Runtime."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("basicsr", reason="BasicSR is not installed (pip install 'gramgan[basicsr]'; CI installs it)")

from basicsr.archs.rrdbnet_arch import RRDBNet as BasicSRRRDBNet  # noqa: E402

from gramgan.export import export  # noqa: E402
from gramgan.models import RRDBNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_options) -> dict:
    """One pipeline run (a subprocess: BasicSR's logger and registries are per process)."""
    tmp = tmp_path_factory.mktemp("basicsr_run")
    opt = tiny_options(tmp / "experiments")
    (tmp / "options.yml").write_text(yaml.safe_dump(opt, sort_keys=False), encoding="utf-8")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 16)
    torch.save(x, tmp / "input.pt")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    script = Path(__file__).with_name("_run_basicsr_pipeline.py")
    proc = subprocess.run(
        [sys.executable, str(script), "options.yml", "input.pt", "outputs.pt"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = tmp / "experiments" / opt["name"]
    network_g = {k: v for k, v in opt["network_g"].items() if k != "type"}
    return {
        "root": root,
        "network_g": network_g,
        "x": x,
        "outputs": torch.load(tmp / "outputs.pt"),
        "stdout": proc.stdout + proc.stderr,
    }


def test_log_shows_the_texture_dperc_and_gan_terms(run):
    (log,) = run["root"].glob(f"train_{run['root'].name}_*.log")
    text = log.read_text(encoding="utf-8")
    assert "Model [GramGANModel] is created." in text and "Loss [GramTextureLoss] is created." in text
    lines = [line for line in text.splitlines() if re.search(r"iter:\s+\d+, lr:", line)]
    assert len(lines) == 3, text[-2000:]
    for line in lines:
        values = {k: float(v) for k, v in re.findall(r"(l_g_\w+|l_d|out_d_\w+): (\S+)", line)}
        assert {"l_g_pix", "l_g_texture", "l_g_dperc", "l_g_gan", "l_d"} <= set(values), line
        assert all(torch.isfinite(torch.tensor(v)) for v in values.values()), line
        assert values["l_g_texture"] > 0 and values["l_g_dperc"] > 0 and values["l_g_gan"] > 0, line


def test_saved_net_g_loads_with_from_pretrained_and_matches_the_in_memory_model(run):
    models = run["root"] / "models"
    assert (models / "net_g_3.pth").is_file() and (models / "net_d_3.pth").is_file()
    saved = torch.load(models / "net_g_latest.pth", weights_only=True)
    with torch.no_grad():
        ema = RRDBNet.from_pretrained(models / "net_g_latest.pth")(run["x"])  # params_ema preferred
        raw = RRDBNet.from_pretrained(saved["params"])(run["x"])
    torch.testing.assert_close(ema, run["outputs"]["params_ema"], rtol=0, atol=1e-6)
    torch.testing.assert_close(raw, run["outputs"]["params"], rtol=0, atol=1e-6)
    assert not torch.equal(ema, raw)  # EMA (decay 0.999) lags the trained weights


@pytest.mark.parametrize("fmt", ["basicsr", "safetensors"])
def test_export_loads_into_basicsr_rrdbnet_strictly(run, fmt, tmp_path):
    result = export(run["root"] / "models" / "net_g_latest.pth", fmt, tmp_path / f"g.{fmt}")
    if fmt == "basicsr":
        loaded = torch.load(result.path, weights_only=True)
        assert set(loaded) == {"params", "params_ema"}
        state_dict = loaded["params_ema"]  # what BasicSR's test script (param_key_g) and Real-ESRGAN read
    else:
        from safetensors.torch import load_file

        state_dict = load_file(str(result.path))
    net = BasicSRRRDBNet(scale=4, **run["network_g"])
    net.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net(run["x"]), run["outputs"]["params_ema"], rtol=0, atol=1e-6)


def test_onnx_export_matches_pytorch_with_dynamic_size(run, tmp_path):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'gramgan[onnx]'; CI installs it)")
    import onnxruntime

    result = export(run["root"] / "models" / "net_g_latest.pth", "onnx", tmp_path / "g.onnx")
    assert result.onnx_diff is not None and result.onnx_diff <= 1e-4  # checked on a sample photo
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"input": run["x"].numpy()})  # 12 x 16: not the traced 64 x 64
    torch.testing.assert_close(torch.from_numpy(out), run["outputs"]["params_ema"], rtol=0, atol=1e-4)
