"""Process-group setup for ``torchrun`` (DDP): one process per GPU, rank 0 logs and saves.

``torchrun --nproc_per_node=N -m gramgan.train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins
the group (NCCL for CUDA, gloo for CPU). Without them the run is a single process.
"""

from __future__ import annotations

import datetime
import inspect
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

_TIMEOUT = datetime.timedelta(minutes=30)  # torch's default for the store and the process group

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "barrier",
    "cleanup_distributed",
    "init_distributed",
    "wrap_discriminator",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``local_rank`` on the node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when init_distributed created the process group

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any.

    ``device_type`` ("cuda" or "cpu") picks the backend (NCCL or gloo). Returns the rank info;
    a process without ``WORLD_SIZE`` > 1 gets the single-process default. Also reuses a group that
    the caller initialised already (tests spawn processes themselves).
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size, store=_attempt_store(world_size))
    return DistInfo(rank, world_size, local_rank, owns_group=True)


def _attempt_store(world_size: int) -> dist.Store | None:
    """The store of this attempt of a torchrun group that has restarted (elastic restarts), else None
    (``init_process_group`` then connects as usual).

    torchrun's agent keeps one store for all the attempts of a group, and every attempt's process group
    publishes its processes' addresses under the same keys. A restarted process could read an address
    of the attempt before it, a process that is gone, and fail with "connectFullMesh ... Connection
    refused" (or wait for it): its keys go under a prefix naming the attempt instead."""
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if restart == "0" or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False, timeout=_TIMEOUT
    )
    return dist.PrefixStore(f"gramgan/attempt_{restart}", store)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if info.enabled and info.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_discriminator(module: nn.Module, device: torch.device) -> DistributedDataParallel:
    """The discriminator under DDP, without DDP's buffer broadcast at every forward.

    The D step runs the discriminator twice (real, then fake) and then one backward. BatchNorm in
    train mode saves its running statistics for that backward, and by default DDP copies rank 0's
    buffers into every replica, in place, at the start of each forward. Up to torch 2.12 that copy
    bumps the buffers' version counters (2.13 hides it with ``_unsafe_preserve_version_counter``), so
    the second forward invalidates what the first one saved and backward fails with "modified by an
    inplace operation ... is at version 4; expected version 3". The running statistics are never read
    (the discriminator only runs in train mode, on batch statistics) and the G step updates them per
    rank anyway, so they need no syncing; the parameters stay identical through the gradient all-reduce.
    torch >= 2.13 names the switch ``forward_sync_buffers`` (``broadcast_buffers`` is deprecated there).
    """
    ids = [device.index] if device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
