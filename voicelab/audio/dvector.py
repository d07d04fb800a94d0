"""Speaker d-vectors from resemblyzer's pretrained GE2E voice encoder (weights ship in its wheel).

    emb = embed(audio, sr)          # np.float32 [256], L2-normalised
    cosine(emb_a, emb_b)            # speaker similarity in [-1, 1]; same speaker ~0.8-0.95

The encoder is loaded once per process, on the CPU (it is small: 3 LSTM layers of 256; a GPU
buys nothing for a few clips, and keeping it off the GPU leaves memory to the models). Audio is
resampled to 16 kHz with soxr, volume-normalised and has long silences removed with webrtcvad,
exactly as resemblyzer's own `preprocess_wav` does, but without its slow librosa resampler.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from voicelab.audio.spectral import mel_power
from voicelab.errors import AudioError, VoicelabError

SAMPLE_RATE = 16000  # what the encoder was trained on
EMBED_DIM = 256
# Shortest speech (after silence removal) that gives a usable embedding: resemblyzer's
# partial utterances are 1.6 s; below ~0.5 s the vector is mostly noise.
MIN_SPEECH_S = 0.5

_lock = threading.Lock()
_encoder = None


def get_encoder():
    """The process-wide resemblyzer `VoiceEncoder` (CPU), loaded on first use."""
    global _encoder
    with _lock:
        if _encoder is None:
            try:
                from resemblyzer import VoiceEncoder
            except ImportError as e:
                raise VoicelabError(
                    f"speaker similarity needs resemblyzer ({e}): install it with "
                    "`pip install --no-deps resemblyzer webrtcvad-wheels` (see README)"
                ) from None
            _encoder = VoiceEncoder(device="cpu", verbose=False)
            _encoder.eval()
    return _encoder


def preprocess(audio: np.ndarray, sr: int) -> np.ndarray:
    """[T] float audio at `sr` -> [T'] float32 at 16 kHz, volume-normalised, long pauses cut.

    Raises AudioError when less than MIN_SPEECH_S of audio remains.
    """
    import soxr
    from resemblyzer.audio import normalize_volume, trim_long_silences
    from resemblyzer.hparams import audio_norm_target_dBFS

    wav = np.asarray(audio, dtype=np.float32)
    if wav.ndim != 1:
        raise AudioError(f"d-vector: expected mono audio [T], got shape {wav.shape}")
    if not np.all(np.isfinite(wav)):
        raise AudioError("d-vector: the audio contains NaN or Inf samples")
    if sr != SAMPLE_RATE:
        wav = soxr.resample(wav, sr, SAMPLE_RATE).astype(np.float32)
    wav = np.clip(wav, -1.0, 1.0)  # the VAD packs int16: values past full scale would wrap
    wav = normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
    trimmed = trim_long_silences(wav)
    # The VAD can reject all of a very clean synthetic clip's edges; keep the untrimmed audio
    # rather than fail when trimming leaves too little.
    if len(trimmed) >= MIN_SPEECH_S * SAMPLE_RATE:
        wav = trimmed
    if len(wav) < MIN_SPEECH_S * SAMPLE_RATE:
        raise AudioError(
            f"d-vector: only {len(wav) / SAMPLE_RATE:.2f} s of audio; give at least "
            f"{MIN_SPEECH_S} s of speech"
        )
    return wav.astype(np.float32)


def encoder_mel(wav16: np.ndarray) -> np.ndarray:
    """[T] at 16 kHz -> [frames, 40] mel power, what resemblyzer's `wav_to_mel_spectrogram` gives
    (25 ms Hann, 10 ms hop, librosa's zero-padded centring), computed without librosa."""
    return mel_power(wav16, SAMPLE_RATE, 400, 400, 160, 40, pad_mode="constant").T.astype(np.float32)


def embed(audio: np.ndarray, sr: int) -> np.ndarray:
    """Speaker embedding of one utterance: [T] audio at `sr` -> np.float32 [256], unit norm.

    As resemblyzer's `embed_utterance`: 1.6 s partial windows at 1.3 per second, each embedded,
    the mean L2-normalised.
    """
    import torch

    wav = preprocess(audio, sr)
    enc = get_encoder()
    wav_slices, mel_slices = enc.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
    mel = encoder_mel(wav)
    mels = torch.from_numpy(np.stack([mel[s] for s in mel_slices]))  # [P, 160, 40]
    # One thread: the LSTM's 256-wide matmuls are too small to split, and on a busy CPU the
    # thread hand-offs made the forward 10x slower (1.3 s vs 0.13 s for 3 windows, measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            partial = enc(mels).numpy()  # [P, 256], each unit norm
    finally:
        torch.set_num_threads(threads)
    e = partial.mean(axis=0)
    return (e / np.linalg.norm(e)).astype(np.float32)


def embed_many(clips: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """[(audio [T], sr), ...] -> [N, 256] float32, one unit-norm row per clip."""
    if not clips:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    return np.stack([embed(a, sr) for a, sr in clips])


def speaker_embedding(clips: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """One voice from several clips: the normalised mean of their embeddings, [256]."""
    m = embed_many(clips).mean(axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two [D] vectors (1 = same direction)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise VoicelabError(f"cosine: vectors differ in size ({a.shape[0]} vs {b.shape[0]})")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise VoicelabError("cosine: one of the vectors is all zeros")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))
