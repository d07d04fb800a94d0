"""`python -m voicelab prepare --voice NAME FILE...`: copy recordings into raw/, clean into clean/."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from voicelab.commands.common import add_config_args, add_voice_arg, resolve_config, voice_from_args
from voicelab.errors import VoicelabError


class TqdmProgress:
    """A `progress(done, total, message)` callable drawing a tqdm bar on stderr."""

    def __init__(self, desc: str, unit: str = "file"):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr,
                            leave=False, dynamic_ncols=True)  # fmt: skip
        self.bar.total = total
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message[:40], refresh=False)
        self.bar.refresh()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="copy recordings into the voice and clean them (denoise, loudness, 32 kHz)",
        description="Copy each FILE into workspace/VOICE/raw/ (originals are never modified) and "
        "write a cleaned 32 kHz mono WAV plus a quality report into clean/. Accepts WAV, FLAC, "
        "OGG and MP3 (other formats need ffmpeg). Settings: [audio] in the preset or --set "
        "audio.denoise_strength=0.6 etc.",
    )
    add_voice_arg(p, must_exist=False)  # prepare creates the voice
    p.add_argument("files", nargs="+", metavar="FILE", help="recordings to add to the voice")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here so that `--help` of every verb does not wait for torch and scipy
    from voicelab.audio.pipeline import prepare_files

    cfg = resolve_config(args)
    voice = voice_from_args(args, must_exist=False)
    with TqdmProgress("prepare") as progress:
        results = prepare_files(voice, args.files, cfg, progress=progress)
    failed = [r for r in results if not r.ok]
    for r in results:
        if r.ok and r.report is not None:
            rep = r.report
            print(
                f"{r.source.name} -> clean/{r.clean.name}: {rep.duration_s:.1f} s, "
                f"{rep.speech_s:.1f} s speech, {rep.loudness_before_lufs:.1f} -> "
                f"{rep.loudness_after_lufs:.1f} LUFS, SNR ~{rep.snr_db:.0f} dB"
            )
            for w in rep.warnings:
                print(f"  warning: {w}")
        else:
            print(f"FAILED: {r.error}", file=sys.stderr)
    ok = [r for r in results if r.ok]
    if ok:
        speech = sum(r.report.speech_s for r in ok if r.report)
        print(f"{len(ok)} file(s) cleaned into {voice.clean} ({speech:.0f} s of speech in total)")
    if failed:
        raise VoicelabError(
            f"{len(failed)} of {len(results)} file(s) could not be prepared (first: {failed[0].error})"
        )
    return 0
