"""Offline English speech recognition (pocketsphinx) and word error rate.

pocketsphinx ships its US-English acoustic model, dictionary and language model inside the
wheel, so nothing is downloaded. It is a small, old recogniser: on the speech fixtures its word
error rate is 16% on clean read speech and 31% on noisy recordings (benchmarks/results/asr.md),
so its transcripts are stored as *unverified* and people are asked to proofread them.
"""

from __future__ import annotations

import functools
import re
import threading

import numpy as np

from voicelab.errors import AudioError, VoicelabError

ASR_SAMPLE_RATE = 16000  # the rate of pocketsphinx's default acoustic model
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _decoder():
    """One decoder per process: loading the model takes about a second."""
    try:
        from pocketsphinx import Decoder
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(f"speech recognition needs pocketsphinx ({e}): pip install -r requirements.txt")
    return Decoder(samprate=ASR_SAMPLE_RATE, loglevel="FATAL")


def _to_pcm16(audio: np.ndarray, sr: int) -> bytes:
    """float [-1, 1] or int16 audio [T] (or [T, C], downmixed) -> 16 kHz PCM-16 bytes."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1) if a.shape[1] <= 8 else a.mean(axis=0)
    if a.ndim != 1:
        raise AudioError(f"expected mono audio of shape [T], got shape {a.shape}")
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise AudioError("the audio contains NaN or infinite samples: re-export it as WAV")
    if sr != ASR_SAMPLE_RATE:
        import soxr

        a = soxr.resample(a, sr, ASR_SAMPLE_RATE)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if peak > 1.0:  # never wrap around when converting to int16
        a = a / peak
    return (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def recognize(audio: np.ndarray, sr: int) -> str:
    """Recognise English speech: audio [T] float32 in [-1, 1] (or int16) at `sr` Hz -> text.

    Returns lower-case words without punctuation ("" for silence or very short clips).
    """
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    a = np.asarray(audio)
    if a.ndim not in (1, 2):
        raise AudioError(f"expected mono audio of shape [T], got shape {a.shape}")
    if a.dtype != np.int16 and not np.all(np.isfinite(a)):
        raise AudioError("the audio contains NaN or infinite samples: re-export it as WAV")
    if a.size < sr * 0.1:
        return ""  # under 100 ms: nothing to recognise
    scale = 32768.0 if a.dtype == np.int16 else 1.0
    if float(np.max(np.abs(a))) / scale < 1e-4:
        return ""  # digital silence: the decoder would otherwise guess a word
    pcm = _to_pcm16(audio, sr)
    with _lock:  # the decoder is stateful: one utterance at a time
        d = _decoder()
        # pocketsphinx carries its cepstral mean over from the previous utterance, so the same
        # clip was recognised differently depending on what came before (a few words per 200,
        # measured on the fixtures): start every utterance from the model's initial mean
        d.set_cmn(d.config["cmninit"])
        d.start_utt()
        d.process_raw(pcm, no_search=False, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
    text = hyp.hypstr if hyp is not None else ""
    # pocketsphinx marks alternates as "word(2)" and fillers as "<sil>" / "[noise]"
    text = re.sub(r"\(\d+\)|<[^>]*>|\[[^\]]*\]", " ", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# Word error rate
# --------------------------------------------------------------------------------------------


def normalize_words(text: str) -> list[str]:
    """Words compared by WER: numbers spelled out, lower-case, no punctuation, hyphens split."""
    from voicelab.text.english import normalize_english

    t = normalize_english(text).lower().replace("-", " ")
    t = re.sub(r"[^a-z0-9' \u00c0-\u024f\u3400-\u9fff]", " ", t)
    words = []
    for w in t.split():
        w = w.strip("'")
        if not w:
            continue
        # Han characters count one "word" each (Chinese has no spaces)
        words.extend(list(w) if re.search(r"[\u3400-\u9fff]", w) else [w])
    return words


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, number of reference words)."""
    r, h = normalize_words(ref), normalize_words(hyp)
    prev = list(range(len(h) + 1))  # Levenshtein over words, one row at a time
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[len(h)], len(r)


def word_error_rate(ref: str, hyp: str) -> float:
    """WER = edits / reference words, on normalised words (0.0 perfect; can exceed 1.0).

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    errors, n = word_errors(ref, hyp)
    if n == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / n
