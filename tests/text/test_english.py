"""English normalisation and espeak-ng phonemes."""

from __future__ import annotations

import time

import pytest

from voicelab.text import numbers_en as num
from voicelab.text.english import ipa_to_symbols, normalize_english
from voicelab.text.phonemes import phonemize
from voicelab.text.symbols import SYMBOL_TO_ID


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It costs $5.50.", "It costs five dollars and fifty cents."),
        ("$1 and £2", "one dollar and two pounds"),
        ("$0.05", "five cents"),
        ("$3 million", "three million dollars"),
        ("50% off", "fifty percent off"),
        ("at 3:30 pm", "at three thirty p m"),
        ("at 10:05", "at ten oh five"),
        ("at 7:00", "at seven o'clock"),
        ("the 21st and 2nd", "the twenty-first and second"),
        ("in 1999", "in nineteen ninety-nine"),
        ("in 2005", "in two thousand five"),
        ("in 2024", "in twenty twenty-four"),
        ("the 1990s", "the nineteen nineties"),
        ("1,234,567", "one million two hundred thirty-four thousand five hundred sixty-seven"),
        ("3.14", "three point one four"),
        ("-5", "minus five"),
        ("1/2 and 3/4", "one half and three quarters"),
        ("pages 10-20", "pages ten to twenty"),
        ("5 km", "five kilometers"),
        ("Dr. Smith & Mr. Jones", "doctor Smith and mister Jones"),
        ("St. James", "saint James"),
        ("98.6°F", "ninety-eight point six degrees fahrenheit"),
        ("on 2024-05-01", "on may first, twenty twenty-four"),
        ("#1", "number one"),
    ],
)
def test_normalize_english(text: str, expected: str) -> None:
    assert normalize_english(text) == expected


def test_number_words() -> None:
    assert num.cardinal(0) == "zero"
    assert num.cardinal(115) == "one hundred fifteen"
    assert num.cardinal(1_000_001) == "one million one"
    assert num.ordinal(12) == "twelfth" and num.ordinal(40) == "fortieth"
    assert num.ordinal(101) == "one hundred first"
    assert num.year(1905) == "nineteen oh five" and num.year(1900) == "nineteen hundred"


def test_english_ipa_with_stress() -> None:
    r = phonemize("Hello world, how are you?", "en")
    assert r.phones[:5] == ["h", "ə", "l", "ˈ", "oʊ"]
    assert "ˈ" in r.phones and "ː" in r.phones
    assert r.phones[-1] == "?" and "," in r.phones
    assert set(r.lang_ids) == {0}
    assert r.words == ["Hello", " ", "world", ",", " ", "how", " ", "are", " ", "you", "?"]
    assert sum(r.word2ph) == len(r.phones) == len(r.ids)
    assert r.words[0] == "Hello" and r.word2ph[0] == 5


def test_affricates_and_diphthongs_are_single_symbols() -> None:
    r = phonemize("church judge", "en")
    assert "tʃ" in r.phones and "dʒ" in r.phones
    assert r.phones.count("t") == 0  # "tʃ" was not split into t + ʃ


def test_numbers_read_as_words() -> None:
    a = phonemize("I have 3 cats", "en")
    b = phonemize("I have three cats", "en")
    assert a.phones == b.phones and "three" in a.normalized


def test_ipa_to_symbols_longest_match() -> None:
    syms, bad = ipa_to_symbols("ˈaɪə")
    assert syms == ["ˈ", "aɪə"] and not bad
    syms, bad = ipa_to_symbols("k☃")
    assert syms == ["k"] and bad == {"☃"}
    assert all(s in SYMBOL_TO_ID for s in ipa_to_symbols("ɑːɹ")[0])


def test_per_call_is_fast_after_first() -> None:
    phonemize("warm up the backend", "en")
    t = time.perf_counter()
    for _ in range(20):
        phonemize("The quick brown fox jumps over the lazy dog.", "en")
    assert (time.perf_counter() - t) / 20 < 0.05  # the backend is cached, not re-created
