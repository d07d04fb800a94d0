"""Learning-rate schedules as pure `step -> factor` functions, plus a plateau reducer.

The LR an optimiser group uses at stage step `s` (0-based count of optimiser steps already taken)
is `base_lr * group_mult * lr_factor(s) * plateau.scale * rollback_scale`. Nothing here keeps
hidden state: a schedule is a function of the step, and the plateau reducer's state is three plain
numbers, so a checkpoint restores the LR exactly (as nanoGPT does it).

    sched = Schedule.from_config(cfg.train, total_steps=2000)
    sched(0), sched(99), sched(1999)   # warmup ramp, peak, floor
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

SCHEDULES = ("cosine", "exponential", "step", "constant")


def lr_factor(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
    gamma: float = 1.0,
    step_every: int = 1,
) -> float:
    """Multiplier of the base LR for stage step `step` (0-based).

    Warmup is linear from 1/warmup_steps to 1 over the first `warmup_steps` steps (never exactly
    0, so the first step already moves). After warmup:
      cosine:      min + (1 - min) * (1 + cos(pi * p)) / 2, p = progress over the remaining steps
      exponential: gamma ** (steps after warmup), floored at min
      step:        gamma ** ((steps after warmup) // step_every), floored at min
      constant:    1
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    step = max(0, int(step))
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    after = step - warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps - 1)  # the last step reaches the floor exactly
        p = min(1.0, after / span)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "exponential":
        return max(min_lr_ratio, gamma**after)
    return max(min_lr_ratio, gamma ** (after // max(1, step_every)))


@dataclass(frozen=True)
class Schedule:
    """A `lr_factor` with its settings bound: call it with the stage step."""

    total_steps: int
    warmup_steps: int
    schedule: str
    min_lr_ratio: float
    gamma: float
    step_every: int

    @classmethod
    def from_config(cls, train_cfg: Any, total_steps: int) -> Schedule:
        return cls(
            total_steps=int(total_steps),
            warmup_steps=int(train_cfg.warmup_steps),
            schedule=str(train_cfg.schedule),
            min_lr_ratio=float(train_cfg.min_lr_ratio),
            gamma=float(train_cfg.lr_decay_gamma),
            step_every=int(train_cfg.lr_step_every),
        )

    def __call__(self, step: int) -> float:
        return lr_factor(
            step,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            schedule=self.schedule,
            min_lr_ratio=self.min_lr_ratio,
            gamma=self.gamma,
            step_every=self.step_every,
        )


class PlateauReducer:
    """ReduceLROnPlateau on the validation loss, with state = (best, bad_evals, scale).

    `observe(val_loss)` after each evaluation: an improvement (by more than `threshold`, relative)
    resets the count; `patience` evaluations without one multiply `scale` by `factor` (never below
    `min_scale`). patience = 0 disables it (scale stays 1).
    """

    def __init__(
        self, patience: int, factor: float = 0.5, threshold: float = 1e-3, min_scale: float = 0.01
    ) -> None:
        self.patience = int(patience)
        self.factor = float(factor)
        self.threshold = float(threshold)
        self.min_scale = float(min_scale)
        self.best = math.inf
        self.bad_evals = 0
        self.scale = 1.0

    def observe(self, val_loss: float) -> bool:
        """Record one validation loss; True when this call lowered the scale."""
        if self.patience <= 0 or not math.isfinite(val_loss):
            return False
        if val_loss < self.best * (1.0 - self.threshold):
            self.best = float(val_loss)
            self.bad_evals = 0
            return False
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            self.bad_evals = 0
            new = max(self.min_scale, self.scale * self.factor)
            lowered = new < self.scale
            self.scale = new
            return lowered
        return False

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "bad_evals": self.bad_evals, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_evals = int(state["bad_evals"])
        self.scale = float(state["scale"])


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> list[float]:
    """Set every group's lr to its `base_lr` (set by voicelab.training.optim) times `factor`.

    Returns the new LRs, one per group, in group order (what metrics.jsonl records).
    """
    lrs = []
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
        lrs.append(group["lr"])
    return lrs
