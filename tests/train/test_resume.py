"""A run killed with SIGKILL and resumed ends bitwise where an uninterrupted run ends (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from gramgan.train.checkpoint import list_checkpoints, load_checkpoint
from tests.train.conftest import gan_run_args

TOTAL = 30
SAVE_EVERY = 4


def train_log(path):
    """The records of a log.jsonl, without their wall-clock times."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        r.pop("elapsed_s", None)
    return records


def assert_equal_states(a, b, where=""):
    """Two checkpoint values (nested dicts, lists, tensors) are equal to the bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal_states(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_states(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same_end(reference, other, iteration):
    """Two run folders hold the same checkpoint at ``iteration`` (weights, optimisers, data position, RNG
    states and every rank's weight hash, to the bit) and the same training log."""
    a = load_checkpoint(reference / "checkpoints" / f"iter_{iteration:08d}.pt")
    b = load_checkpoint(other / "checkpoints" / f"iter_{iteration:08d}.pt")
    for key in ("generator", "generator_ema", "discriminator", "optimizer_g", "optimizer_d", "data", "rng"):
        assert_equal_states(a[key], b[key], key)
    assert a["fingerprints"] == b["fingerprints"]
    # The log tells the same story: every loss term of every iteration, bit for bit.
    assert train_log(reference / "log.jsonl") == train_log(other / "log.jsonl")


def test_sigkilled_run_resumes_bitwise(tmp_path, run_cli, cli_env, repo_root):
    args = gan_run_args(TOTAL, SAVE_EVERY)  # the kill lands in the GAN phase
    ref = run_cli("--output", str(tmp_path / "ref"), *args)
    assert ref.returncode == 0, ref.stderr

    victim = tmp_path / "victim"
    first = victim / "checkpoints" / f"iter_{SAVE_EVERY:08d}.pt"
    command = [sys.executable, "-m", "gramgan.train", "--output", str(victim), *args]
    proc = subprocess.Popen(command, cwd=repo_root, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    saved = [it for it, _ in list_checkpoints(victim / "checkpoints")]
    assert saved and saved[-1] < TOTAL, f"nothing to resume from, or the run had finished: {saved}"

    resumed = run_cli("--output", str(victim), "--resume", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {victim / 'checkpoints'}" in resumed.stdout + resumed.stderr

    assert_same_end(tmp_path / "ref", victim, TOTAL)
