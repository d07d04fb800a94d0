"""`python -m voicelab transcribe --voice NAME [--from-list FILE] [--export FILE]`.

Without options: fill the empty texts of English slices with offline speech recognition
(pocketsphinx), marked unverified. `--from-list` imports a GPT-SoVITS .list's texts for slices
with the same file names; `--export` writes the transcribed slices as a .list.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from voicelab.commands.common import add_voice_arg, voice_from_args
from voicelab.data import transcripts


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="fill empty slice texts with speech recognition, import or export a .list",
        description="Transcripts of a voice's slices (slices/dataset.list). Speech recognition "
        "(English, offline) only fills EMPTY texts and marks them unverified; texts you typed or "
        "imported are never replaced unless you pass --overwrite with --from-list.",
    )
    add_voice_arg(p)
    p.add_argument("--from-list", metavar="FILE",
                   help="import texts from a GPT-SoVITS .list (path|speaker|lang|text), matched "
                   "by file name; no speech recognition is run")
    p.add_argument("--overwrite", action="store_true",
                   help="with --from-list: also replace texts you typed or imported before")
    p.add_argument("--export", metavar="FILE", help="write the transcribed slices to FILE (.list)")
    p.add_argument("--force", action="store_true",
                   help="with --export: replace FILE if it exists (never a voice's own "
                   "dataset.list, never a file in raw/)")
    p.add_argument("--verified-only", action="store_true",
                   help="with --export: leave out unverified speech-recognition texts")
    p.add_argument("--redo-unverified", action="store_true",
                   help="also re-recognise texts that speech recognition wrote and nobody checked")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    voice = voice_from_args(args)
    if args.overwrite and not args.from_list:
        print("note: --overwrite only applies to --from-list", file=sys.stderr)
    if args.export:  # refuse a bad target before importing or recognising anything
        transcripts.check_export_target(voice, args.export, args.force)
    if args.force and not args.export:
        print("note: --force only applies to --export", file=sys.stderr)
    if args.from_list:
        print(transcripts.import_list(voice, args.from_list, overwrite=args.overwrite).message())
    elif not args.export:
        bar = tqdm(total=0, unit="slice", file=sys.stderr, desc="transcribe")

        def progress(done: int, total: int, message: str = "") -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            summary = transcripts.transcribe_voice(voice, progress, args.redo_unverified)
        finally:
            bar.close()
        print(summary.message())
        if summary.failed:
            for f in summary.failed:
                print(f"warning: {f}", file=sys.stderr)
    if args.export:
        out, n = transcripts.export_list(voice, args.export, include_unverified=not args.verified_only,
                                         force=args.force)
        print(f"wrote {n} line(s) to {out}")
    return 0
