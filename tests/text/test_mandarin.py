"""Mandarin: numbers, pinyin initials + toned finals, tone sandhi."""

from __future__ import annotations

import pytest

from voicelab.text.mandarin import normalize_mandarin
from voicelab.text.phonemes import phonemize


def zh(text: str) -> list[str]:
    return phonemize(text, "zh").phones


def test_initials_and_toned_finals() -> None:
    r = phonemize("我们学习中文", "zh")
    assert r.phones == ["w", "uo3", "m", "en5", "x", "ve2", "x", "i2", "zh", "ong1", "w", "uen2"]
    assert r.word2ph == [2] * 6 and set(r.lang_ids) == {1}


def test_i_after_sibilants_and_retroflexes() -> None:
    assert zh("字") == ["z", "i04"] and zh("知") == ["zh", "ir1"] and zh("你") == ["n", "i3"]


def test_zero_initials() -> None:
    assert zh("爱") == ["AA", "ai4"] and zh("饿") == ["EE", "e4"] and zh("鱼") == ["y", "v2"]


@pytest.mark.parametrize(
    ("text", "tones"),
    [
        ("你好", ["i2", "ao3"]),  # 3-3 -> 2-3
        ("展览馆", ["an2", "an2", "uan3"]),  # 3-3-3 -> 2-2-3
        ("我很好", ["uo2", "en2", "ao3"]),  # across short words
        ("不是", ["u2", "ir4"]),  # 不 before 4th tone
        ("不好", ["u4", "ao3"]),
        ("好不好", ["ao3", "u5", "ao3"]),  # between repeated words: neutral
        ("一个", ["i2", "e4"]),  # 一 before 4th tone
        ("一天", ["i4", "ian1"]),  # 一 before other tones
        ("第一", ["i4", "i1"]),  # ordinal keeps tone 1
        ("看一看", ["an4", "i5", "an4"]),
    ],
)
def test_tone_sandhi(text: str, tones: list[str]) -> None:
    assert zh(text)[1::2] == tones


def test_numbers_dates_percent() -> None:
    assert normalize_mandarin("2024年3月5日") == "二零二四年三月五日"
    assert normalize_mandarin("50%") == "百分之五十"
    assert normalize_mandarin("13800138000") == "一三八零零一三八零零零"  # phone: digit by digit
    assert normalize_mandarin("-3.5") == "负三点五"
    r = phonemize("我有3个苹果", "zh")
    assert r.phones == phonemize("我有三个苹果", "zh").phones


def test_chinese_punctuation_kept() -> None:
    r = phonemize("你好，世界！", "zh")
    assert r.phones[4] == "," and r.phones[-1] == "!"
    assert r.words == ["你", "好", ",", "世", "界", "!"]
