"""The numpy spectral front end (voicelab.audio.spectral) against librosa, on real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicelab.audio import spectral as M
from voicelab.audio.io import load_audio

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture(scope="module")
def slt():
    return load_audio(DATA / "slt_000.wav"), load_audio(DATA / "slt_001.wav"), load_audio(DATA / "rms_000.wav")


def test_front_end_matches_librosa(slt):
    import librosa

    (a, sr), _, _ = slt
    assert np.allclose(M.mel_filterbank(), librosa.filters.mel(sr=16000, n_fft=512, n_mels=40), atol=1e-8)
    ref = librosa.feature.melspectrogram(y=a, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    mine = M.mel_filterbank() @ M.power_spectrogram(a)
    assert mine.shape == ref.shape
    assert np.abs(mine - ref).max() < 1e-5 * ref.max()
    # the d-vector encoder's input: resemblyzer's own librosa mel (zero-padded centring)
    from resemblyzer.audio import wav_to_mel_spectrogram

    from voicelab.audio import dvector

    w = dvector.preprocess(a, sr)
    theirs = wav_to_mel_spectrogram(w)
    assert np.abs(dvector.encoder_mel(w) - theirs).max() < 1e-5 * theirs.max()
