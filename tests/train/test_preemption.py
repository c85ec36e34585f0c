"""Preemption (docs/training.md, "Preemption and requeue"): SIGTERM or SIGUSR1 stops a run after the step
it is in, with a checkpoint and exit status 75, and ``--resume auto`` ends bitwise where an uninterrupted
run ends (CPU). Faults at exact points come from ``fault_driver.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gramgan.train.checkpoint import list_checkpoints, load_checkpoint
from gramgan.train.preemption import EXIT_PREEMPTED, PREEMPTED_FILE
from tests.train.conftest import REPO, cli_environment, finish_groups, gan_run_args, start_group
from tests.train.test_resume import assert_equal_states, assert_same_end

TOTAL = 12
ARGS = gan_run_args(TOTAL, save_every=1000)  # no checkpoint but the preemption's and the last
DRIVER = str(Path(__file__).with_name("fault_driver.py"))


def _train(env, *args, driver=(), timeout=180):
    command = [sys.executable, *([DRIVER, *driver, "--"] if driver else ["-m", "gramgan.train"]), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of TOTAL iterations, with an ordinary checkpoint at iteration 6 as well."""
    folder = tmp_path_factory.mktemp("reference")
    done = _train(cli_environment(folder), "--output", str(folder / "run"), *ARGS, "train.save_every=6")
    assert done.returncode == 0, done.stderr
    return folder / "run"


def _train_records(log):
    if not log.is_file():
        return 0
    return sum('"kind": "train"' in line for line in log.read_text().splitlines())


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_signal_mid_run_checkpoints_within_one_step_and_resumes_bitwise(name, reference, tmp_path, cli_env):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gramgan.train", "--output", str(out), *ARGS]
    proc = subprocess.Popen(command, cwd=REPO, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while _train_records(out / "log.jsonl") < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    done_before = _train_records(out / "log.jsonl")  # iterations finished when the signal is sent
    os.kill(proc.pid, signal.Signals[name])
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, output

    saved = [it for it, _ in list_checkpoints(out / "checkpoints")]
    assert len(saved) == 1, saved
    stopped = saved[0]
    # The step under way when the signal came is finished (the log may have been a step behind the run).
    assert done_before <= stopped <= done_before + 2 < TOTAL, (done_before, stopped)
    assert f"stopped by {name} at iteration {stopped}: checkpoint " in output
    assert _train_records(out / "log.jsonl") == stopped  # nothing trained after the checkpoint
    note = json.loads((out / PREEMPTED_FILE).read_text())
    assert note["signal"] == name and note["iteration"] == stopped

    resumed = _train(cli_env, "--output", str(out), "--resume", "auto", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {out / 'checkpoints'}" in resumed.stdout
    assert not (out / PREEMPTED_FILE).exists()
    assert_same_end(reference, out, TOTAL)


def test_signals_during_the_preemption_save_change_nothing(reference, tmp_path, cli_env):
    """SIGUSR1 during step 6, then SIGTERM and SIGUSR1 again halfway through writing the checkpoint:
    the save completes, the run stops once, and the checkpoint is the uninterrupted run's, to the bit."""
    out = tmp_path / "run"
    faults = ["--send", "SIGUSR1@5", "--send-during-save", "SIGTERM,SIGUSR1"]
    done = _train(cli_env, "--output", str(out), *ARGS, driver=faults)
    assert done.returncode == EXIT_PREEMPTED, done.stdout + done.stderr
    assert done.stdout.count("stopped by") == 1 and "stopped by SIGUSR1 at iteration 6" in done.stdout
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["iter_00000006.pt"]  # no temporary left
    ours = load_checkpoint(out / "checkpoints" / "iter_00000006.pt")
    theirs = load_checkpoint(reference / "checkpoints" / "iter_00000006.pt")
    for key in ("generator", "generator_ema", "discriminator", "optimizer_g", "optimizer_d", "data", "rng"):
        assert_equal_states(theirs[key], ours[key], key)


def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(tmp_path, cli_env):
    """Under torchrun (two gloo ranks), SIGUSR1 reaches rank 1 only: both ranks agree to stop after step
    6, rank 0 writes the checkpoint of both, and each exits with 75."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", DRIVER,
        "--only-rank", "1", "--send", "SIGUSR1@5", "--", "--output", str(out), *ARGS,
    ]  # fmt: skip
    (output,) = finish_groups([start_group(command, cli_env)], timeout=180)  # disagreeing ranks would hang
    assert f"exitcode  : {EXIT_PREEMPTED}" in output, output[-4000:]
    assert [it for it, _ in list_checkpoints(out / "checkpoints")] == [6]
    state = load_checkpoint(out / "checkpoints" / "iter_00000006.pt")
    assert state["world_size"] == 2 and state["fingerprints"][0] == state["fingerprints"][1]
    assert json.loads((out / PREEMPTED_FILE).read_text())["signal"] == "SIGUSR1"
