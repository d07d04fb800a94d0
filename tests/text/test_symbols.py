"""The symbol table is frozen: its hash is pinned so that any change is deliberate."""

from __future__ import annotations

from voicelab.text import symbols as S

# Changing the table breaks every trained model: bump SYMBOLS_VERSION and update both pins.
PINNED_VERSION = 1
PINNED_HASH = "0f76525c76c5a8a6760f8d62126b6d405ba4db08356d14c28afdf1b83ac26016"
PINNED_COUNT = 385


def test_table_is_pinned() -> None:
    assert S.SYMBOLS_VERSION == PINNED_VERSION
    assert S.symbols_hash() == PINNED_HASH, "symbol table changed: bump SYMBOLS_VERSION"
    assert S.NUM_SYMBOLS == len(S.SYMBOLS) == PINNED_COUNT


def test_contract_names() -> None:
    assert S.PAD_ID == 0 and S.SYMBOLS[0] == "<pad>"
    assert S.LANGS == ("en", "zh")
    assert S.LANG_TO_ID == {"en": 0, "zh": 1} and S.NUM_LANGS == 2
    assert len(set(S.SYMBOLS)) == len(S.SYMBOLS), "symbols must be unique"
    for name in ("<bos>", "<eos>", "<en>", "<zh>", " ", "<sil>"):
        assert name in S.SYMBOL_TO_ID


def test_mandarin_and_english_inventory_complete() -> None:
    for f in S.ZH_FINALS:
        for t in (1, 2, 3, 4, 5):
            assert f"{f}{t}" in S.SYMBOL_TO_ID
    for ini in S.ZH_INITIALS:
        assert ini in S.SYMBOL_TO_ID
    for ipa in ("ˈ", "ˌ", "ː", "ə", "ɚ", "ɹ", "θ", "ð", "ʃ", "ʒ", "ŋ", "tʃ", "dʒ", "oʊ", "ᵻ", "ɾ"):
        assert ipa in S.SYMBOL_TO_ID


def test_ids_round_trip() -> None:
    phones = ["h", "ə", "l", "ˈ", "oʊ", " ", "n", "i3", ","]
    ids = S.to_ids(phones)
    assert S.from_ids(ids) == phones
    assert 0 not in ids
