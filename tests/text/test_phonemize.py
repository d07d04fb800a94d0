"""phonemize(): mixed text, auto detection, bad inputs, long text, sentence splitting."""

from __future__ import annotations

import pytest

from voicelab.errors import VoicelabError
from voicelab.text.phonemes import phonemize, split_sentences
from voicelab.text.symbols import LANG_TO_ID, SYMBOL_TO_ID


def _consistent(r) -> None:
    assert len(r.phones) == len(r.ids) == len(r.lang_ids) == sum(r.word2ph)
    assert len(r.word2ph) == len(r.words) and all(n > 0 for n in r.word2ph)
    assert r.ids == [SYMBOL_TO_ID[p] for p in r.phones]
    assert 0 not in r.ids


def test_mixed_text_split_by_script() -> None:
    r = phonemize("我爱 New York 的 pizza", "zh")
    _consistent(r)
    langs = {p: l for p, l in zip(r.phones, r.lang_ids)}
    assert langs["uo3"] == LANG_TO_ID["zh"] and langs["ˈ"] == LANG_TO_ID["en"]
    assert "New" in r.words and "我" in r.words
    r2 = phonemize("I love 北京 food", "en")
    _consistent(r2)
    assert "b" in r2.phones and "ei3" in r2.phones and r2.lang_ids[r2.phones.index("ei3")] == 1


def test_auto_detects_by_script() -> None:
    assert set(phonemize("今天天气很好", "auto").lang_ids) == {1}
    assert set(phonemize("what a nice day", "auto").lang_ids) == {0}
    # digits follow the surrounding language
    zh_digits = phonemize("我有5本书", "auto")
    assert "u3" in zh_digits.phones  # 五 wu3
    en_digits = phonemize("I have 5 books", "auto")
    assert "aɪ" in en_digits.phones and set(en_digits.lang_ids) == {0}


def test_unknown_emoji_control_dropped_with_warning() -> None:
    r = phonemize("Hello 😀 there\x07 Привет", "en")
    _consistent(r)
    assert r.phones == phonemize("Hello there", "en").phones
    assert r.warnings and "GRINNING FACE" in r.warnings[0] and "control" in r.warnings[0]


@pytest.mark.parametrize("bad", ["", "   ", "...", "?!,。！", "😀😀", "\x00\x01"])
def test_empty_or_punctuation_only_is_an_error(bad: str) -> None:
    with pytest.raises(VoicelabError, match="type a sentence"):
        phonemize(bad, "auto")


def test_bad_language() -> None:
    with pytest.raises(VoicelabError, match="use one of"):
        phonemize("hello", "fr")


def test_long_text_10000_chars() -> None:
    sent = "The 3 quick brown foxes jumped over 12 lazy dogs, didn't they? "
    text = (sent * (10_000 // len(sent) + 1))[:10_000]
    r = phonemize(text, "en")
    _consistent(r)
    assert r.phones.count("?") >= 150
    parts = split_sentences(text, "en", max_chars=200)
    assert len(parts) >= 150 and all(len(p) <= 200 for p in parts)


def test_long_chinese_text() -> None:
    text = "今天我们去公园散步，天气非常好。" * 300  # 4,800 characters, no spaces
    r = phonemize(text, "zh")
    _consistent(r)
    parts = split_sentences(text, "zh", max_chars=50)
    assert all(len(p) <= 50 for p in parts) and "".join(parts) == text


def test_split_sentences_rules() -> None:
    assert split_sentences("Dr. Smith paid $3.50. Then he left! OK?") == [
        "Dr. Smith paid $3.50.", "Then he left!", "OK?"
    ]
    assert split_sentences("你好。我很好！") == ["你好。", "我很好！"]
    long = "word " * 100
    assert all(len(p) <= 60 for p in split_sentences(long, max_chars=60))
    with pytest.raises(ValueError):
        split_sentences("x", max_chars=2)


def test_cli_phonemize_prints_phonemes_and_ids(capsys: pytest.CaptureFixture) -> None:
    import argparse

    from voicelab.commands import phonemize as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    args = parser.parse_args(["phonemize", "--lang", "zh", "你好"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "n i2 h ao3" in out and str(SYMBOL_TO_ID["ao3"]) in out
