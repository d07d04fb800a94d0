"""Forced alignment of English speech to its transcript (pocketsphinx), at 10 ms frames.

`align(wav, sr, text, n_frames)` gives the CPU path's training input: the phones of
`arpabet.text_to_phones(text)` (pauses where the speaker paused) with per-phone durations in
10 ms frames that sum to the clip's frame count, plus per-phone HMM state durations (3 states
per phone) and a confidence used to reject clips whose transcript does not match.

How: pocketsphinx 5 aligns in two passes over the same audio. Pass 1 (`set_align_text`) is a
word-level search through a linear grammar of the transcript that may insert silence / noise
fillers between words and picks among pronunciation variants ("the" or "the(2)"). Pass 2
(`set_alignment`) aligns the chosen words' triphone HMMs state by state. Both passes run on
one decoder held per process (loading the model takes about a second).

Pauses: filler stretches between two words of >= `min_pause_ms` become SP; shorter ones are
split between the neighbouring phones (a stop closure the model should not learn as a pause),
except where the text has punctuation: there SP is always kept (1 frame taken from the longer
neighbouring phone when the speaker did not pause at all), so a training sequence has SP
wherever `text_to_phones` puts one at synthesis, plus the speaker's own pauses elsewhere. Before
the first word and after the last is SIL (always present, >= 1 frame).

Confidence: `score` is the aligned words' mean log-likelihood per frame relative to the best
senone of each frame (pocketsphinx normalises senone scores per frame, so this is a ratio
against an unconstrained recogniser; natural-log units per frame, <= 0). A correct transcript
scores near 0; a wrong one forces the audio through the wrong phones and scores far below. The
same ratio per word catches one misread word, and per silence stretch catches speech that no
word of the transcript covers (a word missing from the text). Thresholds measured on right and
deliberately wrong transcripts in benchmarks/results/align.md.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from voicelab.errors import AudioError, VoicelabError
from voicelab.text import arpabet as ab

ALIGN_SAMPLE_RATE = 16000  # pocketsphinx's en-us model
FRAME_SHIFT_S = 0.01  # pocketsphinx's frame rate (100 frames/s) = the CPU path's frame rate
MIN_PAUSE_MS = 50.0  # an inter-word silence at least this long is kept as SP
MIN_SCORE = -2.5  # reject below this log-likelihood ratio per frame (benchmarks/results/align.md)
# ... or when one word scores below this (a misread / substituted word; right transcripts: >= -5.5)
MIN_WORD_SCORE = -6.0
# ... or a silence stretch below this (speech the transcript lacks; right transcripts: >= -3.6)
MIN_PAUSE_SCORE = -5.0
_SENSCR_SHIFT = 10  # pocketsphinx hmm.h: senone scores are shifted right by this
TOPN = 2  # Gaussians scored per codebook (pocketsphinx default 4)
N_STATES = 3  # emitting states per phone in pocketsphinx's en-us model

ALIGNER_VERSION = 2  # bump when the same clip + text could align differently (2: SP at punctuation)


def settings() -> dict:
    """Everything that changes an alignment: put it in a cache key (with arpabet.symbols_hash())."""
    return {
        "version": ALIGNER_VERSION, "topn": TOPN, "min_pause_ms": MIN_PAUSE_MS,
        "min_score": MIN_SCORE, "min_word_score": MIN_WORD_SCORE,
        "min_pause_score": MIN_PAUSE_SCORE,
    }  # fmt: skip


_lock = threading.Lock()


class AlignmentError(VoicelabError):
    """A clip could not be aligned to its transcript; the message says why."""


@dataclass
class Alignment:
    """Phones of one clip with their durations in 10 ms frames.

    phones [P] (SIL first and last, SP at pauses), ids [P], word_pos [P] (arpabet.WORD_POS),
    stress [P] (arpabet.STRESS: the word's espeak stress on the aligned variant's vowels),
    durations [P] int64 (>= 1 each; sums to n_frames when it was given), states [P, 3] int64
    frames per HMM state (rows sum to durations), words [W] spans into phones, score: confidence
    (log-likelihood ratio per speech frame vs the best senone of each frame; near 0 = good),
    word_scores [W] the same per word (a misread word scores far below the others), speech_frames: frames
    inside words.
    """

    phones: list[str]
    ids: list[int]
    word_pos: list[int]
    stress: list[int]
    durations: np.ndarray
    states: np.ndarray
    words: list[ab.WordSpan]
    score: float
    speech_frames: int
    word_scores: np.ndarray  # [W] the same log-likelihood ratio per frame, word by word
    pause_scores: np.ndarray  # [S] the same for each silence / noise stretch the aligner put in
    pause_starts: np.ndarray  # [S] where each stretch starts (frames of the aligner's timeline)

    @property
    def n_frames(self) -> int:
        return int(self.durations.sum())

    def frame_phone_index(self) -> np.ndarray:
        """[n_frames] int: the index into phones of each frame."""
        return np.repeat(np.arange(len(self.phones)), self.durations)

    def frame_states(self) -> np.ndarray:
        """[n_frames] int: the HMM state (0, 1, 2) within its phone of each frame."""
        return np.repeat(np.tile(np.arange(N_STATES), len(self.phones)), self.states.reshape(-1))


def world_frames(n_samples: int, sr: int, frame_period_ms: float = 10.0) -> int:
    """Frames WORLD (pyworld.harvest / dio) gives for a clip: floor(T / sr * 1000 / period) + 1."""
    return int(n_samples / sr * 1000.0 / frame_period_ms) + 1


# --------------------------------------------------------------------------------------------
# The decoder
# --------------------------------------------------------------------------------------------


class _Aligner:
    """The alignment decoder and the out-of-dictionary words already taught to it."""

    def __init__(self, decoder) -> None:
        self.d = decoder
        self.added: dict[str, tuple[str, ...]] = {}

    def add_words(self, prons: dict[str, tuple[str, ...]]) -> None:
        """Teach the decoder the espeak pronunciations of the text's out-of-dictionary words."""
        for word, pron in prons.items():
            if word not in self.added:  # espeak is deterministic: one pronunciation per word
                self.d.add_word(word, " ".join(pron), True)
                self.added[word] = pron


@functools.lru_cache(maxsize=1)
def _aligner() -> _Aligner:
    """One alignment decoder per process (no language model; loaded once, ~1 s)."""
    try:
        from pocketsphinx import Decoder
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(
            f"alignment needs pocketsphinx ({e}): pip install -r requirements.txt"
        ) from None
    # topn=2 (of the model's default 4) Gaussians per codebook: about twice as fast, the same
    # boundaries to within a frame on the fixtures (benchmarks/results/align.md)
    d = Decoder(samprate=ALIGN_SAMPLE_RATE, loglevel="FATAL", bestpath=False, lm=None, topn=TOPN)
    return _Aligner(d)


def _decode(d, pcm: bytes) -> None:
    # reset the front end first: its noise and cepstral-mean estimates otherwise carry over from
    # the previous utterance, and the same clip would align differently depending on what came
    # before (measured: 4 of 6 fixture clips moved by a frame). Cached alignments must not.
    d.reinit_feat()
    d.start_utt()
    d.process_raw(pcm, no_search=False, full_utt=True)
    d.end_utt()


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------


def _is_filler(name: str) -> bool:
    return name.startswith("<") or name.startswith("[") or name == "SIL"


def _pcm(wav: np.ndarray, sr: int) -> tuple[bytes, float]:
    """Checks and converts a clip: -> (16 kHz PCM-16 bytes, seconds)."""
    from voicelab.text.asr import _to_pcm16

    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    a = np.asarray(wav)
    if a.ndim != 1:
        raise AudioError(f"expected mono audio of shape [T], got shape {a.shape}")
    if a.dtype != np.int16 and not np.all(np.isfinite(a)):
        raise AudioError("the audio contains NaN or infinite samples: re-export it as WAV")
    seconds = a.size / sr
    scale = 32768.0 if a.dtype == np.int16 else 1.0
    peak = float(np.max(np.abs(a))) / scale if a.size else 0.0
    if peak < 1e-3:
        raise AlignmentError(
            f"no speech: the clip is silent (peak {peak:.1e}); remove it or re-record it"
        )
    return _to_pcm16(a, sr), seconds


def align(
    wav: np.ndarray,
    sr: int,
    text: str,
    n_frames: int | None = None,
    min_pause_ms: float = MIN_PAUSE_MS,
    min_score: float = MIN_SCORE,
    min_word_score: float = MIN_WORD_SCORE,
    min_pause_score: float = MIN_PAUSE_SCORE,
) -> Alignment:
    """Align English speech to its transcript.

    wav [T] float in [-1, 1] (or int16) at `sr` Hz; `n_frames`: the frame count the durations
    must sum to (the clip's WORLD frames at 10 ms, `world_frames(T, sr)`), or None for the
    aligner's own count. Raises AlignmentError (a VoicelabError) naming why for clips that cannot
    be aligned: silent, too short for the text, transcript not matching (no path / low score);
    VoicelabError when the text has nothing speakable.
    """
    seq = ab.text_to_phones(text)
    pcm, seconds = _pcm(wav, sr)
    n_text_phones = sum(w.end - w.start for w in seq.words)
    if seconds / FRAME_SHIFT_S < N_STATES * n_text_phones:
        raise AlignmentError(
            f"the clip is too short for its text: {seconds:.2f} s for {n_text_phones} phones "
            f"(needs >= {N_STATES * n_text_phones * FRAME_SHIFT_S:.2f} s); check the transcript"
        )
    with _lock:  # the decoders are stateful: one utterance at a time
        aligner = _aligner()
        d = aligner.d
        try:
            aligner.add_words(seq.prons)
            d.set_align_text(seq.align_text())
            _decode(d, pcm)
            if d.hyp() is None:
                raise AlignmentError(
                    "the transcript does not match the audio: the aligner found no path through "
                    "its words (a wrong transcript, or not speech: noise, music); check this "
                    "clip's text"
                )
            d.set_alignment()
            _decode(d, pcm)
            alignment = d.get_alignment()
        except RuntimeError as e:  # pocketsphinx reports its failures as RuntimeError
            raise AlignmentError(
                f"the aligner failed on this clip ({e}); check its text and audio"
            ) from None
        if alignment is None:
            raise AlignmentError(
                "the transcript does not match the audio: the phone-level pass found no "
                "alignment; check this clip's text"
            )
        segs = [
            (w.name, [(p.name, p.score, [s.duration for s in p]) for p in w]) for w in alignment
        ]
        # scores are in log base 1.0001 units, shifted by SENSCR_SHIFT (10 bits)
        to_ln = float(d.get_logmath().log_to_ln(1 << _SENSCR_SHIFT))
    a = _build(seq, segs, to_ln, n_frames, min_pause_ms)
    if a.score < min_score:
        raise AlignmentError(
            f"the transcript does not match the audio: alignment score {a.score:.2f} per frame is "
            f"below {min_score:.2f}; check the text of this clip (or that it is speech)"
        )
    worst = int(np.argmin(a.word_scores))
    if a.word_scores[worst] < min_word_score:
        at = int(a.durations[: a.words[worst].start].sum()) * FRAME_SHIFT_S
        raise AlignmentError(
            f"the transcript does not match the audio at the word {a.words[worst].key!r} "
            f"(about {at:.1f} s; score "
            f"{a.word_scores[worst]:.2f} per frame, below {min_word_score:.2f}); check the text"
        )
    if a.pause_scores.size and a.pause_scores.min() < min_pause_score:
        k = int(np.argmin(a.pause_scores))
        raise AlignmentError(
            f"the transcript does not match the audio near {a.pause_starts[k] * FRAME_SHIFT_S:.1f} "
            f"s: there is speech there that no word of the transcript covers (it scores "
            f"{a.pause_scores[k]:.2f} per frame as silence, below {min_pause_score:.2f}); check "
            "the text"
        )
    return a


def _build(seq, segs, to_ln, n_frames, min_pause_ms) -> Alignment:
    """Aligned words + fillers -> the Alignment (pauses, >= 1 frame, n_frames)."""
    min_pause = max(1, int(round(min_pause_ms / 1000.0 / FRAME_SHIFT_S)))
    phones: list[str] = []
    pos: list[int] = []
    stress: list[int] = []
    states: list[list[int]] = []
    words: list[ab.WordSpan] = []
    gap = np.zeros(N_STATES, dtype=np.int64)  # filler frames since the last word, per state
    speech_score = 0
    speech_frames = 0
    word_scores: list[float] = []
    pause_scores: list[float] = []  # per filler stretch (leading, between words, trailing)
    pause_starts: list[int] = []
    gap_score = 0
    cursor = 0  # frames seen so far
    # word indices followed by SP in the text (punctuation)
    punct_pause = {i for i, w in enumerate(seq.words[:-1]) if seq.phones[w.end] == ab.SP}
    wi = 0
    for name, ph in segs:
        if _is_filler(name):
            if not gap.any():
                pause_starts.append(cursor)
            for _, pscore, st in ph:
                gap[: len(st)] += np.asarray(st[:N_STATES])
                gap_score += pscore
                cursor += sum(st)
            continue
        key = name.split("(")[0]
        if wi >= len(seq.words) or key != seq.words[wi].key:  # pragma: no cover - grammar is linear
            raise AlignmentError(f"the aligner returned an unexpected word {name!r}")
        cursor += sum(sum(st) for _, _, st in ph)
        if not words:  # leading silence
            phones.append(ab.SIL), pos.append(ab.POS_NONE), states.append(list(gap))
            stress.append(ab.ST_NONE)
        elif gap.sum() >= min_pause or wi - 1 in punct_pause:
            # a real pause, or any pause at all where the text has punctuation: there
            # text_to_phones puts SP, so training sees SP wherever synthesis will
            sp = list(gap)
            if not gap.any():  # no silence found: a 1-frame SP from the longer neighbour
                prev = states[-1]
                if sum(prev) >= sum(ph[0][2]):
                    prev[int(np.argmax(prev))] -= 1
                else:
                    st0 = list(ph[0][2])
                    st0[int(np.argmax(st0))] -= 1
                    ph = [(ph[0][0], ph[0][1], st0)] + ph[1:]
                sp = [0, 1, 0]
            phones.append(ab.SP), pos.append(ab.POS_NONE), states.append(sp)
            stress.append(ab.ST_NONE)
        elif gap.sum() > 0:  # too short for a pause: split between the neighbours
            g = int(gap.sum())
            states[-1][-1] += g // 2
            ph = [(ph[0][0], ph[0][1], [ph[0][2][0] + g - g // 2] + list(ph[0][2][1:]))] + ph[1:]
        if gap.sum():
            pause_scores.append(gap_score * to_ln / gap.sum())
        gap[:], gap_score = 0, 0
        start = len(phones)
        w_score, w_frames = 0, 0
        for pname, pscore, st in ph:
            phones.append(pname)
            st = (list(st) + [0] * N_STATES)[:N_STATES]
            states.append(st)
            w_score += pscore
            w_frames += sum(st)
        speech_score += w_score
        speech_frames += w_frames
        word_scores.append(w_score * to_ln / max(w_frames, 1))
        pos.extend(ab.word_positions(len(ph)))
        pattern = seq.words[wi].stress
        stress.extend(ab.phone_stress(phones[start:], pattern))
        words.append(ab.WordSpan(key, start, len(phones), seq.words[wi].oov, pattern))
        wi += 1
    if wi != len(seq.words):  # pragma: no cover - grammar is linear
        raise AlignmentError("the aligner dropped words of the transcript; check the text")
    phones.append(ab.SIL), pos.append(ab.POS_NONE), states.append(list(gap))
    stress.append(ab.ST_NONE)
    if gap.sum():
        pause_scores.append(gap_score * to_ln / gap.sum())

    st = np.asarray(states, dtype=np.int64)  # [P, 3]
    _fix_edges(st)
    target = int(n_frames) if n_frames is not None else int(st.sum())
    _fit_total(st, target)
    dur = st.sum(axis=1)

    # log-likelihood per frame relative to the best senone of each frame (pocketsphinx normalises
    # senone scores per frame), i.e. a ratio against an unconstrained recogniser, in nats
    score = speech_score * to_ln / max(speech_frames, 1)
    return Alignment(
        phones=phones, ids=ab.to_ids(phones), word_pos=pos, stress=stress, durations=dur, states=st,
        words=words, score=score, speech_frames=speech_frames,
        word_scores=np.asarray(word_scores, dtype=np.float64),
        pause_scores=np.asarray(pause_scores, dtype=np.float64),
        pause_starts=np.asarray(pause_starts[: len(pause_scores)], dtype=np.int64),
    )  # fmt: skip


def _fix_edges(st: np.ndarray) -> None:
    """Give an empty leading / trailing SIL one frame, taken from the longest phone."""
    for i in (0, len(st) - 1):
        if st[i].sum() == 0:
            j = int(np.argmax(st.sum(axis=1)))
            k = int(np.argmax(st[j]))
            st[j, k] -= 1
            st[i, 1] += 1


def _fit_total(st: np.ndarray, target: int) -> None:
    """Make durations sum to `target`: the difference goes into the trailing SIL (then leading)."""
    diff = target - int(st.sum())
    if diff > 0:
        st[-1, -1] += diff
        return
    if target < len(st):
        raise AlignmentError(f"n_frames={target} is fewer than the {len(st)} phones of the text")
    need = -diff
    for i in (len(st) - 1, 0):
        while need and st[i].sum() > 1:
            k = int(np.argmax(st[i]))
            st[i, k] -= 1
            need -= 1
    while need:  # pragma: no cover - only when n_frames is far below the audio's length
        j = int(np.argmax(st.sum(axis=1)))
        st[j, int(np.argmax(st[j]))] -= 1
        need -= 1
