"""Slicing by voice activity (silero-vad) instead of by level: `slice.method = "vad"`.

Useful when the background is loud enough that an RMS threshold cannot tell pauses from noise.
silero-vad's model ships inside its wheel (`load_silero_vad()`), so nothing is downloaded. Audio
is handed over as a tensor we decoded ourselves (soundfile + soxr), never through silero's
torchaudio helpers, which need a torchaudio backend this project does not install.

Speech segments are grouped the way the RMS slicer groups sentences: a clip grows until it is at
least min_length long (never past max_length), cuts fall in the pauses between segments, and at
most max_sil_kept of each pause stays with the clips beside it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from voicelab.audio.io import resample
from voicelab.audio.slicer import split_long
from voicelab.config import SliceConfig

VAD_SR = 16000  # silero-vad runs at 16 kHz (or 8 kHz)


@lru_cache(maxsize=1)
def _model() -> torch.jit.ScriptModule:
    from silero_vad import load_silero_vad

    return load_silero_vad()


def speech_segments(samples: np.ndarray, sr: int, cfg: SliceConfig) -> list[tuple[int, int]]:
    """[T] audio -> [(start, end)] speech segments in samples at `sr` (silero-vad)."""
    from silero_vad import get_speech_timestamps

    x = resample(np.asarray(samples, dtype=np.float32), sr, VAD_SR)
    with torch.no_grad():
        stamps = get_speech_timestamps(
            torch.from_numpy(x),
            _model(),
            sampling_rate=VAD_SR,
            min_silence_duration_ms=cfg.min_interval_ms,
            speech_pad_ms=30,
        )
    scale = sr / VAD_SR
    n = len(samples)
    return [(int(d["start"] * scale), min(n, int(d["end"] * scale))) for d in stamps]


def group_segments(
    segments: list[tuple[int, int]], n: int, sr: int, cfg: SliceConfig
) -> list[tuple[int, int]]:
    """Merge speech segments into clips of >= min_length (<= max_length) and pad with silence."""
    if not segments:
        return []
    min_len = cfg.min_length_ms * sr // 1000
    max_len = int(cfg.max_length_s * sr)
    clips: list[list[int]] = [list(segments[0])]
    for s, e in segments[1:]:
        cur = clips[-1]
        if cur[1] - cur[0] < min_len and e - cur[0] <= max_len:
            cur[1] = e  # too short on its own and still fits: take the next segment in
        else:
            clips.append([s, e])
    keep = cfg.max_sil_kept_ms * sr // 1000
    out = []
    for i, (s, e) in enumerate(clips):
        left_room = s - (clips[i - 1][1] if i else 0)
        right_room = (clips[i + 1][0] if i + 1 < len(clips) else n) - e
        # half of each pause to each side (so neighbours never overlap), at most max_sil_kept
        left = min(keep, left_room if i == 0 else left_room // 2)
        right = min(keep, right_room if i + 1 == len(clips) else right_room // 2)
        out.append((max(0, s - left), min(n, e + right)))
    return out


def vad_intervals(samples: np.ndarray, sr: int, cfg: SliceConfig) -> list[tuple[int, int]]:
    """The VAD slicer: silero segments, grouped, split at max_length, short ones dropped."""
    clips = group_segments(speech_segments(samples, sr, cfg), len(samples), sr, cfg)
    out = []
    for iv in clips:
        for a, b in split_long(samples, sr, iv, cfg):
            if (b - a) / sr >= cfg.min_keep_s:
                out.append((a, b))
    return out
