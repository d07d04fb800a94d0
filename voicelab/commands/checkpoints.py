"""`python -m voicelab checkpoints --voice NAME [--run RUN] [--json]`.

Lists a run's checkpoints (newest first) with step, stage, epoch position, time, losses, size,
and which one `train --resume auto` would take; damaged ones are shown with the reason they
would be skipped. Every file is loaded and verified, as resume does.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from voicelab.commands.common import add_voice_arg, voice_from_args
from voicelab.errors import VoicelabError

if TYPE_CHECKING:  # the checkpoint module imports torch: only load it when the verb runs
    from voicelab.training.checkpoint import CheckpointInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "checkpoints",
        help="list a run's checkpoints and which one resume would take",
        description="List the checkpoints of a training run, newest first, with step, stage, "
        "time and losses. '>' marks the one `train --resume auto` would continue from; 'x' marks "
        "damaged files, which resume skips (with the reason shown).",
    )
    add_voice_arg(p)
    p.add_argument("--run", help="run name (default: the voice's most recently changed run)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def resume_choice(infos: list[CheckpointInfo]) -> CheckpointInfo | None:
    """What find_resume takes: the newest checkpoint without a problem."""
    return next((i for i in reversed(infos) if i.problem is None), None)


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _row(info: CheckpointInfo, chosen: CheckpointInfo | None) -> str:
    mark = ">" if info is chosen else ("x" if info.problem else " ")
    if info.problem:
        return f"{mark} {info.step:>9}  damaged, skipped by resume: {info.problem}"
    saved = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.time)) if info.time else "?"
    losses = " ".join(f"{k}={v:.4g}" for k, v in sorted(info.losses.items())) or "-"
    val = f"{info.val_loss:.4g}" if info.val_loss is not None else "-"
    where = f"{info.epoch}:{info.epoch_position}"
    tags = " ".join(t for t, on in (("latest", info.is_latest), ("best", info.is_best)) if on)
    return (
        f"{mark} {info.step:>9}  {info.stage or '?':<7} {info.stage_step!s:>7}  {where:>8}  "
        f"{saved}  {human_size(info.size_bytes):>9}  val={val}  {losses}  {tags}".rstrip()
    )


def run(args: argparse.Namespace) -> int:
    from voicelab.training.checkpoint import list_checkpoints

    voice = voice_from_args(args)
    runs = voice.list_runs()
    if args.run is None:
        if not runs:
            raise VoicelabError(
                f"voice {voice.name!r} has no training runs yet: start one with "
                f"`python -m voicelab train --voice {voice.name}`"
            )
        args.run = runs[-1]
    run_dir = voice.run(args.run)
    if not run_dir.exists():
        raise VoicelabError(
            f"voice {voice.name!r} has no run {args.run!r} (runs: {', '.join(runs) or 'none'})"
        )
    infos = list_checkpoints(run_dir, verify=True)
    chosen = resume_choice(infos)
    if args.json:
        out = [
            {**{k: v for k, v in vars(i).items() if k != "path"}, "file": i.path.name,
             "resume": i is chosen}
            for i in reversed(infos)
        ]  # fmt: skip
        print(json.dumps({"voice": voice.name, "run": args.run, "checkpoints": out}, indent=2))
        return 0
    where = run_dir.checkpoints
    print(f"voice {voice.name}, run {args.run}: {len(infos)} checkpoint(s) in {where}")
    if not infos:
        print("no checkpoints yet: `train` would start this run from the beginning")
        return 0
    print(f"  {'step':>9}  {'stage':<7} {'st.step':>7}  {'ep:pos':>8}  {'saved':<19}  "
          f"{'size':>9}  losses")  # fmt: skip
    for info in reversed(infos):
        print(_row(info, chosen))
    if chosen is None:
        print("resume: none of these checkpoints can be used; `train` would stop with an error "
              "(restore them from a backup, or start a new --run)")  # fmt: skip
        return 1
    skipped = [i for i in infos if i.problem and i.step > chosen.step]
    why = "the newest that loads and verifies"
    if skipped:
        why += f"; newer damaged one(s) skipped: {', '.join(i.path.name for i in skipped)}"
    print(f"resume: would continue from {chosen.path.name} (step {chosen.step}, {why})")
    return 0
