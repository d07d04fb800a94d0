"""`python -m voicelab train --voice NAME --preset PRESET [...]`: train both stages (or one).

Also runs under `torchrun --nproc_per_node=N -m voicelab train ...` (DDP). The exit code says how
it ended: 0 finished, 1 error, 3 paused/stopped on request, 130 Ctrl-C, 143 SIGTERM (a
checkpoint is written before any of the last three; continue with `--resume auto`).
"""

from __future__ import annotations

import argparse
import json

from voicelab.commands.common import add_config_args, add_voice_arg, voice_from_args
from voicelab.config import load_config
from voicelab.workspace import Voice


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a voice: SoVITS, then token extraction, then GPT",
        description="Train a voice in two stages (SoVITS acoustic model, then the GPT semantic "
        "prior). Progress goes to workspace/VOICE/runs/RUN/ (status.json, metrics.jsonl, "
        "train.log, samples/, checkpoints/). Ctrl-C saves a checkpoint and stops; continue with "
        "--resume auto.",
    )
    add_voice_arg(p)
    add_config_args(p)
    p.add_argument("--run", default=None, help="run name (default: a new timestamped run; with "
                   "--resume auto, the voice's newest run)")  # fmt: skip
    p.add_argument("--from", dest="from_value", default=None, metavar="auto|base|none|PATH",
                   help="initial weights of a new run (optimisers start fresh): 'auto' (default) "
                   "= the shipped pretrained base matching the preset if there is one, else "
                   "scratch; 'base' = that base or an error; 'none' = scratch; or a checkpoint "
                   ".pt of any run / an export or base .safetensors")  # fmt: skip
    p.add_argument("--stage", choices=("sovits", "gpt"), default=None,
                   help="train only this stage (default: both)")  # fmt: skip
    p.add_argument(
        "--sovits-steps",
        type=int,
        default=None,
        metavar="N",
        help="optimiser steps of stage 1 (0 skips it); same as --set train.sovits_steps=N",
    )
    p.add_argument(
        "--gpt-steps",
        type=int,
        default=None,
        metavar="N",
        help="optimiser steps of stage 2 (0 skips it); same as --set train.gpt_steps=N",
    )
    p.add_argument(
        "--save-every",
        type=int,
        default=None,
        metavar="N",
        help="checkpoint every N steps; same as --set train.save_every=N",
    )
    p.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue a run: 'auto' = the newest intact checkpoint of --run (falls "
                   "back to an earlier one if it is damaged), or a checkpoint path")  # fmt: skip
    p.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not write TensorBoard logs even when tensorboard is installed",
    )
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The --set list plus the step/save shortcuts (the shortcuts win: they are more specific)."""
    out = list(args.overrides)
    for flag, key in (
        ("sovits_steps", "sovits_steps"),
        ("gpt_steps", "gpt_steps"),
        ("save_every", "save_every"),
    ):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"train.{key}={value}")
    return out


def run_was_finetuned(voice: Voice, run: str | None) -> bool:
    """Whether the run `--resume` continues (`run`, else the newest) started from pretrained
    weights: its saved config says so (train.finetuned). False when there is none to read."""
    runs = voice.list_runs()
    name = run if run is not None else (runs[-1] if runs else None)
    path = voice.run(name).config if name else None
    if path is None or not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # the trainer reports a damaged run itself
    return bool(saved.get("train", {}).get("finetuned", False))


def run(args: argparse.Namespace) -> int:
    from voicelab.workspace import validate_name

    if args.run is not None:  # "" must not quietly mean "a new run" (issue 16, item 14)
        validate_name(args.run, "run")
    from voicelab.base import resolve_from
    from voicelab.training.trainer import TrainOptions, train_voice  # torch import only here

    overrides = overrides_from_args(args)
    cfg = load_config(args.preset, overrides)
    voice = voice_from_args(args, must_exist=True)
    if args.resume is not None and args.from_value is None:
        from_path = None  # continuing a run restores its own weights; no base lookup
        if run_was_finetuned(voice, args.run):  # and keeps the schedule it started with
            cfg = load_config(args.preset, overrides, finetune=True)
    else:
        from_path = resolve_from(args.from_value, cfg)
        if from_path is not None:  # pretrained weights: the preset's [finetune] schedule
            cfg = load_config(args.preset, overrides, finetune=True)
    opts = TrainOptions(
        run=args.run,
        stage=args.stage,
        from_path=from_path,
        resume=args.resume,
        tensorboard=not args.no_tensorboard,
    )
    return train_voice(voice, cfg, opts)
