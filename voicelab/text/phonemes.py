"""Text -> phoneme symbols and ids, for English, Mandarin and mixed text.

    r = phonemize("Hello, 世界!", lang="auto")
    r.phones    # ['h', 'ə', 'l', 'ˈ', 'oʊ', ',', ' ', 'ʂ'...]  symbols of voicelab.text.symbols
    r.ids       # [..]  one id per phone (no BOS/EOS: the models add what they need)
    r.lang_ids  # [..]  LANG_TO_ID of each phone (punctuation/spaces take their run's language)
    r.word2ph   # phones per unit of r.words; sum(word2ph) == len(phones)

Pipeline: clean characters (normalize.clean_text, warnings for what was dropped) -> split by
script into language runs -> per run: normalise numbers etc. and phonemise (english.py via
espeak-ng, mandarin.py via pypinyin) -> join runs with a word boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voicelab.errors import VoicelabError
from voicelab.text import english, mandarin
from voicelab.text.normalize import clean_text, detect_lang, split_runs, split_sentences
from voicelab.text.symbols import LANG_TO_ID, LANGS, SPACE, SYMBOL_TO_ID

__all__ = ["PhonemeResult", "phonemize", "split_sentences", "LANG_CHOICES"]

LANG_CHOICES = ("en", "zh", "auto")
_PUNCT = ",.!?…;:-"
# A word: letters, with inner apostrophes/hyphens ("don't", "well-known").
_EN_TOKEN = re.compile(
    r"[A-Za-z\u00c0-\u024f]+(?:['\-][A-Za-z\u00c0-\u024f]+)*|[,.!?…;:-]"
)
_CHUNK_CHARS = 400  # espeak is fed sentence-sized pieces so 10,000 characters stay fast


@dataclass
class PhonemeResult:
    """Phonemes of one text. All lists of phones have the same length N; word2ph sums to N."""

    phones: list[str]  # [N] symbols from voicelab.text.symbols.SYMBOLS
    ids: list[int]  # [N] their ids
    lang_ids: list[int]  # [N] language of each phone (voicelab.text.symbols.LANG_TO_ID)
    word2ph: list[int]  # [W] phones per unit of `words`
    normalized: str  # the text as read: numbers spelled out, symbols dropped
    warnings: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # [W] words, Han chars, punctuation, " "

    def __len__(self) -> int:
        return len(self.phones)


class _Builder:
    """Accumulates phones with their language, word2ph units and words."""

    def __init__(self) -> None:
        self.phones: list[str] = []
        self.langs: list[int] = []
        self.word2ph: list[int] = []
        self.words: list[str] = []

    def add(self, word: str, phones: list[str], lang: str) -> None:
        if not phones:
            return
        if phones == [SPACE] and (not self.phones or self.phones[-1] == SPACE):
            return  # never two boundaries in a row, never one at the start
        self.phones += phones
        self.langs += [LANG_TO_ID[lang]] * len(phones)
        self.word2ph.append(len(phones))
        self.words.append(word)

    def strip_trailing_space(self) -> None:
        if self.phones and self.phones[-1] == SPACE:
            self.phones.pop()
            self.langs.pop()
            self.word2ph.pop()
            self.words.pop()


def _english_run(text: str, b: _Builder, warnings: list[str]) -> str:
    """Normalise and phonemise an English run; returns its normalised text."""
    norm = english.normalize_english(text)
    tokens = _EN_TOKEN.findall(norm)
    # chunks of consecutive words between punctuation marks, phonemised in one espeak call
    chunks: list[list[str]] = []
    layout: list[tuple[str, int]] = []  # ("w", chunk index) or ("p", punctuation)
    for tok in tokens:
        if tok in _PUNCT:
            layout.append(("p", tok))  # type: ignore[arg-type]
        else:
            if not layout or layout[-1][0] != "w":
                chunks.append([])
                layout.append(("w", len(chunks) - 1))
            chunks[-1].append(tok)
    ipa = english.espeak_words([" ".join(c) for c in chunks])
    for ci, (words, got) in enumerate(zip(chunks, ipa)):
        if len(got) != len(words):  # espeak merged or split words: phonemise one by one
            singles = english.espeak_words(words)
            got = [" ".join(g) if g else "" for g in singles]
        ipa[ci] = got
    unknown: set[str] = set()
    for kind, val in layout:
        if kind == "p":
            b.strip_trailing_space()
            b.add(str(val), [str(val)], "en")
            b.add(SPACE, [SPACE], "en")
            continue
        for word, w_ipa in zip(chunks[int(val)], ipa[int(val)]):
            syms: list[str] = []
            for phone in w_ipa.replace(" ", "|").split("|"):
                s, bad = english.ipa_to_symbols(phone)
                syms += s
                unknown |= bad
            if not syms:
                warnings.append(f"espeak gave no phonemes for {word!r}: skipped")
                continue
            b.add(word, syms, "en")
            b.add(SPACE, [SPACE], "en")
    if unknown:
        warnings.append(f"espeak symbols outside the table dropped: {' '.join(sorted(unknown))}")
    return norm


def _mandarin_run(text: str, b: _Builder, warnings: list[str]) -> str:
    norm = mandarin.normalize_mandarin(text)
    # cn2an may leave Latin letters (e.g. units): those go through English
    for run in split_runs(norm, "zh"):
        if run.lang == "en":
            _english_run(run.text, b, warnings)
            continue
        phones, word2ph, units, warns = mandarin.g2p_mandarin(run.text)
        warnings.extend(warns)
        pos = 0
        for unit, n in zip(units, word2ph):
            if unit in _PUNCT:
                b.strip_trailing_space()
            b.add(unit, phones[pos : pos + n], "zh")
            pos += n
        b.add(SPACE, [SPACE], "zh")  # boundary before whatever follows (another run)
    return norm


def _resolve_lang(lang: str, text: str) -> str:
    if lang not in LANG_CHOICES:
        raise VoicelabError(f"language {lang!r} is not supported: use one of {', '.join(LANG_CHOICES)}")
    return detect_lang(text) if lang == "auto" else lang


def phonemize(text: str, lang: str = "en") -> PhonemeResult:
    """Phonemise `text` read as `lang` ("en", "zh" or "auto": by script).

    Han characters are always read as Mandarin and Latin words as English (mixed sentences are
    split by script); `lang` decides who reads digits and symbols that sit between the two, and
    text with neither. Raises VoicelabError when nothing speakable is left (empty text,
    punctuation only, only dropped characters).
    """
    if not isinstance(text, str):
        raise VoicelabError(f"text must be a string, got {type(text).__name__}")
    cleaned, warnings = clean_text(text)
    main = _resolve_lang(lang, cleaned)
    if not re.search(r"[0-9A-Za-z\u00c0-\u024f\u3400-\u9fff\uf900-\ufaff]|[\U00020000-\U0002ebef]", cleaned):
        what = "is empty" if not text.strip() else "has nothing to speak (only punctuation or symbols)"
        raise VoicelabError(f"the text {what}: type a sentence with words, for example 'Hello there.'")
    b = _Builder()
    normalized: list[str] = []
    pieces = split_sentences(cleaned, main, max_chars=_CHUNK_CHARS) if len(cleaned) > _CHUNK_CHARS else [cleaned]
    for piece in pieces:
        for run in split_runs(piece, main):
            if run.lang == "zh":
                normalized.append(_mandarin_run(run.text, b, warnings))
            else:
                normalized.append(_english_run(run.text, b, warnings))
    b.strip_trailing_space()
    if not any(p not in _PUNCT and p != SPACE for p in b.phones):
        raise VoicelabError(
            "the text has nothing to speak after normalisation: type a sentence with words"
        )
    ids = [SYMBOL_TO_ID[p] for p in b.phones]
    return PhonemeResult(
        phones=b.phones,
        ids=ids,
        lang_ids=b.langs,
        word2ph=b.word2ph,
        normalized=_join(normalized),
        warnings=list(dict.fromkeys(warnings)),
        words=b.words,
    )


def _join(parts: list[str]) -> str:
    out = ""
    for p in (p.strip() for p in parts):
        if not p:
            continue
        glue = "" if (out and ord(out[-1]) > 0x2E80 and ord(p[0]) > 0x2E80) else " "
        out = (out + glue + p) if out else p
    return out


def supported_langs() -> tuple[str, ...]:
    """Languages with a front end (the model's language-id table)."""
    return LANGS
