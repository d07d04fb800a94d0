"""Helpers for the audio tests: the long noisy takes, cleaned once per session, and their truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
LONG = Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures")) / "speech" / "long"
_cleaned: dict[str, tuple] = {}


def speech_intervals(take: Path) -> list[tuple[float, float]]:
    """True sentence times (s) from <take>.json, trimmed to where the sentence's own noise-free
    recording is above -50 dBFS: the .json times include the TTS voice's leading and trailing
    silence (up to 0.5 s), which is not speech a slicer must keep whole."""
    meta = take.parent.parent / take.stem / "metadata.list"
    by_text = {ln.split("|")[3]: ln.split("|")[0] for ln in meta.read_text().splitlines() if ln}
    out = []
    for t in json.loads(take.with_suffix(".json").read_text()):
        y, sr = sf.read(meta.parent / by_text[t["text"]], dtype="float32")
        on = np.flatnonzero(np.abs(y) > 10 ** (-50 / 20))
        out.append((t["start"] + on[0] / sr, t["end"] - (len(y) - on[-1]) / sr))
    return out


def cleaned_take(name: str):
    """(path, raw [C, T], raw sr, CleanResult with default settings), cached for the session."""
    from voicelab.audio.clean import clean_audio
    from voicelab.audio.io import load_audio
    from voicelab.config import AudioConfig

    p = LONG / f"{name}.flac"
    if not p.is_file():
        pytest.skip(f"{p} not found (set VOICELAB_FIXTURES)")
    if name not in _cleaned:
        audio, sr = load_audio(p, mono=False)
        _cleaned[name] = (p, audio, sr, clean_audio(audio, sr, AudioConfig()))
    return _cleaned[name]
