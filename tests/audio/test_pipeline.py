"""prepare -> slice -> features on a voice folder, with real speech: raw/ is never touched,
bad files do not stop good ones, typed texts survive re-slicing, .list import, feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicelab.audio.pipeline import (
    extract_features,
    file_hash,
    import_list,
    prepare_files,
    slice_voice,
)
from voicelab.config import load_config
from voicelab.errors import VoicelabError
from voicelab.listfile import read_list, write_list
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture
def session(tmp_path) -> Path:
    """Three real sentences in one 16 kHz stereo take with 1 s pauses, like a person records."""
    parts = []
    for name in ("slt_000", "slt_001", "rms_000"):
        y, sr = sf.read(DATA / f"{name}.wav", dtype="float32")
        parts += [np.zeros(sr, np.float32), y]
    y = np.concatenate(parts + [np.zeros(sr, np.float32)])
    rng = np.random.default_rng(0)
    y = y + rng.normal(0, 10 ** (-50 / 20), len(y)).astype(np.float32)  # a quiet room
    p = tmp_path / "my session.wav"
    sf.write(p, np.stack([y, y], axis=1), sr, subtype="PCM_16")
    return p


def test_prepare_good_and_bad_files(tmp_home, tiny_cfg, session, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    before = file_hash(session)
    voice = get_voice("alice")
    calls = []
    res = prepare_files(voice, [bad, session, empty], tiny_cfg, progress=lambda *a: calls.append(a))
    assert [r.ok for r in res] == [False, True, False]
    assert "notes.wav" in res[0].error and "empty.flac" in res[2].error
    good = res[1]
    assert good.raw == voice.raw.resolve() / "my_session.wav"  # safe name
    assert file_hash(good.raw) == before == file_hash(session)  # an exact, untouched copy
    info = sf.info(good.clean)
    assert (info.samplerate, info.channels, info.subtype) == (32000, 1, "PCM_16")
    report = (voice.clean / "my_session.report.json").read_text()
    assert '"source": "my session.wav"' in report and '"loudness_after_lufs"' in report
    assert calls[0][:2] == (0, 3) and calls[-1][:2] == (3, 3)
    assert sorted(p.name for p in voice.raw.iterdir()) == ["my_session.wav"]  # bad files not kept


def test_raw_is_never_overwritten(tmp_home, tiny_cfg, session, tmp_path):
    voice = get_voice("bob")
    first = prepare_files(voice, [session], tiny_cfg)[0]
    mtime = first.raw.stat().st_mtime_ns
    again = prepare_files(voice, [session], tiny_cfg)[0]  # same content: reused, not copied
    assert again.raw == first.raw and first.raw.stat().st_mtime_ns == mtime
    other = tmp_path / "other" / "my session.wav"  # same name, different recording
    other.parent.mkdir()
    y, sr = sf.read(DATA / "slt_001.wav")
    sf.write(other, y, sr)
    third = prepare_files(voice, [other], tiny_cfg)[0]
    assert third.raw.name == "my_session-2.wav" and third.clean.name == "my_session-2.wav"
    assert file_hash(first.raw) == file_hash(session)
    in_place = prepare_files(voice, [third.raw], tiny_cfg)[0]  # a file already in raw/
    assert in_place.raw == third.raw and len(list(voice.raw.iterdir())) == 2


def test_prepare_refuses_too_long_input(tmp_home, session):
    cfg = load_config("tiny", ["audio.max_input_hours=0.001"])  # 3.6 s
    res = prepare_files(get_voice("carl"), [session], cfg)
    assert not res[0].ok and "longer than" in res[0].error and "my session.wav" in res[0].error


def test_slice_keeps_typed_texts(tmp_home, tiny_cfg, session):
    voice = get_voice("dana")
    prepare_files(voice, [session], tiny_cfg)
    entries = slice_voice(voice, tiny_cfg)
    assert len(entries) >= 2
    assert all(e.speaker == "dana" and e.lang == "en" and e.text == "" for e in entries)
    assert read_list(voice.dataset_list) == entries
    for e in entries:
        assert sf.info(e.path).samplerate == 32000
    typed = [e.with_text(f"sentence {i}") for i, e in enumerate(entries)]
    write_list(voice.dataset_list, typed)

    same = slice_voice(voice, tiny_cfg)  # same settings: same audio, texts kept
    assert [e.text for e in same] == [e.text for e in typed]

    changed = load_config("tiny", ["slice.max_sil_kept_ms=100"])  # different cuts
    snapshot = voice.dataset_list.read_text()
    files = sorted(p.name for p in voice.slices.glob("*.wav"))
    with pytest.raises(VoicelabError, match="typed text.*--force"):
        slice_voice(voice, changed)
    assert voice.dataset_list.read_text() == snapshot  # nothing changed
    assert sorted(p.name for p in voice.slices.glob("*.wav")) == files

    forced = slice_voice(voice, changed, force=True)
    assert len(list(voice.slices.glob("dataset.list.*.bak"))) == 1
    assert all(e.path.is_file() for e in forced)
    assert sorted(p.name for p in voice.slices.glob("*.wav")) == sorted(e.path.name for e in forced)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # silero's importlib / jit.load use
def test_vad_method(tmp_home, session):
    cfg = load_config("tiny", ["slice.method=vad", "slice.min_length_ms=1000"])
    voice = get_voice("vad")
    prepare_files(voice, [session], cfg)
    entries = slice_voice(voice, cfg)
    assert len(entries) == 3  # three sentences, 1 s apart
    for e in entries:
        assert 2.5 < sf.info(e.path).duration < 5.0


def test_slice_without_clean_files(tmp_home, tiny_cfg):
    voice = get_voice("empty").create()
    with pytest.raises(VoicelabError, match="run `python -m voicelab prepare"):
        slice_voice(voice, tiny_cfg)


def test_import_list(tmp_home, tiny_cfg, mini_list, tmp_path):
    voice = get_voice("imp")
    res = import_list(voice, mini_list, tiny_cfg)
    assert (res.added, res.skipped, res.errors) == (3, 0, [])
    listed = read_list(voice.dataset_list)
    assert [e.text for e in listed] == [e.text for e in read_list(mini_list)]
    assert all(e.speaker == "imp" and sf.info(e.path).samplerate == 32000 for e in listed)
    again = import_list(voice, mini_list, tiny_cfg)
    assert (again.added, again.skipped) == (0, 3) and len(read_list(voice.dataset_list)) == 3
    broken = tmp_path / "broken.list"
    broken.write_text(f"{DATA / 'slt_000.wav'}|x|en|hello\nmissing.wav|x|en|gone\n")
    res = import_list(get_voice("imp2"), broken, tiny_cfg)
    assert res.added == 1 and len(res.errors) == 1 and "missing.wav" in res.errors[0]


def test_features_second_run_recomputes_nothing(tmp_home, tiny_cfg, mini_list):
    voice = get_voice("feats")
    with pytest.raises(VoicelabError, match="no slices yet"):
        extract_features(voice, tiny_cfg)
    import_list(voice, mini_list, tiny_cfg)
    first = extract_features(voice, tiny_cfg, device="cpu")
    assert (first.total, first.computed, first.cached, len(first)) == (3, 3, 0, 3)
    second = extract_features(voice, tiny_cfg, device="cpu")
    assert (second.computed, second.cached) == (0, 3)
    assert len(list((voice.features / "spec").glob("*.safetensors"))) == 3
