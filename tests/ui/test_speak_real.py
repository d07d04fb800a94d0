"""Speak tab against the real eval and synthesizer (its own file: loading them takes a while)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_handlers import _voice_with_slices  # noqa: E402
from test_speak_tab import LONG, _speak  # noqa: E402

from voicelab.ui import speak  # noqa: E402


def test_check_quality_and_speak_with_a_real_untrained_model(tmp_home, tmp_path, tiny_cfg):
    """The real eval and synthesizer behind the Speak tab, on an untrained tiny model: the eval
    reports WER and similarity, and the synthesis check says the voice is not trained."""
    from tests.test_export import save_run

    v = _voice_with_slices("real")
    path, _ = save_run(v, tiny_cfg)
    rel = str(path.relative_to(v.root))
    sentences = tmp_path / "held_out.txt"
    sentences.write_text("A quiet river ran past the mill.\n")
    md = speak.check_quality(v, rel, sentences=sentences)
    assert "words misheard (WER)" in md and "similarity to your voice" in md
    assert list((v.root / "eval").glob("step-*/*.json")), "the full report is kept"
    r = _speak(v, rel, LONG, ref=0)  # slice 0 is long enough (3.2 s) to be a reference
    assert r.checks, "an untrained model's result is said to be off"
    assert Path(r.wav_path).is_file()
