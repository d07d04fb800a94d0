"""Speaker similarity with resemblyzer d-vectors on real speech (voicelab.audio.dvector)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicelab.audio import dvector
from voicelab.audio.io import load_audio
from voicelab.errors import AudioError, VoicelabError
from voicelab.eval import metrics as M

VOICES = ("flite_slt", "flite_rms", "pico_en-US")
DATA = Path(__file__).resolve().parent.parent / "assets"


def test_similarity_identical_is_one():
    a, sr = load_audio(DATA / "slt_000.wav")
    assert M.speaker_similarity(a, sr, a, sr) == pytest.approx(1.0, abs=1e-5)


def test_same_voice_scores_above_other_voices(speech_dir):
    """Every same-voice pair beats every cross-voice pair on the fixture voices."""
    emb = {
        v: [dvector.embed(*load_audio(speech_dir / v / f"{i:03d}.wav")) for i in (3, 4)]
        for v in VOICES
    }
    same = [dvector.cosine(*emb[v]) for v in VOICES]
    cross = [
        dvector.cosine(x, y)
        for i, v in enumerate(VOICES)
        for w in VOICES[i + 1 :]
        for x in emb[v]
        for y in emb[w]
    ]
    assert min(same) > max(cross), (same, cross)
    assert min(same) > 0.8


def test_dvector_refuses_too_short():
    with pytest.raises(AudioError, match="at least"):
        dvector.embed(np.random.default_rng(0).normal(size=1000).astype(np.float32) * 0.1, 16000)
    assert dvector.embed_many([]).shape == (0, dvector.EMBED_DIM)


def test_same_voice_centroid_and_cosine_checks():
    clips = [load_audio(DATA / f) for f in ("slt_000.wav", "slt_001.wav")]
    centroid = dvector.speaker_embedding(clips)
    assert centroid.shape == (dvector.EMBED_DIM,)
    assert np.linalg.norm(centroid) == pytest.approx(1.0, abs=1e-5)
    rms = dvector.embed(*load_audio(DATA / "rms_000.wav"))
    assert dvector.cosine(centroid, dvector.embed(*clips[0])) > dvector.cosine(centroid, rms)
    with pytest.raises(VoicelabError, match="zeros"):
        dvector.cosine(np.zeros(3), np.ones(3))
