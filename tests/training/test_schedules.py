"""LR schedules: values at given steps, warmup, floors, plateau reduction."""

from __future__ import annotations

import math

import pytest
import torch

from voicelab.config import load_config
from voicelab.training.schedules import PlateauReducer, Schedule, lr_factor, set_lr


def test_warmup_is_linear_and_never_zero():
    f = [lr_factor(s, total_steps=100, warmup_steps=4, schedule="constant") for s in range(6)]
    assert f == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_reaches_floor_on_last_step():
    kw = dict(total_steps=110, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    mid = 10 + 99 / 2
    assert lr_factor(int(mid), **kw) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 49 / 99))
    )
    assert lr_factor(109, **kw) == pytest.approx(0.1)
    assert lr_factor(500, **kw) == pytest.approx(0.1)  # past the end: stays at the floor


def test_exponential_and_step_decay_with_floor():
    kw = dict(total_steps=1000, warmup_steps=0, gamma=0.5, min_lr_ratio=0.2)
    assert lr_factor(0, schedule="exponential", **kw) == 1.0
    assert lr_factor(1, schedule="exponential", **kw) == 0.5
    assert lr_factor(2, schedule="exponential", **kw) == pytest.approx(0.25)
    assert lr_factor(3, schedule="exponential", **kw) == pytest.approx(0.2)  # floored
    kw["step_every"] = 10
    assert [lr_factor(s, schedule="step", **kw) for s in (0, 9, 10, 19, 20, 30)] == [
        1.0,
        1.0,
        0.5,
        0.5,
        0.25,
        0.2,
    ]


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="cosine"):
        lr_factor(0, total_steps=10, schedule="linear")


def test_schedule_from_config_is_pure():
    cfg = load_config(
        "tiny", ["train.warmup_steps=2", "train.schedule=cosine", "train.min_lr_ratio=0.5"]
    )
    s = Schedule.from_config(cfg.train, total_steps=12)
    vals = [s(i) for i in range(12)]
    assert vals == [s(i) for i in range(12)]  # no hidden state
    assert vals[0] == 0.5 and vals[1] == 1.0 and vals[-1] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(vals[1:], vals[2:], strict=False))  # monotone after warmup


def test_plateau_reducer_state_roundtrip():
    p = PlateauReducer(patience=2, factor=0.5)
    assert not p.observe(1.0)
    assert not p.observe(1.0)
    assert p.observe(1.1) and p.scale == 0.5
    q = PlateauReducer(patience=2, factor=0.5)
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()
    assert not q.observe(0.5) and q.best == 0.5 and q.scale == 0.5


def test_plateau_off_never_changes():
    p = PlateauReducer(patience=0)
    for v in (1.0, 2.0, 3.0, 4.0):
        assert not p.observe(v)
    assert p.scale == 1.0


def test_set_lr_uses_base_lr():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [w], "base_lr": 0.1, "lr": 0.1}])
    assert set_lr(opt, 0.5) == [0.05]
    assert opt.param_groups[0]["lr"] == 0.05
