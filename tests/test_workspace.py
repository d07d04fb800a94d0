"""Workspace: voice-name validation (no path tricks), VOICELAB_HOME, folder layout."""

from __future__ import annotations

import os

import pytest

from voicelab.errors import WorkspaceError
from voicelab.workspace import get_voice, home, inside, list_voices, validate_name


@pytest.mark.parametrize("name", ["alice", "my-voice", "Voice_2", "a", "x" * 64])
def test_good_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", ".", "../etc", "a/b", "a\\b", "/abs", "-dash", "_under", "sp ace", "x" * 65,
     "voice\0", "naïve", "a.b", "~root", None, 7],
)  # fmt: skip
def test_path_tricks_and_bad_names_are_refused(name):
    with pytest.raises(WorkspaceError, match="not allowed"):
        validate_name(name)


def test_home_and_layout(tmp_home):
    assert home() == tmp_home.resolve()
    v = get_voice("alice")
    assert not v.exists() and list_voices() == []
    v.create()
    for d in (v.raw, v.clean, v.slices, v.features, v.runs, v.exports):
        assert d.is_dir() and d.parent == tmp_home / "alice"
    assert v.dataset_list == v.slices / "dataset.list"
    assert list_voices() == ["alice"]
    with pytest.raises(WorkspaceError, match="run name"):
        v.run_dir("../../x")


def test_missing_voice_says_how_to_create_it(tmp_home):
    with pytest.raises(WorkspaceError, match="prepare --voice ghost"):
        get_voice("ghost", must_exist=True)


def test_inside_refuses_escapes(tmp_path):
    base = tmp_path / "ws"
    base.mkdir()
    assert inside(base, "a/b.wav") == (base / "a/b.wav").resolve()
    with pytest.raises(WorkspaceError):
        inside(base, "../outside.wav")
    with pytest.raises(WorkspaceError):
        inside(base, "/etc/passwd")
    os.symlink(tmp_path, base / "link")
    with pytest.raises(WorkspaceError):
        inside(base, "link/secret")
