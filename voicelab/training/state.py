"""What a training checkpoint holds, and where resume puts each part back.

Each stateful part gives and takes its own state (audiocraft's solvers do the same): the models
and optimisers their `state_dict`, each EMA its averaged weights (`EMA.weights` / `EMA.load_weights`),
each stage its plateau and early-stop bookkeeping (`StageState`), the run its counters
(`Progress`), the RNGs `rng.capture_rng`. `capture` assembles the checkpoint dict under the K_*
keys of checkpoint.py; `restore` is the one place resume reads it back, in this order:

    compatibility check -> model weights -> EMAs -> counters -> stages -> stage optimisers
    (built for the saved stage by the caller) -> GradScaler -> RNGs (last: nothing after them
    may draw a random number before training continues)

The discriminator is optional: a model kind without one (no adversarial training) saves and
restores no "disc" entry and no "d" optimiser. Checkpoint layout (format 1, unchanged since
f257dd1): models {sovits, disc?, gpt}; ema {sovits, gpt} (plain state dicts: the model's own
weights when EMA is off); optimizers {g, d?} in stage 1, {gpt} in stage 2; schedulers {stage:
{stage_step, plateau}}; extra {ema_updates, lr_scale, rollbacks, skipped_steps, stages, run}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voicelab import __version__
from voicelab.config import Config, config_to_dict
from voicelab.errors import VoicelabError
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.training.ema import EMA
from voicelab.training.rng import capture_rng, restore_rng
from voicelab.training.validation import StageState


def progress_field(name: str) -> property:
    """A property reading and writing `self.progress.<name>` (the Trainer's counters: one copy
    of each, in Progress)."""
    return property(lambda self: getattr(self.progress, name),
                    lambda self, v: setattr(self.progress, name, v))  # fmt: skip


@dataclass
class Progress:
    """Where a run stands: plain numbers, saved at the top level of the checkpoint and in extra."""

    stage: str = "sovits"
    global_step: int = 0  # optimiser steps over the whole run (both stages)
    stage_step: int = 0
    epoch: int = 0
    epoch_pos: int = 0  # batches already consumed in this epoch
    lr_scale: float = 1.0  # halved by each NaN rollback
    rollbacks: int = 0
    skipped_steps: int = 0
    start_weights: str = ""  # the file a run started from (--from / a base), for weight_blend
    blended: float = 0.0  # the share of trained weights the run's blend kept (0 = not blended)


@dataclass
class TrainParts:
    """Every stateful part of a training run (the raw modules, never their DDP wrappers)."""

    models: dict[str, nn.Module]  # "sovits", "disc" (absent without a discriminator), "gpt"
    emas: dict[str, EMA]  # "sovits", "gpt"
    optimizers: dict[str, torch.optim.Optimizer]  # the current stage's
    scaler: torch.amp.GradScaler
    progress: Progress
    stages: dict[str, StageState]
    last_metrics: dict[str, float] = field(default_factory=dict)


def capture(
    parts: TrainParts, cfg: Config, dataset_hash: str, run_name: str, val_loss: float | None
) -> dict[str, Any]:
    """The checkpoint dict of the run as it is now (tensors are the live ones: save it at once)."""
    p = parts.progress
    extra = {
        "ema_updates": {n: e.num_updates for n, e in parts.emas.items()},
        "lr_scale": p.lr_scale,
        "rollbacks": p.rollbacks,
        "skipped_steps": p.skipped_steps,
        "stages": {n: st.state_dict() for n, st in parts.stages.items()},
        "run": run_name,
    }
    if p.start_weights:  # only a run that started from weights (older checkpoints stay as they were)
        extra["start_weights"] = p.start_weights
    if p.blended:
        extra["blended"] = p.blended
    return {
        ck.K_FORMAT: ck.FORMAT_VERSION,
        ck.K_STAGE: p.stage,
        ck.K_STEP: p.global_step,
        ck.K_STAGE_STEP: p.stage_step,
        ck.K_EPOCH: p.epoch,
        ck.K_EPOCH_POS: p.epoch_pos,
        ck.K_MODELS: {n: m.state_dict() for n, m in parts.models.items()},
        ck.K_OPTIMIZERS: {k: o.state_dict() for k, o in parts.optimizers.items()},
        ck.K_SCHEDULERS: {
            n: {"stage_step": p.stage_step, "plateau": st.plateau.state_dict()}
            for n, st in parts.stages.items()
        },
        ck.K_SCALER: parts.scaler.state_dict() if parts.scaler.is_enabled() else {},
        # EMA weights as plain state dicts (what export reads); the model's own when EMA is off
        ck.K_EMA: {n: e.weights(parts.models[n]) for n, e in parts.emas.items()},
        ck.K_RNG: capture_rng(),
        ck.K_METRICS: dict(parts.last_metrics),
        ck.K_CONFIG: config_to_dict(cfg),
        ck.K_DATASET_HASH: dataset_hash,
        ck.K_VERSION: __version__,
        ck.K_VAL_LOSS: val_loss,
        ck.K_TIME: time.time(),
        ck.K_EXTRA: extra,
    }


def load_ema(state: dict[str, Any], name: str, ema: EMA) -> None:
    """Put a checkpoint's averaged weights of model `name` (and their update count) into `ema`."""
    extra = state.get(ck.K_EXTRA) or {}
    ema.load_weights(state[ck.K_EMA][name], int(extra.get("ema_updates", {}).get(name, 0)))


def resume_state(resume: str | None, run_dir: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The checkpoint state `--resume` asks for (None | "auto" | a path) and log lines.

    "auto": the newest intact checkpoint of the run (damaged newer ones are skipped and named),
    None when the run has none yet. Raises CheckpointError when checkpoints exist but none loads.
    """
    if resume is None:
        return None, []
    if resume != "auto":
        return ck.load_checkpoint(resume), [f"resuming from {resume}"]
    point = ck.find_resume(run_dir)
    if point is None:
        return None, [f"run {Path(run_dir).name} has no checkpoint yet: starting fresh"]
    notes = [f"skipped damaged checkpoint {path.name}: {why}" for path, why in point.skipped]
    return point.state, [*notes, f"resuming from {point.path.name}"]


def abandon_after(run_dir: Any, step: int) -> str | None:
    """A run continues from global step `step` (a resume, a rollback): the newer checkpoints
    and metrics records belong to an abandoned timeline. They move aside (checkpoints/superseded/,
    metrics.superseded.jsonl), kept: never pruned, overwritten or resumed from. Returns a log line."""
    moved = ck.supersede_after(run_dir, step)
    dropped = runfiles.truncate_metrics(run_dir, step)
    if not (moved or dropped):
        return None
    return (f"continuing from step {step}: {len(moved)} newer checkpoint(s) moved to "
            f"{ck.CKPT_DIR}/{ck.SUPERSEDED}/, {dropped} newer metrics record(s) to "
            f"{runfiles.METRICS_SUPERSEDED}")  # fmt: skip


def check_rollbacks(why: str, rollbacks: int, max_rollbacks: int) -> None:
    """A run diverging (`why`) for the `rollbacks`-th time: past max_rollbacks it stops, saying
    what to try instead of halving the learning rate again."""
    if rollbacks > max_rollbacks:
        raise VoicelabError(
            f"training keeps diverging ({why} after {max_rollbacks} rollbacks, each halving the "
            "learning rate): lower train.lr_g / train.lr_d / train.lr_gpt, set "
            "train.precision=fp32, and check the slices for clipped or silent audio"
        )


def last_good(run_dir: Any, why: str, step: int) -> ck.ResumePoint:
    """Where a run that diverged (`why`) at global step `step` goes back to: its newest intact
    checkpoint. Raises VoicelabError when it diverged before the first one."""
    point = ck.find_resume(run_dir)
    if point is None:
        raise VoicelabError(
            f"training diverged ({why} at step {step}) before the first checkpoint: lower the "
            "learning rates (train.lr_g, train.lr_d, train.lr_gpt) or set train.precision=fp32"
        )
    return point


def restore(
    state: dict[str, Any],
    parts: TrainParts,
    cfg: Config,
    dataset_hash: str,
    build_stage: Callable[[str], dict[str, torch.optim.Optimizer]],
) -> list[str]:
    """Continue a run: put every part of `state` back. Returns warnings for the log.

    `build_stage(stage)` builds (and returns) the optimisers of the saved stage, which then load
    their saved state. Raises CheckpointError when the architecture differs.
    """
    ck.check_compatible(state[ck.K_CONFIG], config_to_dict(cfg))
    warnings = []
    if state[ck.K_DATASET_HASH] != dataset_hash:
        warnings.append(
            "the voice's slices or transcripts changed since this checkpoint: training "
            "continues on the current data (the resume is not exact)"
        )
    for name, module in parts.models.items():
        module.load_state_dict(state[ck.K_MODELS][name])
    for name, ema in parts.emas.items():
        load_ema(state, name, ema)
    extra = state.get(ck.K_EXTRA) or {}

    p = parts.progress
    p.stage, p.global_step = state[ck.K_STAGE], state[ck.K_STEP]
    p.stage_step = state[ck.K_STAGE_STEP]
    p.epoch, p.epoch_pos = state[ck.K_EPOCH], state[ck.K_EPOCH_POS]
    p.lr_scale = float(extra.get("lr_scale", 1.0))
    p.rollbacks = max(p.rollbacks, int(extra.get("rollbacks", 0)))
    p.skipped_steps = int(extra.get("skipped_steps", 0))
    p.start_weights = str(extra.get("start_weights", ""))
    p.blended = float(extra.get("blended", 0.0))
    for n, st in parts.stages.items():
        sched = state[ck.K_SCHEDULERS].get(n)
        st.load_state_dict((extra.get("stages") or {}).get(n, {}),
                           sched["plateau"] if sched else None)  # fmt: skip
    parts.last_metrics = dict(state.get(ck.K_METRICS) or {})

    parts.optimizers = build_stage(p.stage)
    for k, sd in state[ck.K_OPTIMIZERS].items():
        if k in parts.optimizers:
            parts.optimizers[k].load_state_dict(sd)
    if parts.scaler.is_enabled() and state[ck.K_SCALER]:
        parts.scaler.load_state_dict(state[ck.K_SCALER])
    restore_rng(state[ck.K_RNG])
    return warnings



