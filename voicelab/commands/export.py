"""`python -m voicelab export --voice NAME [--run RUN] [-o PATH]`: write an inference bundle."""

from __future__ import annotations

import argparse

from voicelab.commands.common import add_voice_arg, voice_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained run as <name>.safetensors + <name>.json (what synth loads)",
        description="Write the EMA weights of a run's newest intact checkpoint as a safetensors "
        "file plus a JSON with the config and versions, in workspace/VOICE/exports/. An existing "
        "export is never overwritten.",
    )
    add_voice_arg(p)
    p.add_argument("--run", help="run name (default: the run trained most recently)")
    p.add_argument("-o", "--out", help="export name (goes to exports/) or a path; "
                   "default: RUN-stepN")  # fmt: skip
    p.add_argument("--allow-untrained", action="store_true",
                   help="export even when the GPT stage has not started (speech will be babble)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voicelab.export import bundle_paths, export_run, load_bundle  # torch: only when run

    voice = voice_from_args(args)
    path = export_run(voice, run=args.run, out=args.out, allow_untrained_gpt=args.allow_untrained)
    meta = load_bundle(path).meta  # read back: what was written is loadable
    src = meta["source"]
    print(f"exported run {src['run']} step {src['step']} ({meta['weights']} weights)")
    print(f"  {path}")
    print(f"  {bundle_paths(path)[1]}")
    print(f"speak with: python -m voicelab synth --model {path} --text \"Hello.\" -o hello.wav")
    return 0
