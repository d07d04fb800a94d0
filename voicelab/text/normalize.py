"""Language-independent text clean-up: characters, punctuation, scripts and sentences.

The language front ends (english.py, mandarin.py) get text that went through `clean_text`:
Unicode-normalised (NFKC: full-width letters and digits become ASCII), control characters,
emoji and characters of unsupported scripts removed (each removal reported as a warning, never
an exception), punctuation unified to the symbol table's set, whitespace collapsed.

`split_runs` cuts cleaned text into runs of one script (Han vs Latin) so mixed sentences are
phonemised per language; `split_sentences` cuts long text into sentences of bounded length.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Punctuation that survives into the phoneme sequence, after mapping (see PUNCT_MAP).
KEPT_PUNCT = ",.!?…;:-'"

# Chinese and typographic punctuation -> the symbol table's punctuation. Applied after NFKC,
# which already turns full-width ，！？：；（） into their ASCII forms.
PUNCT_MAP = {
    "。": ".", "、": ",", "，": ",", "！": "!", "？": "?", "；": ";", "：": ":", "～": "-",
    "—": "-", "–": "-", "―": "-", "‒": "-", "−": "-", "·": " ", "・": " ",
    "「": " ", "」": " ", "『": " ", "』": " ", "《": " ", "》": " ", "〈": " ", "〉": " ",
    "【": " ", "】": " ", "〔": " ", "〕": " ", "(": ",", ")": ",", "[": ",", "]": ",",
    "{": ",", "}": ",", '"': " ", "“": " ", "”": " ", "‘": "'", "’": "'", "`": "'",
    "´": "'", "«": " ", "»": " ", "¡": " ", "¿": " ", "\\": " ", "|": " ",
    "_": " ", "*": " ", "~": "-", "^": " ", "<": " ", ">": " ", "…": "…",
}  # fmt: skip

# Symbols a front end expands to words (kept through cleaning; english.py / mandarin.py read
# them): currency, percent, degree, arithmetic, @, &, #, / (fractions, km/h).
WORD_SYMBOLS = "$£€¥￥%°℃℉+=@&#/"

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")


def is_han(ch: str) -> bool:
    """True for a CJK ideograph (Mandarin text)."""
    return bool(_HAN.match(ch))


def is_latin(ch: str) -> bool:
    """True for a Latin letter, accented ones included (English text, loan words)."""
    return bool(_LATIN_LETTER.match(ch))


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, None)
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def clean_text(text: str) -> tuple[str, list[str]]:
    """Normalise characters; return (clean text, warnings about what was dropped).

    Keeps Han, Latin letters (with accents), digits, whitespace, KEPT_PUNCT and WORD_SYMBOLS.
    Everything else (emoji, control characters, other scripts) is dropped and named once in a
    warning so a person can see why it was not spoken.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    # keep a temperature unit attached to its number across the script split ("-3.5°C")
    text = re.sub(r"°\s?C\b", "℃", text)
    text = re.sub(r"°\s?F\b", "℉", text)
    out: list[str] = []
    dropped: dict[str, str] = {}
    for ch in text:
        ch = PUNCT_MAP.get(ch, ch)
        if len(ch) != 1:  # mapped to a multi-character string: keep as is
            out.append(ch)
            continue
        if ch.isspace():
            out.append(" ")
        elif is_han(ch) or is_latin(ch) or ch.isascii() and ch.isdigit():
            out.append(ch)
        elif ch in KEPT_PUNCT or ch in WORD_SYMBOLS or ch == ".":
            out.append(ch)
        elif ch in "\u200b\u200c\u200d\ufe0f\ufe0e\u00ad":  # invisible joiners / selectors
            continue
        else:
            cat = unicodedata.category(ch)
            kind = (
                "control character" if cat.startswith("C")
                else "emoji or symbol" if cat.startswith("S")
                else "unsupported character"
            )  # fmt: skip
            dropped.setdefault(ch, kind)
            out.append(" ")
    cleaned = re.sub(r"\s+", " ", "".join(out)).strip()
    cleaned = re.sub(r"\.{3,}", "…", cleaned)  # "..." is one pause mark
    warnings = []
    if dropped:
        shown = ", ".join(f"{_describe(c)} ({k})" for c, k in list(dropped.items())[:8])
        more = f" and {len(dropped) - 8} more" if len(dropped) > 8 else ""
        warnings.append(f"dropped {len(dropped)} character(s) that cannot be spoken: {shown}{more}")
    return cleaned, warnings


# --------------------------------------------------------------------------------------------
# Script runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A stretch of text in one language."""

    lang: str  # "en" or "zh"
    text: str


def _script(ch: str) -> str | None:
    if is_han(ch):
        return "zh"
    if is_latin(ch):
        return "en"
    return None  # digits, punctuation, spaces, symbols: belong to a neighbour


def detect_lang(text: str) -> str:
    """'zh' when Han characters are at least as many as Latin words, else 'en'."""
    han = sum(1 for c in text if is_han(c))
    latin_words = len(re.findall(r"[A-Za-z\u00c0-\u024f]+", text))
    if han == 0 and latin_words == 0:
        return "en"
    return "zh" if han >= latin_words else "en"


def split_runs(text: str, default_lang: str) -> list[Run]:
    """Cut text into single-script runs; neutral characters join the run before them.

    Digits and symbols read in the language they sit in: "我有3个" keeps the 3 with the
    Chinese, "I have 3 苹果" keeps it with the English. Neutral text at the very start joins
    the first lettered run; text with no letters at all goes to `default_lang`.
    """
    runs: list[list] = []  # [lang or None, chars]
    for ch in text:
        s = _script(ch)
        if runs and (s is None or runs[-1][0] in (s, None)):
            if runs[-1][0] is None:
                runs[-1][0] = s
            runs[-1][1].append(ch)
        else:
            runs.append([s, [ch]])
    out: list[Run] = []
    for lang, chars in runs:
        piece = "".join(chars)
        lang = lang or default_lang
        # a Latin run inside Chinese keeps its trailing space-free form; spaces separate words
        if out and out[-1].lang == lang:
            out[-1] = Run(lang, out[-1].text + piece)
        elif piece.strip():
            out.append(Run(lang, piece))
        elif out:  # whitespace between runs: keep it with the previous run
            out[-1] = Run(out[-1].lang, out[-1].text + piece)
    return out


# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------

# Abbreviations whose period does not end a sentence (english.py expands them later).
_NO_BREAK = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Mt|vs|etc|No|Nos|Inc|Ltd|Co|Ave|Fig|approx|e\.g|i\.e)\.$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?…。！？]+['\"”’)]*\s*|[;；]\s*")
_CLAUSE_END = re.compile(r"[,，、:：]\s*")


def _split_at(text: str, pattern: re.Pattern, protect_abbrev: bool) -> list[str]:
    parts, start = [], 0
    for m in pattern.finditer(text):
        end = m.end()
        head = text[start : m.start() + 1]
        if protect_abbrev and _NO_BREAK.search(head):
            continue
        # a decimal point or a time colon between digits is not a boundary
        if m.start() > 0 and text[m.start() - 1].isdigit() and end < len(text) and text[end].isdigit():
            continue
        parts.append(text[start:end])
        start = end
    if start < len(text):
        parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _hard_wrap(text: str, max_chars: int) -> list[str]:
    """Last resort for a clause longer than max_chars: cut at spaces, or anywhere for Han."""
    out: list[str] = []
    while len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        if cut <= 0:
            cut = max_chars
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        out.append(text)
    return out


def split_sentences(text: str, lang: str = "auto", max_chars: int = 200) -> list[str]:
    """Split text into sentences of at most `max_chars` characters (for long-form synthesis).

    Sentences end at . ! ? … ; (and their Chinese forms), except after a known abbreviation or
    inside a number. A sentence longer than max_chars is split at commas, then at spaces (or
    anywhere, for Chinese, which has none). Joining the pieces with spaces gives back the text
    up to whitespace. `lang` is accepted for symmetry with phonemize; rules are shared.
    """
    if max_chars < 8:
        raise ValueError("max_chars must be at least 8")
    text = re.sub(r"\s+", " ", text).strip()
    out: list[str] = []
    for sent in _split_at(text, _SENTENCE_END, protect_abbrev=True):
        if len(sent) <= max_chars:
            out.append(sent)
            continue
        buf = ""
        for clause in _split_at(sent, _CLAUSE_END, protect_abbrev=False):
            for piece in _hard_wrap(clause, max_chars):
                sep = "" if (buf and is_han(buf[-1]) and is_han(piece[0])) else " "
                if buf and len(buf) + len(sep) + len(piece) <= max_chars:
                    buf = buf + sep + piece
                else:
                    if buf:
                        out.append(buf)
                    buf = piece
        if buf:
            out.append(buf)
    return out
