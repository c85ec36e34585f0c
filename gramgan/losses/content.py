"""The content loss (Eq. 11): L1 between the SR and HR images, which the paper prefers to L2 for
being less sensitive to outliers during GAN training."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["content_loss"]


def content_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """Mean absolute difference ``L1(SR, HR)``; the gradient flows to ``sr`` (HR is a constant)."""
    if sr.shape != hr.shape:
        raise ValueError(f"sr has shape {tuple(sr.shape)} but hr has {tuple(hr.shape)}: they must match")
    return F.l1_loss(sr, hr.detach())
