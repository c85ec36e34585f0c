"""``GramGANSampleDataset``: the built-in sample photos (:mod:`gramgan.data.samples`) as a BasicSR dataset.

It lets the example options train with no data on disk. Train phase: random ``gt_size`` crops of the
six train photos with random flips and rotations, LR made on the fly (:func:`gramgan.data.lr.synthesize_lr`),
each draw seeded from torch's RNG (which BasicSR seeds from ``manual_seed``). Val phase: the held-out
photo (chelsea), centre-cropped to ``crop`` when given. Items are BasicSR's
``{"lq", "gt", "lq_path", "gt_path"}``. Options: ``scale`` (set by BasicSR from the top level),
``gt_size`` (train), ``repeat`` (train: epoch length in images, default 1), ``crop`` (val).
"""

from __future__ import annotations

from typing import Any

import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import Dataset

from gramgan.data.datasets import RandomCropDataset, ValidationDataset
from gramgan.data.samples import sample_source

__all__ = ["GramGANSampleDataset"]


@DATASET_REGISTRY.register()
class GramGANSampleDataset(Dataset):
    """The sample photos as BasicSR items (see the module docstring for the options)."""

    def __init__(self, opt: dict[str, Any]) -> None:
        super().__init__()
        self.opt = opt  # BasicSR's validation reads opt["name"]
        self.phase = opt.get("phase", "train")
        scale = int(opt.get("scale", 4))
        if self.phase == "train":
            if "gt_size" not in opt:
                raise ValueError("GramGANSampleDataset (train): set datasets.train.gt_size, the HR crop size")
            self.dataset: Dataset = RandomCropDataset(
                sample_source("train"),
                scale=scale,
                hr_crop=int(opt["gt_size"]),
                hflip=bool(opt.get("use_hflip", True)),
                vflip=bool(opt.get("use_rot", True)),
                rot90=bool(opt.get("use_rot", True)),
                repeat=int(opt.get("repeat", 1)),
            )
        else:
            self.dataset = ValidationDataset(sample_source("val"), scale=scale, crop=opt.get("crop"))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # A fresh crop per draw, reproducible from BasicSR's seed (the dataset alone would repeat it).
        key = (index, int(torch.randint(2**31 - 1, ()))) if self.phase == "train" else index
        item = self.dataset[key]
        return {"lq": item["lr"], "gt": item["hr"], "lq_path": item["name"], "gt_path": item["name"]}
