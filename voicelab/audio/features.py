"""Mel and linear spectrograms (pure torch, differentiable, any device) and their on-disk cache.

Framing follows VITS: reflect-pad (n_fft - hop) / 2 samples on both sides and run the STFT with
center=False, so a clip of T samples has exactly T // hop frames (50 per second at 32 kHz with
hop 640). The trainer's mel loss calls `mel_spectrogram` on generated audio, so these functions
never leave torch.

`load_features(voice, entry, cfg)` is what the training dataset calls per slice: it returns the
waveform and both spectrograms, computing them once and caching them in
`features/spec/<key>.safetensors`, where key = hash(feature settings + audio file bytes). A
changed setting or changed audio gives a new key, so stale features are never served.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from voicelab.config import Config, FeatureConfig
from voicelab.errors import AudioError
from voicelab.listfile import Entry
from voicelab.workspace import Voice

# Bump when the computation changes in a way the settings do not capture (invalidates caches).
FEATURES_VERSION = 1
CACHE_SUBDIR = "spec"
LOG_CLAMP = 1e-5
MAG_EPS = 1e-9  # inside the sqrt of |STFT|^2 so the gradient at exact silence is finite


@lru_cache(maxsize=16)
def _window(win_length: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(win_length, device=device, dtype=dtype)


@lru_cache(maxsize=16)
def _mel_basis(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, device: str, dtype: torch.dtype
) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] Slaney-normalised mel filters (librosa's, as VITS uses)."""
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return torch.from_numpy(fb).to(device=device, dtype=dtype)


def linear_spectrogram(wav: torch.Tensor, fcfg: FeatureConfig) -> torch.Tensor:
    """Magnitude STFT.

    Args:
        wav: [..., T] float waveform in [-1, 1].
    Returns:
        [..., n_fft // 2 + 1, T // hop_length] magnitudes (same device and dtype as wav).
    """
    n_fft, hop, win = fcfg.n_fft, fcfg.hop_length, fcfg.win_length
    lead = wav.shape[:-1]
    if wav.shape[-1] < hop:  # less than one hop of audio: zero frames
        return wav.new_zeros(*lead, n_fft // 2 + 1, 0)
    x = wav.reshape(-1, wav.shape[-1])
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # the FFT in half precision is inaccurate and unsupported on CPU
    pad_l = (n_fft - hop) // 2
    pad_r = n_fft - hop - pad_l
    # Reflect padding needs more samples than the pad; clips that short (< 23 ms) get zeros.
    mode = "reflect" if x.shape[-1] > max(pad_l, pad_r) else "constant"
    x = F.pad(x.unsqueeze(1), (pad_l, pad_r), mode=mode).squeeze(1)
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=_window(win, str(x.device), x.dtype),
        center=False,
        return_complex=True,
    )
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + MAG_EPS)
    return mag.reshape(*lead, *mag.shape[-2:]).to(wav.dtype)


def spec_to_mel(spec: torch.Tensor, fcfg: FeatureConfig, sample_rate: int) -> torch.Tensor:
    """[..., F, frames] magnitudes -> [..., n_mels, frames] natural-log mel (clamped at 1e-5)."""
    fmax = fcfg.fmax or sample_rate / 2
    basis = _mel_basis(
        sample_rate, fcfg.n_fft, fcfg.n_mels, float(fcfg.fmin), float(fmax), str(spec.device), spec.dtype
    )
    return torch.log(torch.clamp(torch.matmul(basis, spec), min=LOG_CLAMP))


def mel_spectrogram(wav: torch.Tensor, fcfg: FeatureConfig, sample_rate: int) -> torch.Tensor:
    """[..., T] waveform -> [..., n_mels, T // hop_length] log-mel spectrogram."""
    return spec_to_mel(linear_spectrogram(wav, fcfg), fcfg, sample_rate)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def settings_fingerprint(cfg: Config) -> str:
    """The settings that change the features, as canonical JSON (part of the cache key)."""
    f = cfg.features
    return json.dumps(
        {
            "v": FEATURES_VERSION,
            "sr": cfg.audio.sample_rate,
            "n_fft": f.n_fft,
            "hop": f.hop_length,
            "win": f.win_length,
            "n_mels": f.n_mels,
            "fmin": f.fmin,
            "fmax": f.fmax,
        },
        sort_keys=True,
    )


def cache_key(cfg: Config, audio_bytes: bytes) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(settings_fingerprint(cfg).encode())
    h.update(audio_bytes)
    return h.hexdigest()


def cache_path(voice: Voice, key: str) -> Path:
    return voice.features / CACHE_SUBDIR / f"{key}.safetensors"


def _decode_wav_bytes(data: bytes, name: str, target_sr: int) -> torch.Tensor:
    """WAV/FLAC bytes -> [T] float32 tensor at target_sr (mono, soxr-resampled if needed)."""
    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(
            f"{name}: cannot read this slice ({e.error_string}): run `slice` again"
        ) from None
    y = y.mean(axis=1)
    if sr != target_sr:
        from voicelab.audio.io import resample

        y = resample(y, sr, target_sr)
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))


def compute_features(
    wav: torch.Tensor, cfg: Config, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """[T] waveform -> {"spec": [F, frames], "mel": [n_mels, frames]} on the CPU, float32.

    On the CPU this runs on one thread: one clip is a few milliseconds of work, and torch's
    thread pool spin-waiting on a busy 2-core machine made it 10x slower in wall time and 13x
    in CPU time (measured). The caller's thread setting is restored afterwards.
    """
    one_thread = torch.device(device).type == "cpu"
    threads = torch.get_num_threads()
    if one_thread:
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            x = wav.to(device=device, dtype=torch.float32)
            spec = linear_spectrogram(x, cfg.features)
            mel = spec_to_mel(spec, cfg.features, cfg.audio.sample_rate)
    finally:
        if one_thread:
            torch.set_num_threads(threads)
    return {"spec": spec.cpu().contiguous(), "mel": mel.cpu().contiguous()}


def _write_cache(path: Path, data: bytes) -> None:
    """Temp file + os.replace, like voicelab.fileio but without fsync: this is a cache, and a
    file damaged by a power cut fails the checks in _read_cache and is simply recomputed. The
    fsyncs cost more wall time than the spectrograms themselves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_cache(path: Path, wav: torch.Tensor, cfg: Config) -> dict[str, torch.Tensor] | None:
    """The cached tensors, or None when missing or unusable (then they are recomputed)."""
    if not path.is_file():
        return None
    try:
        t = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        return None  # a damaged cache file is only a cache: recompute and replace it
    frames = wav.shape[-1] // cfg.features.hop_length
    spec, mel = t.get("spec"), t.get("mel")
    if (
        spec is None
        or mel is None
        or tuple(spec.shape) != (cfg.features.n_fft // 2 + 1, frames)
        or tuple(mel.shape) != (cfg.features.n_mels, frames)
    ):
        return None
    return {"spec": spec, "mel": mel}


def load_features(
    voice: Voice,
    entry: Entry,
    cfg: Config,
    device: str | torch.device = "cpu",
    stats: dict[str, int] | None = None,
) -> dict[str, torch.Tensor]:
    """Waveform and spectrograms of one slice, from the cache or computed (and cached) now.

    Args:
        voice: the voice whose features/ folder holds the cache.
        entry: a dataset.list entry; entry.path is the slice's audio file.
        cfg: the run config (cfg.features, cfg.audio.sample_rate).
        device: where to compute on a cache miss (the result is always on the CPU).
        stats: optional counter dict; "computed" or "cached" is incremented.

    Returns:
        {"wav": [T] float32 at cfg.audio.sample_rate, "spec": [n_fft//2+1, T//hop] float32,
         "mel": [n_mels, T//hop] float32 (natural log)}, all CPU tensors.
    """
    path = Path(entry.path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioError(
            f"{path.name}: slice listed in dataset.list is missing: run `slice` again"
        ) from None
    wav = _decode_wav_bytes(data, path.name, cfg.audio.sample_rate)
    cpath = cache_path(voice, cache_key(cfg, data))
    feats = _read_cache(cpath, wav, cfg)
    kind = "cached"
    if feats is None:
        feats = compute_features(wav, cfg, device)
        _write_cache(cpath, save(feats))
        kind = "computed"
    if stats is not None:
        stats[kind] = stats.get(kind, 0) + 1
    return {"wav": wav, **feats}
