"""plot_wave_and_mel writes a real PNG for short and long clips at any rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voicelab.audio.io import load_audio
from voicelab.audio.plots import plot_wave_and_mel
from voicelab.errors import AudioError

DATA = Path(__file__).resolve().parent.parent / "assets"


def test_png_of_real_speech(tmp_path):
    audio, sr = load_audio(DATA / "slt_000.wav")  # 16 kHz: the STFT sizes scale to the rate
    long = np.tile(audio, 4)  # > 20000 samples: drawn as an envelope
    for name, x in (("short.png", audio[:8000]), ("long.png", long)):
        out = plot_wave_and_mel(x, sr, tmp_path / name, title="slt_000")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = Image.open(out)
        assert img.size == (1000, 450)
        # the mel panel is not blank: speech draws many distinct colours
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.png", "short.png"]


def test_empty_audio(tmp_path):
    with pytest.raises(AudioError, match="empty"):
        plot_wave_and_mel(np.zeros(0, np.float32), 32000, tmp_path / "x.png")
