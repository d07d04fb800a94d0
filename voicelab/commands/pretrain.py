"""`python -m voicelab pretrain`: train a multi-speaker base on a corpus, or ship one.

    python -m voicelab pretrain --corpus DIR --preset base [--run R] [--resume auto]
    python -m voicelab pretrain --ship RUN_DIR_OR_CHECKPOINT [-o assets/base] [--name base]

Training writes to VOICELAB_HOME/_pretrain/<corpus name>/runs/RUN/ like any voice (status.json,
metrics.jsonl, samples, checkpoints), so the app's Train tab can follow it too. Exit codes as
`train`: 0 finished, 1 error, 3 paused, 130 Ctrl-C, 143 SIGTERM (a checkpoint is written first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voicelab.commands.common import add_config_args
from voicelab.config import load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="train a multi-speaker base model on a corpus, or ship one to assets/base",
        description="Train both stages on a corpus built by `python -m voicelab corpus` (many "
        "speakers), resumable with --resume auto like any run; then --ship the run as the base "
        "that few-shot training starts from (fp16 safetensors + JSON + model card, at most "
        "50 MB with its model card). The recipe: docs/pretraining.md.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--corpus", type=Path, metavar="DIR",
                      help="corpus folder (DIR/corpus.list + audio) to pretrain on")  # fmt: skip
    what.add_argument("--ship", type=Path, metavar="RUN_DIR_OR_CHECKPOINT",
                      help="write this pretraining run's newest intact checkpoint (or this "
                      "checkpoint) as a base")  # fmt: skip
    add_config_args(p, default_preset="base")
    g = p.add_argument_group("pretraining (with --corpus)")
    g.add_argument("--name", default=None, help="training folder VOICELAB_HOME/_pretrain/NAME "
                   "(default: the corpus folder's name); with --ship: the base's file name "
                   "(default base)")  # fmt: skip
    g.add_argument("--run", default=None, help="run name (default: a new timestamped run; with "
                   "--resume auto, the newest run)")  # fmt: skip
    g.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue: 'auto' = the newest intact checkpoint of --run, or a path")
    g.add_argument("--from", dest="from_path", type=Path, default=None, metavar="PATH",
                   help="start from these weights only (e.g. an earlier base, to improve it)")
    g.add_argument("--sovits-steps", type=int, default=None, metavar="N",
                   help="stage 1 steps; same as --set train.sovits_steps=N")
    g.add_argument("--gpt-steps", type=int, default=None, metavar="N",
                   help="stage 2 steps; same as --set train.gpt_steps=N")
    g.add_argument("--save-every", type=int, default=None, metavar="N",
                   help="checkpoint every N steps; same as --set train.save_every=N")
    g.add_argument("--allow-dev-voices", action="store_true",
                   help="accept development voices / held-out sentences in the corpus (tests "
                   "only: such a base cannot be evaluated on them)")  # fmt: skip
    g.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    s = p.add_argument_group("shipping (with --ship)")
    s.add_argument("-o", "--out", type=Path, default=None,
                   help="folder for the base (default assets/base, or $VOICELAB_BASE_DIR)")
    s.add_argument("--max-mb", type=float, default=None,
                   help="size cap of weights + JSON + model card in MB (default 50)")
    s.add_argument("--force", action="store_true", help="replace a base of the same name")
    s.add_argument("--licence", default=None, help="the licence you give the weights (model card)")
    s.add_argument("--allow-unverified-licence", action="store_true",
                   help="ship although the corpus has no corpus.json marking every source as "
                   "shippable (only after checking every licence yourself)")  # fmt: skip
    s.add_argument("--eval", dest="evals", type=Path, action="append", default=[],
                   metavar="EVAL_JSON", help="eval.json (or its folder) of `python -m voicelab "
                   "eval` on an unseen voice fine-tuned from this base: goes into the model card "
                   "(repeatable)")  # fmt: skip
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """--set plus the step/save shortcuts (the shortcuts win: they are more specific)."""
    out = list(args.overrides)
    for flag in ("sovits_steps", "gpt_steps", "save_every"):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"train.{flag}={value}")
    return out


def run(args: argparse.Namespace) -> int:
    from voicelab.base import discriminators_note
    from voicelab.pretrain import pretrain, ship_base  # torch is imported only here

    if args.ship is not None:
        r = ship_base(
            args.ship, out=args.out, name=args.name or "base", max_mb=args.max_mb,
            force=args.force, allow_unverified_licence=args.allow_unverified_licence,
            licence=args.licence, evals=args.evals,
        )  # fmt: skip
        st = r.meta["steps"]
        print(f"shipped {r.weights} ({r.total_bytes / 1e6:.1f} MB with its JSON and model card; SoVITS "
              f"{st['sovits']} + GPT {st['gpt']} steps; discriminators "
              f"{discriminators_note(r.meta)}); model card {r.card}")  # fmt: skip
        return 0
    cfg = load_config(args.preset, overrides_from_args(args))
    return pretrain(
        args.corpus, cfg, run=args.run, resume=args.resume, name=args.name,
        from_path=args.from_path, allow_dev_voices=args.allow_dev_voices,
        tensorboard=not args.no_tensorboard,
    )  # fmt: skip
