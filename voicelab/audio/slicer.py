"""Cutting a cleaned recording into utterances at its silences.

`rms_intervals` is a port of GPT-SoVITS's `tools/slicer2.py` Slicer (itself from
openvpi/audio-slicer): frame RMS over a window of min(min_interval, 4 hops), silences longer than
min_interval become cut points once the running clip is at least min_length long, and at most
max_sil_kept of each silence stays attached to the clips beside it. Two additions:

- max_length: a clip longer than this is split at its quietest frame (recursively), so no slice
  is too long to train on;
- min_keep: clips shorter than this are dropped (they are breaths and clicks, not sentences).

Everything works on sample intervals (start, end) so callers can score or copy without copying.
"""

from __future__ import annotations

import numpy as np

from voicelab.config import SliceConfig


def frame_rms(samples: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """[T] -> [1 + T // hop] RMS of centred frames (zero padding), as librosa.feature.rms."""
    pad = frame_length // 2
    y = np.pad(samples.astype(np.float32), (pad, pad))
    n_frames = 1 + (len(y) - frame_length) // hop_length
    # A strided view instead of a copy per frame: the whole file's RMS in one pass.
    frames = np.lib.stride_tricks.as_strided(
        y, shape=(n_frames, frame_length), strides=(y.strides[0] * hop_length, y.strides[0])
    )
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def _argmin(a: np.ndarray, lo: int, hi: int) -> int:
    """Index of the minimum of a[lo:hi] (absolute index)."""
    return int(np.argmin(a[lo:hi])) + lo


def rms_intervals(samples: np.ndarray, sr: int, cfg: SliceConfig) -> list[tuple[int, int]]:
    """GPT-SoVITS's silence slicer. Returns [(start, end)] sample intervals, in order.

    Args:
        samples: [T] mono float audio.
        sr: its sample rate.
        cfg: threshold_db, min_length_ms, min_interval_ms, hop_ms, max_sil_kept_ms.
    """
    threshold = 10 ** (cfg.threshold_db / 20.0)
    hop = round(sr * cfg.hop_ms / 1000)
    min_interval_samples = sr * cfg.min_interval_ms / 1000
    win = min(round(min_interval_samples), 4 * hop)
    min_length = round(sr * cfg.min_length_ms / 1000 / hop)
    min_interval = round(min_interval_samples / hop)
    max_sil_kept = round(sr * cfg.max_sil_kept_ms / 1000 / hop)
    total_samples = len(samples)
    if total_samples <= min_length * hop:  # upstream compares samples with frames here
        return [(0, total_samples)]
    rms = frame_rms(samples, win, hop)

    sil_tags: list[tuple[int, int]] = []
    silence_start: int | None = None
    clip_start = 0
    for i, value in enumerate(rms):
        if value < threshold:  # keep going while silent; remember where the silence began
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:  # sound, and no silence pending
            continue
        is_leading_silence = silence_start == 0 and i > max_sil_kept
        need_slice_middle = i - silence_start >= min_interval and i - clip_start >= min_length
        if not is_leading_silence and not need_slice_middle:
            silence_start = None
            continue
        # Cut here. Keep at most max_sil_kept of silence on each side, cutting at the quietest.
        if i - silence_start <= max_sil_kept:
            pos = _argmin(rms, silence_start, i + 1)
            sil_tags.append((0, pos) if silence_start == 0 else (pos, pos))
            clip_start = pos
        elif i - silence_start <= max_sil_kept * 2:
            pos = _argmin(rms, i - max_sil_kept, silence_start + max_sil_kept + 1)
            pos_l = _argmin(rms, silence_start, silence_start + max_sil_kept + 1)
            pos_r = _argmin(rms, i - max_sil_kept, i + 1)
            if silence_start == 0:
                sil_tags.append((0, pos_r))
                clip_start = pos_r
            else:
                sil_tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = _argmin(rms, silence_start, silence_start + max_sil_kept + 1)
            pos_r = _argmin(rms, i - max_sil_kept, i + 1)
            sil_tags.append((0, pos_r) if silence_start == 0 else (pos_l, pos_r))
            clip_start = pos_r
        silence_start = None
    total_frames = len(rms)
    if silence_start is not None and total_frames - silence_start >= min_interval:
        silence_end = min(total_frames, silence_start + max_sil_kept)
        pos = _argmin(rms, silence_start, silence_end + 1)
        sil_tags.append((pos, total_frames + 1))

    if not sil_tags:
        return [(0, total_samples)]
    frames: list[tuple[int, int]] = []
    if sil_tags[0][0] > 0:
        frames.append((0, sil_tags[0][0]))
    for (_, a), (b, _) in zip(sil_tags[:-1], sil_tags[1:], strict=True):
        frames.append((a, b))
    if sil_tags[-1][1] < total_frames:
        frames.append((sil_tags[-1][1], total_frames))
    return [(a * hop, min(total_samples, b * hop)) for a, b in frames if b > a]


def split_long(
    samples: np.ndarray, sr: int, interval: tuple[int, int], cfg: SliceConfig
) -> list[tuple[int, int]]:
    """Split an interval longer than cfg.max_length_s at its quietest point, recursively.

    The cut is searched only where both halves can stay within max_length and above min_keep,
    so the recursion always ends; the RMS uses a 50 ms window so a cut lands in a pause rather
    than in a single quiet sample.
    """
    start, end = interval
    max_len = int(cfg.max_length_s * sr)
    if end - start <= max_len:
        return [interval]
    hop = max(1, round(sr * cfg.hop_ms / 1000))
    rms = frame_rms(samples[start:end], max(hop, int(0.05 * sr)), hop)
    n = end - start
    min_piece = max(int(cfg.min_keep_s * sr), hop)
    lo = max(n - max_len, min_piece) // hop  # the right part must fit in max_len
    hi = min(max_len, n - min_piece) // hop + 1  # the left part must fit in max_len
    if hi <= lo:  # cannot happen for max_len >= 2 * min_piece; cut in the middle regardless
        cut = start + n // 2
    else:
        cut = start + _argmin(rms, lo, min(hi, len(rms))) * hop
    return split_long(samples, sr, (start, cut), cfg) + split_long(samples, sr, (cut, end), cfg)


def slice_intervals(samples: np.ndarray, sr: int, cfg: SliceConfig) -> list[tuple[int, int]]:
    """The full RMS slicer: GPT-SoVITS's cuts, then max_length splits, then min_keep drops."""
    out = []
    for iv in rms_intervals(samples, sr, cfg):
        for a, b in split_long(samples, sr, iv, cfg):
            if (b - a) / sr >= cfg.min_keep_s:
                out.append((a, b))
    return out
