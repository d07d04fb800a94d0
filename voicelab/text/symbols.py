"""The one symbol table shared by every language: phoneme strings <-> integer ids.

Models store embeddings indexed by these ids, so the table is frozen: ids never move. A change
must be deliberate, bump `SYMBOLS_VERSION`, and update the hash pinned in
tests/text/test_symbols.py. New symbols should take a `<reserved_N>` slot (so `NUM_SYMBOLS`,
the embedding size, stays the same) rather than be appended.

Layout (ids in this order):

- specials: `<pad>` (id 0, `PAD_ID`), `<bos>`, `<eos>`, `<unk>`, `<sil>` (pause between
  sentences), `<en>` / `<zh>` (language markers) and the word boundary `" "`.
- punctuation, normalised to `, . ! ? … ; : -` plus `'` (English contractions never reach
  here; the apostrophe is kept for quoted words espeak passes through).
- English: IPA as espeak-ng emits it (en-us / en-gb voices): stress `ˈ ˌ`, length `ː ˑ`,
  diacritics, vowels, consonants, plus multi-character units (diphthongs, affricates) that the
  tokenizer in voicelab/text/english.py matches longest-first.
- Mandarin: pinyin initials (`b p m f ... zh ch sh r z c s`, plus `y`/`w` and the zero-initial
  markers `AA EE OO`) and finals with tones 1-5 (`a1 ... a5`; `i0` after z/c/s, `ir` after
  zh/ch/sh/r, `v` = ü). Every Mandarin syllable is exactly two symbols: initial + toned final.
- `<reserved_0>` ... `<reserved_15>`: spare slots for later additions.

Identical strings share one id across languages (for example `m`, `n`, `f`); the parallel
language-id sequence (`LANG_TO_ID`) tells the model which language a symbol came from.
"""

from __future__ import annotations

import hashlib

SYMBOLS_VERSION = 1

PAD = "<pad>"
BOS = "<bos>"
EOS = "<eos>"
UNK = "<unk>"
SIL = "<sil>"
SPACE = " "  # word boundary
LANG_MARKERS = ("<en>", "<zh>")

_SPECIALS = (PAD, BOS, EOS, UNK, SIL, *LANG_MARKERS, SPACE)

PUNCTUATION = (",", ".", "!", "?", "…", ";", ":", "-", "'")

# ---- English IPA (espeak-ng) -----------------------------------------------------------------
# Suprasegmentals and diacritics espeak writes as separate characters.
_EN_MARKS = (
    "ˈ",  # primary stress
    "ˌ",  # secondary stress
    "ː",  # long
    "ˑ",  # half long
    "\u0303",  # combining tilde: nasalised (French loans: "ɑ̃")
    "\u0329",  # combining vertical line below: syllabic consonant ("n̩")
    "\u032f",  # combining inverted breve below: non-syllabic
    "\u032a",  # combining bridge below: dental
    "ʰ",  # aspirated
    "ʲ",  # palatalised
    "ʷ",  # labialised
    "˞",  # rhotic hook
    "‿",  # linking
)
_EN_VOWELS = (
    "a", "æ", "ɐ", "ɑ", "ɒ", "ɔ", "ə", "ɚ", "ɛ", "ɜ", "ɝ", "e", "i", "ɪ", "o", "u", "ʊ", "ʌ",
    "ᵻ", "ɨ", "ɵ", "y", "ø", "œ", "ɯ", "ɤ", "ɘ", "ɞ", "ɶ", "ʏ", "ʉ",
)  # fmt: skip
_EN_CONSONANTS = (
    "b", "d", "f", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "x", "z",
    "ð", "θ", "ʃ", "ʒ", "ɡ", "g", "ŋ", "ɹ", "ɾ", "ʔ", "ɫ", "ɬ", "ç", "ʍ", "ɣ", "β", "ɸ",
    "ɲ", "ʎ", "ʁ", "ʀ", "ɕ", "ʑ", "ʂ", "ʐ", "ɖ", "ʈ", "ɭ", "ɳ", "ɻ", "ɽ", "ʋ", "ɦ", "ħ",
    "ʕ", "χ", "ɱ", "ɰ", "ʝ", "c", "ɟ", "q", "ɢ", "ʧ", "ʤ", "ʦ",
)  # fmt: skip
# Units matched longest-first before single characters (so "tʃ" is one phoneme, not two).
EN_MULTI = (
    "tʃ", "dʒ", "ts", "dz", "eɪ", "aɪ", "ɔɪ", "aʊ", "oʊ", "əʊ", "ɪə", "eə", "ʊə", "ɑɪ", "ɐʊ",
    "ɔø", "iə", "aɪə", "aʊə",
)  # fmt: skip
EN_SYMBOLS = _EN_MARKS + _EN_VOWELS + _EN_CONSONANTS + EN_MULTI

# ---- Mandarin pinyin ------------------------------------------------------------------------
ZH_INITIALS = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
    "zh", "ch", "sh", "r", "z", "c", "s", "y", "w", "AA", "EE", "OO",
)  # fmt: skip
ZH_FINALS = (
    "a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er", "ê", "i", "i0", "ir", "ia",
    "ian", "iang", "iao", "ie", "in", "ing", "iong", "iou", "o", "ong", "ou", "u", "ua",
    "uai", "uan", "uang", "uei", "uen", "ueng", "uo", "v", "van", "ve", "vn", "io",
    "m", "n", "ng", "hm",
)  # fmt: skip
TONES = (1, 2, 3, 4, 5)  # 5 = neutral tone
ZH_TONED_FINALS = tuple(f"{f}{t}" for f in ZH_FINALS for t in TONES)

RESERVED = tuple(f"<reserved_{i}>" for i in range(16))


def _unique(seq: tuple[str, ...]) -> tuple[str, ...]:
    """Drop repeats, keeping the first occurrence (shared strings get one id)."""
    seen: set[str] = set()
    out = []
    for s in seq:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return tuple(out)


SYMBOLS: tuple[str, ...] = _unique(
    _SPECIALS + PUNCTUATION + EN_SYMBOLS + ZH_INITIALS + ZH_TONED_FINALS + RESERVED
)
PAD_ID = 0
NUM_SYMBOLS = len(SYMBOLS)
SYMBOL_TO_ID: dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
BOS_ID = SYMBOL_TO_ID[BOS]
EOS_ID = SYMBOL_TO_ID[EOS]
UNK_ID = SYMBOL_TO_ID[UNK]
SIL_ID = SYMBOL_TO_ID[SIL]
SPACE_ID = SYMBOL_TO_ID[SPACE]

LANGS = ("en", "zh")
LANG_TO_ID: dict[str, int] = {lang: i for i, lang in enumerate(LANGS)}
NUM_LANGS = len(LANGS)
LANG_MARKER_ID: dict[str, int] = {lang: SYMBOL_TO_ID[f"<{lang}>"] for lang in LANGS}

assert SYMBOLS[PAD_ID] == PAD


def symbols_hash() -> str:
    """sha256 of the table (one symbol per line): pinned by a test, stored in exports."""
    return hashlib.sha256("\n".join(SYMBOLS).encode("utf-8")).hexdigest()


def to_ids(phones: list[str]) -> list[int]:
    """Map phoneme strings to ids. Raises KeyError naming a symbol not in the table."""
    try:
        return [SYMBOL_TO_ID[p] for p in phones]
    except KeyError as e:
        raise KeyError(f"symbol {e.args[0]!r} is not in the symbol table v{SYMBOLS_VERSION}") from None


def from_ids(ids: list[int]) -> list[str]:
    """Inverse of `to_ids` (for printing and debugging)."""
    return [SYMBOLS[i] for i in ids]
