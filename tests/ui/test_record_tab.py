"""Record & Clean: uploads are checked before anything is stored; a person can remove one."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from voicelab.errors import VoicelabError
from voicelab.ui import record_clean, record_takes
from voicelab.ui.common import fmt_duration
from voicelab.workspace import get_voice

sys.path.insert(0, str(Path(__file__).parent))
from test_handlers import DATA  # noqa: E402


def _wav(p: Path, channels: int = 1, sr: int = 16000, data_bytes: int | None = None,
         payload: bytes | None = None) -> Path:
    """A PCM-16 WAV whose header may claim more than the file holds."""
    if payload is None:
        payload = np.random.default_rng(0).normal(0, 3000, 16000).astype("<i2").tobytes()
    ba = channels * 2
    size = len(payload) if data_bytes is None else data_bytes
    p.write_bytes(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt "
                  + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * ba, ba, 16)
                  + b"data" + struct.pack("<I", size) + payload)
    return p


BAD = {  # issue 16.11: each was stored in raw/ and pre-selected for Clean every time
    "zero.wav": (lambda p: p.write_bytes(b""), "empty"),
    "text.wav": (lambda p: p.write_text("not audio at all\n" * 20), "not a readable audio"),
    "claims-2gb.wav": (lambda p: _wav(p, data_bytes=2**31 - 100), "truncated"),
    "claims-4h.wav": (lambda p: _wav(p, sr=1000, data_bytes=2 * 1000 * int(4.4 * 3600)), "truncated|hour"),
    "claims-1000ch.wav": (lambda p: _wav(p, channels=1000, payload=bytes(20000)), "1000 channels"),
    "silent.wav": (lambda p: _wav(p, payload=bytes(32000)), "silent"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_uploads_are_refused_before_anything_is_stored(tmp_home, tmp_path, name):
    v = get_voice("up").create()
    make, why = BAD[name]
    make(tmp_path / name)
    with pytest.raises(VoicelabError, match=why):
        record_takes.add_uploads(v, [str(DATA / "slt_000.wav"), str(tmp_path / name)])
    assert not any(v.raw.iterdir()), "all or nothing: nothing reached raw/"
    with pytest.raises(VoicelabError, match=why):
        record_takes.save_take(v, str(tmp_path / name), 0, ["A sentence."])
    assert not any(v.raw.iterdir())


def test_a_recording_is_removed_only_when_asked_and_can_be_recovered(tmp_home):
    v = get_voice("rm").create()
    take = record_takes.save_take(v, str(DATA / "slt_001.wav"), 0, ["She painted the fence."])
    (up,) = record_takes.add_uploads(v, [str(DATA / "slt_000.wav")])
    record_clean.clean_files(v, [take.name, up.name], record_clean.cleaning_config(True, 0.5, 60, -20))
    assert (v.clean / f"{take.stem}.wav").is_file()
    original = take.read_bytes()
    assert record_takes.remove_recordings(v, [take.name]) == [take.name]
    assert not take.exists() and not (v.clean / f"{take.stem}.wav").exists()
    moved = sorted((v.root / record_takes.REMOVED).iterdir())
    assert any(p.read_bytes() == original for p in moved), "moved aside, not deleted"
    assert [p.name for p in moved if p.name.endswith(".report.json")], "its report went along"
    assert record_clean.raw_files(v) == [up.name] and record_takes.read_takes(v) == []
    assert up.is_file() and (v.clean / f"{up.stem}.wav").is_file(), "the others are untouched"
    with pytest.raises(VoicelabError, match="not a recording"):
        record_takes.remove_recordings(v, [record_takes.TAKES_LIST])
    with pytest.raises(VoicelabError, match="pick the recordings"):
        record_takes.remove_recordings(v, [])
    # a second file of the same name removed later does not replace the first one in removed/
    shutil.copy(DATA / "slt_001.wav", take)
    record_takes.remove_recordings(v, [take.name])
    assert len([p for p in (v.root / record_takes.REMOVED).iterdir() if p.name.endswith("raw-" + take.name)]) == 2


def test_both_tabs_show_one_measure_of_speech(tmp_home):
    """Issue 15.9: Record & Clean and Slice reported 51 s and 1 min 05 s for the same take."""
    import re

    from voicelab.ui import slice as slice_tab

    v = get_voice("m").create()
    record_takes.add_uploads(v, [str(DATA / "slt_000.wav"), str(DATA / "slt_001.wav")])
    _, msg = record_clean.clean_files(v, record_clean.uncleaned(v), record_clean.cleaning_config(True, 0.5, 60, -20))
    slice_tab.do_slice(v, slice_tab.slicing_config(-34, 1000, 300, 10, 500, 12))
    md, _ = slice_tab.summary(v)
    said = re.search(r"so far: \*\*([^*]+)\*\*", msg).group(1)
    assert f"{said} of speech" in md, (msg, md)
    audio = sum(slice_tab.table(v)["seconds"])
    assert said != fmt_duration(audio), "speech, not the slices' length with silences"


def test_redo_and_skip_say_what_happened_and_takes_list_is_no_recording(tmp_home):
    """Issue 15.11: Redo previous gave no feedback; the Voice tab counted takes.list."""
    from voicelab.ui import voice as voice_tab

    prompts = ["One.", "Two.", "Three."]
    i, count, sentence, take, said = record_takes.move(2, -1, prompts)
    assert (i, count, sentence, take) == (1, "2 / 3", "Two.", None)
    assert "Redo sentence 2" in said and "old file stays" in said
    assert "no previous one" in record_takes.move(0, -1, prompts)[-1]
    assert record_takes.move(0, +1, prompts)[-1] == "Skipped sentence 1."
    v = get_voice("n").create()
    record_takes.save_take(v, str(DATA / "slt_000.wav"), 0, prompts)
    assert (v.raw / record_takes.TAKES_LIST).is_file()
    assert "| 1 recordings |" in voice_tab.describe_voice("n")
