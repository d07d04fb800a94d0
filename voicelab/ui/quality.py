"""Plain-word checks of a synthesised result: is it as long as the text needs, loud enough, speech?

A model that has not learnt to speak yet returns a fraction of a second of near-silence or a
hiss, and a person cannot tell that from "the voice is quiet". These checks compare the audio
with what the text needs and say what to do, in the Speak tab, after every synthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Read speech runs at 140-180 words a minute in English and 4-5 syllables (characters) a second
# in Mandarin; the checks use the middle and warn only far outside it.
WORDS_PER_S = 2.7
HANZI_PER_S = 4.5
TOO_SHORT = 0.35  # below this fraction of the needed length, most of the words are missing
TOO_LONG = 3.0  # above this multiple (plus 2 s), it repeats or babbles
QUIET_PEAK_DBFS = -30.0
SILENT_PEAK_DBFS = -60.0
# Spectral flatness (geometric / arithmetic mean of the power spectrum, median over frames with
# sound): white noise ~0.55, recorded or synthetic speech below ~0.1.
NOISE_FLATNESS = 0.3

TRAIN_MORE = ("train longer (raise 'Stage 2 steps' in the Train tab and press Resume), or start a "
              "new run from a pretrained base if the Train tab shows one")  # fmt: skip


@dataclass(frozen=True)
class SpeechCheck:
    seconds: float  # whole result
    active_s: float  # frames within 40 dB of the loudest
    needed_s: float  # what the text needs at an ordinary reading pace
    peak_dbfs: float
    flatness: float
    warnings: tuple[str, ...]


def needed_seconds(text: str, speed: float = 1.0) -> float:
    """About how long an ordinary reading of `text` lasts (words and Chinese characters)."""
    hanzi = len(re.findall(r"[\u4e00-\u9fff]", text))
    words = len(re.findall(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?", text))
    return (words / WORDS_PER_S + hanzi / HANZI_PER_S) / max(speed, 0.1)


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _frames(wav: np.ndarray, n: int = 512, hop: int = 256) -> np.ndarray:
    if len(wav) < n:
        wav = np.pad(wav, (0, n - len(wav)))
    return np.lib.stride_tricks.sliding_window_view(wav, n)[::hop] * np.hanning(n)


def check_speech(text: str, wav: np.ndarray, sr: int, speed: float = 1.0) -> SpeechCheck:
    """Measure the result `wav` [T] and say in plain words what is off and what to do."""
    wav = np.nan_to_num(np.asarray(wav, dtype=np.float32).reshape(-1))
    seconds = len(wav) / float(sr)
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else -200.0
    power = np.abs(np.fft.rfft(_frames(wav), axis=1)) ** 2 + 1e-20
    energy = power.sum(axis=1)
    sound = energy > energy.max() * 1e-4  # within 40 dB of the loudest frame
    hop_s = 256 / float(sr)
    active = float(sound.sum() * hop_s) if peak_db > SILENT_PEAK_DBFS else 0.0
    p = power[sound]
    flat = float(np.median(np.exp(np.log(p).mean(1)) / p.mean(1))) if len(p) else 0.0
    needed = needed_seconds(text, speed)
    out: list[str] = []
    untrained = False  # a problem that more training (or a base) fixes
    if peak_db <= SILENT_PEAK_DBFS:
        out.append("The result is silent: the model has not learnt to speak yet.")
        untrained = True
    else:
        if needed >= 1.0 and active < TOO_SHORT * needed:
            out.append(
                f"The result has {active:.1f} s of sound but the text needs about {_s(needed)}: "
                "most of the words are missing. (If the voice is well trained, check that "
                "'What the reference says' matches the reference clip.)"
            )
            untrained = True
        elif seconds > TOO_LONG * needed + 2.0:
            out.append(
                f"The result is {_s(seconds)} long for a text that needs about {_s(needed)}: it "
                "probably repeats itself or babbles. Lower the temperature or raise the "
                "repetition penalty (Sampling), or train longer."
            )
        if peak_db < QUIET_PEAK_DBFS:
            out.append(
                f"The result is very quiet (its loudest point is {peak_db:.0f} dBFS; speech "
                "peaks near 0 dBFS): the model is not producing clear speech yet."
            )
            untrained = True
        if flat > NOISE_FLATNESS:
            out.append(
                f"The result sounds like noise rather than speech (spectral flatness {flat:.2f}; "
                "speech is below 0.1). A clean, clear reference clip helps too."
            )
            untrained = True
    if untrained:
        out.append(f"What to do: {TRAIN_MORE}.")
    return SpeechCheck(seconds, active, needed, peak_db, flat, tuple(out))
