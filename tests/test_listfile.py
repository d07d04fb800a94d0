"""GPT-SoVITS .list files (voicelab.listfile): round trip, relative paths, language aliases,
malformed lines, files that are not UTF-8 text."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list

ASSETS = Path(__file__).resolve().parent / "assets"


def test_round_trip_with_relative_paths(tmp_path):
    (tmp_path / "wavs").mkdir()
    entries = [
        Entry((tmp_path / "wavs" / "a.wav").resolve(), "alice", "en", "Hello there."),
        Entry((tmp_path / "wavs" / "b.wav").resolve(), "alice", "zh", "你好"),
        Entry(Path("/elsewhere/c.wav"), "bob", "auto", ""),
    ]
    p = write_list(tmp_path / "dataset.list", entries)
    lines = p.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "wavs/a.wav|alice|en|Hello there."  # stored relative to the list
    assert lines[2] == "/elsewhere/c.wav|bob|auto|"
    assert read_list(p) == entries


def test_text_cannot_break_the_format(tmp_path):
    e = Entry((tmp_path / "a.wav").resolve(), "s", "en", "one | two\nthree")
    p = write_list(tmp_path / "x.list", [e])
    assert read_list(p)[0].text == "one two three"


def test_real_list_and_aliases(mini_list, tmp_path):
    entries = read_list(mini_list)
    assert len(entries) == 3 and all(e.path.is_file() for e in entries)
    assert entries[0].text.startswith("The morning train")
    p = tmp_path / "gpt.list"
    p.write_text("# comment\n\nx.wav|s|ZH|文本\ny.wav|s|all_zh|t\nz.wav|s|EN|t\n", encoding="utf-8")
    assert [e.lang for e in read_list(p)] == ["zh", "zh", "en"]


@pytest.mark.parametrize(
    "line,needle",
    [("only|three|fields", "4 fields"), ("|s|en|t", "audio path is empty"), ("a.wav|s|fr|t", "not supported")],
)
def test_malformed_lines_name_the_line(tmp_path, line, needle):
    p = tmp_path / "bad.list"
    p.write_text(f"ok.wav|s|en|t\n{line}\n", encoding="utf-8")
    with pytest.raises(VoicelabError, match=rf"bad\.list:2: .*{needle}"):
        read_list(p)


def test_missing_list():
    with pytest.raises(VoicelabError, match="does not exist"):
        read_list("/nope/x.list")


def test_binary_file_is_refused_in_one_line(tmp_path):
    """A WAV given where a .list belongs: one line naming the file and what to give instead."""
    p = tmp_path / "takes.list"
    p.write_bytes((ASSETS / "slt_000.wav").read_bytes())
    with pytest.raises(VoicelabError) as err:
        read_list(p)
    msg = str(err.value)
    assert "\n" not in msg and str(p) in msg
    assert "binary" in msg and "UTF-8 text .list" in msg


def test_list_not_in_utf8_names_the_line_and_the_fix(tmp_path):
    p = tmp_path / "latin1.list"
    p.write_bytes("a.wav|s|en|plain\nb.wav|s|en|un café noir\n".encode("latin-1"))
    with pytest.raises(VoicelabError) as err:
        read_list(p)
    msg = str(err.value)
    assert "\n" not in msg and f"{p}:2:" in msg
    assert "not UTF-8" in msg and "save the list as UTF-8" in msg
    # the same text saved as UTF-8 (with the BOM some editors add) reads fine
    p.write_bytes("\ufeffa.wav|s|en|plain\nb.wav|s|en|un café noir\n".encode("utf-8"))
    assert [e.text for e in read_list(p)] == ["plain", "un café noir"]
