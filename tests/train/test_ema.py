"""The generator's EMA (gramgan.train.ema)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gramgan.train.ema import ModelEMA


def test_ema_follows_the_formula_and_copies_integer_buffers():
    model = nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = ModelEMA(model, decay=0.9)
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training
    with torch.no_grad():
        model.weight.fill_(3.0)
    model.num_batches_tracked += 5
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((2,), 0.9 * 1.0 + 0.1 * 3.0))
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((2,), 0.9 * 1.2 + 0.1 * 3.0))
    assert int(ema.module.num_batches_tracked) == 5
    other = ModelEMA(nn.BatchNorm1d(2), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(model, decay=1.5)
