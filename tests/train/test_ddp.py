"""Two CPU processes under torchrun (gloo): DDP keeps G and D identical on both ranks."""

from __future__ import annotations

import json
import os
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


def _gan_steps_on_rank(rank: int, world_size: int, init_file: str, steps: int) -> None:
    """One rank of :func:`test_gan_step_discriminator_passes_keep_ranks_identical` (gloo, CPU)."""
    import datetime

    import torch.distributed as dist
    from torch import nn

    from gramgan.losses import GramGANLoss, GramGANLossConfig, discriminator_loss
    from gramgan.models import VGGStyleDiscriminator
    from gramgan.train.distributed import wrap_discriminator

    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=120)  # a rank that failed must not leave the other waiting long
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=timeout
    )
    try:
        torch.manual_seed(0)  # the same initial weights on every rank, as the trainer's seeding gives
        g_module = nn.Conv2d(3, 3, 3, padding=1)
        d_module = VGGStyleDiscriminator(num_feat=4, input_size=64)
        g = nn.parallel.DistributedDataParallel(g_module)
        d = wrap_discriminator(d_module, torch.device("cpu"))
        opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
        # Every D pass of the G step (taps with and without grad, logits with and without grad), no VGG.
        loss_fn = GramGANLoss(GramGANLossConfig(texture_weight=0.0, backend="reference"))
        torch.manual_seed(1 + rank)  # different data (and BatchNorm statistics) on every rank
        for _ in range(steps):
            lr, hr = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
            # The trainer's G step: the raw discriminator as a fixed critic, G's gradients all-reduced.
            d_module.requires_grad_(False)
            out = loss_fn(g(lr), hr, d_module)
            opt_g.zero_grad(set_to_none=True)
            out.total.backward()
            opt_g.step()
            d_module.requires_grad_(True)
            # The D step: real and fake passes through the DDP discriminator, then one backward.
            d_loss, _ = discriminator_loss(d, out.masked_sr.detach(), out.masked_hr)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        for name, module in (("G", g_module), ("D", d_module)):
            flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
            gathered = [torch.empty_like(flat) for _ in range(world_size)]
            dist.all_gather(gathered, flat)
            assert all(torch.equal(gathered[0], other) for other in gathered[1:]), f"{name} differs between ranks"
        # The ranks saw different batches, so identical weights are the all-reduce's doing, not chance.
        stats = d_module.bn1_0.running_mean.clone()
        gathered = [torch.empty_like(stats) for _ in range(world_size)]
        dist.all_gather(gathered, stats)
        assert not torch.equal(gathered[0], gathered[1]), "every rank saw the same batches"
        # Both ranks are done before either leaves (otherwise the one still finishing its all_gather can
        # abort with "terminate called without an active exception").
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    # Done: leave at once, without tearing gloo down. Its teardown (destroy_process_group, or the
    # interpreter's exit) still aborts now and then with that message on torch 2.11 after both ranks are
    # through the barrier; nothing is left to say to the other rank, and the exit code is what spawn reads.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_gan_step_discriminator_passes_keep_ranks_identical(tmp_path):
    """The G step's D passes and the D step's two passes under DDP (two gloo ranks): no in-place error
    in backward, and identical G and D weights on both ranks after a few steps."""
    import torch.multiprocessing as mp

    mp.spawn(_gan_steps_on_rank, args=(2, str(tmp_path / "init"), 3), nprocs=2, join=True)


def test_torchrun_two_cpu_ranks_on_the_fast_path(tmp_path, tiny, cli_env, repo_root):
    """The fast path under torchrun (gloo): bf16 autocast, channels_last, compile (aot_eager: traces G's
    blocks inside its DDP wrapper and D in place, no code generation), fused Adam; the ranks stay identical."""
    out = tmp_path / "ddp_fast"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "gramgan.train", "--output", str(out),
        *tiny, "train.device=cpu", "train.fast=true", "train.compile_backend=aot_eager",
        "train.psnr_iters=1", "train.total_iters=2", "schedule.cycle_iters=[3, 10]", "schedule.warmup_iters=1",
        "train.save_every=2", "train.val_every=0",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=repo_root, env=cli_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "fast path (train.fast=True): bf16 autocast, channels_last, torch.compile (aot_eager), fused Adam" in (
        done.stdout + done.stderr
    )
    state = load_checkpoint(out / "checkpoints" / "iter_00000002.pt")
    assert state["world_size"] == 2
    assert len(state["fingerprints"]) == 2 and state["fingerprints"][0] == state["fingerprints"][1]
