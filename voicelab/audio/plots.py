"""A picture of a clip: waveform on top, log-mel spectrogram below (PNG, for the UI and reports)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from voicelab.audio.features import mel_spectrogram  # noqa: E402
from voicelab.config import FeatureConfig  # noqa: E402
from voicelab.errors import AudioError  # noqa: E402
from voicelab.fileio import write_bytes_atomic  # noqa: E402


def plot_wave_and_mel(
    audio: np.ndarray,
    sr: int,
    out_png: Path | str,
    title: str = "",
    fcfg: FeatureConfig | None = None,
) -> Path:
    """Draw [T] (or [C, T], averaged) audio as waveform + mel spectrogram into `out_png`.

    The hop is scaled to `sr` so any rate shows 50 frames per second like the model's features.
    Returns the PNG path (written atomically).
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise AudioError("nothing to plot: the audio is empty")
    f = fcfg or FeatureConfig()
    scale = sr / 32000  # FeatureConfig sizes are for 32 kHz
    n_fft = max(256, int(2 ** round(np.log2(f.n_fft * scale))))
    fc = FeatureConfig(
        n_fft=n_fft,
        hop_length=max(1, int(f.hop_length * scale)),
        win_length=min(n_fft, int(f.win_length * scale)),
        n_mels=f.n_mels,
        fmin=f.fmin,
        fmax=min(f.fmax, sr / 2) if f.fmax else 0.0,
    )
    mel = mel_spectrogram(torch.from_numpy(x), fc, sr).numpy()  # [n_mels, frames]
    t = np.arange(x.size) / sr
    dur = x.size / sr

    fig, (ax_w, ax_m) = plt.subplots(
        2, 1, figsize=(10, 4.5), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )
    # A long file has millions of samples: draw the min/max envelope per pixel column instead.
    if x.size > 20000:
        cols = 4000
        k = x.size // cols
        env = x[: k * cols].reshape(cols, k)
        tc = np.arange(cols) * k / sr
        ax_w.fill_between(tc, env.min(axis=1), env.max(axis=1), color="#1f77b4", linewidth=0)
    else:
        ax_w.plot(t, x, color="#1f77b4", linewidth=0.6)
    ax_w.set_ylim(-1, 1)
    ax_w.set_ylabel("amplitude")
    if title:
        ax_w.set_title(title)
    ax_m.imshow(
        mel,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, dur, 0, mel.shape[0]),
        vmin=max(float(mel.max()) - 10.0, float(mel.min())),  # ~87 dB of range: noise stays dark
    )
    ax_m.set_ylabel("mel bin")
    ax_m.set_xlabel("time (s)")
    ax_m.set_xlim(0, dur)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return write_bytes_atomic(out_png, buf.getvalue())
