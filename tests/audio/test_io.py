"""load_audio / write_wav on real speech in every supported format, and every kind of bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicelab.audio import io as aio
from voicelab.audio.io import load_audio, write_wav
from voicelab.errors import AudioError

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    y, sr = sf.read(DATA / "slt_000.wav", dtype="float32")
    return y, sr


@pytest.mark.parametrize(
    "fmt,subtype,ext,tol",
    [
        ("WAV", "PCM_16", ".wav", 1e-4),
        ("WAV", "PCM_24", ".wav", 1e-4),
        ("WAV", "PCM_32", ".wav", 1e-4),
        ("WAV", "FLOAT", ".wav", 1e-6),
        ("WAV", "PCM_U8", ".wav", 2e-2),
        ("FLAC", "PCM_16", ".flac", 1e-4),
        ("OGG", "VORBIS", ".ogg", None),
        ("MP3", "MPEG_LAYER_III", ".mp3", None),
    ],
)
def test_formats_decode_real_speech(tmp_path, speech, fmt, subtype, ext, tol):
    y, sr = speech
    p = tmp_path / f"take{ext}"
    sf.write(p, y, sr, format=fmt, subtype=subtype)
    out, out_sr = load_audio(p)
    assert out_sr == sr and out.dtype == np.float32 and out.ndim == 1
    if tol is not None:
        assert out.shape == y.shape
        assert np.max(np.abs(out - y)) < tol
    else:  # lossy codecs: same length within a frame or two, same loudness
        assert abs(out.shape[0] - y.shape[0]) < 4096
        assert abs(np.std(out) / np.std(y) - 1) < 0.1


def test_channels_and_rate(tmp_path, speech):
    y, sr = speech
    stereo = np.stack([y, 0.5 * y], axis=1)
    p = tmp_path / "stereo48k.wav"
    sf.write(p, stereo, sr)
    multi, msr = load_audio(p, mono=False)
    assert multi.shape == (2, y.shape[0]) and msr == sr
    mono, _ = load_audio(p)
    np.testing.assert_allclose(mono, 0.75 * y, atol=1e-4)
    up, usr = load_audio(p, target_sr=32000)
    assert usr == 32000 and abs(up.shape[0] - 2 * y.shape[0]) <= 1


def _wav_bytes(tmp_path, speech) -> bytes:
    p = tmp_path / "ok.wav"
    sf.write(p, speech[0], speech[1], subtype="PCM_16")
    return p.read_bytes()


@pytest.mark.parametrize(
    "name,make,needle",
    [
        ("empty.wav", lambda b: b"", "empty"),
        ("truncated.wav", lambda b: b[: len(b) // 2], "truncated"),
        ("header_only.wav", lambda b: b[:40], "damaged"),
        ("notes.wav", lambda b: b"these are my notes, not a recording\n" * 20, "not an audio file"),
    ],
)
def test_bad_files_name_the_file(tmp_path, speech, name, make, needle, monkeypatch):
    monkeypatch.setattr(aio, "_ffmpeg_available", lambda: False)
    p = tmp_path / name
    p.write_bytes(make(_wav_bytes(tmp_path, speech)))
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert name in str(e.value) and needle in str(e.value)


def test_truncated_flac(tmp_path, speech):
    p = tmp_path / "cut.flac"
    sf.write(p, speech[0], speech[1], format="FLAC")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.flac.*(truncated|damaged)"):
        load_audio(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio("/nonexistent/take.wav")
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)


def test_silence_only(tmp_path):
    p = tmp_path / "quiet.wav"
    sf.write(p, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match=r"quiet\.wav.*silent"):
        load_audio(p)
    assert load_audio(p, allow_silence=True)[0].shape == (16000,)


def test_nan_and_inf(tmp_path, speech):
    for bad in (np.nan, np.inf):
        y = speech[0].copy()
        y[1000] = bad
        p = tmp_path / "broken.wav"
        sf.write(p, y, speech[1], subtype="FLOAT")
        with pytest.raises(AudioError, match=r"broken\.wav.*NaN or infinity"):
            load_audio(p)


def test_too_long_is_refused_before_decoding(tmp_path, speech):
    p = tmp_path / "long.wav"
    sf.write(p, speech[0], speech[1])
    with pytest.raises(AudioError, match=r"long\.wav.*longer than"):
        load_audio(p, max_seconds=1.0)


def test_missing_decoder_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(aio, "_ffmpeg_available", lambda: False)
    p = tmp_path / "browser.webm"
    p.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 200)  # an EBML (WebM) header
    with pytest.raises(AudioError, match=r"browser\.webm.*ffmpeg"):
        load_audio(p)


def test_wav_truncation_check_ignores_streaming_sizes(tmp_path, speech):
    b = bytearray(_wav_bytes(tmp_path, speech))
    i = b.index(b"data")
    b[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFFF)  # what streaming recorders write
    p = tmp_path / "stream.wav"
    p.write_bytes(bytes(b))
    assert not aio._wav_truncated(p)


def test_write_wav_round_trip_and_atomic(tmp_path, speech):
    y, sr = speech
    p = write_wav(tmp_path / "sub" / "out.wav", y, sr)
    info = sf.info(p)
    assert info.subtype == "PCM_16" and info.samplerate == sr
    back, _ = load_audio(p)
    assert np.max(np.abs(back - y)) < 1e-4
    assert [f.name for f in p.parent.iterdir()] == ["out.wav"]  # no temp file left behind
    loud = write_wav(tmp_path / "clip.wav", np.array([2.0, -2.0, 0.5], np.float32), sr)
    assert np.abs(sf.read(loud, dtype="int16")[0]).max() <= 32767
