"""What a training run is set up from: the options, the run it trains, the data and the models by
model kind, and the stage plan. The trainer (trainer.py) calls these in `Trainer.setup` and
keeps the loop; nothing here holds state of its own.

    opts = TrainOptions(run="r1", resume="auto"); check_options(opts)
    name = choose_run(voice, opts) or default_run_name()
    refuse_fresh_start(run_dir, name, opts)          # a run with checkpoints needs --resume
    data = load_data(voice, cfg, log)                # VoiceData, or WorldVoiceData (model.acoustic)
    models = build_on_device(cfg, data, device)      # sovits / disc (None on the world path) / gpt
    stages, plan = stage_plan(cfg.train, opts.stage)
    amp, scaler = precision(cfg, device, warn)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voicelab.config import Config, TrainConfig
from voicelab.data.dataset import VoiceData
from voicelab.data.world_data import WorldVoiceData
from voicelab.errors import VoicelabError
from voicelab.models.build import Models, build_models, is_world
from voicelab.training.ema import EMA
from voicelab.training.initial_weights import load_initial_weights
from voicelab.training.precision import amp_dtype
from voicelab.training.schedules import PlateauReducer
from voicelab.training.validation import StageState
from voicelab.workspace import RunDir, Voice

STAGES = ("sovits", "gpt")


@dataclass
class TrainOptions:
    """What the `train` command asks for beyond the config."""

    run: str | None = None  # run name; None: a new timestamped run (or the latest with resume)
    stage: str | None = None  # "sovits" | "gpt" | None (both)
    from_path: Path | None = None  # weights only: a checkpoint .pt or an export .safetensors
    resume: str | None = None  # None | "auto" | a checkpoint path
    tensorboard: bool = True


def default_run_name() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S")


def check_options(opts: TrainOptions) -> None:
    """Refuse options that contradict each other, before anything is loaded."""
    if opts.stage not in (None, *STAGES):
        raise VoicelabError(f"--stage {opts.stage!r}: use sovits or gpt")
    if opts.from_path is not None and opts.resume is not None:
        raise VoicelabError("--from starts a new run from weights and --resume continues a run: use one")


def choose_run(voice: Voice, opts: TrainOptions) -> str | None:
    """The run's name: the one asked for; with `--resume auto` and none, the newest run (what
    "continue" means); else None (the caller names a new one)."""
    if opts.run is None and opts.resume == "auto" and voice.list_runs():
        return voice.list_runs()[-1]
    return opts.run


def refuse_fresh_start(run_dir: RunDir, name: str, opts: TrainOptions) -> None:
    """A start without --resume on a run that has checkpoints would overwrite it: refused
    (checked before any file is written, so the run's status stays as it was)."""
    if opts.resume is None and run_dir.has_checkpoints():
        raise VoicelabError(
            f"run {name} already has checkpoints: add --resume auto to continue it, or choose a "
            "new --run name (nothing was overwritten)"
        )


def load_data(voice: Voice, cfg: Config, warn: Callable[[str], None]) -> VoiceData | WorldVoiceData:
    """The voice's slices for cfg's model kind: aligned phones + WORLD features + d-vectors on
    the world path (unalignable clips skipped, each `warn`ed), spectrograms + audio otherwise."""
    if is_world(cfg):
        return WorldVoiceData.load(voice, cfg, log=warn)
    return VoiceData.load(voice, cfg)


def build_on_device(cfg: Config, data: VoiceData | WorldVoiceData, device: torch.device) -> Models:
    """The models of cfg (models.build, the single builder) on `device`. The world path's feature
    normalisation comes from this data; a resume or --from overrides it with the saved one."""
    models = build_models(cfg)
    if is_world(cfg):
        models.sovits.set_feature_stats(*data.feature_stats())
    models.sovits = models.sovits.to(device)
    models.disc = models.disc.to(device) if models.disc is not None else None
    models.gpt = models.gpt.to(device)
    return models


def stage_plan(t: TrainConfig, only: str | None) -> tuple[dict[str, StageState], list[str]]:
    """Each stage's state (total steps, plateau reducer, early stop) and the stages this
    invocation trains: both, or `only`, leaving out a stage of 0 steps."""
    totals = {"sovits": t.sovits_steps, "gpt": t.gpt_steps}
    stages = {
        s: StageState(s, totals[s], PlateauReducer(t.plateau_patience, t.plateau_factor),
                      t.early_stop_patience)  # fmt: skip
        for s in STAGES
    }
    return stages, [s for s in STAGES if only in (None, s) and stages[s].total > 0]


def start_from_weights(
    path: Path, cfg: Config, models: dict[str, torch.nn.Module], emas: dict[str, EMA]
) -> str:
    """--from: weights only into `models`, the EMAs restarted from them. Returns a log line."""
    note = load_initial_weights(path, cfg, models)
    for name, ema in emas.items():
        ema.reset(models[name])
    return f"initial weights from {path} ({note}); fresh optimisers"


def precision(
    cfg: Config, device: torch.device, warn: Callable[[str], None]
) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """(autocast dtype or None for fp32, GradScaler: enabled for fp16 only). bf16 / fp16 need
    CUDA: elsewhere training runs in fp32 and `warn` says so."""
    t = cfg.train
    dtype = amp_dtype(cfg, device)
    if t.precision in ("bf16", "fp16") and device.type != "cuda":
        warn(f"train.precision={t.precision} needs CUDA; training in fp32")
    return dtype, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)


def refuse_gpt_without_sovits(plan: list[str], progress: Any, opts: TrainOptions) -> None:
    """`--stage gpt` on a run that has not trained stage 1 and without --from has no acoustic
    model to extract tokens with: refused (progress: state.Progress after setup's resume)."""
    fresh = progress.stage == "sovits" and progress.stage_step == 0
    if plan == ["gpt"] and fresh and opts.from_path is None:
        raise VoicelabError(
            "--stage gpt needs a trained SoVITS: pass --from a checkpoint or export, or resume a "
            "run that finished the sovits stage (--resume auto)"
        )
