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
    """Whatever the installed flite / pico offer, slt, rms, awb and both pico voices are never
    listed, and --list-voices says why each one is left out."""
    import subprocess

    monkeypatch.setattr(tts, "program", lambda engine: f"/usr/bin/{engine}")
    monkeypatch.setattr(tts, "_run", lambda cmd, what, stdin=None, env=None: subprocess.CompletedProcess(
        cmd, 0, "Voices available: kal awb_time kal16 awb rms slt \n", ""))
    flite = [v.voice for v in tts.list_voices("flite")]
    assert flite == ["kal16"]
    assert [v.voice for v in tts.list_voices("pico")] == []
    line = tts.engine_status("flite")
    assert "flite:kal16" in line and "awb (held-out evaluation voice)" in line
    assert "slt (development voice)" in line and "rms (development voice)" in line


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


HELDOUT_VOICES = [("flite", "awb"), ("pico", "en-GB"), ("espeak", "mb-us1"), ("espeak", "mb-en1"),
                  ("mbrola", "us1"), ("festival", "cmu_us_awb_cg")]
OTHER_SLT_RMS = [("rhvoice", "slt"), ("festival", "cmu_us_slt_arctic_hts"), ("festival", "cmu_us_rms_cg")]


@pytest.mark.parametrize("engine, voice", HELDOUT_VOICES)
def test_heldout_evaluation_voices_are_refused(engine, voice):
    """flite awb, every MBROLA voice and Pico en-GB are kept for an independent evaluation."""
    assert exclude.voice_exclusion(engine, voice) == "held-out evaluation voice"
    with pytest.raises(VoicelabError, match="held-out evaluation voice"):
        exclude.check_voice(engine, voice)
    if engine in tts.ENGINES:
        with pytest.raises(VoicelabError, match="held-out evaluation voice"):
            tts.parse_voice(f"{engine}:{voice}")
        with pytest.raises(VoicelabError, match="held-out evaluation voice"):
            tts.synthesize(tts.TTSVoice(engine, voice, "en"), "Hello there.")


@pytest.mark.parametrize("engine, voice", OTHER_SLT_RMS)
def test_every_rendering_of_slt_and_rms_is_a_development_voice(engine, voice):
    assert exclude.voice_exclusion(engine, voice) == "development voice"
    with pytest.raises(VoicelabError, match="development voice"):
        tts.parse_voice(f"{engine}:{voice}")


@pytest.mark.parametrize("speaker, why", [
    ("flite_awb", "held-out evaluation voice"), ("pico_en-GB", "held-out evaluation voice"),
    ("espeak_mb-us1", "held-out evaluation voice"), ("rhvoice_slt", "development voice"),
    ("festival_cmu_us_slt_arctic_hts", "development voice"), ("rhvoice_slt_f130-w112", "development voice"),
    ("flite_awb_f80-w90", "held-out evaluation voice"),
    ("rhvoice_bdl", None), ("rhvoice_clb", None), ("festival_ked_diphone", None), ("flite_kal16", None),
    ("asterisk_allison", None), ("rhvoice_bdl_f85-w92", None), ("libritts_19", None), ("vctk_p225", None),
])  # fmt: skip
def test_speaker_names_in_lists_and_corpora(speaker, why):
    """A .list or corpus with these speaker names is filtered the same way (pseudo-speakers of an
    excluded voice are that voice too)."""
    assert exclude.exclusion_reason(speaker, "A brand new sentence.") == why


def test_missing_engines_are_named_in_plain_words(monkeypatch, capsys):
    """mbrola and Pico have no install candidate here: --list-voices says so, and so does the
    builder when asked for pico, instead of silently finding nothing."""
    from voicelab.commands.corpus import list_voices

    real_which = tts.shutil.which
    monkeypatch.setattr(tts.shutil, "which", lambda p: None if p in ("pico2wave", "mbrola") else real_which(p))
    tts.apt_has_candidate.cache_clear()
    monkeypatch.setattr(tts, "apt_has_candidate", lambda pkg: False)
    assert list_voices() == 0
    out = capsys.readouterr().out
    assert "pico: pico (pico2wave) is not installed, and this machine's package sources have no install candidate" in out
    assert "mbrola: mbrola (mbrola) is not installed, and this machine's package sources have no install candidate" in out
    assert "held out for evaluation" in out
    with pytest.raises(VoicelabError, match="no install candidate for it"):
        build.build_corpus(Path("/nonexistent/x"), load_config("tiny"), tts_engines=["pico"])
