"""Transcripts: ASR fills only empty English texts, typed texts survive, .list round trips."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from voicelab.data import transcripts as T
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture
def voice(tmp_home: Path):
    """A voice with three slices: English empty, English typed, Mandarin empty."""
    v = get_voice("tester").create()
    for name in ("slt_000.wav", "slt_001.wav", "rms_000.wav"):
        shutil.copy(DATA / name, v.slices / name)
    write_list(v.dataset_list, [
        Entry(v.slices / "slt_000.wav", "tester", "en", ""),
        Entry(v.slices / "slt_001.wav", "tester", "en", "My own typed words."),
        Entry(v.slices / "rms_000.wav", "tester", "zh", ""),
    ])
    return v


def _cli(argv: list[str]) -> int:
    from voicelab.commands import transcribe

    parser = argparse.ArgumentParser()
    transcribe.register(parser.add_subparsers())
    args = parser.parse_args(["transcribe", *argv])
    return args.func(args)


def test_table_without_state(voice) -> None:
    rows = T.load_table(voice)
    assert [r.file for r in rows] == ["slt_000.wav", "slt_001.wav", "rms_000.wav"]
    assert rows[0].text == "" and not rows[0].verified
    assert rows[1].verified and rows[1].source == "list"


def test_asr_fills_only_empty_english(voice, capsys) -> None:
    calls = []
    assert _cli(["--voice", "tester"]) == 0
    rows = {r.file: r for r in T.load_table(voice)}
    filled = rows["slt_000.wav"]
    assert "morning train" in filled.text and not filled.verified and filled.source == "asr"
    assert rows["slt_001.wav"].text == "My own typed words."  # never overwritten
    assert rows["rms_000.wav"].text == ""  # pocketsphinx is English only
    assert "filled 1" in capsys.readouterr().out
    # dataset.list stays pure GPT-SoVITS; the flags live beside it
    lines = voice.dataset_list.read_text().splitlines()
    assert all(len(line.split("|")) == 4 for line in lines)
    state = json.loads(T.state_path(voice).read_text())
    assert state["files"]["slt_000.wav"]["verified"] is False
    # a second run does nothing: the text is no longer empty
    s = T.transcribe_voice(voice, progress=lambda *a: calls.append(a))
    assert s.filled == 0 and s.kept == 2 and s.skipped_lang == 1
    assert calls[-1][0] == calls[-1][1] == 0


def test_save_texts_marks_verified(voice) -> None:
    assert T.save_texts(voice, {"slt_000.wav": "The morning  train\nleft."}) == 1
    row = T.load_table(voice)[0]
    assert row.text == "The morning train left." and row.verified and row.source == "typed"
    assert T.save_texts(voice, {"slt_000.wav": "The morning train left."}) == 0
    # the UI sends the whole table back: untouched rows (incl. empty ones) are not changes
    assert T.save_texts(voice, {r.file: r.text for r in T.load_table(voice)}) == 0
    with pytest.raises(VoicelabError, match="not a slice"):
        T.save_texts(voice, {"nope.wav": "x"})


def test_hand_edit_of_list_counts_as_verified(voice) -> None:
    T.save_texts(voice, {"slt_000.wav": "first"})
    entries = read_list(voice.dataset_list)
    entries[0] = entries[0].with_text("edited by hand")
    write_list(voice.dataset_list, entries)
    row = T.load_table(voice)[0]
    assert row.text == "edited by hand" and row.verified and row.source == "list"


def test_list_round_trip_import_export(voice, tmp_path: Path) -> None:
    T.save_texts(voice, {"slt_000.wav": "alpha text"})
    out = tmp_path / "out.list"
    assert _cli(["--voice", "tester", "--export", str(out)]) == 0
    exported = read_list(out)
    assert [(e.path.name, e.lang, e.text) for e in exported] == [
        ("slt_000.wav", "en", "alpha text"), ("slt_001.wav", "en", "My own typed words.")
    ]
    assert all(e.path.is_file() for e in exported)  # absolute paths to the slices

    # a list from elsewhere (other folder, other paths): matched by file name
    other = tmp_path / "gptsovits.list"
    other.write_text(
        "/far/away/slt_000.wav|spk|EN|changed text\n"
        "/far/away/rms_000.wav|spk|ZH|早上的火车提前开走了\n"
        "/far/away/missing.wav|spk|en|ghost\n",
        encoding="utf-8",
    )
    s = T.import_list(voice, other)
    assert s.updated == 1 and s.kept == 1 and s.unmatched == ["missing.wav"]
    rows = {r.file: r for r in T.load_table(voice)}
    assert rows["slt_000.wav"].text == "alpha text"  # typed: kept without --overwrite
    assert rows["rms_000.wav"].text == "早上的火车提前开走了" and rows["rms_000.wav"].source == "imported"
    assert _cli(["--voice", "tester", "--from-list", str(other), "--overwrite"]) == 0
    assert T.load_table(voice)[0].text == "changed text"

    # export -> import into a fresh copy gives identical texts
    out2 = tmp_path / "again.list"
    T.export_list(voice, out2)
    T.save_texts(voice, {"slt_000.wav": "", "slt_001.wav": "", "rms_000.wav": ""})
    T.import_list(voice, out2)
    assert [(r.text, r.lang) for r in T.load_table(voice)] == [
        (e.text, e.lang) for e in read_list(out2)
    ]


def test_import_replaces_unverified_asr_text(voice, tmp_path: Path) -> None:
    entries = read_list(voice.dataset_list)
    entries[0] = entries[0].with_text("asr guess")
    write_list(voice.dataset_list, entries)
    T._write(voice, entries, {"slt_000.wav": {"source": "asr", "verified": False, "text": "asr guess"}})
    assert not T.load_table(voice)[0].verified
    lst = tmp_path / "fix.list"
    lst.write_text("slt_000.wav|x|en|the real words\n", encoding="utf-8")
    assert T.import_list(voice, lst).updated == 1
    row = T.load_table(voice)[0]
    assert row.text == "the real words" and row.verified


def test_errors_are_clear(tmp_home: Path, tmp_path: Path) -> None:
    v = get_voice("empty").create()
    with pytest.raises(VoicelabError, match="slice --voice empty"):
        T.load_table(v)
    with pytest.raises(VoicelabError, match="does not exist"):
        T.import_list(v, tmp_path / "nope.list")


def test_export_never_overwrites_lists_or_raw(voice, tmp_path: Path, capsys) -> None:
    """Issue 16 item 2: --export refused an existing file nowhere (another voice's typed texts,
    raw/ recordings, any file outside were replaced)."""
    other = get_voice("other").create()
    shutil.copy(DATA / "slt_000.wav", other.slices / "slt_000.wav")
    write_list(other.dataset_list, [Entry(other.slices / "slt_000.wav", "other", "en", "mine")])
    before_list = other.dataset_list.read_bytes()
    raw_file = other.raw / "take.wav"
    shutil.copy(DATA / "slt_001.wav", raw_file)
    before_raw = raw_file.read_bytes()
    outside = tmp_path / "notes.txt"
    outside.write_text("keep me", encoding="utf-8")

    for target, needle in [(other.dataset_list, "own dataset.list"), (raw_file, "raw/"),
                           (outside, "already exists"), (tmp_path, "is a folder"),
                           (tmp_path / "no" / "such" / "x.list", "does not exist")]:
        with pytest.raises(VoicelabError, match=needle):
            _cli(["--voice", "tester", "--export", str(target)])
    # --force replaces an ordinary file, never a voice's list or a recording
    for target in (other.dataset_list, raw_file):
        with pytest.raises(VoicelabError):
            _cli(["--voice", "tester", "--export", str(target), "--force"])
    assert other.dataset_list.read_bytes() == before_list and raw_file.read_bytes() == before_raw
    assert outside.read_text(encoding="utf-8") == "keep me"
    assert _cli(["--voice", "tester", "--export", str(outside), "--force"]) == 0
    assert [e.text for e in read_list(outside)] == ["My own typed words."]
    # a refused export is checked before anything else runs (the import does not happen)
    lst = tmp_path / "in.list"
    lst.write_text("slt_000.wav|x|en|imported words\n", encoding="utf-8")
    with pytest.raises(VoicelabError, match="already exists"):
        _cli(["--voice", "tester", "--from-list", str(lst), "--export", str(outside)])
    assert T.load_table(voice)[0].text == ""


def test_overlong_texts_are_refused_at_import_naming_the_slice(voice, tmp_path: Path) -> None:
    """Issue 16 item 7: a 1 MB text imported fine and crashed training with an 11 TB allocation."""
    before = voice.dataset_list.read_bytes()
    lst = tmp_path / "long.list"
    lst.write_text("slt_000.wav|x|en|fine words\n"
                   f"rms_000.wav|x|en|{'word ' * 200_000}\n", encoding="utf-8")
    with pytest.raises(VoicelabError, match=r"rms_000.wav: the text is 999,999 characters"):
        T.import_list(voice, lst)
    assert voice.dataset_list.read_bytes() == before  # nothing imported, not even the good line
    with pytest.raises(VoicelabError, match=f"slt_000.wav: the text is {T.MAX_TEXT_CHARS + 1:,}"):
        T.save_texts(voice, {"slt_001.wav": "ok", "slt_000.wav": "x" * (T.MAX_TEXT_CHARS + 1)})
    assert voice.dataset_list.read_bytes() == before
    assert T.save_texts(voice, {"slt_000.wav": "x" * T.MAX_TEXT_CHARS}) == 1  # the limit itself is fine


def test_from_list_with_a_folder_says_what_to_give(voice, tmp_path: Path) -> None:
    """Issue 16 item 14: `--from-list DIR` said "does not exist"."""
    with pytest.raises(VoicelabError, match="is a folder: give the .list file"):
        _cli(["--voice", "tester", "--from-list", str(tmp_path)])


def test_training_data_refuses_overlong_texts_naming_the_slice(voice, tiny_cfg, caplog) -> None:
    """Issue 16 items 7 and 14: a text edited into dataset.list by hand reached the models (a
    1,800-character text trained all of stage 1, then failed on gpt_max_positions); slices
    without text were dropped without a word."""
    import logging

    from voicelab.data.dataset import VoiceData

    entries = read_list(voice.dataset_list)
    sentence = "The morning train left the station a few minutes early. "
    too_long = (sentence * 20)[: T.MAX_TEXT_CHARS + 1] + "x"  # no trailing space to strip
    write_list(voice.dataset_list, [entries[0].with_text("Hello."), entries[1].with_text(too_long),
                                    entries[2]])
    with pytest.raises(VoicelabError, match=r"slt_001.wav: the text is 1,002 characters"):
        VoiceData.load(voice, tiny_cfg)
    # shorter than the character limit, but more than the tiny GPT's 512 positions
    fits_chars = sentence * 12  # 684 characters
    assert len(fits_chars) <= T.MAX_TEXT_CHARS and tiny_cfg.model.gpt_max_positions == 512
    write_list(voice.dataset_list, [entries[0].with_text("Hello."), entries[1].with_text(fits_chars),
                                    entries[2]])
    with pytest.raises(VoicelabError, match=r"slt_001.wav: .* GPT positions but model.gpt_max_positions=512"):
        VoiceData.load(voice, tiny_cfg)
    write_list(voice.dataset_list, [entries[0].with_text("Hello."), entries[1], entries[2]])
    with caplog.at_level(logging.WARNING, logger="voicelab.data.dataset"):
        data = VoiceData.load(voice, tiny_cfg)
    assert len(data.items) == 2
    assert "1 slice(s) have no text" in caplog.text and "rms_000.wav" in caplog.text
