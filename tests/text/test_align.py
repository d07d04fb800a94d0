"""Forced alignment (pocketsphinx) of fixture speech: phones, durations, pauses, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicelab.errors import VoicelabError
from voicelab.text import arpabet as ab
from voicelab.text.align import AlignmentError, align, world_frames

VOICES = ("flite_slt", "flite_rms", "pico_en-US")


def _clip(speech_dir: Path, voice: str, index: int) -> tuple[np.ndarray, int, str]:
    lst = speech_dir / voice / "metadata.list"
    if not lst.exists():
        pytest.skip(f"{lst} not found")
    name, _, _, text = lst.read_text(encoding="utf-8").splitlines()[index].split("|", 3)
    wav, sr = sf.read(speech_dir / voice / name, dtype="float32")
    return wav, sr, text


def _check_against_text(a, text: str) -> None:
    """The aligned phones are the text's, word by word (any dictionary variant), pauses aside."""
    seq = ab.text_to_phones(text)
    assert [w.key for w in a.words] == [w.key for w in seq.words]
    lex = ab.cmudict()
    for w in a.words:
        got = tuple(a.phones[w.start : w.end])
        allowed = lex.get(w.key, [seq.prons.get(w.key)])
        assert got in allowed, (w.key, got, allowed)
    speech = [p for p in a.phones if p not in ab.PAUSES]
    assert len(speech) == sum(w.end - w.start for w in a.words)  # only words and pauses
    assert a.phones[0] == "SIL" and a.phones[-1] == "SIL" and "SIL" not in a.phones[1:-1]
    assert "SP" not in (a.phones[1], a.phones[-2])
    # SP wherever the text has one (punctuation); elsewhere only real pauses (>= 50 ms)
    text_sp = {i for i, w in enumerate(seq.words[:-1]) if seq.phones[w.end] == "SP"}
    for i, w in enumerate(a.words[:-1]):
        has_sp = a.phones[w.end] == "SP"
        assert has_sp or i not in text_sp, (i, w.key)
        if has_sp and i not in text_sp:
            assert a.durations[w.end] >= 5


@pytest.mark.parametrize("voice", VOICES)
def test_fixture_clips_align_to_their_text(speech_dir: Path, voice: str) -> None:
    for index in (0, 10):  # 10 has commas: pico pauses there, flite does not
        wav, sr, text = _clip(speech_dir, voice, index)
        n = world_frames(len(wav), sr)
        a = align(wav, sr, text, n_frames=n)
        _check_against_text(a, text)
        assert a.ids == ab.to_ids(a.phones) and len(a.word_pos) == len(a.stress) == len(a.phones)
        assert [(x != ab.ST_NONE) for x in a.stress] == [p in ab.VOWELS for p in a.phones]
        assert a.durations.dtype.kind == "i" and a.durations.sum() == n and a.durations.min() >= 1
        assert np.array_equal(a.states.sum(axis=1), a.durations) and a.states.shape[1] == 3
        assert len(a.frame_phone_index()) == len(a.frame_states()) == n
        assert a.score > -2.5 and len(a.word_scores) == len(a.words)
        # plausible durations: speech phones 20-400 ms (flite and pico read at a normal rate)
        speech = np.array(
            [d for p, d in zip(a.phones, a.durations, strict=True) if p not in ab.PAUSES]
        )
        assert np.median(speech) >= 4 and speech.max() <= 40
    # "tomatoes, beans, and": SP at both commas (1 frame where the voice does not pause)
    sp = [d for p, d in zip(a.phones, a.durations, strict=True) if p == "SP"]
    assert len(sp) == 2
    if voice == "pico_en-US":
        assert min(sp) >= 10  # Pico pauses at both, > 100 ms


def test_n_frames_absorbed_by_silence_and_other_rates(speech_dir: Path) -> None:
    import soxr

    wav, sr, text = _clip(speech_dir, "flite_slt", 1)
    base = align(wav, sr, text)
    assert abs(base.n_frames - len(wav) / sr * 100) <= 3  # 10 ms frames
    for n in (base.n_frames - 3, base.n_frames + 7):
        a = align(wav, sr, text, n_frames=n)
        assert a.n_frames == n
        assert np.array_equal(a.durations[1:-1], base.durations[1:-1])  # only the silences move
    wav32 = soxr.resample(wav, sr, 32000)  # slices are stored at 32 kHz
    a32 = align(wav32, 32000, text, n_frames=world_frames(len(wav32), 32000))
    assert a32.phones == base.phones
    assert np.abs(np.cumsum(a32.durations) - np.cumsum(base.durations))[:-1].max() <= 2


def test_oov_words_are_aligned_with_espeak_phones(speech_dir: Path) -> None:
    wav, sr, text = _clip(speech_dir, "flite_slt", 0)
    assert text.startswith("The morning train")
    a = align(wav, sr, text.replace("morning", "mornin"))  # not in the dictionary
    w = a.words[1]
    assert w.key == "mornin" and w.oov and a.phones[w.start : w.end][:3] == ["M", "AO", "R"]
    assert a.score > -2.5


def test_wrong_transcript_is_rejected_with_a_reason(speech_dir: Path) -> None:
    wav, sr, text = _clip(speech_dir, "flite_rms", 0)
    for index in (3, 7):  # other sentences of about the same length
        _, _, other = _clip(speech_dir, "flite_rms", index)
        with pytest.raises(AlignmentError, match="transcript does not match"):
            align(wav, sr, other)
    wav, sr, text = _clip(speech_dir, "flite_slt", 0)
    assert text == "The morning train left the station a few minutes early."
    with pytest.raises(AlignmentError, match="does not match the audio near 2"):
        align(wav, sr, "The morning train left the station a few early.")  # "minutes" missing
    with pytest.raises(AlignmentError, match="at the word 'bus'"):
        align(wav, sr, "The morning bus left the station a few minutes early.")
    with pytest.raises(AlignmentError, match="no path"):
        align(wav, sr, "The morning train left the station a few minutes early today.")


def test_silence_noise_music_and_short_clips_are_rejected() -> None:
    sr = 16000
    t = np.arange(3 * sr) / sr
    rng = np.random.default_rng(0)
    text = "The morning train left the station a few minutes early."
    with pytest.raises(AlignmentError, match="no speech"):
        align(np.zeros(3 * sr, np.float32), sr, text)
    noise = (0.1 * rng.standard_normal(3 * sr)).astype(np.float32)
    chords = sum(
        np.sin(2 * np.pi * f * t) * (np.sin(np.pi * k * t) > 0)
        for k, f in enumerate((220, 277, 330))
    )
    for audio in (noise, (0.2 * chords).astype(np.float32)):
        with pytest.raises(AlignmentError, match="does not match"):
            align(audio, sr, text)
    with pytest.raises(AlignmentError, match="too short"):
        align(noise[: sr // 4], sr, text)
    assert issubclass(AlignmentError, VoicelabError)


def test_unspeakable_text_raises_before_aligning() -> None:
    with pytest.raises(VoicelabError, match="no English words"):
        align(np.zeros(16000, np.float32), 16000, "?!")


def test_alignment_does_not_depend_on_the_previous_clip(speech_dir: Path) -> None:
    # alignments are cached with the features: the same clip must always give the same result
    wav, sr, text = _clip(speech_dir, "pico_en-US", 2)
    first = align(wav, sr, text)
    other, sr2, other_text = _clip(speech_dir, "flite_rms", 5)
    align(other, sr2, other_text)
    again = align(wav, sr, text)
    assert again.phones == first.phones and np.array_equal(again.states, first.states)
    assert again.score == first.score
