"""What must never go into a base corpus: the development voices, the held-out evaluation
voices, and the held-out sentences.

- Development voices: the fixtures in ../shared/fixtures (flite slt and rms, SVOX Pico en-US)
  are the *unseen* voices on which fine-tuning from the base is judged (issues 9 and 14). Every
  other rendering of the same person is the same voice: RHVoice's slt, Debian's
  festvox-us-slt-hts (cmu_us_slt_arctic_hts), flite's cmu_us_slt.flitevox ...
- Held-out evaluation voices: flite awb (and every other awb rendering), every MBROLA voice and
  SVOX Pico en-GB are kept for an independent evaluation on voices nobody tuned on.
- Held-out sentences: the fixtures' sentences and the eval command's defaults.

A base that had heard any of them would make those numbers meaningless, so every corpus entry
passes through `exclusion_reason` here, and the TTS voice list, the sentence pool, imported lists
and on-disk corpora are all filtered by it.
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

DEV = "development voice"
HELDOUT_VOICE = "held-out evaluation voice"
# (engine, voice) pairs, lower-case, of the development voices as each engine names them.
DEV_VOICES = frozenset({("flite", "slt"), ("flite", "rms"), ("flite", "cmu_us_slt"),
                        ("flite", "cmu_us_rms"), ("pico", "en-us"), ("rhvoice", "slt"),
                        ("festival", "cmu_us_slt_arctic_hts")})  # fmt: skip
# ... and of the held-out evaluation voices (every MBROLA voice is held out too, by engine).
HELDOUT_VOICES = frozenset({("flite", "awb"), ("flite", "cmu_us_awb"), ("pico", "en-gb")})
# The people behind those voices: a voice name with one of these words is that person, whatever
# the engine (cmu_us_slt_arctic_hts, slt-eng, rms_cg, awb_time ...).
DEV_PEOPLE = frozenset({"slt", "rms"})
HELDOUT_PEOPLE = frozenset({"awb"})
MBROLA_ENGINES = frozenset({"mbrola"})
# Speaker names the fixtures use in their .list files (and close spellings of them).
DEV_SPEAKERS = frozenset({"flite_slt", "flite_rms", "pico_en-us", "pico_en_us", "slt", "rms",
                          "cmu_us_slt", "cmu_us_rms"})  # fmt: skip
HELDOUT_SPEAKERS = frozenset({"flite_awb", "awb", "pico_en-gb", "pico_en_gb", "cmu_us_awb"})
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


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def voice_exclusion(engine: str, voice: str) -> str | None:
    """Why a TTS voice may never read for a base corpus (DEV or HELDOUT_VOICE), or None."""
    e = engine.strip().lower()
    v = voice.strip().lower()
    if v.endswith(".flitevox"):
        v = Path(v).stem
    if (e, v) in DEV_VOICES:
        return DEV
    if (e, v) in HELDOUT_VOICES or e in MBROLA_ENGINES:
        return HELDOUT_VOICE
    if e == "espeak" and (v.startswith("mb-") or "mbrola" in v):  # espeak-ng's MBROLA voices
        return HELDOUT_VOICE
    words = _words(v)
    if words & DEV_PEOPLE:
        return DEV
    if words & HELDOUT_PEOPLE:
        return HELDOUT_VOICE
    return None


def is_dev_voice(engine: str, voice: str) -> bool:
    """True for a TTS voice kept out of base corpora (a development or held-out voice)."""
    return voice_exclusion(engine, voice) is not None


def speaker_exclusion(speaker: str) -> str | None:
    """Why a speaker name (a .list's speaker column, a corpus speaker) is kept out, or None.

    Knows the fixtures' names (flite_slt, pico_en-US) and voicelab's own ENGINE_VOICE names
    (rhvoice_slt, espeak_mb-us1, festival_cmu_us_slt_arctic_hts)."""
    s = speaker.strip().lower()
    if s in DEV_SPEAKERS:
        return DEV
    if s in HELDOUT_SPEAKERS:
        return HELDOUT_VOICE
    engine, sep, voice = s.partition("_")
    if sep and engine in ("flite", "pico", "espeak", "festival", "rhvoice", "mbrola"):
        why = voice_exclusion(engine, voice)
        if why:
            return why
    words = _words(s)
    if words & DEV_PEOPLE:
        return DEV
    if words & HELDOUT_PEOPLE:
        return HELDOUT_VOICE
    return None


def is_dev_speaker(speaker: str) -> bool:
    return speaker_exclusion(speaker) is not None


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
    """Raise when someone asks for a development or held-out evaluation voice by name."""
    why = voice_exclusion(engine, voice)
    if why == DEV:
        raise VoicelabError(
            f"{engine} voice {voice!r} is a development voice (../shared/fixtures uses it as an "
            "unseen test voice), so it is kept out of base corpora: choose another voice"
        )
    if why == HELDOUT_VOICE:
        raise VoicelabError(
            f"{engine} voice {voice!r} is a held-out evaluation voice (flite awb, every MBROLA "
            "voice and SVOX Pico en-GB are kept for an independent evaluation), so it is never "
            "used to build or tune anything: choose another voice"
        )


def exclusion_reason(speaker: str, text: str, path: Path | str | None = None) -> str | None:
    """Why an entry may not go into a base corpus, or None when it may."""
    why = speaker_exclusion(speaker)
    if why:
        return why
    if path is not None and is_fixture_path(path):
        return "fixture audio"
    if is_heldout_text(text):
        return "held-out sentence"
    return None
