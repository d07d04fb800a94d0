"""Metric code on real speech: MCD/DTW, F0 RMSE, speaker similarity, WER."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from voicelab.audio.io import load_audio
from voicelab.errors import AudioError
from voicelab.eval import metrics as M

DATA = Path(__file__).resolve().parent.parent / "assets"


def _clip(path):
    return load_audio(path)


@pytest.fixture(scope="module")
def slt():
    return _clip(DATA / "slt_000.wav"), _clip(DATA / "slt_001.wav"), _clip(DATA / "rms_000.wav")


def test_dtw_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(15):
        x = rng.normal(size=(int(rng.integers(1, 25)), 3))
        y = rng.normal(size=(int(rng.integers(1, 25)), 3))
        c = cdist(x, y)
        n, m = c.shape
        acc = np.full((n + 1, m + 1), np.inf)
        acc[0, 0] = 0
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                acc[i, j] = c[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
        path, cost = M.dtw_path(x, y)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
        assert np.all(np.diff(path, axis=0) >= 0) and np.all(np.diff(path, axis=0).sum(1) >= 1)
        assert cost.sum() == pytest.approx(acc[n, m])


def test_mcd_identical_is_zero_and_level_invariant(slt):
    (a, sr), _, _ = slt
    r = M.mcd_dtw(a, sr, a, sr)
    assert r.mcd_db == pytest.approx(0.0, abs=1e-9)
    assert r.path_length == r.frames_ref == r.frames_test
    assert M.mcd_dtw(a, sr, 0.3 * a, sr).mcd_db < 0.01


def test_mcd_orders_noise_other_sentence_other_voice(slt):
    (a, sr), (b, _), (r, _) = slt
    noisy = a + np.random.default_rng(0).normal(scale=0.003, size=a.shape).astype(np.float32)
    m_noise = M.mcd_dtw(a, sr, noisy, sr).mcd_db
    m_voice = M.mcd_dtw(a, sr, r, sr).mcd_db  # rms reading the same sentence
    m_sent = M.mcd_dtw(a, sr, b, sr).mcd_db  # slt reading another sentence
    assert 0 < m_noise < m_voice
    assert m_sent > m_noise


def test_mcd_resampled_copy_is_close(slt):
    (a, sr), _, (r, _) = slt
    import soxr

    up = soxr.resample(a, sr, 32000)
    assert M.mcd_dtw(a, sr, up, 32000).mcd_db < 0.25 * M.mcd_dtw(a, sr, r, sr).mcd_db


def test_f0_identical_zero_and_pitch_shift_measured(slt):
    (a, sr), _, _ = slt
    same = M.f0_rmse(a, sr, a, sr)
    assert same.rmse_hz == 0 and same.vde == 0 and same.voiced_both > 100
    # The same samples declared at 1.25x the rate: every frequency is 1.25x (386 cents) higher.
    up = M.f0_rmse(a, sr, a, int(sr * 1.25))
    assert 300 < up.rmse_cents < 480
    assert up.rmse_hz > 20


def test_bad_audio_is_refused_clearly():
    with pytest.raises(AudioError, match="silent"):
        M.mcd_dtw(np.zeros(16000, np.float32), 16000, np.ones(16000, np.float32) * 0.1, 16000)
    with pytest.raises(AudioError, match="mono"):
        M.mcd_dtw(np.zeros((2, 100), np.float32), 16000, np.zeros(100, np.float32), 16000)
    with pytest.raises(AudioError, match="NaN"):
        M.f0_rmse(np.full(1000, np.nan, np.float32), 16000, np.zeros(1000, np.float32), 16000)


def test_wer_exact_text_is_zero_and_wrong_text_is_not():
    pytest.importorskip("voicelab.text.asr", reason="voicelab.text.asr (text engineer) not there yet")
    assert M.text_wer("The library closes at six.", "the library closes at six") == 0.0
    assert M.text_wer("the library closes at six", "the library opens at six") == pytest.approx(0.2)


def test_wer_on_real_speech(slt):
    pytest.importorskip("voicelab.text.asr", reason="voicelab.text.asr (text engineer) not there yet")
    (a, sr), _, _ = slt
    text = "The morning train left the station a few minutes early."
    good = M.wer(text, a, sr)
    bad = M.wer("Completely unrelated words about purple elephants dancing.", a, sr)
    assert good.wer < bad.wer
    assert good.hypothesis == bad.hypothesis
