"""How intelligible a corpus speaker is: pocketsphinx word error rate on a few probe clips.

    sentences = probe_sentences(pool, 12, seed=1234)   # the same for every TTS voice
    result = score(items)                               # items: [(audio [T], sr, text), ...]
    result -> {"wer": 24.2, "errors": 23, "words": 95, "clips": 12}   (wer in percent)

pocketsphinx (voicelab.text.asr) is small and old: clean human read speech scores about 16% on
the fixtures, so a figure here is for comparing sources and pseudo-speakers with each other, not
an absolute measure. It runs at about real time on a busy 2-core machine, so probes are few.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable

import numpy as np

from voicelab.text import asr


def probe_sentences(pool: list[str], k: int, seed: int) -> list[str]:
    """k sentences of the pool (deterministic for a seed), the same for every voice so that
    their WERs compare; picked from the pool's last part (the Harvard sentences) when there are
    enough of them."""
    if k <= 0 or not pool:
        return []
    part = pool[-720:] if len(pool) >= 720 + k else pool
    rng = random.Random(seed * 7919 + 17)
    return rng.sample(part, min(k, len(part)))


def pick(n_items: int, k: int, seed: int, key: str) -> list[int]:
    """k indices of n_items, deterministic for (seed, key), in order."""
    rng = random.Random(seed * 1_000_003 + zlib.crc32(key.encode()))
    return sorted(rng.sample(range(n_items), min(k, n_items)))


def score(items: Iterable[tuple[np.ndarray, int, str]]) -> dict:
    """Corpus-level WER over (audio, sr, reference text) items: total edits / total words."""
    errors = words = clips = 0
    for audio, sr, text in items:
        e, n = asr.word_errors(text, asr.recognize(audio, sr))
        errors, words, clips = errors + e, words + n, clips + 1
    return {"wer": round(100.0 * errors / words, 1) if words else None, "errors": errors,
            "words": words, "clips": clips}  # fmt: skip
