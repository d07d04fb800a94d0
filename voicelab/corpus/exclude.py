"""What must never go into a base corpus: the development voices and sentences.

The fixtures in ../shared/fixtures (flite slt and rms, SVOX Pico en-US, and the sentences they
read) are the *unseen* voices on which fine-tuning from the base is judged (issue 9), and the eval
command's default sentences are the held-out test set. A base that had heard them would make
those numbers meaningless, so every corpus entry passes through `check_*` here, and the TTS
voice list, the sentence pool, imported lists and on-disk corpora are all filtered by it.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from voicelab.errors import VoicelabError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))

# (engine, voice) pairs, lower-case. flite's slt/rms also exist as cmu_us_* flitevox files.
DEV_VOICES = frozenset({("flite", "slt"), ("flite", "rms"), ("flite", "cmu_us_slt"),
                        ("flite", "cmu_us_rms"), ("pico", "en-us")})  # fmt: skip
# Speaker names the fixtures use in their .list files (and close spellings of them).
DEV_SPEAKERS = frozenset({"flite_slt", "flite_rms", "pico_en-us", "pico_en_us", "slt", "rms",
                          "cmu_us_slt", "cmu_us_rms"})  # fmt: skip
HELDOUT_FILES = (HERE / "heldout_en.txt", REPO / "voicelab" / "eval" / "sentences_en.txt")


def norm_text(text: str) -> str:
    """Lower-case words only, so punctuation and spacing never hide a held-out sentence."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def _read_lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line.split("|", 1)[1] if re.match(r"^(en|zh)\|", line) else line)
    return out


@lru_cache(maxsize=1)
def heldout_texts() -> frozenset[str]:
    """Normalised held-out sentences: voicelab's copy + whatever the fixtures folder holds now."""
    texts = set()
    for f in HELDOUT_FILES:
        if f.is_file():
            texts.update(norm_text(t) for t in _read_lines(f))
    speech = FIXTURES / "speech"
    if speech.is_dir():  # the fixtures may grow: read their own lists too
        for lst in speech.glob("*/metadata.list"):
            for line in lst.read_text(encoding="utf-8").splitlines():
                parts = line.split("|", 3)
                if len(parts) == 4:
                    texts.add(norm_text(parts[3]))
    texts.discard("")
    return frozenset(texts)


def is_dev_voice(engine: str, voice: str) -> bool:
    """True for a TTS voice kept out of base corpora (a fixture voice)."""
    v = Path(voice).stem.lower() if voice.endswith(".flitevox") else voice.lower()
    return (engine.lower(), v) in DEV_VOICES


def is_dev_speaker(speaker: str) -> bool:
    return speaker.strip().lower() in DEV_SPEAKERS


def is_heldout_text(text: str) -> bool:
    return norm_text(text) in heldout_texts()


def is_fixture_path(path: Path | str) -> bool:
    """Audio that lives inside the fixtures folder (whatever the speaker column says)."""
    try:
        p = Path(path).resolve()
        base = FIXTURES.resolve()
    except OSError:
        return False
    return p == base or base in p.parents


def check_voice(engine: str, voice: str) -> None:
    """Raise when someone asks for a development voice by name."""
    if is_dev_voice(engine, voice):
        raise VoicelabError(
            f"{engine} voice {voice!r} is a development voice (../shared/fixtures uses it as an "
            "unseen test voice), so it is kept out of base corpora: choose another voice"
        )


def exclusion_reason(speaker: str, text: str, path: Path | str | None = None) -> str | None:
    """Why an entry may not go into a base corpus, or None when it may."""
    if is_dev_speaker(speaker):
        return "development voice"
    if path is not None and is_fixture_path(path):
        return "fixture audio"
    if is_heldout_text(text):
        return "held-out sentence"
    return None
