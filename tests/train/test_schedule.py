"""The learning-rate schedule, docs/training.md (gramgan.train.schedule)."""

from __future__ import annotations

import math

import pytest
import torch

from gramgan.train.schedule import ScheduleConfig, WarmupCosineScheduler, lr_at

PAPER = ScheduleConfig()  # base 1e-4, min 1e-7, warm-up 2000, cycles of 200k
TOTAL = 600_000


def test_paper_schedule_key_points():
    assert lr_at(0, PAPER, TOTAL) == 0.0  # warm-up starts at 0
    assert lr_at(1000, PAPER, TOTAL) == pytest.approx(5e-5, rel=1e-12)  # linear
    assert lr_at(2000, PAPER, TOTAL) == pytest.approx(1e-4, rel=1e-12)  # warm-up end: the peak
    mid = 2000 + (200_000 - 2000) // 2  # half-way through the cosine
    assert lr_at(mid, PAPER, TOTAL) == pytest.approx(1e-7 + (1e-4 - 1e-7) / 2, rel=1e-12)
    quarter = 2000 + (200_000 - 2000) // 4
    expected = 1e-7 + (1e-4 - 1e-7) * 0.5 * (1 + math.cos(math.pi / 4))
    assert lr_at(quarter, PAPER, TOTAL) == pytest.approx(expected, rel=1e-12)
    assert lr_at(199_999, PAPER, TOTAL) == pytest.approx(1e-7, rel=1e-3)  # end of cycle 1
    assert lr_at(200_000, PAPER, TOTAL) == 0.0  # restart: warm-up again
    assert lr_at(201_000, PAPER, TOTAL) == pytest.approx(5e-5, rel=1e-12)
    assert lr_at(402_000, PAPER, TOTAL) == pytest.approx(1e-4, rel=1e-12)  # third cycle's peak
    assert lr_at(600_000, PAPER, TOTAL) == 1e-7  # the end
    assert lr_at(700_000, PAPER, TOTAL) == 1e-7


def test_explicit_cycle_lengths_last_one_repeats():
    cfg = ScheduleConfig(base_lr=1.0, min_lr=0.0, warmup_iters=2, cycle_iters=[10, 4])
    values = [lr_at(i, cfg, 100) for i in range(22)]
    assert values[0] == 0.0 and values[2] == 1.0 and values[10] == 0.0 and values[12] == 1.0
    assert values[14] == 0.0 and values[18] == 0.0 and values[16] == 1.0  # cycles of 4 from 10 on
    assert values[13] == pytest.approx(0.5)


def test_scheduler_sets_param_groups_and_resumes():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=123.0)
    sched = WarmupCosineScheduler(opt, PAPER, TOTAL)
    assert opt.param_groups[0]["lr"] == 0.0
    for _ in range(2000):
        sched.step()
    assert sched.get_last_lr() == [pytest.approx(1e-4)]
    state = sched.state_dict()
    assert state == {"last_iter": 2000}
    other = WarmupCosineScheduler(torch.optim.Adam([param], lr=5.0), PAPER, TOTAL)
    other.load_state_dict(state)
    assert other.get_last_lr() == sched.get_last_lr()


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="warmup_iters"):
        ScheduleConfig(warmup_iters=300_000)
    with pytest.raises(ValueError, match="cycle_iters"):
        ScheduleConfig(cycle_iters=[0])
    with pytest.raises(ValueError, match="iteration"):
        lr_at(-1, PAPER, TOTAL)


def test_per_cycle_peak_rates():
    cfg = ScheduleConfig(base_lr=9.0, min_lr=0.0, warmup_iters=2, cycle_iters=[10, 4], cycle_lrs=[1.0, 0.1])
    assert lr_at(2, cfg, 100) == 1.0 and lr_at(12, cfg, 100) == pytest.approx(0.1)
    assert lr_at(16, cfg, 100) == pytest.approx(0.1)  # the last rate repeats with the last length
    assert lr_at(11, cfg, 100) == pytest.approx(0.05)
