"""``benchmarks/compare_builds.py``: two builds timed against each other through texture_term.py.

One tiny end-to-end run with old and new both this checkout (a subprocess per build, so about 10 s), the
guards that stop a comparison which would measure the wrong gramgan or the reference backend, and the
summary's arithmetic on made-up timings.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_builds.py"


@pytest.fixture(scope="module")
def compare_builds():
    return importlib.import_module("benchmarks.compare_builds")


def backend_here() -> str:
    """The cpu backend where this checkout's extension is built, else the reference (no build to compare)."""
    ops = importlib.import_module("gramgan.ops")
    return "cpu" if ops.backend_availability("cpu")["cpu"] is None else "reference"


def test_same_checkout_twice_gives_a_table_of_ratios(tmp_path, compare_builds, capsys):
    tiny = ["--batch", "1", "--size", "16", "--min-time", "0.001", "--threads", "1", "--rounds", "1"]
    argv = ["--old", str(ROOT), "--new", str(ROOT), "--backend", backend_here(), *tiny, "--out", str(tmp_path)]
    result = compare_builds.main(argv)
    stdout = capsys.readouterr().out

    saved = json.loads((tmp_path / "compare_builds.json").read_text())
    assert saved["verdict"] == result["verdict"]
    for label in ("old", "new"):
        assert saved["builds"][label]["imported"]["gramgan"] == str(ROOT / "gramgan")
    timed = {row["name"]: row for row in saved["rows"] if row["status"] == "ok"}
    assert {"fused loss fwd+bwd", "gram_select global", *compare_builds.CONTROL_ROWS} <= set(timed)
    for row in timed.values():
        assert row["ratio"] == pytest.approx(row["new_median_ms"] / row["old_median_ms"])  # one round
        assert len(row["old_ms"]) == len(row["new_ms"]) == 1
    assert all(timed[name]["control"] for name in compare_builds.CONTROL_ROWS)
    assert not timed["fused loss fwd+bwd"]["control"]
    assert "RESULT " in stdout and f"new: {ROOT}" in stdout
    if saved["builds"]["old"].get("extension_sha256"):
        assert "identical extension files: every ratio is noise" in stdout
    assert (tmp_path / "compare_builds.txt").read_text().startswith("old vs new build")
    assert (tmp_path / "compare_builds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_subprocess_refuses_a_gramgan_from_elsewhere(tmp_path):
    """The checkout has no gramgan, so the subprocess imports this one (PYTHONPATH): it must say so."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(SCRIPT), "--run-in-checkout", str(checkout), str(tmp_path / "out"), "--"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"imported gramgan from {ROOT / 'gramgan'}, not from checkout {checkout}" in done.stderr


def test_a_checkout_without_its_build_is_refused(tmp_path, compare_builds):
    (tmp_path / "gramgan").mkdir()
    (tmp_path / "gramgan" / "__init__.py").write_text("")
    with pytest.raises(compare_builds.ComparisonError, match="no built extension gramgan/_C"):
        compare_builds.describe_checkout("new", str(tmp_path), needs_extension=True)
    with pytest.raises(compare_builds.ComparisonError, match="not a checkout"):
        compare_builds.describe_checkout("old", str(tmp_path / "gramgan"), needs_extension=False)
    with pytest.raises(SystemExit, match="--old .*not a checkout"):
        compare_builds.main(["--old", str(tmp_path / "gramgan"), "--new", str(ROOT), "--out", str(tmp_path)])


def test_a_fallback_to_the_reference_backend_stops_the_run(tmp_path, compare_builds, monkeypatch):
    """A call that ran on the reference backend would time the wrong code: the subprocess fails."""

    class FallingBack:
        @staticmethod
        def main(argv):
            warnings.warn(
                "gramgan.ops: backend 'cpu' does not cover this call (k = 5); using 'reference'", stacklevel=1
            )

    monkeypatch.setattr(compare_builds, "load_measured_script", lambda: FallingBack)
    with pytest.raises(compare_builds.ComparisonError, match="fell back to the reference backend"):
        compare_builds.run_in_checkout(ROOT, tmp_path, ["--backend", "reference"])


def run_of(**medians):
    return {"timings": {name: {"status": "ok", "median_ms": ms} for name, ms in medians.items()}}


def test_summary_medians_ratios_and_verdicts(compare_builds):
    runs = {
        "old": [run_of(fused=f, select=4.0, **{"read: sum": 1.0}) for f in (10.0, 20.0, 30.0)],
        "new": [run_of(fused=f, select=5.0, **{"read: sum": 1.0}) for f in (10.5, 21.0, 1.0)],
    }
    runs["old"][2]["timings"]["select"] = {"status": "n/a", "reason": "kernel missing"}
    rows = {row["name"]: row for row in compare_builds.summarize(runs, 0.10)}
    fused = rows["fused"]
    assert fused["old_median_ms"] == 20.0 and fused["new_median_ms"] == 10.5  # medians over the rounds
    assert fused["round_ratios"] == pytest.approx([1.05, 1.05, 1 / 30])
    assert fused["ratio"] == pytest.approx(1.05) and fused["verdict"] == "within"  # median of the rounds' ratios
    assert fused["ratio_of_medians"] == pytest.approx(10.5 / 20.0)
    assert rows["select"]["status"] == "n/a" and rows["select"]["reason"] == "kernel missing"
    assert rows["read: sum"]["control"] and not fused["control"]

    slow = compare_builds.summarize({"old": [run_of(a=1.0)], "new": [run_of(a=1.2)]}, 0.10)[0]
    fast = compare_builds.summarize({"old": [run_of(a=1.0)], "new": [run_of(a=0.85)]}, 0.10)[0]
    assert (slow["verdict"], fast["verdict"]) == ("slower", "faster")
    verdict = compare_builds.overall([slow, fast, rows["read: sum"]], 0.10)
    assert verdict["outside"] == ["a", "a"] and not verdict["all_within"]
    assert verdict["control_max_deviation"] == pytest.approx(0.0)
    assert compare_builds.overall([fused], 0.10)["all_within"]


def test_options_reach_texture_term(compare_builds):
    args = compare_builds.parse_args(["--old", "a", "--new", "b", "--size", "64", "--threads", "2", "--no-large"])
    argv = compare_builds.bench_args(args)
    assert argv[argv.index("--size") + 1] == "64" and argv[argv.index("--threads") + 1] == "2"
    assert "--no-large" in argv and "--min-time" not in argv and args.rounds == 3


def test_balanced_order_puts_new_first_in_every_second_round(compare_builds):
    assert [compare_builds.round_order(r, "alternate") for r in (1, 2)] == [("old", "new")] * 2
    assert [compare_builds.round_order(r, "balanced") for r in (1, 2, 3)] == [
        ("old", "new"),
        ("new", "old"),
        ("old", "new"),
    ]
