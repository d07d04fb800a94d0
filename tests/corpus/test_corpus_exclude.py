"""The development voices and sentences of ../shared/fixtures never reach a base corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicelab.config import load_config
from voicelab.corpus import build, exclude, tts
from voicelab.errors import VoicelabError
from voicelab.listfile import read_list

FIXTURE_VOICES = [("flite", "slt"), ("flite", "rms"), ("pico", "en-US"), ("flite", "cmu_us_slt.flitevox")]


@pytest.mark.parametrize("engine, voice", FIXTURE_VOICES)
def test_development_voices_are_refused_by_name(engine, voice):
    with pytest.raises(VoicelabError, match="development voice"):
        tts.parse_voice(f"{engine}:{voice}")
    # even a caller that builds the voice by hand cannot make audio with it
    with pytest.raises(VoicelabError, match="development voice"):
        tts.synthesize(tts.TTSVoice(engine, voice, "en"), "Hello there.")
    with pytest.raises(VoicelabError, match="development voice"):
        build.plan_tts([tts.TTSVoice(engine, voice, "en")], {"en": ["Hello there."]}, 1, 0)


def test_voice_lists_leave_development_voices_out(monkeypatch):
    """Whatever the installed flite / pico offer, slt, rms and pico en-US are never listed."""
    import subprocess

    monkeypatch.setattr(tts, "program", lambda engine: f"/usr/bin/{engine}")
    monkeypatch.setattr(tts, "_run", lambda cmd, what, stdin=None: subprocess.CompletedProcess(
        cmd, 0, "Voices available: kal awb_time kal16 awb rms slt \n", ""))
    flite = [v.voice for v in tts.list_voices("flite")]
    assert flite == ["kal16", "awb"]
    pico = [v.voice for v in tts.list_voices("pico")]
    assert pico == ["en-GB"]


def test_fixture_and_eval_sentences_are_held_out():
    held = exclude.heldout_texts()
    assert exclude.is_heldout_text("the morning train left the station, a few minutes early!")
    for f in exclude.HELDOUT_FILES:
        for line in exclude._read_lines(f):
            assert exclude.norm_text(line) in held
    assert len(held) >= 50


def test_heldout_copy_matches_the_fixtures(speech_dir):
    """voicelab's own copy holds every fixture sentence (so the rule holds without the folder)."""
    copy = {exclude.norm_text(t) for t in exclude._read_lines(exclude.HERE / "heldout_en.txt")}
    for lst in speech_dir.glob("*/metadata.list"):
        for e in read_list(lst):
            assert exclude.norm_text(e.text) in copy, e.text


def test_builtin_pools_hold_no_heldout_sentence():
    for lang in ("en", "zh"):
        pool, dropped = build.load_sentence_pool(None, lang)
        assert dropped == 0 and len(pool) >= 15
        assert not any(exclude.is_heldout_text(s) for s in pool)


def test_user_sentences_are_filtered(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("The library closes at six on weekdays.\nA brand new sentence.\n"
                 "The concert starts at seven, so please arrive on time.\n")
    pool, dropped = build.load_sentence_pool(f, "en")
    assert pool == ["A brand new sentence."] and dropped == 2


def test_fixture_lists_and_audio_are_excluded(speech_dir, tmp_path):
    """Importing the fixtures' own .list: every clip is dropped (voice, audio and sentences)."""
    cfg = load_config("tiny")
    with pytest.raises(VoicelabError, match="every clip was excluded"):
        build.build_corpus(tmp_path / "c", cfg, lists=[speech_dir / "flite_slt" / "metadata.list"])
    assert not (tmp_path / "c" / "corpus.list").exists()
    reasons = {}
    plans = build.plan_entries(read_list(speech_dir / "pico_en-US" / "metadata.list"), "list")
    assert build.filter_plans(plans, reasons) == [] and reasons == {"development voice": 40}
    renamed = [type(p)(**{**p.__dict__, "speaker": "someone"}) for p in plans]
    assert build.filter_plans(renamed, reasons := {}) == [] and reasons == {"fixture audio": 40}


def test_reasons_in_order():
    assert exclude.exclusion_reason("flite_slt", "new words") == "development voice"
    assert exclude.exclusion_reason("vctk_p225", "We found seven shells along the quiet beach.") == "held-out sentence"
    assert exclude.exclusion_reason("vctk_p225", "Please call Stella.", Path("/data/x.wav")) is None
