"""WORLD vocoder acoustics: the CPU path's acoustic features and their synthesis.

The CPU acoustic model regresses these features at 10 ms frames (the aligner's 100 frames/s) and
WORLD turns them back into a waveform, so no neural vocoder has to be trained on a CPU.

    feats = analyze(wav, sr, cfg.world)        # WorldFeatures, N = num_frames(len(wav), sr, cfg)
    arr = feats.to_array()                     # [N, feature_dim(cfg)] float32: [mgc | lf0 | vuv | bap]
    audio = synthesize(WorldFeatures.from_array(arr, cfg.world), cfg.world)  # [T] at cfg.sample_rate

Streams (all float32, one row per 10 ms frame):
    mgc [N, n_mgc]  WORLD's coded spectral envelope (a mel-cepstrum of the CheapTrick envelope)
    lf0 [N]         log F0 in Hz, continuous: unvoiced frames are linearly interpolated between
                    voiced neighbours (a regression target with no jumps to 0)
    vuv [N]         1 voiced, 0 unvoiced (a model may predict a probability: thresholded here)
    bap [N, n_bap]  band aperiodicity in dB (WORLD's coding, or `cfg.n_bap` mel-spaced bands)

Analysis and synthesis are deterministic (WORLD reseeds its noise generator on every call).
`synthesize` accepts anything a network may output (NaN, out-of-range values, a smoothed vuv)
and clips it to ranges real speech has, so it never crashes and never returns NaN.
The settings and the figures that chose them: voicelab/config.py `WorldConfig`,
benchmarks/results/world.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voicelab.config import WorldConfig
from voicelab.errors import AudioError, VoicelabError

# Ranges that analysis of real speech stays inside (measured over the fixture voices with a wide
# margin); synthesis clips predicted features to them so a wild prediction cannot blow up exp().
MGC_C0_RANGE = (-40.0, 10.0)  # c0: the mean log power of the frame
MGC_RANGE = (-10.0, 10.0)  # higher coefficients
BAP_RANGE = (-60.0, 0.0)  # dB; 0 = fully aperiodic (noise)
SP_FLOOR = 1e-16  # power spectral envelope floor (about -160 dB): log() stays finite
DEFAULT_F0 = 120.0  # lf0 of a clip without a single voiced frame


def _pyworld():
    try:
        import pyworld
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(
            f"the WORLD vocoder needs pyworld ({e}): pip install -r requirements.txt "
            "(it comes from the pyworld-prebuilt wheel)"
        ) from e
    return pyworld


@dataclass
class WorldFeatures:
    """WORLD parameters of one clip; every stream has N rows (10 ms frames)."""

    mgc: np.ndarray  # [N, n_mgc] float32
    lf0: np.ndarray  # [N] float32, log Hz, continuous
    vuv: np.ndarray  # [N] float32 in {0, 1} (or a probability when predicted)
    bap: np.ndarray  # [N, n_bap] float32, dB

    def __len__(self) -> int:
        return int(self.lf0.shape[0])

    def to_array(self) -> np.ndarray:
        """[N, D] float32 with the fixed layout [mgc | lf0 | vuv | bap]."""
        return np.concatenate(
            [self.mgc, self.lf0[:, None], self.vuv[:, None], self.bap], axis=1
        ).astype(np.float32)

    @classmethod
    def from_array(cls, arr: np.ndarray, cfg: WorldConfig) -> WorldFeatures:
        """Split a [N, feature_dim(cfg)] array (the layout of `to_array`) into the streams."""
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != feature_dim(cfg):
            raise VoicelabError(
                f"WORLD features must have shape [frames, {feature_dim(cfg)}] for these settings "
                f"(n_mgc={cfg.n_mgc}, {n_bap(cfg)} aperiodicity bands at {cfg.sample_rate} Hz), "
                f"got {a.shape}: were they made with other [world] settings?"
            )
        m = cfg.n_mgc
        return cls(mgc=a[:, :m].copy(), lf0=a[:, m].copy(), vuv=a[:, m + 1].copy(),
                   bap=a[:, m + 2:].copy())


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------


def n_bap(cfg: WorldConfig) -> int:
    """Aperiodicity dimensions: cfg.n_bap, or WORLD's own band count at this rate when 0."""
    return cfg.n_bap or int(_pyworld().get_num_aperiodicities(cfg.sample_rate))


def feature_dim(cfg: WorldConfig) -> int:
    """D of `WorldFeatures.to_array()`: n_mgc + lf0 + vuv + n_bap."""
    return cfg.n_mgc + 2 + n_bap(cfg)


def fft_size(cfg: WorldConfig) -> int:
    """CheapTrick's FFT size for the F0 floor (analysis and synthesis must agree)."""
    return int(_pyworld().get_cheaptrick_fft_size(cfg.sample_rate, cfg.f0_floor))


def _resampled_length(n_samples: int, sr: int, target_sr: int) -> int:
    """Length of soxr's output (it rounds half up), in exact integer arithmetic."""
    if sr == target_sr:
        return n_samples
    return (2 * n_samples * target_sr + sr) // (2 * sr)


def num_frames(n_samples: int, sr: int, cfg: WorldConfig) -> int:
    """Frames `analyze` returns for a clip of n_samples at rate sr: one at t=0 and one every
    frame period up to the clip's end (WORLD's own count, computed the way its C code does)."""
    n = _resampled_length(int(n_samples), int(sr), cfg.sample_rate)
    return int(1000.0 * n / cfg.sample_rate / cfg.frame_period_ms) + 1


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def _prepare(wav: np.ndarray, sr: int, cfg: WorldConfig) -> np.ndarray:
    """Mono float64 [T'] at cfg.sample_rate, exactly `_resampled_length` samples long."""
    a = np.asarray(wav)
    if a.ndim != 1:
        raise AudioError(f"WORLD analysis needs mono audio of shape [T], got shape {a.shape}")
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise AudioError("the audio contains NaN or infinite samples: re-export it as WAV")
    n_out = _resampled_length(a.shape[0], sr, cfg.sample_rate)
    if sr != cfg.sample_rate and a.size:
        from voicelab.audio.io import resample

        a = resample(a, sr, cfg.sample_rate)
    a = a[:n_out]
    if a.shape[0] < n_out:  # never reached with soxr; keeps num_frames exact regardless
        a = np.pad(a, (0, n_out - a.shape[0]))
    return np.ascontiguousarray(a, dtype=np.float64)


def continuous_lf0(f0: np.ndarray) -> np.ndarray:
    """f0 [N] in Hz (0 = unvoiced) -> log F0 [N], unvoiced frames interpolated linearly in log
    Hz between voiced neighbours and held flat before the first / after the last voiced frame."""
    voiced = f0 > 0
    if not voiced.any():
        return np.full(f0.shape, math.log(DEFAULT_F0), dtype=np.float32)
    idx = np.flatnonzero(voiced)
    lf = np.interp(np.arange(f0.shape[0]), idx, np.log(f0[idx]))
    return lf.astype(np.float32)


def _code_bap(ap: np.ndarray, cfg: WorldConfig) -> np.ndarray:
    """Aperiodicity [N, F] (0..1) -> [N, n_bap] dB."""
    pw = _pyworld()
    if not cfg.n_bap:
        return pw.code_aperiodicity(ap, cfg.sample_rate)
    db = 20.0 * np.log10(np.clip(ap, 1e-3, 1.0))
    edges = _bap_edges(cfg, ap.shape[1])
    return np.stack([db[:, lo:hi].mean(axis=1) for lo, hi in zip(edges[:-1], edges[1:], strict=True)], axis=1)


def _bap_edges(cfg: WorldConfig, n_bins: int) -> np.ndarray:
    """FFT-bin edges [n_bap + 1] of bands equally spaced on the mel scale from 0 to Nyquist."""
    mel_max = 1127.0 * math.log1p(cfg.sample_rate / 2 / 700.0)
    hz = 700.0 * (np.exp(np.linspace(0.0, mel_max, cfg.n_bap + 1) / 1127.0) - 1.0)
    edges = np.round(hz / (cfg.sample_rate / 2) * (n_bins - 1)).astype(int)
    edges[-1] = n_bins
    for i in range(1, len(edges)):  # every band at least one bin wide
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return edges


def analyze(wav: np.ndarray, sr: int, cfg: WorldConfig) -> WorldFeatures:
    """WORLD analysis of mono audio [T] (float in [-1, 1] or int16) at rate sr.

    Resamples to cfg.sample_rate itself. Returns num_frames(len(wav), sr, cfg) frames.
    """
    pw = _pyworld()
    x = _prepare(wav, sr, cfg)
    fs = cfg.sample_rate
    n = num_frames(len(wav), sr, cfg)
    if cfg.f0_method == "harvest":
        f0, t = pw.harvest(x, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil,
                           frame_period=cfg.frame_period_ms)
    else:
        f0, t = pw.dio(x, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil,
                       frame_period=cfg.frame_period_ms)
        f0 = pw.stonemask(x, f0, t, fs)
    if f0.shape[0] != n:  # WORLD's count and ours are the same formula
        raise VoicelabError(f"WORLD returned {f0.shape[0]} frames, expected {n}: please report")
    nfft = fft_size(cfg)
    sp = pw.cheaptrick(x, f0, t, fs, f0_floor=cfg.f0_floor, fft_size=nfft)
    ap = pw.d4c(x, f0, t, fs, fft_size=nfft)
    mgc = pw.code_spectral_envelope(np.maximum(sp, SP_FLOOR), fs, cfg.n_mgc)
    bap = _code_bap(ap, cfg)
    return WorldFeatures(
        mgc=mgc.astype(np.float32),
        lf0=continuous_lf0(f0),
        vuv=(f0 > 0).astype(np.float32),
        bap=np.asarray(bap, dtype=np.float32).reshape(n, -1),
    )


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------


def _decode_bap(bap: np.ndarray, cfg: WorldConfig, n_bins: int) -> np.ndarray:
    """[N, n_bap] dB -> aperiodicity [N, n_bins] in (0, 1]."""
    pw = _pyworld()
    if not cfg.n_bap:
        ap = pw.decode_aperiodicity(np.ascontiguousarray(bap), cfg.sample_rate, 2 * (n_bins - 1))
    else:
        edges = _bap_edges(cfg, n_bins)
        centres = (edges[:-1] + edges[1:] - 1) / 2.0
        bins = np.arange(n_bins)
        db = np.stack([np.interp(bins, centres, row) for row in bap])
        ap = 10.0 ** (db / 20.0)
    return np.clip(ap, 1e-3, 1.0)


def _decode_sp(mgc: np.ndarray, cfg: WorldConfig, nfft: int) -> np.ndarray:
    """[N, n_mgc] coded envelope -> power envelope [N, nfft//2+1], with the optional
    mel-cepstral postfilter (coefficients 2.. scaled, frame energy kept) that sharpens formants
    a regression model over-smooths."""
    pw = _pyworld()
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(mgc), cfg.sample_rate, nfft)
    if cfg.postfilter != 1.0:
        sharp = mgc.copy()
        sharp[:, 2:] *= cfg.postfilter
        sp_pf = pw.decode_spectral_envelope(np.ascontiguousarray(sharp), cfg.sample_rate, nfft)
        gain = sp.sum(axis=1, keepdims=True) / np.maximum(sp_pf.sum(axis=1, keepdims=True), SP_FLOOR)
        sp = sp_pf * gain
    return np.clip(np.nan_to_num(sp, nan=SP_FLOOR, posinf=1.0), SP_FLOOR, 1.0)


def sanitize(feats: WorldFeatures, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted features -> (f0 [N] Hz with 0 = unvoiced, mgc [N, n_mgc], bap [N, n_bap]) as
    float64, NaN replaced and everything clipped to the ranges real speech has."""
    lf0 = np.nan_to_num(np.asarray(feats.lf0, np.float64).reshape(-1), nan=math.log(DEFAULT_F0))
    vuv = np.nan_to_num(np.asarray(feats.vuv, np.float64).reshape(-1), nan=0.0)
    n = lf0.shape[0]
    f0 = np.exp(np.clip(lf0, math.log(cfg.f0_floor), math.log(cfg.f0_ceil)))
    f0 = np.where(vuv > cfg.vuv_threshold, f0, 0.0)
    mgc = np.nan_to_num(np.asarray(feats.mgc, np.float64).reshape(n, cfg.n_mgc), nan=0.0)
    mgc[:, 0] = np.clip(np.nan_to_num(mgc[:, 0], nan=MGC_C0_RANGE[0]), *MGC_C0_RANGE)
    mgc[:, 1:] = np.clip(mgc[:, 1:], *MGC_RANGE)
    bap = np.nan_to_num(np.asarray(feats.bap, np.float64).reshape(n, -1), nan=0.0)
    bap = np.clip(bap, *BAP_RANGE)
    return f0, np.ascontiguousarray(mgc), np.ascontiguousarray(bap)


def synthesize(feats: WorldFeatures, cfg: WorldConfig) -> np.ndarray:
    """WORLD synthesis -> audio [T] float32 in [-1, 1] at cfg.sample_rate, T = int(N * hop),
    hop = sample_rate * frame_period_ms / 1000 (160 at 16 kHz).

    Accepts predicted features: NaN, values out of range and a vuv probability are handled
    (see `sanitize`), so it never raises for odd values and never returns NaN.
    """
    pw = _pyworld()
    n = len(feats)
    if n == 0:
        return np.zeros(0, np.float32)
    if feats.bap.reshape(n, -1).shape[1] != n_bap(cfg):
        raise VoicelabError(
            f"expected {n_bap(cfg)} aperiodicity bands for these [world] settings, "
            f"got {feats.bap.reshape(n, -1).shape[1]}: were the features made with other settings?"
        )
    f0, mgc, bap = sanitize(feats, cfg)
    nfft = fft_size(cfg)
    sp = _decode_sp(mgc, cfg, nfft)
    ap = _decode_bap(bap, cfg, nfft // 2 + 1)
    y = pw.synthesize(f0, sp, ap, cfg.sample_rate, cfg.frame_period_ms)
    return np.clip(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0).astype(np.float32)
