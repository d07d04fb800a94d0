"""English: spell out numbers and abbreviations, then IPA with stress from espeak-ng.

espeak-ng is loaded from the `espeakng-loader` wheel (library + data), so no system package is
needed. Creating the phonemizer backend costs ~0.1 s and loads espeak's dictionaries, so one
backend is created per process (lazily, under a lock) and reused; a call on a sentence then takes
well under a millisecond.
"""

from __future__ import annotations

import functools
import logging
import re
import threading

from voicelab.errors import VoicelabError
from voicelab.text import numbers_en as num
from voicelab.text.symbols import EN_MULTI, EN_SYMBOLS

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_ABBREV = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor",
    "jr": "junior", "sr": "senior", "mt": "mount", "vs": "versus", "etc": "et cetera",
    "inc": "incorporated", "ltd": "limited", "co": "company", "ave": "avenue", "fig": "figure",
    "approx": "approximately", "dept": "department", "gov": "governor", "gen": "general",
    "capt": "captain", "sgt": "sergeant", "lt": "lieutenant", "jan": "january",
    "feb": "february", "mar": "march", "apr": "april", "aug": "august", "sept": "september",
    "oct": "october", "nov": "november", "dec": "december",
}  # fmt: skip
_UNITS = {
    "km/h": "kilometers per hour", "mph": "miles per hour", "km": "kilometers",
    "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "ml": "milliliters",
    "lbs": "pounds", "lb": "pounds", "oz": "ounces", "ft": "feet", "mi": "miles",
    "kb": "kilobytes", "mb": "megabytes", "gb": "gigabytes", "tb": "terabytes",
    "ms": "milliseconds", "hz": "hertz", "khz": "kilohertz", "g": "grams", "m": "meters",
    "s": "seconds", "h": "hours", "min": "minutes", "kw": "kilowatts", "w": "watts",
}  # fmt: skip
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
    "￥": ("yen", "yen", "sen", "sen"),
}  # fmt: skip
_FRACTION_DEN = {2: ("half", "halves"), 4: ("quarter", "quarters")}

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = r"(?:\s*(thousand|million|billion|trillion))?"


def _plural(n_words: str, one: str, many: str) -> str:
    return one if n_words == "one" else many


def _currency(m: re.Match) -> str:
    sym, amount, scale = m.group(1), m.group(2).replace(",", ""), m.group(3)
    one, many, sub_one, sub_many = _CURRENCY[sym]
    if scale:  # "$5 million" -> "five million dollars"
        return f"{num.decimal(amount)} {scale} {many}"
    whole, _, frac = amount.partition(".")
    w = int(whole or 0)
    cents = int((frac + "00")[:2]) if frac else 0
    parts = []
    if w or not cents:
        words = num.cardinal(w)
        parts.append(f"{words} {_plural(words, one, many)}")
    if cents:
        words = num.cardinal(cents)
        parts.append(f"{words} {_plural(words, sub_one, sub_many)}")
    return " and ".join(parts)


def _time(m: re.Match) -> str:
    h, mnt, ampm = int(m.group(1)), int(m.group(2)), m.group(3)
    if h > 24 or mnt > 59:
        return m.group(0).replace(":", " ")
    if mnt == 0:
        words = f"{num.cardinal(h)} o'clock" if not ampm else num.cardinal(h)
    elif mnt < 10:
        words = f"{num.cardinal(h)} oh {num.cardinal(mnt)}"
    else:
        words = f"{num.cardinal(h)} {num.cardinal(mnt)}"
    if ampm:
        words += " " + " ".join(ampm.lower().replace(".", ""))
    return words


def _ordinal(m: re.Match) -> str:
    return num.ordinal(int(m.group(1).replace(",", "")))


def _fraction(m: re.Match) -> str:
    a, b = int(m.group(1)), int(m.group(2))
    if b == 0:
        return f"{num.cardinal(a)} over zero"
    if b in _FRACTION_DEN:
        one, many = _FRACTION_DEN[b]
        return f"{num.cardinal(a)} {one if a == 1 else many}"
    if b <= 20:
        den = num.ordinal(b)
        return f"{num.cardinal(a)} {den if a == 1 else den + 's'}"
    return f"{num.cardinal(a)} over {num.cardinal(b)}"


def _plain_number(m: re.Match) -> str:
    s = m.group(0)
    neg = s.startswith("-")
    s = s.lstrip("-")
    if "." in s:
        words = num.decimal(s)
    elif "," not in s and len(s) == 4 and 1100 <= int(s) <= 2099:
        words = num.year(int(s))  # a bare 4-digit number in this range is almost always a year
    elif "," not in s and s.startswith("0") and len(s) > 1:
        words = num.digits(s)  # codes, "007"
    elif "," not in s and len(s) > 9:
        words = num.digits(s)  # phone numbers, ids
    else:
        words = num.cardinal(int(s.replace(",", "")))
    return ("minus " + words) if neg else words


_MONTHS = (
    "january february march april may june july august september october november december"
).split()


def _iso_date(m: re.Match) -> str:
    """2024-05-01 -> 'may first, twenty twenty-four' (left alone when not a real date)."""
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0).replace("-", " ")
    return f"{_MONTHS[mo - 1]} {num.ordinal(d)}, {num.year(y)}"


def _decade(m: re.Match) -> str:
    words = num.year(int(m.group(1)))
    return (words[:-1] + "ies") if words.endswith("y") else words + "s"


def normalize_english(text: str) -> str:
    """Spell out what espeak should not guess: '$5.50' -> 'five dollars and fifty cents'.

    Covers currency (with 'million' etc.), percentages, times (3:05 pm), ordinals (21st), years
    and decades (1999, 1990s), decimals, negatives, thousands separators, simple fractions,
    ranges (10-20), units after numbers (5 km), common abbreviations (Dr., Mr., etc.) and the
    symbols & @ + = # °.
    """
    t = text
    t = re.sub(r"([$£€¥￥])\s?(" + _NUM + r")" + _SCALE, _currency, t, flags=re.I)
    t = re.sub(r"(" + _NUM + r")\s?%", lambda m: f"{num.decimal(m.group(1))} percent", t)
    t = re.sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", _iso_date, t)
    t = re.sub(r"°\s?C\b", "℃", re.sub(r"°\s?F\b", "℉", t))
    t = t.replace("℃", " degrees celsius").replace("℉", " degrees fahrenheit")
    t = re.sub(r"(" + _NUM + r")\s?°", lambda m: f"{num.decimal(m.group(1))} degrees", t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})(?:\s?([ap]\.?m\.?))?(?![\d:])", _time, t, flags=re.I)
    t = re.sub(r"\b(\d{1,2})\s?([ap])\.?m\.?(?=\W|$)",
               lambda m: f"{num.cardinal(int(m.group(1)))} {m.group(2).lower()} m", t, flags=re.I)
    t = re.sub(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b", _ordinal, t, flags=re.I)
    t = re.sub(r"\b(1[1-9]|20)(\d0)'?s\b", lambda m: _decade(re.match(r"(\d+)", m.group(1) + m.group(2))), t)
    t = re.sub(r"\b(\d{1,3})/(\d{1,3})\b", _fraction, t)
    t = re.sub(r"\b(" + _NUM + r")\s?-\s?(" + _NUM + r")\b",
               lambda m: f"{m.group(1)} to {m.group(2)}", t)
    t = re.sub(r"#\s?(\d)", r"number \1", t)
    t = re.sub(r"\bNo\.\s?(\d)", r"number \1", t)
    unit_re = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    t = re.sub(r"(\d)\s?(" + unit_re + r")\b", lambda m: f"{m.group(1)} {_UNITS[m.group(2).lower()]}",
               t, flags=re.I)
    t = re.sub(r"(?<![\w.])-?(?:" + _NUM + r")", _plain_number, t)
    t = re.sub(r"\b(e)\.g\.", "for example", t, flags=re.I)
    t = re.sub(r"\b(i)\.e\.", "that is", t, flags=re.I)
    t = re.sub(r"\b([A-Za-z]+)\.(?=\s|$)",
               lambda m: _ABBREV.get(m.group(1).lower(), m.group(0)) if m.group(1).lower() in _ABBREV
               and (m.group(1)[0].isupper() or m.group(1).lower() in ("vs", "etc", "approx"))
               else m.group(0), t)
    t = re.sub(r"\bSt\.?\s+(?=[A-Z])", "saint ", t)  # "St. James" / "St James"
    t = re.sub(r"\bSt\.(?=\s|$)", "street", t)  # "on Main St."
    t = t.replace("&", " and ").replace("@", " at ").replace("+", " plus ").replace("=", " equals ")
    t = re.sub(r"[$£€¥￥%°#/]", " ", t)  # leftovers not attached to a number
    return re.sub(r"\s+", " ", t).strip()


# --------------------------------------------------------------------------------------------
# espeak-ng via phonemizer
# --------------------------------------------------------------------------------------------

_lock = threading.Lock()
VOICE = "en-us"


@functools.lru_cache(maxsize=2)
def _backend(voice: str = VOICE):
    """One espeak backend per process: creating it loads the dictionaries (slow)."""
    try:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as e:  # pragma: no cover - both are in requirements.txt
        raise VoicelabError(
            f"the English phonemizer is not installed ({e}): run `pip install -r requirements.txt`"
        ) from None
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    quiet = logging.getLogger("phonemizer.quiet")
    quiet.setLevel(logging.ERROR)
    return EspeakBackend(
        voice,
        preserve_punctuation=False,
        with_stress=True,
        language_switch="remove-flags",  # foreign words are read with English phonemes
        words_mismatch="ignore",
        logger=quiet,
    )


def espeak_words(chunks: list[str]) -> list[list[str]]:
    """Phonemise chunks of words (no punctuation) in one espeak call.

    Returns, per chunk, one IPA string per espeak word, its phones separated by '|'.
    """
    from phonemizer.separator import Separator

    if not chunks:
        return []
    with _lock:  # espeak's C library keeps global state: one call at a time
        lines = _backend().phonemize(
            chunks, separator=Separator(phone="|", word=" ", syllable=""), strip=True, njobs=1
        )
    return [line.split() for line in lines]


_MAX_UNIT = max(len(s) for s in EN_MULTI)
_EN_SET = frozenset(EN_SYMBOLS)  # only English symbols: never match a pinyin token


def ipa_to_symbols(phone: str) -> tuple[list[str], set[str]]:
    """Split one espeak phone ('ˈoʊ', 'ɑːɹ') into table symbols, longest match first.

    Returns (symbols, characters that are not in the table) - the latter are dropped.
    """
    out: list[str] = []
    unknown: set[str] = set()
    i = 0
    while i < len(phone):
        for size in range(min(_MAX_UNIT, len(phone) - i), 0, -1):
            piece = phone[i : i + size]
            if piece in _EN_SET:
                out.append(piece)
                i += size
                break
        else:
            unknown.add(phone[i])
            i += 1
    return out, unknown
