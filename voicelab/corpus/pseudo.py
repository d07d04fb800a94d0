"""WORLD pseudo-speakers: more voices from the few real sources, by changing the two things that
most tell speakers apart: the pitch (F0 scaled) and the vocal-tract length (the spectral
envelope warped along the frequency axis, which moves every formant by the same factor).

    t = WorldTransform(f0=1.3, warp=1.12)            # higher and "shorter": a younger/female voice
    audio2 = transform(audio, sr, t)                  # [T] float32 at sr, same duration
    name = pseudo_name("rhvoice_bdl", t)              # "rhvoice_bdl_f130-w112"

Analysis and synthesis use WORLD (pyworld, as voicelab/audio/world.py does) at the clip's own
rate with dio + stonemask, CheapTrick and D4C, at 5 ms frames; the aperiodicity is left as it is.
A pseudo-speaker is only worth having while it stays intelligible: the builder admits one only
when its pocketsphinx WER is within `MAX_WER_RISE` points of its source's (issue 14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from voicelab.errors import AudioError, VoicelabError

MAX_WER_RISE = 5.0  # percentage points a pseudo-speaker may lose against its source
F0_FLOOR, F0_CEIL = 50.0, 800.0  # wide: a scaled F0 of a low voice stays inside
FRAME_MS = 5.0


@dataclass(frozen=True)
class WorldTransform:
    f0: float = 1.0  # F0 factor: 1.3 = 30% higher
    warp: float = 1.0  # envelope frequency factor: >1 moves formants up (shorter vocal tract)

    def __post_init__(self) -> None:
        if not (0.5 <= self.f0 <= 2.0 and 0.75 <= self.warp <= 1.33):
            raise VoicelabError(f"pseudo-speaker {self}: f0 must be 0.5-2 and warp 0.75-1.33")

    @property
    def tag(self) -> str:
        return f"f{round(self.f0 * 100)}-w{round(self.warp * 100)}"  # no dots: names stay plain

    def to_dict(self) -> dict:
        return {"f0": self.f0, "warp": self.warp}


def pseudo_name(base: str, t: WorldTransform) -> str:
    return f"{base}_{t.tag}"


def parse_pseudo(spec: str) -> tuple[str, WorldTransform]:
    """'rhvoice_bdl:1.3:1.12' (SPEAKER:F0:WARP) -> ("rhvoice_bdl", WorldTransform(1.3, 1.12))."""
    m = re.fullmatch(r"\s*([^:\s]+):([0-9.]+):([0-9.]+)\s*", spec)
    if not m:
        raise VoicelabError(f"pseudo-speaker {spec!r}: write SPEAKER:F0:WARP, e.g. "
                            "rhvoice_bdl:1.3:1.12 (F0 and envelope-warp factors)")  # fmt: skip
    return m.group(1), WorldTransform(float(m.group(2)), float(m.group(3)))


def warp_envelope(sp: np.ndarray, warp: float) -> np.ndarray:
    """sp [N, F] power envelope -> the same with every frequency f moved to f * warp: the new
    bin k takes the old envelope at k / warp (interpolated; the top bin held past the end)."""
    if warp == 1.0:
        return sp
    n_bins = sp.shape[1]
    src = np.arange(n_bins) / warp
    lo = np.clip(np.floor(src).astype(int), 0, n_bins - 1)
    hi = np.clip(lo + 1, 0, n_bins - 1)
    frac = np.clip(src - lo, 0.0, 1.0)
    # interpolate in the log domain: formant peaks keep their shape
    log_sp = np.log(np.maximum(sp, 1e-16))
    return np.ascontiguousarray(np.exp(log_sp[:, lo] * (1.0 - frac) + log_sp[:, hi] * frac))


def transform(audio: np.ndarray, sr: int, t: WorldTransform) -> np.ndarray:
    """audio [T] float (mono) at sr -> the pseudo-speaker's audio [T'] float32 at sr (T' ~ T)."""
    try:
        import pyworld
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(f"pseudo-speakers need pyworld ({e}): pip install -r requirements.txt") from e
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size < sr // 10:
        raise AudioError(f"a pseudo-speaker needs mono audio of at least 0.1 s, got shape {x.shape}")
    f0, times = pyworld.dio(x, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    f0 = pyworld.stonemask(x, f0, times, sr)
    sp = pyworld.cheaptrick(x, f0, times, sr)
    ap = pyworld.d4c(x, f0, times, sr)
    y = pyworld.synthesize(f0 * t.f0, warp_envelope(sp, t.warp), ap, sr, FRAME_MS)
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:  # a raised envelope can push the peak over full scale
        y *= 0.99 / peak
    return y.astype(np.float32)
