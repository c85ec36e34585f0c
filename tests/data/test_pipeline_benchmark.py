"""``benchmarks/data_pipeline.py`` at a tiny size, in-process (so it cannot rot): its rows, the workers
arithmetic, and that the packed storage reads faster than decoding the PNG."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.train.conftest import REPO


def test_data_pipeline_benchmark_smoke(tmp_path):
    from benchmarks import data_pipeline

    argv = ["--quick", "--images", "1", "--batches", "1", "--batch", "2", "--hr-crop", "64", "--out", str(tmp_path)]
    result = data_pipeline.main(argv)
    rows = {row["storage"]: row for row in result["rows"]}
    assert set(rows) == {"png", "packed", "crops"}
    assert rows["packed"]["read_ms"] < rows["png"]["read_ms"]
    assert rows["crops"]["lr_ms"] is None  # read from disk, not made
    for row in rows.values():
        assert row["workers_58ms"] == data_pipeline.workers_needed(row["samples_per_s"], 2, 0.058) >= 1
    assert json.loads((tmp_path / "data_pipeline.json").read_text())["rows"] == json.loads(json.dumps(result["rows"]))
    assert "workers @58ms" in (tmp_path / "data_pipeline.txt").read_text()


def test_data_pipeline_benchmark_runs_as_a_file():
    done = subprocess.run(
        [sys.executable, "benchmarks/data_pipeline.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--step-ms" in done.stdout, done.stderr
