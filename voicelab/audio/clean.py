"""Cleaning one recording: downmix, high-pass, resample, denoise, loudness-normalise, and report.

    result = clean_audio(audio, sr, cfg.audio)      # audio: [T] or [C, T] float32
    result.audio                                     # [T'] float32 at cfg.audio.sample_rate
    result.report.warnings                           # plain-language advice

Why the denoiser gets a noise clip: noisereduce's stationary mode, left to itself, takes its noise
profile from the whole recording, speech included, and then gates part of the speech away (we
measured -2 to -4 dB of speech-band level at strength 0.5 on the noisy fixtures). Giving it the
quietest 10% of 50 ms frames as the noise sample keeps the speech within 0.5 dB even at full
strength (see benchmarks/results/prepare.md for the table behind the default strength).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pyloudnorm as pyln
from scipy.signal import butter, sosfilt

from voicelab.audio.io import resample
from voicelab.config import AudioConfig
from voicelab.errors import AudioError

MIN_SECONDS = 0.5  # pyloudnorm's gating blocks are 400 ms; shorter clips cannot be measured
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale after decoding)
FRAME_S = 0.02  # frame length of the speech / noise analysis
AIM_SPEECH_S = 60.0


@dataclass
class QualityReport:
    """What a person should know about one recording (JSON via `to_dict`)."""

    duration_s: float
    speech_s: float
    sample_rate_in: int
    channels_in: int
    loudness_before_lufs: float
    loudness_after_lufs: float
    peak_dbfs: float  # after cleaning
    clipped_ratio: float  # fraction of input samples at full scale
    snr_db: float  # estimated: speech level over the noise floor, input after high-pass
    denoise_strength: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4) if np.isfinite(v) else None
        return d


@dataclass
class CleanResult:
    audio: np.ndarray  # [T] float32
    sample_rate: int
    report: QualityReport


def _db(power: float | np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-10))


def frame_power(audio: np.ndarray, sr: int, frame_s: float = FRAME_S) -> np.ndarray:
    """[T] -> [T // frame] mean power per non-overlapping frame."""
    n = max(1, int(sr * frame_s))
    k = len(audio) // n
    if k == 0:
        return np.array([float(np.mean(audio**2))])
    return np.mean(audio[: k * n].reshape(k, n) ** 2, axis=1)


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Set runs of False shorter than `max_gap` frames that lie between True frames."""
    out = mask.copy()
    idx = np.flatnonzero(mask)
    if len(idx) < 2:
        return out
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= max_gap:
            out[a:b] = True
    return out


def speech_and_noise(audio: np.ndarray, sr: int) -> tuple[np.ndarray, float, float]:
    """Split frames into speech / background by level.

    The noise floor is the 10th percentile of frame levels (people pause more than 10% of the
    time); speech is anything more than 30% of the way (in dB) from that floor to the loud frames
    (calibrated on the long fixtures against their true sentence times).
    Returns (speech mask per frame, speech level dB, noise floor dB).
    """
    p_db = _db(frame_power(audio, sr))
    floor = float(np.percentile(p_db, 10))
    loud = float(np.percentile(p_db, 97))
    thr = floor + max(6.0, 0.3 * (loud - floor))
    # Frames above the threshold, with gaps under 300 ms closed: the pauses inside a sentence
    # (stops, breaths) are part of speaking.
    speech = _close_gaps(p_db > thr, int(round(0.3 / FRAME_S)))
    quiet = p_db <= np.percentile(p_db, 10)
    noise_db = float(_db(np.mean(10 ** (p_db[quiet] / 10))))
    speech_db = float(_db(np.mean(10 ** (p_db[speech] / 10)))) if speech.any() else noise_db
    return speech, speech_db, noise_db


def noise_sample(audio: np.ndarray, sr: int, frac: float = 0.1, frame_s: float = 0.05) -> np.ndarray:
    """The quietest `frac` of 50 ms frames, concatenated: a noise profile without speech in it."""
    n = int(sr * frame_s)
    k = len(audio) // n
    if k < 4:
        return audio
    frames = audio[: k * n].reshape(k, n)
    order = np.argsort(np.mean(frames**2, axis=1))
    keep = np.sort(order[: max(int(k * frac), 4)])
    return frames[keep].reshape(-1)


def highpass(audio: np.ndarray, sr: int, hz: float) -> np.ndarray:
    """4th-order Butterworth high-pass: removes rumble and mains hum below `hz`."""
    if hz <= 0:
        return audio
    sos = butter(4, hz, btype="highpass", fs=sr, output="sos")
    return sosfilt(sos, audio).astype(np.float32)


def denoise(audio: np.ndarray, sr: int, strength: float) -> np.ndarray:
    """Stationary spectral gating (noisereduce) with a noise profile from the quietest frames."""
    import noisereduce as nr

    if strength <= 0:
        return audio
    # hop = n_fft / 2 instead of noisereduce's n_fft / 4: half the work, and on the noisy
    # fixtures the same result to 0.05 dB (speech level and noise reduction alike)
    out = nr.reduce_noise(
        y=audio,
        sr=sr,
        y_noise=noise_sample(audio, sr),
        stationary=True,
        prop_decrease=strength,
        n_fft=1024,
        hop_length=512,
    )
    return np.asarray(out, dtype=np.float32)


def loudness(audio: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770, LUFS); -inf for silence."""
    with np.errstate(divide="ignore"):
        return float(pyln.Meter(sr).integrated_loudness(audio.astype(np.float64)))


def _warnings(r: QualityReport, cfg: AudioConfig) -> list[str]:
    w = []
    if r.speech_s < AIM_SPEECH_S:
        w.append(f"only {r.speech_s:.0f} s of speech: aim for at least {AIM_SPEECH_S:.0f} s in total")
    if r.clipped_ratio >= 0.001:
        w.append(
            f"{100 * r.clipped_ratio:.1f}% of samples clipped: record further from the microphone "
            "or turn the input gain down"
        )
    if r.snr_db < 20:
        w.append(
            f"loud background noise (speech only about {r.snr_db:.0f} dB above it): record in a "
            "quieter room, away from fans, traffic and other voices"
        )
    if r.loudness_before_lufs < -45:
        w.append(
            f"very quiet recording ({r.loudness_before_lufs:.0f} LUFS): move closer to the "
            "microphone or raise its gain; quiet recordings bring up noise when normalised"
        )
    if r.sample_rate_in < 16000:
        w.append(
            f"recorded at {r.sample_rate_in} Hz (telephone quality): record at 32 kHz or more "
            "if you can"
        )
    if r.loudness_after_lufs < cfg.target_lufs - 3:
        w.append(
            f"a few very loud peaks kept the level at {r.loudness_after_lufs:.0f} LUFS instead of "
            f"{cfg.target_lufs:.0f}: avoid knocks and plosives close to the microphone"
        )
    return w


def clean_audio(audio: np.ndarray, sr: int, cfg: AudioConfig) -> CleanResult:
    """Clean one recording.

    Args:
        audio: [T] or [C, T] float32 samples as decoded (any rate, any channel count).
        sr: its sample rate.
        cfg: cfg.audio (sample_rate, highpass_hz, denoise, denoise_strength, target_lufs,
            peak_dbfs).

    Returns:
        CleanResult with audio [T'] float32 at cfg.sample_rate and its QualityReport.

    Raises:
        AudioError if the recording is too short to measure or has no signal.
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    channels, n = audio.shape
    duration = n / sr
    if duration < MIN_SECONDS:
        raise AudioError(
            f"only {duration:.2f} s of audio: at least {MIN_SECONDS} s is needed to measure it"
        )
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    x = audio.mean(axis=0)
    x = resample(x, sr, cfg.sample_rate)  # first, so the filters below run on fewer samples
    out_sr = cfg.sample_rate
    x = highpass(x, out_sr, cfg.highpass_hz)
    before = loudness(x, out_sr)
    if not np.isfinite(before):
        raise AudioError("there is no audible signal after removing the rumble: record again")
    speech_mask, speech_db, noise_db = speech_and_noise(x, out_sr)
    strength = cfg.denoise_strength if cfg.denoise else 0.0
    x = denoise(x, out_sr, strength)
    mid = loudness(x, out_sr)
    if not np.isfinite(mid):
        raise AudioError("nothing but noise was found: record again closer to the microphone")
    x = x * np.float32(10 ** ((cfg.target_lufs - mid) / 20))
    ceiling = 10 ** (cfg.peak_dbfs / 20)
    peak = float(np.max(np.abs(x)))
    after = cfg.target_lufs
    if peak > ceiling:  # plain gain, not a limiter: it never distorts, it may end up quieter
        x = x * np.float32(ceiling / peak)
        after += 20 * np.log10(ceiling / peak)  # gated loudness scales exactly with the gain
        peak = ceiling
    report = QualityReport(
        duration_s=duration,
        speech_s=float(speech_mask.sum() * FRAME_S),
        sample_rate_in=int(sr),
        channels_in=int(channels),
        loudness_before_lufs=before,
        loudness_after_lufs=float(after),
        peak_dbfs=float(20 * np.log10(max(peak, 1e-10))),
        clipped_ratio=clipped,
        snr_db=min(speech_db - noise_db, 80.0),
        denoise_strength=strength,
    )
    report.warnings = _warnings(report, cfg)
    return CleanResult(audio=x.astype(np.float32), sample_rate=out_sr, report=report)
