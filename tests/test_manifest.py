"""GPT-SoVITS .list files: round trip, relative paths, language aliases, malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicelab.data.manifest import Entry, read_list, write_list
from voicelab.errors import VoicelabError


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
