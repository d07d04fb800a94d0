"""Record & Clean tab, the cleaning: which recordings there are, cleaning them, and what one
cleaned recording looks like (`CleanView`: before/after players, plots, the quality report).

Cleaning calls `voicelab.audio.pipeline.prepare_files`, which writes clean/<stem>.wav and
clean/<stem>.report.json; the report's plain-language warnings are shown as they are.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicelab.config import (
    DEFAULT_PRESET,  # cleaning and slicing are the same in every preset
    Config,
    load_config,
)
from voicelab.errors import VoicelabError
from voicelab.ui.common import AUDIO_EXTENSIONS, fmt_duration, speech_seconds
from voicelab.ui.record_takes import read_takes
from voicelab.workspace import Voice


def raw_files(voice: Voice) -> list[str]:
    """Audio files in raw/, minus takes superseded by a redo."""
    if not voice.raw.is_dir():
        return []
    current = {e.path.name for e in read_takes(voice)}
    out = []
    for p in sorted(voice.raw.iterdir()):
        if p.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if p.name.startswith("take-") and p.name not in current:
            continue
        out.append(p.name)
    return out


def uncleaned(voice: Voice) -> list[str]:
    return [n for n in raw_files(voice) if not (voice.clean / f"{Path(n).stem}.wav").is_file()]


def cleaning_config(denoise: bool, strength: float, highpass: float, lufs: float) -> Config:
    return load_config(
        DEFAULT_PRESET,
        [
            f"audio.denoise={'true' if denoise else 'false'}",
            f"audio.denoise_strength={float(strength)}",
            f"audio.highpass_hz={float(highpass)}",
            f"audio.target_lufs={float(lufs)}",
        ],
    )


def clean_files(
    voice: Voice, names: list[str], cfg: Config, progress: Any = None
) -> tuple[list[str], str]:
    """Run the library's prepare step on raw/<name> files.

    Returns (the stems cleaned, a markdown summary with each failure and warning in plain words).
    One bad file does not stop the others (prepare_files keeps going and reports it).
    """
    if not names:
        raise VoicelabError("no recordings to clean: record or upload something first")
    from voicelab.audio import pipeline
    files = []
    for n in names:
        p = voice.raw / Path(n).name  # names come from our own list: no folders
        if not p.is_file():
            raise VoicelabError(f"{n} is not in {voice.raw} any more: refresh the list")
        files.append(p)
    results = pipeline.prepare_files(voice, files, cfg, progress=progress)
    done = [r.clean.stem for r in results if r.ok and r.clean is not None]
    lines = [f"Cleaned {len(done)} of {len(results)} file(s)."]
    for r in results:
        if not r.ok:
            lines.append(f"- **{r.source.name} failed:** {r.error}")
        elif r.report is not None and r.report.warnings:
            lines += [f"- {r.source.name}: {w}" for w in r.report.warnings]
    if not done:
        raise VoicelabError(" ".join(lines[1:]).replace("**", "") or "nothing was cleaned")
    lines.append(f"\nSpeech in this voice so far: **{fmt_duration(speech_seconds(voice) or 0)}** "
                 "(the Slice tab counts the same way).")
    return done, "\n".join(lines)


@dataclass(frozen=True)
class CleanView:
    before: str | None
    after: str | None
    before_png: str | None
    after_png: str | None
    report_md: str


def report_markdown(report: dict) -> str:
    """The quality report as a short table, warnings first in plain words."""
    warnings = report.get("warnings") or []
    lines = []
    if warnings:
        lines += ["**Warnings**", *[f"- {w}" for w in warnings], ""]
    else:
        lines += ["**No problems found.**", ""]
    lines += ["| measure | value |", "|---|---|"]
    for k, v in report.items():
        if k == "warnings" or isinstance(v, (dict, list)):
            continue
        if isinstance(v, float):
            v = f"{v:.2f}"
        lines.append(f"| {k.replace('_', ' ')} | {v} |")
    return "\n".join(lines)


def _plot(audio_path: Path, title: str, cfg: Config) -> str | None:
    from voicelab.audio import io, plots
    audio, sr = io.load_audio(audio_path)
    out = Path(tempfile.mkdtemp(prefix="voicelab-plot-")) / f"{audio_path.stem}.png"
    plots.plot_wave_and_mel(audio, sr, out, title=title)
    return str(out)


def clean_view(voice: Voice, stem: str, cfg: Config | None = None) -> CleanView:
    """Players, images and report for one cleaned file (by stem)."""
    cfg = cfg or load_config(DEFAULT_PRESET)
    clean = voice.clean / f"{stem}.wav"
    if not clean.is_file():
        raise VoicelabError(f"{stem} has not been cleaned yet: press Clean")
    raw = next((p for p in sorted(voice.raw.glob(f"{stem}.*")) if p.suffix.lower() in AUDIO_EXTENSIONS), None)
    report_path = voice.clean / f"{stem}.report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return CleanView(
        before=str(raw) if raw else None,
        after=str(clean),
        before_png=_plot(raw, f"before: {raw.name}", cfg) if raw else None,
        after_png=_plot(clean, f"after: {clean.name}", cfg),
        report_md=report_markdown(report) if report else "(no quality report was written)",
    )


def cleaned_stems(voice: Voice) -> list[str]:
    return sorted(p.stem for p in voice.clean.glob("*.wav")) if voice.clean.is_dir() else []
