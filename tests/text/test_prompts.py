"""The recording prompts: enough, unique, the right length, and all speakable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicelab.text.phonemes import phonemize

PROMPTS = Path(__file__).resolve().parents[2] / "assets" / "prompts"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_prompts(lang: str) -> None:
    lines = (PROMPTS / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    assert 90 <= len(lines) <= 110 and len(set(lines)) == len(lines)
    for line in lines:
        if lang == "en":
            assert 6 <= len(line.split()) <= 16, line
        else:
            assert 8 <= len(re.sub(r"[，。？！、]", "", line)) <= 25, line
        r = phonemize(line, lang)
        assert not r.warnings, (line, r.warnings)
    # phonetically varied: every Mandarin initial appears somewhere
    if lang == "zh":
        seen = {p for line in lines for p in phonemize(line, "zh").phones}
        for initial in "b p m f d t n l g k h j q x zh ch sh r z c s y w AA EE OO".split():
            assert initial in seen, initial
