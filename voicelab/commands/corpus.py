"""`python -m voicelab corpus --out DIR ...`: build a multi-speaker base corpus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voicelab.commands.common import add_config_args, resolve_config
from voicelab.commands.prepare import TqdmProgress
from voicelab.errors import VoicelabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "corpus",
        help="build a multi-speaker training corpus (corpora on disk + offline TTS voices)",
        description="Build OUT/corpus.list + OUT/wavs/ (cleaned like any voice: [audio] settings, "
        "edge silences as the slicer leaves them) from corpora on disk, GPT-SoVITS .list files "
        "and the offline TTS voices installed here, which read varied sentences at varied rates "
        "and pitches, plus WORLD pseudo-speakers of them. The development voices and sentences of "
        "../shared/fixtures and the held-out evaluation voices (flite awb, MBROLA, Pico en-GB) "
        "are always left out. Writes OUT/corpus.json and OUT/MODEL_CARD.md listing every source, "
        "its licence and its measured pocketsphinx WER. "
        "Re-running continues an interrupted build (existing clips are reused).",
    )
    p.add_argument("--out", type=Path, help="output folder (created)")
    p.add_argument("--ljspeech", type=Path, metavar="DIR", help="LJSpeech-1.1 folder (metadata.csv + wavs/)")
    p.add_argument("--libritts", type=Path, metavar="DIR", help="LibriTTS or LibriTTS-R folder")
    p.add_argument("--vctk", type=Path, metavar="DIR", help="VCTK folder (txt/ + wav48*/)")
    p.add_argument("--aishell3", type=Path, metavar="DIR", help="AISHELL-3 folder (train/ test/)")
    p.add_argument("--asterisk", type=Path, nargs="?", const=Path("/usr/share/asterisk/sounds/en"),
                   metavar="DIR", help="the Asterisk English prompts (one human speaker; default "
                   "folder: /usr/share/asterisk/sounds/en, from asterisk-core-sounds-en-g722)")  # fmt: skip
    p.add_argument("--list", dest="lists", type=Path, action="append", default=[], metavar="FILE",
                   help="a GPT-SoVITS .list with its audio (repeatable)")  # fmt: skip
    p.add_argument("--tts", default="", metavar="ENGINES",
                   help="comma-separated TTS engines whose every usable voice reads: "
                   "flite,festival,rhvoice,pico,espeak, or 'all' (every installed engine but espeak)")
    p.add_argument("--tts-voice", action="append", default=[], metavar="ENGINE:VOICE",
                   help="one TTS voice, e.g. flite:kal16 or espeak:en-gb+f2 (repeatable)")  # fmt: skip
    p.add_argument("--sentences", type=Path, metavar="FILE",
                   help="English sentences for the TTS voices, one a line (default: built-in)")  # fmt: skip
    p.add_argument("--sentences-zh", type=Path, metavar="FILE", help="Mandarin sentences (default: built-in)")
    p.add_argument("--max-per-voice", type=int, default=100, metavar="N",
                   help="at most N clips per speaker (0 = no limit; default 100)")  # fmt: skip
    p.add_argument("--pseudo", action="append", default=[], metavar="SPEAKER:F0:WARP",
                   help="a WORLD pseudo-speaker of a speaker of this build: F0 scaled by F0, "
                   "spectral envelope warped by WARP (e.g. rhvoice_bdl:1.3:1.12); admitted only "
                   "when its pocketsphinx WER stays within 5 points of its source's (repeatable)")
    p.add_argument("--wer-clips", type=int, default=12, metavar="N",
                   help="probe clips per speaker for the pocketsphinx WER in corpus.json "
                   "(default 12; 0 = none, and then no pseudo-speaker is admitted)")
    p.add_argument("--seed", type=int, default=1234, help="which sentences / prosody each voice gets")
    p.add_argument("--list-voices", action="store_true",
                   help="show the TTS engines and voices available here, then stop")  # fmt: skip
    add_config_args(p)
    p.set_defaults(func=run)


def list_voices() -> int:
    """One line per engine: its usable voices, the ones left out and why, or what is missing."""
    from voicelab.corpus import tts

    for engine in [*tts.ENGINES, "mbrola"]:
        print(tts.engine_status(engine))
    return 0


def run(args: argparse.Namespace) -> int:
    from voicelab.corpus.build import build_corpus

    if args.list_voices:
        return list_voices()
    if args.out is None:
        raise VoicelabError("give --out DIR: the folder the corpus is written to")
    cfg = resolve_config(args)
    corpora = {k: getattr(args, k) for k in ("ljspeech", "libritts", "vctk", "aishell3", "asterisk")
               if getattr(args, k)}  # fmt: skip
    engines = [e.strip() for e in args.tts.split(",") if e.strip()]
    sentences = {k: v for k, v in (("en", args.sentences), ("zh", args.sentences_zh)) if v}
    with TqdmProgress("corpus", unit="clip") as progress:
        res = build_corpus(args.out, cfg, corpora=corpora, lists=args.lists, tts_engines=engines,
                           tts_voices=args.tts_voice, sentences=sentences,
                           max_per_voice=args.max_per_voice, seed=args.seed, progress=progress,
                           pseudo_speakers=args.pseudo, wer_clips=args.wer_clips)  # fmt: skip
    for n in res.notes:
        print(f"note: {n}", file=sys.stderr)
    for f in res.failed[:10]:
        print(f"skipped: {f}", file=sys.stderr)
    left = ", ".join(f"{n} {why}" for why, n in sorted(res.excluded.items())) or "none"
    print(f"{len(res.entries)} clips ({res.made} made, {res.reused} reused), {len(res.speakers)} "
          f"speakers, {res.hours:.2f} h in {args.out}; left out: {left}")  # fmt: skip
    for name, s in sorted(res.speakers.items()):
        wer = f", WER {s['wer']:.1f}%" if s.get("wer") is not None else ""
        print(f"  {name}: {s['clips']} clips, {s['seconds'] / 60:.1f} min{wer}")
    print(f"list: {args.out / 'corpus.list'}  model card: {args.out / 'MODEL_CARD.md'}")
    return 0
