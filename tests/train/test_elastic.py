"""Runs spread the torchrun way (docs/training.md, "Several nodes" and "Elastic restarts"), two gloo ranks
on the CPU: two "nodes" on one machine meeting at a c10d rendezvous on 127.0.0.1, and a rank SIGKILLed
mid-run under ``--max-restarts=1``, whose group restarts from the newest checkpoint and ends bitwise
where the two-node run ends."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from gramgan.train.checkpoint import load_checkpoint
from tests.train.conftest import cli_environment, finish_groups, gan_run_args, start_group
from tests.train.test_resume import assert_same_end

TOTAL = 10
SAVE_EVERY = 4
ARGS = gan_run_args(TOTAL, SAVE_EVERY)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
DRIVER = str(Path(__file__).with_name("fault_driver.py"))
TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_run(tmp_path_factory):
    """Two torchrun invocations, one process each, as two nodes of one job: ``--nnodes=2`` and a c10d
    rendezvous on 127.0.0.1 (the first hosts its store). Returns the run folder and both outputs."""
    folder = tmp_path_factory.mktemp("two_nodes")
    env = cli_environment(folder)
    port = _free_port()
    procs = [
        start_group(
            [
                *TORCHRUN, "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=two-nodes", f"--rdzv-conf=is_host={int(node == 0)}",
                "--local-addr=127.0.0.1", "-m", "gramgan.train", "--output", str(folder / "run"), *ARGS,
            ],
            env,
        )  # fmt: skip
        for node in range(2)
    ]
    outputs = finish_groups(procs, TIMEOUT)
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-4000:]
    return folder / "run", outputs


def test_two_nodes_meet_at_a_c10d_rendezvous_and_keep_identical_weights(two_node_run):
    out, outputs = two_node_run
    state = load_checkpoint(out / "checkpoints" / f"iter_{TOTAL:08d}.pt")
    assert state["world_size"] == 2
    # Each rank hashed its own G and D parameters: equal on both nodes.
    assert len(state["fingerprints"]) == 2 and state["fingerprints"][0] == state["fingerprints"][1]
    assert sum("final: iteration" in output for output in outputs) == 1  # rank 0, on one of the nodes


def test_a_rank_killed_mid_run_restarts_the_group_from_the_newest_checkpoint_bitwise(two_node_run, tmp_path, cli_env):
    out = tmp_path / "run"
    command = [
        *TORCHRUN, "--standalone", "--nproc-per-node=2", "--max-restarts=1", DRIVER,
        "--only-rank", "1", "--kill-at", "6", "--", "--output", str(out), "--resume", "auto", *ARGS,
    ]  # fmt: skip
    proc = start_group(command, cli_env)
    (output,) = finish_groups([proc], TIMEOUT)
    assert proc.returncode == 0, output[-4000:]
    assert "--resume auto: no checkpoint" in output  # the first attempt started afresh ...
    assert f"resumed from {out / 'checkpoints' / 'iter_00000004.pt'} at iteration 4" in output  # ... the second did not
    assert_same_end(two_node_run[0], out, TOTAL)
