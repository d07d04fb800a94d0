"""Offline ASR (pocketsphinx) on real speech, and the word error rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicelab.errors import AudioError
from voicelab.listfile import read_list
from voicelab.text.asr import normalize_words, recognize, word_error_rate, word_errors


def test_wer_basics() -> None:
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the bat sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("a b", "a x b y z") == pytest.approx(3 / 2)  # insertions can pass 1
    assert word_errors("one two three", "three two one") == (2, 3)
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "hi") == 1.0


def test_wer_normalises_numbers_case_punctuation() -> None:
    assert word_error_rate("I have 5 cats, Bob!", "i have five cats bob") == 0.0
    assert normalize_words("Well-known $3.") == ["well", "known", "three", "dollars"]


def test_recognize_mini_clip_at_32k(mini_list: Path) -> None:
    e = read_list(mini_list)[0]
    audio, sr = sf.read(e.path, dtype="float32")
    import soxr

    audio32 = soxr.resample(audio, sr, 32000)  # slices are 32 kHz: recognize resamples
    hyp = recognize(audio32, 32000)
    assert word_error_rate(e.text, hyp) <= 0.3, hyp


def test_silence_and_bad_audio() -> None:
    assert recognize(np.zeros(16000, np.float32), 16000) == ""
    assert recognize(np.zeros(100, np.float32), 16000) == ""
    with pytest.raises(AudioError):
        recognize(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(AudioError):
        recognize(np.zeros((2, 3, 16000), np.float32), 16000)


def test_fixture_voices_wer(speech_dir: Path) -> None:
    """One sentence of each fixture voice: pocketsphinx must get most words right."""
    errors = words = 0
    for voice in ("flite_slt", "flite_rms", "pico_en-US"):
        lst = speech_dir / voice / "metadata.list"
        if not lst.is_file():
            pytest.skip(f"{lst} not found")
        for e in read_list(lst)[:1]:
            audio, sr = sf.read(e.path, dtype="float32")
            err, n = word_errors(e.text, recognize(audio, sr))
            errors, words = errors + err, words + n
    assert errors / words < 0.5
