"""The CPU path's English phone front end: text -> ARPAbet phones with pauses and word positions."""

from __future__ import annotations

import pytest

from voicelab.errors import VoicelabError
from voicelab.text import arpabet as ab


def test_symbol_table_is_pinned() -> None:
    # changing the table invalidates every CPU-path model: bump SYMBOLS_VERSION and this hash
    assert ab.SYMBOLS_VERSION == 2
    assert ab.symbols_hash() == "dc87292e56582fc9"
    assert (
        ab.SYMBOLS[ab.PAD_ID] == "_"
        and ab.SYMBOLS[ab.SIL_ID] == "SIL"
        and ab.SYMBOLS[ab.SP_ID] == "SP"
    )
    assert len(set(ab.SYMBOLS)) == ab.NUM_SYMBOLS == 42


def test_symbol_table_covers_the_aligner_dictionary() -> None:
    # every phone the aligner can return must have an id
    used = {p for prons in ab.cmudict().values() for pron in prons for p in pron}
    assert used == set(ab.ARPABET)


def test_sentence_phones_pauses_and_word_positions() -> None:
    seq = ab.text_to_phones("The cat sat, a dog ran.")
    assert seq.phones == ["SIL", "DH", "AH", "K", "AE", "T", "S", "AE", "T", "SP",
                          "AH", "D", "AO", "G", "R", "AE", "N", "SIL"]  # fmt: skip
    assert seq.ids == ab.to_ids(seq.phones) and ab.from_ids(seq.ids) == seq.phones
    P = ab.POS_BEGIN, ab.POS_MIDDLE, ab.POS_END
    assert seq.word_pos[:6] == [ab.POS_NONE, P[0], P[2], P[0], P[1], P[2]]
    assert seq.word_pos[9:11] == [ab.POS_NONE, ab.POS_SINGLE]  # SP, then the one-phone "a"
    assert [w.key for w in seq.words] == ["the", "cat", "sat", "a", "dog", "ran"]
    assert all(seq.phones[w.start : w.end] == list(ab.cmudict()[w.key][0]) for w in seq.words)
    assert len(seq.phones) == len(seq.ids) == len(seq.word_pos)


def test_stress_in_context() -> None:
    seq = ab.text_to_phones("The tomatoes of Zorblax")
    assert len(seq.stress) == len(seq.phones)
    by_word = {w.key: seq.stress[w.start : w.end] for w in seq.words}
    # function words unstressed; toMAtoes; consonants and pauses carry no stress
    assert by_word["the"] == [ab.ST_NONE, ab.ST_UNSTRESSED]
    assert by_word["of"] == [ab.ST_UNSTRESSED, ab.ST_NONE]
    assert [x for x in by_word["tomatoes"] if x] == [
        ab.ST_UNSTRESSED,
        ab.ST_PRIMARY,
        ab.ST_UNSTRESSED,
    ]
    assert ab.ST_PRIMARY in by_word["zorblax"]  # OOV words too
    for p, x in zip(seq.phones, seq.stress, strict=True):
        assert (x != ab.ST_NONE) == (p in ab.VOWELS)
    # a pronunciation with another vowel count: the pattern is stretched over the vowels
    assert ab.phone_stress(("K", "AE", "T"), ()) == [0, ab.ST_UNSTRESSED, 0]
    assert ab.phone_stress(("AH", "B", "AW", "T"), (3,)) == [3, 0, 3, 0]


def test_pause_rules() -> None:
    # no SP before the first word, none after the last, one for a run of punctuation
    seq = ab.text_to_phones('"Well... yes -- (maybe)!"')
    assert seq.phones[0] == "SIL" and seq.phones[1] != "SP" and seq.phones[-2] != "SP"
    assert seq.phones.count("SP") == 2
    assert "SP" not in ab.text_to_phones('He said "hello" to me').phones  # quotes are not pauses


def test_numbers_and_abbreviations_are_spoken() -> None:
    seq = ab.text_to_phones("Dr. Smith paid $5 in 1999.")
    keys = [w.key for w in seq.words]
    assert keys == [
        "doctor",
        "smith",
        "paid",
        "five",
        "dollars",
        "in",
        "nineteen",
        "ninety",
        "nine",
    ]
    assert [w.key for w in ab.text_to_phones("It was 21 degrees").words][2:4] == ["twenty", "one"]


def test_digits_inside_words_are_read() -> None:
    keys = [w.key for w in ab.text_to_phones("Play the mp3 file").words]
    assert keys == ["play", "the", "mp", "three", "file"]


def test_oov_words_get_phones_from_espeak() -> None:
    seq = ab.text_to_phones("The zorblax glimmered")
    w = seq.words[1]
    assert w.key == "zorblax" and w.oov and "zorblax" not in ab.cmudict()
    phones = seq.phones[w.start : w.end]
    assert phones[0] == "Z" and phones[-3:] == ["AE", "K", "S"] and len(phones) >= 6
    assert set(phones) <= set(ab.ARPABET) and seq.prons["zorblax"] == tuple(phones)


def test_ipa_mapping() -> None:
    assert ab.ipa_to_arpabet("h|ə|l|ˈoʊ") == (["HH", "AH", "L", "OW"], set())
    assert ab.ipa_to_arpabet("f|ˈaɪɚ")[0] == ["F", "AY", "ER"]
    assert ab.ipa_to_arpabet("n|ˈɔːɹ|θ")[0] == ["N", "AO", "R", "TH"]
    phones, unknown = ab.ipa_to_arpabet("b|ʘ|t")
    assert phones == ["B", "T"] and unknown == {"ʘ"}


def test_accents_apostrophes_and_hyphens() -> None:
    keys = [w.key for w in ab.text_to_phones("Don’t visit the café, well-known-ish place").words]
    assert keys[:3] == ["don't", "visit", "the"] and "cafe" in keys
    assert "well" in keys and "known" in keys


def test_nothing_speakable_raises() -> None:
    for text in ("", "   ", "... !!", "你好"):
        with pytest.raises(VoicelabError, match="no English words to speak"):
            ab.text_to_phones(text)
    seq = ab.text_to_phones("hello 你好")
    assert [w.key for w in seq.words] == ["hello"] and seq.warnings
