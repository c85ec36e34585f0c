"""Smoke runs of the benchmark scripts at tiny sizes (so they cannot rot), and checks of their helpers.

Each script runs in-process through its ``main(argv)`` on the CPU with one thread, the reference and
(when built) the cpu backend, and minimal timing; the tests check the numbers they write, not only
that they ran: the least-traffic byte counts, ratios, the agreement of the cpu backend with the
reference, the shares of the training-step benchmark, the JSON / PNG / table files.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name: str):
    """Imports ``benchmarks.<name>`` (the scripts run as ``python -m benchmarks.<name>``)."""
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture(scope="module")
def harness():
    return importlib.import_module("gramgan.benchmarking")


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def rows_of(result: dict, **match) -> list[dict]:
    return [row for row in result["rows"] if all(row.get(k) == v for k, v in match.items())]


def cpu_backend_runs(harness) -> bool:
    return harness.backend_reasons(torch.device("cpu"), ["cpu"])["cpu"] is None


TINY = ["--device", "cpu", "--backends", "reference,cpu", "--min-time", "0.001", "--threads", "1", "--quiet"]


def test_gram_select_smoke(tmp_path, harness, capsys):
    gram_select = load("gram_select")
    result = gram_select.main([*TINY, "--batch", "1", "--size", "32", "--no-sweep", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out

    saved = json.loads((tmp_path / "gram_select.json").read_text())
    assert saved["partial"] is False and len(saved["rows"]) == len(result["rows"])
    assert (tmp_path / "gram_select.png").read_bytes()[:8] == PNG_MAGIC
    assert "TARGET cpu loss fwd+bwd paper vs reference" in stdout
    assert (tmp_path / "gram_select.txt").read_text().startswith("gram_texture_loss / gram_select on ")

    # 3 ops x 2 scopes, each on reference and cpu.
    assert len(result["rows"]) == 12
    refs = rows_of(result, backend="reference")
    assert len(refs) == 6 and all(r["status"] == "ok" and r["median_ms"] > 0 for r in refs)
    assert all(r["speedup_vs_reference"] == pytest.approx(1.0) for r in refs)
    for r in refs:  # the roofline: least bytes / median, over the copy bandwidth of the same run
        assert r["bytes_per_s"] == pytest.approx(r["bytes_moved"] / (r["median_ms"] / 1e3))
        assert r["fraction_of_copy"] == pytest.approx(r["bytes_per_s"] / result["copy_bytes_per_s"])
    for r in result["rows"]:  # the per-case floors: the larger binds, "% floor" is of that one
        floor_ms = max(r["read_floor_ms"], r["compute_floor_ms"])
        assert r["read_floor_ms"] > 0 and r["compute_floor_ms"] > 0
        assert r["bound"] == ("read" if r["read_floor_ms"] >= r["compute_floor_ms"] else "compute")
        if r["median_ms"] < floor_ms:  # faster than its floor: an error, never a percentage above 100
            assert "fraction_of_floor" not in r and "measurement error" in r["floor_error"]
        else:
            assert r["fraction_of_floor"] == pytest.approx(floor_ms / r["median_ms"]) and "floor_error" not in r
    # Least traffic, float32: local reads SR + 6 candidates (3 x 32 x 32 each); fwd+bwd adds the
    # gradient; select adds the int64 index of 8 x 8 patches. Global: SR + HR, HR/2, HR/4, 4 warps.
    image = 3 * 32 * 32 * 4
    expected = {
        ("loss_fwd", "local"): 7 * image,
        ("loss_fwd_bwd", "local"): 8 * image,
        ("select", "local"): 7 * image + 64 * 8,
        ("loss_fwd", "global"): 6 * image + image // 4 + image // 16,
        ("select", "global"): 6 * image + image // 4 + image // 16 + 64 * 8,
    }
    for (op, scope), nbytes in expected.items():
        assert rows_of(result, op=op, scope=scope, backend="reference")[0]["bytes_moved"] == nbytes
    assert rows_of(result, scope="global", backend="reference")[0]["candidates"] == 64 + 16 + 4 + 4 * 64

    cpu = rows_of(result, backend="cpu")
    if cpu_backend_runs(harness):
        assert all(r["status"] == "ok" for r in cpu)
        for row in cpu:
            ref_ms = rows_of(result, label=row["label"], backend="reference")[0]["median_ms"]
            assert row["speedup_vs_reference"] == pytest.approx(ref_ms / row["median_ms"])
            assert row["diff_vs_reference"] is not None and row["diff_vs_reference"] < 1e-4
    else:
        assert all(r["status"] == "skipped" and r["reason"] for r in cpu)


def test_texture_mask_smoke(tmp_path, harness):
    texture_mask = load("texture_mask")
    argv = [*TINY, "--batch", "2", "--size", "16", "--no-sweep", "--no-plot", "--out", str(tmp_path)]
    result = texture_mask.main(argv)
    assert not (tmp_path / "texture_mask.png").exists()
    assert json.loads((tmp_path / "texture_mask.json").read_text())["partial"] is False
    image = 2 * 3 * 16 * 16 * 4
    ref = {row["op"]: row for row in rows_of(result, backend="reference")}
    assert ref["mask_grid"]["bytes_moved"] == image + image // 3
    assert ref["mask_sliding"]["bytes_moved"] == image + image // 3
    assert ref["pair_fwd_bwd"]["bytes_moved"] == 6 * image
    assert all(row["status"] == "ok" for row in ref.values())
    if cpu_backend_runs(harness):
        for row in rows_of(result, backend="cpu"):
            assert row["status"] == "ok"
            assert row["diff_vs_reference"] == 0.0  # masks are 0/1: no entry may differ


def test_train_step_smoke(tmp_path, harness):
    train_step = load("train_step")
    argv = [
        *TINY,
        "--quick",
        "--short",
        "--no-perceptual",
        "--repeats", "1",
        "--blocks", "1", "--features", "8", "--disc-features", "8", "--batch", "2", "--lr-size", "16",
        "--no-plot",
        "--out", str(tmp_path),
    ]  # fmt: skip
    result = train_step.main(argv)
    assert result["size"] == {
        "blocks": 1, "features": 8, "batch": 2, "lr_size": 16, "disc_features": 8, "hr_size": 64
    }  # fmt: skip
    rows = {row["variant"]: row for row in result["rows"]}
    best = result["best_backend"]
    assert best == ("cpu" if cpu_backend_runs(harness) else "reference")
    base, full = rows["esrgan (no Gram-GAN terms)"], rows[f"gramgan[{best}] (best here)"]
    assert base["status"] == "ok" and full["status"] == "ok", result["rows"]
    share = result["shares"]["all Gram-GAN terms"]
    assert share == pytest.approx((full["median_ms"] - base["median_ms"]) / full["median_ms"])
    target = result["targets"][0]
    assert target["value"] == pytest.approx(100 * share)
    assert target["verdict"] == ("met" if 100 * share < 5 else "missed")
    assert json.loads((tmp_path / "train_step.json").read_text())["shares"] == result["shares"]


def test_gpu_check_out_of_time_packs_a_summary(tmp_path):
    """With no budget every step is 'not run', the exit status is 1, and the summary and archive exist."""
    env = {**os.environ, "GPU_CHECK_BUDGET_S": "0", "GPU_CHECK_DRY_RUN": "1", "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh"), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = (tmp_path / "summary.txt").read_text()
    steps = ("env", "build", "extension", "pytest-cuda", "pytest-triton", "texture-cuda", "texture-triton",
             "backend-compare", "esrgan", "gram_select", "texture_mask")
    for step in steps:
        assert f"{step} " in summary
    assert summary.count("NOT RUN: out of time") == len(steps)
    assert "RESULT: some steps FAILED" in summary
    assert (tmp_path / "gpu_check.tar.gz").stat().st_size > 0


def test_gpu_check_needs_an_outdir():
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage" in done.stderr


def test_cpu_peak_memory_counts_one_call(harness):
    keep = []

    def allocate() -> int:
        keep.append(torch.empty(1_000_000))  # 4 MB that outlives the call
        scratch = torch.empty(500_000)  # 2 MB freed inside it
        del scratch
        return 1

    for _ in range(2):  # the second call must not count the first call's 4 MB again
        out, seconds, peak = harness.probe_call(allocate, torch.device("cpu"), track_memory=True)
        assert out == 1 and seconds > 0
        assert 6_000_000 <= peak < 6_100_000


def test_launch_profile_counts_what_a_call_dispatches(harness):
    """On the CPU: the top-level operators per call (an op's own inner calls not counted), no device time."""
    x = torch.ones(8)
    profile = harness.launch_profile(lambda: (x + 1).sum(), torch.device("cpu"), calls=3)
    assert profile.calls == 3 and profile.launches == 2.0  # add, sum (sum's own inner ops not counted)
    assert profile.device_ms is None and profile.busy_share(1.0) is None and profile.wall_ms > 0
    assert harness.LaunchProfile(3, 2.0, 0.5, 10.0).busy_share(2.0) == 0.25  # on a GPU: device ms / median ms


def test_helpers(harness):
    assert harness.timing._quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert harness.timing._quantile([1.0, 2.0], 0.5) == 1.5
    assert harness.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert harness.device_slug(torch.device("cpu")).startswith("cpu-")
    assert harness.device_slug(torch.device("cpu")).endswith(f"-{harness.cpu_cores()}core")
    assert harness.parse_backends("cpu") == ["reference", "cpu"]
    with pytest.raises(ValueError, match="unknown backend"):
        harness.parse_backends("reference,gpu")
    assert harness.Target("t", 31.0, 30).verdict == "met"
    assert harness.Target("t", 29.0, 30).verdict == "missed"
    assert harness.Target("t", 6.0, 5, "%", lower_is_better=True).verdict == "missed"
    assert harness.Target("t", None, 5).verdict == "not measured"
    ref = torch.tensor([1.0, 2.0, 4.0])
    assert harness.compare_outputs(ref + torch.tensor([0.0, 0.0, 0.4]), ref) == pytest.approx(0.1)
    mask = torch.tensor([0.0, 1.0, float("nan"), 1.0])
    assert harness.fraction_differing(torch.tensor([0.0, 0.0, float("nan"), 1.0]), mask) == 0.25


def test_table_hides_backends_skipped_everywhere(harness):
    rows = [
        {"label": "a", "backend": "reference", "status": "ok", "median_ms": 2.0, "bytes_per_s": 1e9,
         "speedup_vs_reference": 1.0, "peak_mem_bytes": None},
        {"label": "a", "backend": "cuda", "status": "skipped", "reason": "needs a CUDA GPU"},
        {"label": "a", "backend": "compile", "status": "failed", "reason": "boom"},
        {"label": "b", "backend": "compile", "status": "ok", "median_ms": 1.0, "bytes_per_s": 2e9,
         "speedup_vs_reference": 2.0, "peak_mem_bytes": 2**20},
        {"label": "b", "backend": "cuda", "status": "skipped", "reason": "needs a CUDA GPU"},
    ]  # fmt: skip
    lines = harness.format_table(rows, [("label", "what")]).splitlines()
    assert not any(line.startswith("a     cuda") or " cuda " in line for line in lines[:5])
    assert "  cuda skipped: needs a CUDA GPU" in lines
    assert "  compile failed: boom" in lines
    assert any(line.split()[:4] == ["b", "compile", "1.000", "2.00"] for line in lines)


def test_partial_saver_keeps_what_was_measured(tmp_path, harness):
    row = {"label": "a", "backend": "reference", "status": "ok", "median_ms": 2.0, "bytes_moved": 4e6,
           "bytes_per_s": 2e9, "speedup_vs_reference": 1.0, "peak_mem_bytes": None}  # fmt: skip
    save = harness.partial_saver(tmp_path, "x", "title", [("label", "what")], 4e9, {"benchmark": "x"})
    save([row])
    saved = json.loads((tmp_path / "x.json").read_text())
    assert saved["partial"] is True and saved["benchmark"] == "x"
    assert saved["rows"][0]["fraction_of_copy"] == pytest.approx(0.5)
    assert "PARTIAL" in (tmp_path / "x.txt").read_text()


def test_runner_ratios_and_slow_single_call(harness):
    """Ratios come from the same run; a CPU call slower than single_call_s is timed by its warm-up alone."""
    import time

    delays = {"reference": 0.25, "cpu": 0.002}  # far either side of single_call_s, even on a loaded machine

    def build(backend):
        if backend not in delays:
            raise harness.Skip(f"{backend} not in this test")
        return lambda: time.sleep(delays[backend]) or torch.ones(3)

    case = harness.Case(group="g", label="sleep", params={"op": "sleep"}, bytes_moved=3_000_000, build=build)
    reasons = {"reference": None, "compile": None, "cpu": None, "cuda": "no GPU"}
    config = harness.RunConfig(min_time_s=0.05, track_memory=False, verbose=False, single_call_s=0.1)
    rows = {row["backend"]: row for row in harness.run_cases([case], reasons, torch.device("cpu"), config)}
    assert rows["compile"]["status"] == "skipped" and "not in this test" in rows["compile"]["reason"]
    assert rows["cuda"] == {**rows["cuda"], "status": "skipped", "reason": "no GPU"}
    ref, cpu = rows["reference"], rows["cpu"]
    assert ref["calls"] == 1 and ref["median_ms"] == pytest.approx(ref["first_call_ms"])  # the warm-up
    assert cpu["calls"] > 1 and cpu["median_ms"] >= 2
    assert cpu["speedup_vs_reference"] == pytest.approx(ref["median_ms"] / cpu["median_ms"])
    assert cpu["diff_vs_reference"] == 0.0
    assert cpu["bytes_per_s"] == pytest.approx(3_000_000 / (cpu["median_ms"] / 1e3))


def test_cli_run_keeps_stderr_free_of_profiler_chatter(tmp_path):
    """``python -m benchmarks.texture_mask`` with the memory probe on (which starts torch's profiler):
    no Kineto ``gpuGetDeviceCount failed`` error and no profiler stage lines on stderr, only progress."""
    env = {key: value for key, value in os.environ.items() if key != "KINETO_LOG_LEVEL"}
    argv = [*TINY[:-1], "--batch", "1", "--size", "16", "--no-sweep", "--no-plot", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.texture_mask", *argv],
        cwd=BENCH.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "texture_mask.json").is_file()
    assert "reference" in done.stderr  # the per-row progress still shows
    for noise in ("gpuGetDeviceCount", "profiler_start", "STAGE:", "USDT:", "ERROR:"):
        assert noise not in done.stderr


def test_texture_term_smoke(tmp_path, capsys):
    """The three goals in one run on the reference backend (every kernel path runs there), tiny size."""
    texture_term = load("texture_term")
    argv = ["--backend", "reference", "--batch", "2", "--size", "32", "--min-time", "0.001", "--threads", "1"]
    result = texture_term.main([*argv, "--quiet", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out
    timings = result["timings"]
    assert all(row["status"] == "ok" and row["median_ms"] > 0 for row in timings.values()), timings
    ms = {name: row["median_ms"] for name, row in timings.items()}
    fused_read, sampled, materialized, select = (goal["value"] for goal in result["targets"])
    assert fused_read == pytest.approx(ms["fused loss fwd+bwd"] / min(ms["read: sum"], ms["read: amax"]))
    assert sampled == pytest.approx(ms["texture term fwd+bwd (sampled)"] / ms["fused loss fwd+bwd"])
    assert materialized == pytest.approx(ms["texture term fwd+bwd (materialize)"] / ms["fused loss fwd+bwd"])
    assert select == pytest.approx(ms["Beby-GAN eager (Grams + bmm)"] / ms["gram_select global"])
    # M = (32/4)^2 + (16/4)^2 + (8/4)^2 + 4 warps x (32/4)^2; the two searches agree up to rounding.
    check = result["selection_check"]
    assert check["candidates_per_image"] == 64 + 16 + 4 + 4 * 64 and check["patches"] == 2 * 64
    assert check["differing_beyond_rounding"] == 0
    assert stdout.count("TARGET ") == 4 and "on " + result["environment"]["device"] in stdout
    profiles = result["profiles"]  # row 2's members: the sampled term dispatches more than the fused loss
    assert set(profiles) == {"fused loss fwd+bwd", "texture term fwd+bwd (sampled)"}
    assert profiles["texture term fwd+bwd (sampled)"]["launches"] > profiles["fused loss fwd+bwd"]["launches"] > 0
    assert "where the time goes" in stdout
    assert json.loads((tmp_path / "texture_term.json").read_text())["targets"] == result["targets"]
    assert (tmp_path / "texture_term.png").read_bytes()[:8] == PNG_MAGIC


def test_texture_term_large_sizes(tmp_path, capsys):
    """``--large`` times rows 1 and 2 again at each large size (here a tiny one), with their own goals:
    fused loss within 3x of its read floor, sampled term within 1.5x of the fused loss. Off on the CPU
    by default."""
    texture_term = load("texture_term")
    argv = ["--backend", "reference", "--batch", "1", "--size", "16", "--min-time", "0.001", "--threads", "1"]
    assert texture_term.parse_args(argv).large is None  # auto: on a GPU only
    argv += ["--large", "--large-sizes", "2x32", "--quiet", "--no-plot", "--out", str(tmp_path)]
    result = texture_term.main(argv)
    ms = {name: row["median_ms"] for name, row in result["timings"].items()}
    big = "B=2 32x32: "
    assert f"{big}texture term fwd+bwd (materialize)" not in ms  # no breakdown at the large sizes
    fused_read, sampled = result["targets"][4:]
    floor = min(ms[f"{big}read: sum"], ms[f"{big}read: amax"])
    assert "at B=2 32x32" in fused_read["name"] and fused_read["goal"] == 3.0
    assert fused_read["value"] == pytest.approx(ms[f"{big}fused loss fwd+bwd"] / floor)
    assert sampled["goal"] == 1.5
    term, fused = ms[f"{big}texture term fwd+bwd (sampled)"], ms[f"{big}fused loss fwd+bwd"]
    assert sampled["value"] == pytest.approx(term / fused)
    assert capsys.readouterr().out.count("TARGET ") == 6
    with pytest.raises(SystemExit):
        texture_term.parse_args(["--large-sizes", "2x30"])  # not a multiple of 16


def test_texture_term_reports_a_missing_kernel_as_na(tmp_path, monkeypatch):
    """A measurement whose op raises (a kernel not built yet) is 'n/a (reason)', not a crash."""
    texture_term = load("texture_term")

    def missing(*args, **kwargs):
        raise NotImplementedError("no kernel for this backend")

    monkeypatch.setattr(texture_term.ops, "gram_texture_loss_sampled", missing)
    argv = ["--backend", "reference", "--batch", "1", "--size", "16", "--min-time", "0.001", "--no-plot", "--quiet"]
    result = texture_term.main([*argv, "--out", str(tmp_path)])
    row = result["timings"]["texture term fwd+bwd (sampled)"]
    assert row == {"status": "n/a", "reason": "NotImplementedError: no kernel for this backend"}
    assert result["targets"][1]["verdict"] == "not measured"
    assert result["timings"]["fused loss fwd+bwd"]["status"] == "ok"
    assert "n/a (NotImplementedError: no kernel for this backend)" in (tmp_path / "texture_term.txt").read_text()


def test_backend_compare_smoke(tmp_path, harness, capsys):
    """Two backends op by op on the same inputs (here reference against cpu, tiny): every op of the list
    timed on both, B/A from the same run's medians, a read floor per op, B's result checked against A's,
    one TARGET line per op in the format gpu_check.sh counts, and the three files."""
    if not cpu_backend_runs(harness):
        pytest.skip("the cpu backend is not built here")
    backend_compare = load("backend_compare")
    argv = ["--device", "cpu", "--backends", "reference,cpu", "--batch", "1", "--size", "32", "--min-time", "0.001",
            "--rounds", "2", "--threads", "1", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    result = backend_compare.main(argv)
    stdout = capsys.readouterr().out
    rows = result["rows"]
    assert [row["op"] for row in rows] == [op.name for op in backend_compare.OPS] and len(rows) == 11
    for row in rows:
        ref, cpu = row["timings"]["reference"], row["timings"]["cpu"]
        assert ref["status"] == cpu["status"] == "ok", row
        assert ref["samples"] == cpu["samples"] == 2 and ref["first_call_ms"] > 0 and cpu["first_call_ms"] > 0
        assert row["ratio"] == pytest.approx(cpu["median_ms"] / ref["median_ms"])
        assert row["read_floor_ms"] > 0 and row["read_bytes"] > 0
        assert row["diff"] is not None and row["diff"] < 1e-4  # the same inputs give the same result
    floor = {row["op"]: row["read_bytes"] for row in rows}
    image = 3 * 32 * 32 * 4
    assert floor["downsample_half"] == image and floor["gram_texture_loss local fwd+bwd"] == 7 * image
    assert floor["gram_texture_loss_sampled fwd+bwd"] == image * (2 + 1 / 4) + 4 * 6 * 4  # SR, HR, HR/2, thetas
    lines = [line for line in stdout.splitlines() if line.startswith("TARGET ")]
    assert len(lines) == 11 and all(re.search(r"cpu/reference on .*\(goal <= 1.5x\) (met|missed)$", x) for x in lines)
    for goal, row in zip(result["targets"], rows):
        assert goal["value"] == pytest.approx(row["ratio"])
        assert goal["verdict"] == ("met" if row["ratio"] <= 1.5 else "missed")
    saved = json.loads((tmp_path / "backend_compare.json").read_text())
    assert saved["partial"] is False and saved["targets"] == result["targets"]
    assert (tmp_path / "backend_compare.txt").read_text().splitlines()[-11:] == lines
    assert (tmp_path / "backend_compare.png").read_bytes()[:8] == PNG_MAGIC


def test_esrgan_compare_smoke(tmp_path, monkeypatch):
    """The peer, gramgan plain and on the fast path's eager parts, as ratios, with peak memory; a variant
    that fails is a row with its error; the profile of the fastest; the fp32-vs-fast training comparison
    with its picture (CPU --quick: tiny; skipped without BasicSR)."""
    esrgan_compare = load("esrgan_compare")
    if esrgan_compare.import_esrgan() is None:
        pytest.skip("BasicSR is not installed (optional: requirements-bench.txt)")
    build_variant = esrgan_compare.gramgan_variant

    def bf16_breaks(size, device, flags, *rest):  # plain bf16 fails on its first call, the others run
        iteration, without_terms = build_variant(size, device, flags, *rest)
        if flags == esrgan_compare.VARIANTS["gramgan bf16"]:
            iteration = lambda: 1 / 0  # noqa: E731
        return iteration, without_terms

    monkeypatch.setattr(esrgan_compare, "gramgan_variant", bf16_breaks)
    argv = ["--device", "cpu", "--quick", "--train-iters", "2", "--backend", "reference", "--threads", "1",
            "--profile", "--out", str(tmp_path)]  # fmt: skip
    result = esrgan_compare.main(argv)
    medians = result["median_ms"]
    fastest = "gramgan bf16 + channels_last"
    assert list(medians) == [esrgan_compare.PEER, "gramgan fp32 eager", fastest, esrgan_compare.WITHOUT_TERMS]
    assert result["failed"] == {"gramgan bf16": "ZeroDivisionError: division by zero"}
    assert "gramgan bf16  " in (tmp_path / "esrgan_compare.txt").read_text()  # its row, with the error
    peak = result["peak_mem_bytes"]
    assert all(ms > 0 for ms in medians.values()) and set(peak) == set(medians)
    ratio, terms, memory = (result["targets"][i] for i in (0, 2, 3))
    assert ratio["value"] == pytest.approx(medians[fastest] / medians[esrgan_compare.PEER])
    pair = result["terms_pair_ms"]  # the fastest and its networks without the terms, timed alternating
    assert pair["without"] == medians[esrgan_compare.WITHOUT_TERMS]
    assert terms["value"] == pytest.approx(100 * (1 - pair["without"] / pair["with"]))
    assert terms["unit"] == "%" and terms["goal"] == 5.0 and fastest in terms["name"]
    assert memory["value"] == (pytest.approx(peak[fastest] / peak[esrgan_compare.PEER]) if peak[fastest] else None)
    assert "aten::" in (tmp_path / "esrgan_compare_profile.txt").read_text()
    assert result["launch_profile"]["launches"] > 0 and result["launch_profile"]["device_ms"] is None  # CPU
    assert f"{fastest}: " in (tmp_path / "esrgan_compare.txt").read_text()
    assert set(result["training"]) == {"fp32 eager", "fast"}
    assert (tmp_path / "esrgan_compare_training.png").stat().st_size > 0
    assert json.loads((tmp_path / "esrgan_compare.json").read_text())["median_ms"] == medians


def test_esrgan_compare_without_basicsr_says_how_to_install(monkeypatch, capsys):
    esrgan_compare = load("esrgan_compare")
    monkeypatch.setattr(esrgan_compare, "import_esrgan", lambda: None)
    assert esrgan_compare.main(["--device", "cpu"]) is None
    assert "requirements-bench.txt" in capsys.readouterr().out
