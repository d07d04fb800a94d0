"""`python -m voicelab slice --voice NAME`: cut clean/ into utterances (slices/ + dataset.list)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from voicelab.commands.common import add_config_args, add_voice_arg, resolve_config, voice_from_args
from voicelab.commands.prepare import TqdmProgress
from voicelab.errors import VoicelabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "slice",
        help="cut the cleaned recordings into utterances (slices/ + dataset.list)",
        description="Cut every clean/*.wav at its pauses (GPT-SoVITS's RMS slicer, or silero "
        "VAD with --method vad) into slices/*.wav and write slices/dataset.list "
        "(path|speaker|lang|text, text empty until transcribed). Texts already typed are kept "
        "for slices whose audio does not change. --from-list imports an existing GPT-SoVITS "
        ".list with its audio instead. Settings: [slice] in the preset or --set slice.KEY=VALUE.",
    )
    add_voice_arg(p, must_exist=False)  # --from-list creates the voice; run() checks otherwise
    p.add_argument("--method", choices=["rms", "vad"], help="override slice.method")
    p.add_argument("--from-list", metavar="FILE", help="import this .list and its audio instead")
    p.add_argument(
        "--force",
        action="store_true",
        help="re-slice even if typed texts would be lost (the old list is kept as a .bak file)",
    )
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here so that `--help` of every verb does not wait for torch and scipy
    from voicelab.audio.pipeline import import_list, slice_voice

    cfg = resolve_config(args)
    if args.method:
        cfg = dataclasses.replace(cfg, slice=dataclasses.replace(cfg.slice, method=args.method))
    if args.from_list:
        voice = voice_from_args(args, must_exist=False)
        with TqdmProgress("import", unit="clip") as progress:
            res = import_list(voice, args.from_list, cfg, progress=progress)
        for err in res.errors:
            print(f"FAILED: {err}", file=sys.stderr)
        print(
            f"imported {res.added} clip(s) into {voice.slices} ({res.skipped} already there); "
            f"dataset.list has {len(res.entries)} entries"
        )
        if res.errors:
            raise VoicelabError(
                f"{len(res.errors)} clip(s) could not be imported (first: {res.errors[0]})"
            )
        return 0
    voice = voice_from_args(args)
    with TqdmProgress("slice") as progress:
        entries = slice_voice(voice, cfg, progress=progress, force=args.force)
    texts = sum(1 for e in entries if e.text.strip())
    print(
        f"{len(entries)} slices in {voice.slices} ({cfg.slice.method} slicer); "
        f"{texts} with text, {len(entries) - texts} still need a transcript"
    )
    return 0
