"""Shared test fixtures: tiny configs, a temporary workspace, real speech.

Real speech comes from ../shared/fixtures (tests that need it skip with a reason where it is
absent); three short flite clips are copied into tests/assets so the core tests always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"  # the real clips every test may use
FIXTURES = Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))
SPEECH = FIXTURES / "speech"


@pytest.fixture(autouse=True)
def _no_shipped_base(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Tests train from scratch unless they ask for a base: the shipped one in assets/base would
    otherwise be picked up by every default-preset run (and make its result depend on it). Tests
    of the shipped base use `shipped_base`; tests of base handling set VOICELAB_BASE_DIR."""
    monkeypatch.setenv("VOICELAB_BASE_DIR", str(tmp_path_factory.mktemp("no-base")))


@pytest.fixture
def shipped_base(monkeypatch: pytest.MonkeyPatch) -> Path:
    """assets/base, the base voicelab ships (skip where it has not been shipped yet)."""
    folder = REPO / "assets" / "base"
    if not (folder / "base.safetensors").is_file():
        pytest.skip(f"no shipped base in {folder}")
    monkeypatch.setenv("VOICELAB_BASE_DIR", str(folder))
    return folder


@pytest.fixture
def speech_dir() -> Path:
    """../shared/fixtures/speech, or skip."""
    if not SPEECH.is_dir():
        pytest.skip(f"speech fixtures not found at {SPEECH} (set VOICELAB_FIXTURES)")
    return SPEECH


@pytest.fixture
def long_take(speech_dir: Path) -> Path:
    """About 75 s of flite_slt in one noisy take (44.1 kHz stereo FLAC) + its .json truth."""
    p = speech_dir / "long" / "flite_slt.flac"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


@pytest.fixture
def mini_list() -> Path:
    """tests/assets/mini.list: three short real utterances with their text (always present)."""
    return ASSETS / "mini.list"


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VOICELAB_HOME for one test."""
    home = tmp_path / "workspace"
    home.mkdir()
    monkeypatch.setenv("VOICELAB_HOME", str(home))
    return home


@pytest.fixture
def tiny_cfg():
    from voicelab.config import load_config

    return load_config("tiny", ["train.device=cpu"])
