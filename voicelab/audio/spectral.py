"""Numpy spectral front end shared by the d-vector encoder (audio/dvector.py) and the metrics
(eval/metrics.py): it lives in audio/ so that both import it downwards.

The same numbers as librosa's `filters.mel` / `feature.melspectrogram`, without librosa's first
call, which spends seconds importing numba: that cost was most of a metric's run time on a CPU.
"""

from __future__ import annotations

import functools

import numpy as np


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def mel_filterbank(sr: int = 16000, n_fft: int = 512, n_mels: int = 40) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] Slaney-normalised triangular filters (as librosa.filters.mel).

    Written out in numpy because librosa's first call costs seconds of numba start-up.
    The result is cached: treat it as read-only.
    """
    fft_hz = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(pts)
    ramps = pts[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    return w * (2.0 / (pts[2 : n_mels + 2] - pts[:n_mels]))[:, None]


def power_spectrogram(
    wav: np.ndarray, n_fft: int = 512, win: int = 400, hop: int = 160, pad_mode: str = "reflect"
) -> np.ndarray:
    """[T] -> [n_fft // 2 + 1, T // hop + 1] power STFT: centred (n_fft // 2 padding on each side,
    `pad_mode` "reflect" or "constant"), periodic Hann window of `win` samples centred in the FFT.
    Equal to librosa.stft(center=True) with the same settings, squared.
    """
    pad = n_fft // 2
    if pad_mode == "reflect" and len(wav) <= pad:
        pad_mode = "constant"  # numpy cannot reflect a signal shorter than the padding
    x = np.pad(wav.astype(np.float64), pad, mode=pad_mode)
    n = 1 + (len(x) - n_fft) // hop
    window = np.zeros(n_fft)
    off = (n_fft - win) // 2
    window[off : off + win] = np.hanning(win + 1)[:-1]
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.fft.rfft(x[idx] * window, axis=1)
    return (np.abs(spec) ** 2).T


def mel_power(
    wav: np.ndarray, sr: int, n_fft: int, win: int, hop: int, n_mels: int, pad_mode: str = "reflect"
) -> np.ndarray:
    """[T] -> [n_mels, T // hop + 1] mel power spectrogram (librosa.feature.melspectrogram's)."""
    return mel_filterbank(sr, n_fft, n_mels) @ power_spectrogram(wav, n_fft, win, hop, pad_mode)
