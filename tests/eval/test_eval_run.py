"""The eval run: fake synthesisers with known answers, then the CLI end to end on a tiny model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from voicelab.audio.io import load_audio
from voicelab.errors import VoicelabError
from voicelab.eval.evaluate import EvalItem, evaluate, load_clips, load_sentences
from voicelab.eval.report import to_markdown, write_report
from voicelab.listfile import Entry, read_list, write_list

DATA = Path(__file__).resolve().parent.parent / "assets"


@dataclass
class FakeResult:
    sample_rate: int
    waveform: np.ndarray
    gen_s: float = 0.5
    first_audio_s: float = 0.2


def speaker_audio(speech_dir: Path, voice: str) -> dict[str, Path]:
    """text -> recording of that voice reading it."""
    return {e.text: e.path for e in read_list(speech_dir / voice / "metadata.list")}


def _scenario(speech_dir: Path, speaker_of_synth: str):
    slt = speaker_audio(speech_dir, "flite_slt")
    synth_voice = speaker_audio(speech_dir, speaker_of_synth)
    texts = list(slt)[30:31]  # a sentence with a real slt recording
    items = [EvalItem(t, "en", slt[t]) for t in texts]
    target = load_clips([speech_dir / "flite_slt" / f"{i:03d}.wav" for i in range(2)], limit=2)
    others = {v: load_clips([speech_dir / v / "000.wav"], limit=1)
              for v in ("flite_rms", "pico_en-US")}  # fmt: skip

    def synth_fn(text: str, lang: str) -> FakeResult:
        audio, sr = load_audio(synth_voice[text])
        return FakeResult(sr, audio)

    return evaluate(synth_fn, items, target, others)


def test_oracle_synth_scores_like_the_real_voice(speech_dir):
    """A 'synthesiser' that plays the real recording: MCD 0, WER = real WER, checks pass."""
    r = _scenario(speech_dir, "flite_slt")
    s = r.summary
    assert s["sentences"] == 1 and not r.excluded
    assert s["mcd_db"] == pytest.approx(0.0, abs=1e-9) and s["f0_rmse_hz"] == pytest.approx(0.0)
    assert s["wer"] == pytest.approx(s["real_wer"]) and s["wer_gap"] == pytest.approx(0.0)
    assert s["sim_target"] == pytest.approx(s["sim_ceiling"], abs=1e-5)
    assert s["sim_target"] > max(s["sim_others"].values())
    assert s["checks"] == {"wer_within_15_points_of_real": True,
                           "closer_to_target_than_every_other_voice": True}  # fmt: skip
    assert s["rtf"] == pytest.approx(0.5 / s["audio_s"], rel=1e-6)  # 0.5 s per sentence
    assert s["first_audio_s"] == pytest.approx(0.2)


def test_wrong_voice_is_caught(speech_dir, tmp_path):
    """A 'synthesiser' speaking in rms's voice: more similar to rms than to the target, MCD > 0."""
    r = _scenario(speech_dir, "flite_rms")
    s = r.summary
    assert s["closest_other"] == "flite_rms"
    assert s["sim_others"]["flite_rms"] > s["sim_target"]
    assert s["checks"]["closer_to_target_than_every_other_voice"] is False
    assert s["mcd_db"] > 5 and s["f0_rmse_hz"] > 10
    r.meta = {"voice": "slt", "model": "fake"}
    paths = write_report(r, tmp_path / "rep")
    data = json.loads(paths.json.read_text())
    assert data["summary"]["closest_other"] == "flite_rms" and len(data["items"]) == 1
    md = paths.markdown.read_text()
    assert "FAIL" in md and "| flite_rms |" in md and "MCD-DTW" in md
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths.plots)


def test_training_sentences_are_not_held_out():
    a, sr = load_audio(DATA / "slt_000.wav")
    calls = []

    def synth_fn(text, lang):
        calls.append(text)
        return FakeResult(sr, a)

    seen = "The morning train left the station a few minutes early."
    items = [EvalItem(seen.upper()), EvalItem("She painted the old fence a bright shade of yellow.")]
    r = evaluate(synth_fn, items, [(a, sr)], training_texts=[seen])
    assert r.excluded == [seen.upper()] and calls == [items[1].text]
    assert r.summary["sim_ceiling"] is None  # one target clip, no real recording: no ceiling
    assert "Skipped 1 sentence" in to_markdown(r)
    with pytest.raises(VoicelabError, match="held-out"):
        evaluate(synth_fn, items[:1], [(a, sr)], training_texts=[seen])
    with pytest.raises(VoicelabError, match="slice the voice"):
        evaluate(synth_fn, items, [])


def test_unscorable_audio_becomes_a_warning():
    a, sr = load_audio(DATA / "slt_000.wav")
    r = evaluate(lambda t, lang: FakeResult(sr, np.zeros(sr // 10, np.float32)),
                 [EvalItem("Hello there.", "en", DATA / "slt_000.wav")], [(a, sr)])  # fmt: skip
    it = r.items[0]
    assert it.sim_target is None and it.mcd_db is None
    assert any("similarity" in w for w in it.warnings) and any("MCD" in w for w in it.warnings)
    assert it.real_wer is not None  # the real recording was still scored


def test_a_sentence_that_fails_is_reported_not_fatal():
    a, sr = load_audio(DATA / "slt_000.wav")

    def synth_fn(text, lang):
        if "bad" in text:
            raise VoicelabError("the text has nothing to speak")
        return FakeResult(sr, a)

    r = evaluate(synth_fn, [EvalItem("A bad one."), EvalItem("A good one.")], [(a, sr)])
    assert [i.text for i in r.items] == ["A good one."]
    assert r.summary["failed"] == ["A bad one.: the text has nothing to speak"]
    assert "Could not synthesise 1 sentence" in to_markdown(r)
    with pytest.raises(VoicelabError, match="no sentence could be synthesised"):
        evaluate(synth_fn, [EvalItem("bad")], [(a, sr)])


def test_load_sentences_formats(tmp_path):
    assert len(load_sentences()) >= 10
    txt = tmp_path / "s.txt"
    txt.write_text("# comment\nHello world.\nzh|你好。\n\n")
    assert load_sentences(txt) == [EvalItem("Hello world.", "en"), EvalItem("你好。", "zh")]
    lst = tmp_path / "s.list"
    write_list(lst, [Entry(DATA / "slt_000.wav", "slt", "en", "A b."),
                     Entry(tmp_path / "missing.wav", "slt", "en", "C d.")])  # fmt: skip
    items = load_sentences(lst)
    assert items[0].real == (DATA / "slt_000.wav").resolve() and items[1].real is None
    (tmp_path / "bad.txt").write_text("fr|Bonjour\n")
    with pytest.raises(VoicelabError, match="use en or zh"):
        load_sentences(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(VoicelabError, match="no sentences"):
        load_sentences(tmp_path / "empty.txt")


def test_other_voices_from_workspace_and_lists(tmp_home, tmp_path):
    from voicelab.eval.evaluate import other_voices
    from voicelab.workspace import get_voice

    for name, clip in (("alice", "slt_000.wav"), ("bob", "rms_000.wav")):
        v = get_voice(name).create()
        dst = v.slices / clip
        dst.write_bytes((DATA / clip).read_bytes())
        write_list(v.dataset_list, [Entry(dst, name, "en", "x")])
    base = tmp_path / "corpus.list"
    write_list(base, [Entry(DATA / "slt_001.wav", "espeak_en-gb-f2", "en", "y"),
                      Entry(DATA / "slt_000.wav", "alice", "en", "z")])  # fmt: skip
    others = other_voices("alice", [base], limit=2)
    assert sorted(others) == ["bob", "espeak_en-gb-f2"]  # never the target itself
    assert all(len(c) == 1 and c[0][1] == 16000 for c in others.values())
