"""Reading and writing audio files, with errors a person can act on.

`load_audio` decodes WAV / FLAC / OGG (Vorbis, Opus) / MP3 with libsndfile (through soundfile),
at any sample rate, channel count and sample format. Formats libsndfile cannot read (a browser
microphone's WebM or an iPhone's M4A) go through librosa/audioread, which needs ffmpeg; when no
such decoder is installed the error names it. Every problem raises `AudioError` naming the file.

`write_wav` writes PCM-16 WAV atomically (temp + rename, see voicelab.fileio).
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voicelab.errors import AudioError
from voicelab.fileio import write_bytes_atomic

# Below this peak (-80 dBFS) a whole file is treated as silence: nothing to learn from.
SILENCE_PEAK = 1e-4
# Containers libsndfile cannot open; decoding them needs ffmpeg (via audioread).
FFMPEG_FORMATS = {".webm", ".m4a", ".mp4", ".aac", ".wma", ".mka", ".3gp", ".amr"}
SUPPORTED_HINT = "WAV, FLAC, OGG or MP3"


def _wav_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file's 'data' chunk declares more bytes than the file holds.

    libsndfile silently reads what is there, so a half-copied recording would otherwise pass as a
    shorter one. Streaming writers put 0 or 0xFFFFFFFF as the size: those are not flagged.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        size = path.stat().st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                return clen not in (0, 0xFFFFFFFF) and pos + 8 + clen > size
            pos += 8 + clen + (clen & 1)
    return False


def _ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None or shutil.which("avconv") is not None


def _decode_fallback(path: Path) -> tuple[np.ndarray, int]:
    """Decode with librosa/audioread (ffmpeg backend). Returns ([C, T] float32, sr)."""
    import warnings

    import librosa

    if not _ffmpeg_available():
        raise AudioError(
            f"{path.name}: this {path.suffix or 'file'} format needs the ffmpeg decoder, which is "
            f"not installed: install ffmpeg (e.g. `apt install ffmpeg` or `brew install ffmpeg`) "
            f"or convert the file to {SUPPORTED_HINT}"
        )
    from audioread.exceptions import DecodeError  # NoBackendError: ffmpeg could not read it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns that audioread is deprecated
            y, sr = librosa.load(str(path), sr=None, mono=False)
    except (OSError, EOFError, RuntimeError, ValueError, DecodeError) as e:
        raise AudioError(
            f"{path.name}: could not be decoded ({e}); it may be damaged or not audio: "
            f"convert it to {SUPPORTED_HINT} and try again"
        ) from None
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    return y, int(sr)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to ([C, T] float32, sr), raising AudioError for anything unusable."""
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as e:
        if path.suffix.lower() in FFMPEG_FORMATS:
            return _decode_fallback(path)
        msg = str(e)
        if "Format not recognised" in msg or "unknown format" in msg.lower():
            if _ffmpeg_available():
                return _decode_fallback(path)
            raise AudioError(
                f"{path.name}: is not an audio file voicelab can read: use {SUPPORTED_HINT} "
                "(other formats need ffmpeg installed)"
            ) from None
        raise AudioError(
            f"{path.name}: the audio file is damaged or incomplete ({msg.split(': ', 1)[-1]}): "
            "record or export it again"
        ) from None
    if path.suffix.lower() in (".wav", ".wave") and _wav_truncated(path):
        raise AudioError(
            f"{path.name}: the file is truncated (it ends before its audio data does): "
            "copy or export it again"
        )
    try:
        # always_2d -> [T, C]; float32 maps every integer format to [-1, 1)
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(
            f"{path.name}: the audio file is damaged or truncated ({e.error_string}): "
            "copy or export it again"
        ) from None
    if info.frames > 0 and data.shape[0] < info.frames and info.format != "MPEG":
        raise AudioError(
            f"{path.name}: the file is truncated ({data.shape[0]} of {info.frames} samples "
            "could be read): copy or export it again"
        )
    return np.ascontiguousarray(data.T), int(sr)


def load_audio(
    path: Path | str,
    target_sr: int | None = None,
    mono: bool = True,
    max_seconds: float | None = 2 * 3600.0,
    allow_silence: bool = False,
) -> tuple[np.ndarray, int]:
    """Decode an audio file.

    Args:
        path: any file libsndfile reads (or ffmpeg, where installed).
        target_sr: resample to this rate with soxr (None keeps the file's rate).
        mono: average the channels.
        max_seconds: refuse longer input (cfg.audio.max_input_hours * 3600); None = no limit.
        allow_silence: accept a file whose peak is below -80 dBFS.

    Returns:
        (audio, sr): float32 [T] when mono, else [C, T]; values in [-1, 1] for integer input.

    Raises:
        AudioError naming the file: missing, empty, not audio, truncated, missing decoder,
        NaN/Inf samples, silence only, or longer than max_seconds.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a folder: name the audio files in it (e.g. {path}/*.wav)")
    if not path.is_file():
        raise AudioError(f"{path}: no such file: check the path")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: the file is empty (0 bytes): record or export it again")
    if max_seconds is not None:
        try:  # refuse before decoding: a 10-hour file would take gigabytes of memory
            info = sf.info(str(path))
            if info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
                raise AudioError(
                    f"{path.name}: {info.frames / info.samplerate / 3600:.1f} hours is longer than "
                    f"the {max_seconds / 3600:g} hour limit: cut it into shorter files "
                    "(or raise audio.max_input_hours)"
                )
        except sf.LibsndfileError:
            pass  # _decode reports the real problem
    audio, sr = _decode(path)
    if audio.shape[-1] == 0:
        raise AudioError(f"{path.name}: contains no audio samples: record or export it again")
    if max_seconds is not None and audio.shape[-1] / sr > max_seconds:
        raise AudioError(
            f"{path.name}: {audio.shape[-1] / sr / 3600:.1f} hours is longer than the "
            f"{max_seconds / 3600:g} hour limit: cut it into shorter files"
        )
    if not np.isfinite(audio).all():
        raise AudioError(
            f"{path.name}: contains invalid samples (NaN or infinity): the file is corrupt; "
            "export it again as 16-bit WAV"
        )
    if not allow_silence and float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise AudioError(
            f"{path.name}: is silent (nothing above -80 dBFS): check that the microphone was "
            "on and not muted, then record again"
        )
    if mono:
        audio = audio.mean(axis=0)
    if target_sr is not None and target_sr != sr:
        audio = resample(audio, sr, target_sr)
        sr = target_sr
    return np.ascontiguousarray(audio, dtype=np.float32), sr


def resample(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """soxr high-quality resampling of [T] or [C, T] float32 audio."""
    if sr == target_sr:
        return audio
    if audio.ndim == 1:
        return soxr.resample(audio, sr, target_sr, quality="HQ").astype(np.float32)
    # soxr wants [T, C]
    return np.ascontiguousarray(soxr.resample(audio.T, sr, target_sr, quality="HQ").T, np.float32)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> int16 with clipping (int16 input passes through)."""
    if audio.dtype == np.int16:
        return audio
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).round().astype(np.int16)


def wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    """Encode [T] (or [C, T]) float or int16 audio as a PCM-16 WAV file in memory."""
    pcm = to_pcm16(np.asarray(audio))
    buf = io.BytesIO()
    sf.write(buf, pcm.T if pcm.ndim == 2 else pcm, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: Path | str, audio: np.ndarray, sr: int) -> Path:
    """Write PCM-16 WAV atomically: a crash never leaves a half-written file under `path`."""
    return write_bytes_atomic(path, wav_bytes(audio, sr))
