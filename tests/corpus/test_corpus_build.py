"""Building a corpus end to end: fake corpora + a .list + TTS voices -> list, audio, card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicelab.audio.io import load_audio
from voicelab.config import load_config
from voicelab.corpus import build, tts
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture
def cfg():
    return load_config("tiny", ["audio.denoise=false"])


def _ljspeech(root: Path) -> Path:
    (root / "wavs").mkdir(parents=True)
    shutil.copy(DATA / "slt_001.wav", root / "wavs" / "LJ001-0001.wav")
    (root / "metadata.csv").write_text("LJ001-0001|Printing, in the only sense|Printing, in the only sense\n")
    return root


def _user_list(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    for n in ("a.wav", "b.wav", "c.wav"):
        shutil.copy(DATA / "rms_000.wav", tmp / "mine" / n)
    lst = tmp / "mine" / "mine.list"
    write_list(lst, [Entry(tmp / "mine" / "a.wav", "ann", "en", "A sentence nobody held out."),
                     Entry(tmp / "mine" / "b.wav", "flite_rms", "en", "Another fine sentence."),
                     Entry(tmp / "mine" / "c.wav", "ann", "en", "The library closes at six on weekdays.")])
    return lst


def fake_synthesize(voice, text, prosody=None):
    """A stand-in engine: real speech, stretched by the rate like a TTS would."""
    tts.check_voice(voice.engine, voice.voice)
    audio, sr = load_audio(DATA / "slt_000.wav")
    n = int(len(audio) / (prosody or tts.Prosody()).rate)
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(np.float32), sr


def test_build_from_corpus_list_and_tts(tmp_path, cfg, monkeypatch, capsys):
    from voicelab import cli

    monkeypatch.setattr(tts, "synthesize", fake_synthesize)
    out = tmp_path / "corpus"
    args = ["corpus", "--out", str(out), "--ljspeech", str(_ljspeech(tmp_path / "LJ")),
            "--list", str(_user_list(tmp_path)), "--tts-voice", "flite:kal16",
            "--tts-voice", "espeak:cmn+m1", "--max-per-voice", "2", "--preset", "tiny",
            "--set", "audio.denoise=false", "--wer-clips", "0"]
    assert cli.main(args) == 0, capsys.readouterr().err
    entries = read_list(out / "corpus.list")
    by = {}
    for e in entries:
        by.setdefault(e.speaker, []).append(e)
    assert sorted(by) == ["ann", "espeak_cmn-m1", "flite_kal16", "ljspeech"]
    assert len(by["flite_kal16"]) == 2 and by["espeak_cmn-m1"][0].lang == "zh"
    assert [e.text for e in by["ann"]] == ["A sentence nobody held out."]
    for e in entries:
        info = sf.info(str(e.path))
        assert info.samplerate == cfg.audio.sample_rate and info.channels == 1
        assert 0.6 <= info.duration <= cfg.slice.max_length_s
        assert out in e.path.parents
    m = json.loads((out / "corpus.json").read_text())
    assert m["excluded"] == {"development voice": 1, "held-out sentence": 1}
    assert m["sources"]["ljspeech"]["licence"]["licence"] == "Public domain"
    assert m["sources"]["list"]["licence"]["shippable"] is False and m["shippable"] is False
    card = (out / "MODEL_CARD.md").read_text()
    assert "Public domain" in card and "GPL-3.0" in card and "Not shippable" in card
    assert "flite:slt" in card  # the card says which voices were kept out
    # rates differ between clips of one voice, and names record them
    names = [e.path.stem for e in entries if e.speaker == "flite_kal16"]
    assert all("_r" in n and "_p" in n for n in names)

    # a second run reuses every clip (resumable) and gives the same list
    before = (out / "corpus.list").read_text()
    res = build.build_corpus(out, cfg, corpora={"ljspeech": tmp_path / "LJ"}, lists=[tmp_path / "mine" / "mine.list"],
                             tts_voices=["flite:kal16", "espeak:cmn+m1"], max_per_voice=2, wer_clips=0)
    assert res.made == 0 and res.reused == len(entries)
    assert (out / "corpus.list").read_text() == before


def test_trim_edges_keeps_the_slicers_margin(cfg):
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    audio = np.concatenate([np.zeros(2 * sr, np.float32), tone, np.zeros(2 * sr, np.float32)])
    out = build.trim_edges(audio, sr, cfg.slice)
    keep = cfg.slice.max_sil_kept_ms / 1000
    assert 1.0 + 2 * keep - 0.05 <= len(out) / sr <= 1.0 + 2 * keep + 0.05
    with pytest.raises(Exception, match="threshold"):
        build.trim_edges(np.zeros(sr, np.float32), sr, cfg.slice)


def test_nothing_to_build_and_missing_engine(tmp_path, cfg, monkeypatch):
    with pytest.raises(VoicelabError, match="nothing to build"):
        build.build_corpus(tmp_path / "x", cfg)
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    with pytest.raises(VoicelabError, match="apt install flite"):
        build.build_corpus(tmp_path / "x", cfg, tts_engines=["flite"])


def test_plan_is_deterministic_and_varied():
    voices = [tts.TTSVoice("flite", "kal16", "en"), tts.TTSVoice("espeak", "en-gb+f2", "en")]
    pool, _ = build.load_sentence_pool(None, "en")
    a = build.plan_tts(voices, {"en": pool}, 20, seed=7)
    b = build.plan_tts(voices[:1], {"en": pool}, 20, seed=7)
    assert [p.out_rel for p in a[:20]] == [p.out_rel for p in b]  # adding a voice changes nothing
    assert len({p.prosody for p in a}) > 5 and len({p.text for p in a}) > 20
    assert {p.text for p in a[:20]} != {p.text for p in a[20:]}  # voices read different picks


@pytest.mark.skipif(tts.program("flite") is None, reason="flite is not installed (apt install flite)")
def test_real_flite_rate_changes_duration():
    v = tts.parse_voice("flite:kal16")
    slow, sr = tts.synthesize(v, "Where did you put the keys to the garage?", tts.Prosody(rate=0.85))
    fast, sr2 = tts.synthesize(v, "Where did you put the keys to the garage?", tts.Prosody(rate=1.15, pitch=1.1))
    assert sr == sr2 == 16000
    assert len(fast) / len(slow) == pytest.approx(0.85 / 1.15, rel=0.08)


@pytest.mark.skipif(tts.program("espeak") is None, reason="espeak-ng is not installed (apt install espeak-ng)")
def test_real_espeak_voice():
    audio, sr = tts.synthesize(tts.parse_voice("espeak:en-gb+f2"), "Thank you so much!", tts.Prosody(1.1, 0.95))
    assert sr == 22050 and 0.5 < len(audio) / sr < 3 and np.abs(audio).max() > 0.05


@pytest.mark.skipif(tts.program("festival") is None, reason="festival is not installed (apt install festival festvox-kdlpc16k)")
def test_real_festival_ked_rate_and_pitch():
    v = tts.parse_voice("festival:ked_diphone")
    slow, sr = tts.synthesize(v, "Where did you put the keys?", tts.Prosody(rate=0.85))
    fast, sr2 = tts.synthesize(v, "Where did you put the keys?", tts.Prosody(rate=1.15, pitch=1.1))
    assert sr == sr2 == 16000
    assert len(fast) / len(slow) == pytest.approx(0.85 / 1.15, rel=0.1)


@pytest.mark.skipif(tts.program("rhvoice") is None or tts.rhvoice_data_dir() is None,
                    reason="RHVoice is not installed (docs/pretraining.md, set-up for building a corpus)")
def test_real_rhvoice_voices():
    assert [v.voice for v in tts.list_voices("rhvoice")] == ["bdl", "clb"]  # slt is never listed
    audio, sr = tts.synthesize(tts.parse_voice("rhvoice:clb"), "Thank you so much!", tts.Prosody(1.1, 0.95))
    assert sr == 24000 and 0.5 < len(audio) / sr < 3 and np.abs(audio).max() > 0.05


def test_a_lower_cap_picks_a_subset_and_speakers_grow_together():
    """Rerunning a build with a lower --max-per-voice reuses its clips (same names), and clips
    are made round-robin over speakers, so a build stopped early is balanced."""
    voices = [tts.TTSVoice("flite", "kal16", "en"), tts.TTSVoice("rhvoice", "bdl", "en")]
    pool, _ = build.load_sentence_pool(None, "en")
    small = {p.out_rel for p in build.plan_tts(voices, {"en": pool}, 10, seed=3)}
    large = build.plan_tts(voices, {"en": pool}, 40, seed=3)
    assert len(small) == 20 and small < {p.out_rel for p in large}
    order = [p.speaker for p in build.interleave(large)]
    assert order[:4] == ["flite_kal16", "rhvoice_bdl", "flite_kal16", "rhvoice_bdl"]
    assert sorted(order) == sorted(p.speaker for p in large)
