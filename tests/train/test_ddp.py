"""Two CPU processes under torchrun (gloo): DDP keeps G and D identical on both ranks."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from gramgan.train.checkpoint import load_checkpoint, weights_fingerprint


def test_torchrun_two_cpu_ranks_keep_identical_weights(tmp_path, tiny, cli_env, repo_root):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "gramgan.train", "--output", str(out),
        *tiny, "train.device=cpu", "train.psnr_iters=2", "train.total_iters=5", "schedule.cycle_iters=[3, 10]",
        "train.save_every=5", "train.val_every=0",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=repo_root, env=cli_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    state = load_checkpoint(out / "checkpoints" / "iter_00000005.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    # Each rank hashed its own G and D parameters at the checkpoint: they must agree...
    assert len(state["fingerprints"]) == 2 and state["fingerprints"][0] == state["fingerprints"][1]
    # ... and be the saved weights (so the check covers what was written, not a stale copy).
    from gramgan.models import RRDBNet, VGGStyleDiscriminator

    g = RRDBNet(**state["arch"])
    g.load_state_dict(state["generator"])
    d = VGGStyleDiscriminator(num_feat=4, input_size=64)
    d.load_state_dict(state["discriminator"])
    assert weights_fingerprint(g, d) == state["fingerprints"][0]
    # The ranks drew different loss randomness (seed + rank) and different data.
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    # Only rank 0 logged: one record per logging step, not two.
    iterations = [json.loads(line)["iteration"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert iterations == [2, 4, 5, 5]  # train records at 2, 4, 5 and the final validation
