"""clean_audio on real speech: loudness target, peak ceiling, the denoiser spares the speech,
and the quality report's numbers and plain-language warnings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyloudnorm as pyln
import pytest
from scipy.signal import butter, sosfilt
from takes import cleaned_take, speech_intervals

from voicelab.audio import clean as C
from voicelab.audio.io import load_audio
from voicelab.config import AudioConfig
from voicelab.errors import AudioError

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture(scope="module")
def take():
    return cleaned_take("flite_slt")


def test_output_format_loudness_and_peak(take):
    _, _, _, res = take
    cfg = AudioConfig()
    assert res.sample_rate == 32000 and res.audio.dtype == np.float32 and res.audio.ndim == 1
    assert abs(res.audio.shape[0] / 32000 - 77.19) < 0.05
    measured = pyln.Meter(32000).integrated_loudness(res.audio.astype(np.float64))
    assert abs(measured - cfg.target_lufs) < 0.5
    assert abs(res.report.loudness_after_lufs - measured) < 0.5
    assert np.max(np.abs(res.audio)) <= 10 ** (cfg.peak_dbfs / 20) + 1e-6


def test_default_denoise_keeps_speech_and_removes_noise(take):
    """The default strength must not turn the speech down: speech-band (300-3400 Hz) level
    during the true speech stays within 1 dB, while the pauses get at least 8 dB quieter."""
    path, audio, sr, _ = take
    x = C.highpass(C.resample(audio.mean(axis=0), sr, 32000), 32000, 60.0)
    y = C.denoise(x, 32000, AudioConfig().denoise_strength)
    speech = np.zeros(len(x), bool)
    for a, b in speech_intervals(path):
        speech[int(a * 32000) : int(b * 32000)] = True
    gaps = np.ones(len(x), bool)
    for t in json.loads(path.with_suffix(".json").read_text()):  # untrimmed: surely no speech
        gaps[int((t["start"] - 0.1) * 32000) : int((t["end"] + 0.1) * 32000)] = False
    band = butter(4, [300, 3400], btype="bandpass", fs=32000, output="sos")

    def level(z, m):
        return 10 * np.log10(np.mean(z[m] ** 2))

    bx, by = sosfilt(band, x), sosfilt(band, y)
    assert level(by, speech) - level(bx, speech) > -1.0
    assert level(y, gaps) - level(x, gaps) < -8.0


def test_report_on_the_noisy_take(take):
    _, _, _, res = take
    r = res.report
    assert r.sample_rate_in == 44100 and r.channels_in == 2
    assert 40 < r.speech_s < 66  # ~59 s of sentences incl. the TTS voice's own pauses
    assert 18 < r.snr_db < 40  # the fixture's noise sits about 25 dB under the speech
    assert r.clipped_ratio == 0
    assert any("s of speech: aim for at least 60 s" in w for w in r.warnings)
    d = r.to_dict()
    json.dumps(d)  # serialisable
    assert set(d) >= {"duration_s", "speech_s", "loudness_before_lufs", "loudness_after_lufs",
                      "peak_dbfs", "clipped_ratio", "snr_db", "warnings"}  # fmt: skip


@pytest.fixture(scope="module")
def clip():
    return load_audio(DATA / "slt_000.wav")


def test_clipping_warning(clip):
    y, sr = clip
    res = C.clean_audio(np.clip(y * 12, -1, 1), sr, AudioConfig())
    assert res.report.clipped_ratio > 0.01
    assert any("clipped: record further from the microphone" in w for w in res.report.warnings)


def test_noise_warning(clip):
    y, sr = clip
    noise = np.random.default_rng(0).normal(0, np.std(y) / 3, len(y)).astype(np.float32)
    res = C.clean_audio(y + noise, sr, AudioConfig())
    assert res.report.snr_db < 20
    assert any("background noise" in w for w in res.report.warnings)
    clean = C.clean_audio(y, sr, AudioConfig()).report
    assert clean.snr_db > 30 and not any("noise" in w for w in clean.warnings)


def test_quiet_and_telephone_warnings(clip):
    y, sr = clip
    res = C.clean_audio(C.resample(y * 0.003, sr, 8000), 8000, AudioConfig())
    text = " ".join(res.report.warnings)
    assert "very quiet" in text and "8000 Hz" in text
    assert abs(res.report.loudness_after_lufs - (-20)) < 0.5


def test_too_short(clip):
    y, sr = clip
    with pytest.raises(AudioError, match="at least 0.5 s"):
        C.clean_audio(y[: sr // 5], sr, AudioConfig())


def test_denoise_off_and_other_rate(clip):
    y, sr = clip
    res = C.clean_audio(y, sr, AudioConfig(denoise=False, sample_rate=24000, target_lufs=-23.0))
    assert res.sample_rate == 24000 and res.report.denoise_strength == 0
    assert abs(res.audio.shape[0] - round(len(y) * 1.5)) <= 1
    assert abs(pyln.Meter(24000).integrated_loudness(res.audio.astype(np.float64)) + 23) < 0.5
