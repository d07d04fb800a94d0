"""Corpus readers on small fake layouts of LJSpeech, LibriTTS, VCTK, AISHELL-3 and .list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voicelab.corpus import sources
from voicelab.errors import VoicelabError

DATA = Path(__file__).resolve().parent.parent / "assets"


def wav(dst: Path, src: str = "slt_001.wav") -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / src, dst)
    return dst


def fake_ljspeech(root: Path) -> Path:
    wav(root / "wavs" / "LJ001-0001.wav")
    wav(root / "wavs" / "LJ001-0002.wav")
    (root / "metadata.csv").write_text(
        'LJ001-0001|Printing, in the only sense|Printing, in the only sense\n'
        'LJ001-0002|in being "comparatively" modern.|in being comparatively modern.\n'
        "LJ001-0003|no audio for this one|no audio for this one\n", encoding="utf-8")
    return root


def fake_libritts(root: Path) -> Path:
    for spk, ch, utt in (("19", "198", "19_198_000000_000000"), ("84", "121123", "84_121123_000007_000001")):
        d = root / "train-clean-100" / spk / ch
        wav(d / f"{utt}.wav")
        (d / f"{utt}.normalized.txt").write_text(f"Speaker {spk} reads a sentence.\n")
        (d / f"{utt}.original.txt").write_text("ignored")
    return root


def fake_vctk(root: Path, new_layout: bool = True) -> Path:
    for spk in ("p225", "p226"):
        (root / "txt" / spk).mkdir(parents=True)
        (root / "txt" / spk / f"{spk}_001.txt").write_text("Please call Stella.\n")
        if new_layout:
            wav(root / "wav48_silence_trimmed" / spk / f"{spk}_001_mic1.flac", "slt_001.wav")
        else:
            wav(root / "wav48" / spk / f"{spk}_001.wav")
    return root


def fake_aishell3(root: Path) -> Path:
    wav(root / "train" / "wav" / "SSB0005" / "SSB00050001.wav")
    (root / "train" / "content.txt").write_text(
        "SSB00050001.wav\t广 guang3 州 zhou1 女 nv3 大 da4 学 xue2 生 sheng1\n", encoding="utf-8")
    return root


def test_ljspeech(tmp_path):
    es = sources.read_corpus("ljspeech", fake_ljspeech(tmp_path / "LJSpeech-1.1"))
    assert [e.text for e in es] == ["Printing, in the only sense", "in being comparatively modern."]
    assert {e.speaker for e in es} == {"ljspeech"} and all(e.path.is_file() for e in es)


def test_libritts(tmp_path):
    es = sources.read_corpus("libritts", fake_libritts(tmp_path / "LibriTTS"))
    assert sorted(e.speaker for e in es) == ["libritts_19", "libritts_84"]
    assert es[0].text == "Speaker 19 reads a sentence." and es[0].lang == "en"


@pytest.mark.parametrize("new_layout", [True, False])
def test_vctk_both_layouts(tmp_path, new_layout):
    es = sources.read_corpus("vctk", fake_vctk(tmp_path / "VCTK", new_layout))
    assert [e.speaker for e in es] == ["vctk_p225", "vctk_p226"]
    assert all(e.text == "Please call Stella." for e in es)


def test_aishell3_takes_characters_not_pinyin(tmp_path):
    (e,) = sources.read_corpus("aishell3", fake_aishell3(tmp_path / "AISHELL-3"))
    assert (e.speaker, e.lang, e.text) == ("aishell3_SSB0005", "zh", "广州女大学生")


def test_wrong_folders_say_what_is_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    for kind, words in (("ljspeech", "metadata.csv"), ("vctk", "txt/"), ("aishell3", "content.txt"),
                        ("libritts", "normalized.txt")):
        with pytest.raises(VoicelabError, match=words.replace(".", r"\.")):
            sources.read_corpus(kind, tmp_path / "empty")
    with pytest.raises(VoicelabError, match="not a folder"):
        sources.read_corpus("vctk", tmp_path / "nope")
    with pytest.raises(VoicelabError, match="unknown corpus kind"):
        sources.read_corpus("timit", tmp_path)


def test_limit_per_speaker():
    from voicelab.listfile import Entry

    es = [Entry(Path(f"/{i}.wav"), "ab"[i % 2], "en", "x") for i in range(7)]
    assert [e.path.name for e in sources.limit_per_speaker(es, 2)] == ["0.wav", "1.wav", "2.wav", "3.wav"]
    assert sources.limit_per_speaker(es, 0) == es


def fake_asterisk(root: Path) -> Path:
    """Debian's layout: sounds/en/*.g722 (+ digits/) and the transcripts, gzipped, in the doc."""
    import gzip

    sounds = root / "sounds" / "en"
    for name in ("agent-pass", "beep", "silence/1", "digits/1", "letters/at", "dictate/both_help"):
        wav(sounds / f"{name}.wav")
    with gzip.open(root / "core-sounds-en.txt.gz", "wt") as f:
        f.write("; Core Asterisk Sounds in English\n\n"
                "agent-pass: Please enter your password followed by the pound key.\n"
                "beep: [this is a simple beep tone]\n"
                "silence/1: (1 second of silence)\n"
                "digits/1: one\n"
                "letters/at: at [@]\n"
                "dictate/both_help: press * to toggle pause, press # to enter a new dictation filename\n"
                "missing-audio: This prompt has no file.\n")
    return sounds


def test_asterisk_prompts(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ASTERISK_DOC", tmp_path / "nowhere")
    sounds = fake_asterisk(tmp_path / "asterisk")
    (tmp_path / "asterisk" / "core-sounds-en.txt.gz").rename(sounds / "core-sounds-en.txt.gz")
    es = sources.read_corpus("asterisk", sounds)
    assert {e.speaker for e in es} == {"asterisk_allison"}
    assert {e.path.stem: e.text for e in es} == {
        "agent-pass": "Please enter your password followed by the pound key.",
        "1": "one",
        "at": "at",
        "both_help": "press star to toggle pause, press pound to enter a new dictation filename",
    }  # sounds only ([beep], (silence)) and prompts without audio are left out


def test_asterisk_without_transcripts_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ASTERISK_DOC", tmp_path / "nowhere")
    (tmp_path / "en").mkdir()
    with pytest.raises(VoicelabError, match="apt install asterisk-core-sounds-en"):
        sources.read_corpus("asterisk", tmp_path / "en")


def test_same_file_name_in_two_folders_gets_two_clips(tmp_path):
    from voicelab.corpus import build
    from voicelab.listfile import Entry

    es = [Entry(tmp_path / "digits" / "1.wav", "asterisk_allison", "en", "one"),
          Entry(tmp_path / "followme" / "1.wav", "asterisk_allison", "en", "Press one.")]
    outs = [p.out_rel for p in build.plan_entries(es, "asterisk")]
    assert outs == ["wavs/asterisk_allison/1.wav", "wavs/asterisk_allison/followme_1.wav"]


@pytest.mark.skipif(not sources.ASTERISK_ROOT.is_dir() or not (sources.ASTERISK_DOC / "core-sounds-en.txt.gz").is_file(),
                    reason="the Asterisk prompts are not installed (apt install asterisk-core-sounds-en-g722 asterisk-core-sounds-en)")
def test_real_asterisk_prompts_decode():
    from voicelab.audio.io import load_audio

    es = sources.read_corpus("asterisk", sources.ASTERISK_ROOT)
    assert len(es) > 500
    audio, sr = load_audio(next(e.path for e in es if e.path.stem == "agent-pass"))
    assert sr == 16000 and 2.0 < len(audio) / sr < 5.0
