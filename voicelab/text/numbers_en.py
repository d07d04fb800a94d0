"""English number words: cardinals, ordinals, years, decimals (no dependency needed)."""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
DIGIT_WORDS = dict(zip("0123456789", _ONES[:10]))


def _below_thousand(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        parts.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not parts:
        parts.append(_ONES[n])
    return " ".join(parts)


def cardinal(n: int) -> str:
    """12345 -> 'twelve thousand three hundred forty-five'. Beyond 10^15: digit by digit."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= 10**15:
        return digits(str(n))
    if n < 1000:
        return _below_thousand(n)
    parts = []
    for value, name in _SCALES:
        if n >= value:
            parts.append(f"{_below_thousand(n // value)} {name}")
            n %= value
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


def ordinal(n: int) -> str:
    """21 -> 'twenty-first', 100 -> 'one hundredth'."""
    words = cardinal(n)
    head, sep, last = max(
        (words.rpartition(" "), words.rpartition("-")), key=lambda t: len(t[0])
    )
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """1999 -> 'nineteen ninety-nine', 2005 -> 'two thousand five', 1905 -> 'nineteen oh five'."""
    if n < 1000 or n > 9999:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if 2000 <= n <= 2009:
        return cardinal(n)
    if lo == 0:
        return f"{cardinal(hi)} hundred"
    if lo < 10:
        return f"{cardinal(hi)} oh {_ONES[lo]}"
    return f"{cardinal(hi)} {cardinal(lo)}"


def digits(s: str) -> str:
    """'4071' -> 'four oh seven one' style digit reading (zero read 'zero')."""
    return " ".join(DIGIT_WORDS[c] for c in s if c in DIGIT_WORDS)


def decimal(s: str) -> str:
    """'3.14' -> 'three point one four'; '1,250.5' -> 'one thousand two hundred fifty point five'."""
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    words = cardinal(int(whole)) if whole else "zero"
    if frac:
        words += " point " + digits(frac)
    return words
