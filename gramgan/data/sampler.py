"""Reproducible, resumable sampling: every sample's randomness comes from its own seed.

:class:`SeededSampler` (a ``DistributedSampler``) yields ``(index, seed)`` pairs, the seed a hash of
(run seed, epoch, position in the epoch), and can start mid-epoch; so a resumed run sees exactly the
batches an uninterrupted one would, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from torch.utils.data import Dataset, DistributedSampler

__all__ = ["SeededSampler", "sample_seed", "split_key"]


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for one sample, a hash of (run seed, epoch, position): stable across
    processes and Python versions, unlike ``hash()``."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def split_key(key: int | tuple[int, int], seed: int) -> tuple[int, int]:
    """A dataset key is an index, or ``(index, sample_seed)`` from :class:`SeededSampler`."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), sample_seed(seed, -1, int(key))


class SeededSampler(DistributedSampler):
    """A ``DistributedSampler`` (same partition of each epoch's permutation across ranks) that
    yields ``(index, sample_seed)`` pairs and can start at an offset within the epoch.

    ``set_epoch(e)`` picks the epoch; ``set_start(k)`` skips this rank's first ``k`` samples
    (resume). Works without an initialised process group when ``num_replicas`` and ``rank`` are
    given.
    """

    def __init__(
        self,
        dataset: Sequence | Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's share of the current epoch."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for k in range(self.start, len(indices)):
            position = self.rank + k * self.num_replicas
            yield indices[k], sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)
