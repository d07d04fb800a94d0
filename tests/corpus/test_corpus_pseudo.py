"""WORLD pseudo-speakers: what the transform does to pitch and formants, and the WER rule that
admits a pseudo-speaker only when it stays within 5 points of its source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voicelab.audio.io import load_audio
from voicelab.config import load_config
from voicelab.corpus import build, probe, pseudo, tts
from voicelab.errors import VoicelabError
from voicelab.listfile import read_list

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _median_f0(audio: np.ndarray, sr: int) -> float:
    import pyworld

    f0, _ = pyworld.dio(audio.astype(np.float64), sr, f0_floor=50, f0_ceil=800)
    return float(np.median(f0[f0 > 0]))


def test_transform_scales_pitch_and_keeps_duration():
    audio, sr = load_audio(ASSETS / "slt_000.wav")
    out = pseudo.transform(audio, sr, pseudo.WorldTransform(f0=0.8, warp=1.0))
    assert abs(len(out) - len(audio)) < 0.01 * sr  # the same words at the same pace
    assert _median_f0(out, sr) / _median_f0(audio, sr) == pytest.approx(0.8, rel=0.06)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


def test_warp_moves_formants_up():
    sp = np.full((3, 513), 1e-6)
    sp[:, 100] = 1.0  # one "formant" at bin 100
    warped = pseudo.warp_envelope(sp, 1.1)
    assert int(np.argmax(warped[0])) == 110
    assert pseudo.warp_envelope(sp, 1.0) is sp
    assert warped.flags["C_CONTIGUOUS"]  # pyworld.synthesize refuses anything else


def test_parse_pseudo():
    assert pseudo.parse_pseudo("rhvoice_bdl:1.3:1.12") == ("rhvoice_bdl", pseudo.WorldTransform(1.3, 1.12))
    assert pseudo.pseudo_name("rhvoice_bdl", pseudo.WorldTransform(1.3, 1.12)) == "rhvoice_bdl_f130-w112"
    for bad in ("rhvoice_bdl", "rhvoice_bdl:x:1", "rhvoice_bdl:3:1.1", "rhvoice_bdl:1.1:2"):
        with pytest.raises(VoicelabError):
            pseudo.parse_pseudo(bad)


def test_probe_score_with_real_pocketsphinx():
    """The WER of a clean clip against its own text is low, against another text high."""
    audio, sr = load_audio(ASSETS / "slt_001.wav")
    right = probe.score([(audio, sr, "She painted the old fence a bright shade of yellow.")])
    wrong = probe.score([(audio, sr, "Quite different words are spoken in this reference.")])
    assert right["clips"] == 1 and right["words"] == 10
    assert right["wer"] <= 40 < wrong["wer"]


def test_pseudo_speakers_are_admitted_by_wer(tmp_path, monkeypatch):
    """A pseudo-speaker as intelligible as its source is admitted and built; one that loses more
    than 5 points is not, and corpus.json + the card say why. Fake engine and recogniser: the
    recogniser hears the sentence a clip was made from, or nothing in silence."""
    spoken: dict[int, str] = {}
    ref, sr = load_audio(ASSETS / "slt_000.wav")

    def fake_synthesize(voice, text, prosody=None):
        tts.check_voice(voice.engine, voice.voice)
        audio = ref[: int(len(ref) / (prosody or tts.Prosody()).rate)].copy()
        spoken[id(audio)] = text
        return audio, sr

    def fake_transform(audio, sr, t):  # f0 > 1.5: a garbled pseudo-speaker (silence)
        return np.zeros_like(audio) if t.f0 > 1.5 else audio

    monkeypatch.setattr(tts, "synthesize", fake_synthesize)
    monkeypatch.setattr(pseudo, "transform", fake_transform)
    monkeypatch.setattr(probe.asr, "recognize", lambda audio, sr: spoken.get(id(audio), ""))
    cfg = load_config("tiny", ["audio.denoise=false"])
    res = build.build_corpus(tmp_path / "c", cfg, tts_voices=["flite:kal16"], max_per_voice=3,
                             pseudo_speakers=["flite_kal16:1.2:1.1", "flite_kal16:1.8:1.1"], wer_clips=4)
    assert sorted(res.speakers) == ["flite_kal16", "flite_kal16_f120-w110"]
    assert res.wer["flite_kal16"]["wer"] == 0.0 and res.wer["flite_kal16"]["clips"] == 4
    ok, bad = res.pseudo["flite_kal16_f120-w110"], res.pseudo["flite_kal16_f180-w110"]
    assert ok["admitted"] and ok["wer"] == 0.0 and ok["source_wer"] == 0.0
    assert not bad["admitted"] and bad["wer"] == 100.0 and "more than 5 points" in bad["why"]
    m = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert m["speakers"]["flite_kal16_f120-w110"]["pseudo"] == {"of": "flite_kal16", "f0": 1.2, "warp": 1.1}
    assert m["sources"]["flite"]["wer"] == {"flite_kal16": 0.0, "flite_kal16_f120-w110": 0.0}
    assert m["excluded"]["pseudo-speaker not admitted (WER)"] == 3
    card = (tmp_path / "c" / "MODEL_CARD.md").read_text()
    assert "WORLD pseudo-speaker of flite_kal16" in card and "flite_kal16_f180-w110 (WER 100.0%" in card
    assert {e.speaker for e in read_list(tmp_path / "c" / "corpus.list")} == set(res.speakers)
    # the WERs are cached: a resumed build neither synthesises nor transcribes again
    monkeypatch.setattr(probe.asr, "recognize", lambda audio, sr: pytest.fail("transcribed again"))
    monkeypatch.setattr(tts, "synthesize", lambda *a, **k: pytest.fail("synthesised again"))
    again = build.build_corpus(tmp_path / "c", cfg, tts_voices=["flite:kal16"], max_per_voice=3,
                               pseudo_speakers=["flite_kal16:1.2:1.1", "flite_kal16:1.8:1.1"], wer_clips=4)
    assert again.made == 0 and again.wer["flite_kal16_f120-w110"]["wer"] == 0.0


def test_pseudo_of_an_excluded_or_unknown_speaker_is_refused(tmp_path, monkeypatch):
    cfg = load_config("tiny")
    with pytest.raises(VoicelabError, match="held-out evaluation voice"):
        build.build_corpus(tmp_path / "c", cfg, tts_voices=["flite:kal16"], pseudo_speakers=["flite_awb:1.2:1.1"])
    with pytest.raises(VoicelabError, match="no speaker of that name"):
        build.build_corpus(tmp_path / "c", cfg, tts_voices=["flite:kal16"], pseudo_speakers=["nobody:1.2:1.1"])
