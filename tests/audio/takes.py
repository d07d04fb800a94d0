"""Helpers for the audio tests: the long noisy takes, cleaned once per session, and their truth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voicelab.eval.metrics import take_speech_intervals as speech_intervals  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
LONG = Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures")) / "speech" / "long"
_cleaned: dict[str, tuple] = {}


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
