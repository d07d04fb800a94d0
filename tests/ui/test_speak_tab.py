"""Speak tab: the result is checked in plain words, and "Check quality" reports WER/similarity."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from voicelab.errors import VoicelabError
from voicelab.ui import quality, speak

sys.path.insert(0, str(Path(__file__).parent))
from test_handlers import DATA, _voice_with_slices  # noqa: E402

SENTENCE = "The morning train left the station a few minutes early."
LONG = "Hello there, this is a much longer sentence of thirteen words to be said."


def _speech():
    wav, sr = sf.read(DATA / "slt_000.wav", dtype="float32")  # SENTENCE, read by flite slt
    return wav, sr


def test_real_speech_passes_the_checks():
    wav, sr = _speech()
    c = quality.check_speech(SENTENCE, wav, sr)
    assert c.warnings == () and 2 < c.needed_s < 6 and c.flatness < 0.1


def test_a_short_quiet_result_is_said_with_what_to_do():
    """Issue 15.2: 0.24 s at about -48 dBFS for a 13-word sentence."""
    wav, sr = _speech()
    bit = wav[sr : sr + int(0.24 * sr)] * 0.01
    text = " ".join(quality.check_speech(LONG, bit, sr).warnings)
    assert "most of the words are missing" in text and "very quiet" in text
    assert "Stage 2 steps" in text and "pretrained base" in text


def test_noise_silence_and_babble_are_named():
    sr = 16000
    noise = np.random.default_rng(0).normal(0, 0.1, sr * 4).astype(np.float32)
    assert "noise rather than speech" in " ".join(quality.check_speech(LONG, noise, sr).warnings)
    assert "silent" in quality.check_speech(LONG, np.zeros(sr, np.float32), sr).warnings[0]
    wav, sr = _speech()
    babble = " ".join(quality.check_speech("Hi.", np.tile(wav, 6), sr).warnings)
    assert "repeats itself" in babble
    # speed 2 halves what the text needs: a fast reading is not "too short"
    assert quality.needed_seconds(LONG, 2.0) == pytest.approx(quality.needed_seconds(LONG) / 2)


def test_check_quality_runs_the_eval_and_says_it_plainly(tmp_home, monkeypatch):
    v = _voice_with_slices("q")
    (v.exports).mkdir(exist_ok=True)
    model = v.exports / "m.safetensors"
    model.write_bytes(b"x")
    seen = {}

    def fake_eval(model_path, voice_name, out_dir, sentences=None, max_sentences=0, progress=None):
        seen.update(model=Path(model_path), voice=voice_name, out=Path(out_dir), n=max_sentences)
        summary = {"sentences": 3, "wer": 0.8, "real_wer": 0.1, "sim_target": 0.5,
                   "sim_ceiling": 0.85, "closest_other": None, "sim_others": {}, "failed": []}
        return SimpleNamespace(summary=summary), None

    monkeypatch.setattr("voicelab.eval.evaluate.evaluate_model", fake_eval)
    md = speak.check_quality(v, "exports/m.safetensors")
    assert seen["model"] == model and seen["voice"] == "q" and seen["n"] == speak.CHECK_SENTENCES
    assert seen["out"].parent == v.root / "eval", "the report is kept under the voice"
    assert "80%" in md and "0.50" in md and "0.85" in md
    assert "not understandable" in md and "does not sound much like your voice" in md
    with pytest.raises(VoicelabError, match="pick a model"):
        speak.check_quality(v, None)


def test_uploaded_reference_clears_the_slices_text(tmp_home):
    """Issue 15.12: after an upload, 'What the reference says' held the previous slice's text."""
    v = _voice_with_slices("u")
    rel = speak.reference_choices(v)[1][1]
    assert speak.upload_ref_text(v, str(DATA / "slt_000.wav"), rel) == ""
    assert speak.upload_ref_text(v, None, rel).startswith("She painted"), "cleared: the slice's again"


class _FakeSynth:
    """Returns a recorded sentence (or a short quiet bit) instead of running a model."""

    def __init__(self, wav, sr):
        self.wav, self.sr = wav, sr

    def synthesize(self, text, lang, ref, reference_text=None, seed=None, **opts):
        from voicelab.synth import SynthResult

        return SynthResult(self.sr, self.wav, seed if seed is not None else 7, 0.1, 0.05,
                           warnings=["cut there (or raise synth.max_tokens_per_phone)"])


def _speak(v, model_rel, text, seed=3, ref=1):
    return speak.speak(v, model_rel, text, "en", speak.reference_choices(v)[ref][1], None, "",
                       top_k=15, top_p=1.0, temperature=0.8, repetition_penalty=1.35, speed=1.0,
                       seed=seed)


def test_every_result_is_kept_under_the_voice_and_checked(tmp_home, monkeypatch):
    """Issues 15.18 and 15.2: results lived only in temp folders; a 0.24 s quiet result got no
    warning."""
    v = _voice_with_slices("k")
    v.exports.mkdir(exist_ok=True)
    (v.exports / "m.safetensors").write_bytes(b"x")
    wav, sr = _speech()
    fake = _FakeSynth(wav, sr)
    monkeypatch.setattr(speak, "load_synth", lambda path: fake)
    r1 = _speak(v, "exports/m.safetensors", SENTENCE)
    r2 = _speak(v, "exports/m.safetensors", SENTENCE)  # same second, same seed: a new file
    assert Path(r1.wav_path).parent == v.root / speak.SPOKEN and r1.wav_path != r2.wav_path
    assert r1.checks == () and "synth." not in r1.markdown(), "UI advice, not a config key"
    choices = speak.spoken_choices(v)
    assert len(choices) == 2 and SENTENCE[:20] in choices[0][0]
    path, md = speak.spoken_view(v, choices[0][1])
    assert Path(path).is_file() and SENTENCE in md and "seed 3" in md and "temperature 0.8" in md
    fake.wav = wav[sr : sr + int(0.24 * sr)] * 0.01
    bad = _speak(v, "exports/m.safetensors", LONG)
    assert "most of the words are missing" in bad.markdown() and "does not sound right" in bad.markdown()



def test_a_silent_result_is_refused_and_not_kept(tmp_home, monkeypatch):
    """The CLI refuses to write silence; the Speak tab says so too and keeps nothing."""
    v = _voice_with_slices("s")
    v.exports.mkdir(exist_ok=True)
    (v.exports / "m.safetensors").write_bytes(b"x")
    _, sr = _speech()
    monkeypatch.setattr(speak, "load_synth", lambda path: _FakeSynth(np.zeros(2 * sr, np.float32), sr))
    with pytest.raises(VoicelabError, match="silent"):
        _speak(v, "exports/m.safetensors", SENTENCE)
    assert speak.spoken_choices(v) == []
