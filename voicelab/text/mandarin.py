"""Mandarin: numbers via cn2an, words via jieba, pinyin via pypinyin, then tone sandhi.

Every Han character becomes exactly two symbols: an initial and a toned final (`n i3`,
`h ao3`). Syllables without an initial get `y` / `w` (i-, u-, ü- finals) or a zero-initial
marker `AA` / `EE` / `OO`, so word2ph is 2 for every character. espeak's cmn voice is never
used: it drops tones.

Tone sandhi (applied to jieba words, as spoken Mandarin does):
- 3-3: in a run of third tones inside a word (or short words merged with it), all but the last
  become second tone: 你好 ni2 hao3, 展览馆 zhan2 lan2 guan3.
- 不: bu2 before a fourth tone (不是 bu2 shi4), neutral between repeated verbs (看不看).
- 一: yi1 in numbers and ordinals (一二三, 第一, 十一), neutral between repeated verbs (看一看),
  yi2 before a fourth tone (一个), yi4 before other tones (一天).
"""

from __future__ import annotations

import functools
import logging
import re
import threading

from voicelab.errors import VoicelabError
from voicelab.text.symbols import SYMBOL_TO_ID

log = logging.getLogger(__name__)

_lock = threading.Lock()

# Words ending in 儿 where 儿 is a full syllable (er2), not the erhua suffix.
_ER_FULL = {"儿子", "女儿", "儿童", "婴儿", "幼儿", "孤儿", "儿女", "男儿", "健儿", "胎儿", "少儿", "托儿", "宠儿", "新生儿"}
_NUMERAL_CHARS = set("零〇一二两三四五六七八九十百千万亿点第")

_CURRENCY_ZH = {"$": "美元", "£": "英镑", "€": "欧元", "¥": "元", "￥": "元"}


@functools.lru_cache(maxsize=1)
def _jieba():
    """jieba builds its prefix dictionary on first use (~1-2 s): do it once, quietly."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def normalize_mandarin(text: str) -> str:
    """Numbers, percentages, dates and currency to Chinese characters (cn2an), symbols to words.

    Digit strings of 7 or more (phone numbers, ids) are read digit by digit.
    """
    import cn2an

    t = text
    t = re.sub(r"([$£€¥￥])\s?(\d+(?:\.\d+)?)", lambda m: m.group(2) + _CURRENCY_ZH[m.group(1)], t)
    t = re.sub(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)", r"\1年\2月\3日", t)  # ISO dates
    t = t.replace("℃", "摄氏度").replace("℉", "华氏度")
    t = re.sub(r"(\d+(?:\.\d+)?)\s?°", r"\1度", t)
    t = re.sub(r"(\d),(?=\d{3})", r"\1", t)  # thousands separators
    t = re.sub(r"\d{7,}", lambda m: "".join("零一二三四五六七八九"[int(c)] for c in m.group(0)), t)
    t = re.sub(r"(\d{1,2}):(\d{2})", lambda m: f"{int(m.group(1))}点{int(m.group(2))}分"
               if int(m.group(2)) else f"{int(m.group(1))}点", t)
    t = re.sub(r"(\d+)\s?/\s?(\d+)", r"\2分之\1", t)
    if re.search(r"\d", t):
        try:
            t = cn2an.transform(t, "an2cn")
        except Exception as e:  # cn2an raises plain ValueError etc. on odd input: read digits
            log.debug("cn2an could not convert %r (%s): reading digits one by one", t, e)
            t = re.sub(r"\d", lambda m: "零一二三四五六七八九"[int(m.group(0))], t)
    t = t.replace("%", "百分之").replace("+", "加").replace("=", "等于").replace("&", "和")
    t = t.replace("@", " ").replace("#", " ").replace("/", " ")
    return t


# --------------------------------------------------------------------------------------------
# pinyin + sandhi
# --------------------------------------------------------------------------------------------


def _syllables(word: str) -> list[tuple[str, str, int]]:
    """[(initial, final, tone)] for each Han character of a word (pypinyin, strict finals)."""
    from pypinyin import Style, lazy_pinyin

    inits = lazy_pinyin(word, style=Style.INITIALS, strict=True)
    toned = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
    finals = lazy_pinyin(word, style=Style.FINALS, strict=True)
    out = []
    for ini, py, fin in zip(inits, toned, finals):
        tone = int(py[-1]) if py and py[-1].isdigit() else 5
        if not fin:  # syllabic nasals 嗯 n2 / 呣 m2 / 哼 hm
            fin = py.rstrip("12345")
        out.append((ini, fin, tone))
    return out


def _three_three(tones: list[int]) -> list[int]:
    """All but the last of each run of 3rd tones become 2nd."""
    t = list(tones)
    i = 0
    while i < len(t):
        if t[i] == 3:
            j = i
            while j + 1 < len(t) and t[j + 1] == 3:
                j += 1
            for k in range(i, j):
                t[k] = 2
            i = j + 1
        else:
            i += 1
    return t


def _merge_for_sandhi(words: list[str], tones: list[list[int]]) -> list[list[int]]:
    """Group word indices whose 3-3 sandhi crosses a word boundary (short words, <= 3 chars)."""
    groups: list[list[int]] = []
    for i in range(len(words)):
        if (
            groups
            and tones[i] and tones[groups[-1][-1]]
            and tones[groups[-1][-1]][-1] == 3 and tones[i][0] == 3
            and sum(len(tones[k]) for k in groups[-1]) + len(tones[i]) <= 3
        ):  # fmt: skip
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _yi_bu(words: list[str], sylls: list[list[tuple[str, str, int]]]) -> None:
    """Apply 一 / 不 sandhi in place (needs the next syllable, possibly in the next word)."""
    flat = [(wi, ci) for wi, w in enumerate(words) for ci in range(len(sylls[wi]))]
    chars = [words[wi][ci] for wi, ci in flat]
    for n, (wi, ci) in enumerate(flat):
        ch = chars[n]
        if ch not in "一不":
            continue
        ini, fin, tone = sylls[wi][ci]
        prev_c = chars[n - 1] if n else ""
        next_c = chars[n + 1] if n + 1 < len(chars) else ""
        next_tone = sylls[flat[n + 1][0]][flat[n + 1][1]][2] if next_c else 0
        word = words[wi]
        if prev_c and prev_c == next_c and prev_c not in _NUMERAL_CHARS:
            tone = 5  # 看一看, 好不好
        elif ch == "一" and (
            prev_c in _NUMERAL_CHARS or next_c in _NUMERAL_CHARS or not next_c or word == "一"
            and not next_c
        ):
            tone = 1  # 第一, 一二三, 十一, sentence-final 一
        elif ch == "一" and word.startswith("一") and len(word) > 1 and word[1] in "月日号":
            tone = 1  # dates: 一月
        elif next_tone == 4 or (next_tone == 5 and ch == "一" and next_c == "个"):
            tone = 2  # 一个, 不是
        elif ch == "一" and next_c:
            tone = 4  # 一天, 一年, 一起
        elif ch == "不":
            tone = 4
        sylls[wi][ci] = (ini, fin, tone)


def _final_symbol(ini: str, fin: str) -> str:
    if fin == "i" and ini in ("z", "c", "s"):
        return "i0"
    if fin == "i" and ini in ("zh", "ch", "sh", "r"):
        return "ir"
    return fin


def _initial_symbol(ini: str, fin: str) -> str:
    if ini:
        return ini
    if fin.startswith(("i", "v")):
        return "y"
    if fin.startswith("u"):
        return "w"
    if fin.startswith("o"):
        return "OO"
    if fin.startswith("a"):
        return "AA"
    return "EE"  # e, ê, er, and the syllabic nasals n / m / ng / hm


def g2p_mandarin(text: str) -> tuple[list[str], list[int], list[str], list[str]]:
    """Phonemise Mandarin text that holds only Han characters, spaces and punctuation.

    Returns (phones, word2ph, units, warnings): `units` are the Han characters and punctuation
    marks each word2ph count belongs to.
    """
    jieba = _jieba()
    with _lock:  # jieba's tokenizer is not thread-safe while it loads user dictionaries
        pieces = [w for w in jieba.lcut(text) if w.strip()]
    phones: list[str] = []
    word2ph: list[int] = []
    units: list[str] = []
    warnings: list[str] = []

    # words are the Han-only pieces; punctuation pieces break sandhi context
    segments: list[list[str]] = [[]]
    for p in pieces:
        if all("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or ord(c) > 0xFFFF for c in p):
            segments[-1].append(p)
        else:
            segments.append([p])
            segments.append([])
    for seg in segments:
        if not seg:
            continue
        if len(seg) == 1 and not _is_han_word(seg[0]):
            for c in seg[0]:
                if c in SYMBOL_TO_ID and c.strip():
                    phones.append(c)
                    word2ph.append(1)
                    units.append(c)
            continue
        sylls = [_syllables(w) for w in seg]
        _erhua(seg, sylls)
        _yi_bu(seg, sylls)
        tones = [[s[2] for s in ws] for ws in sylls]
        for group in _merge_for_sandhi(seg, tones):
            flat = [t for k in group for t in tones[k]]
            new = _three_three(flat)
            pos = 0
            for k in group:
                for ci in range(len(sylls[k])):
                    ini, fin, _ = sylls[k][ci]
                    sylls[k][ci] = (ini, fin, new[pos])
                    pos += 1
        for w, ws in zip(seg, sylls):
            for ch, (ini, fin, tone) in zip(w, ws):
                i_sym, f_sym = _initial_symbol(ini, fin), f"{_final_symbol(ini, fin)}{tone}"
                if i_sym not in SYMBOL_TO_ID or f_sym not in SYMBOL_TO_ID:
                    warnings.append(f"no pinyin for {ch!r} ({ini}{fin}{tone}): dropped")
                    continue
                phones += [i_sym, f_sym]
                word2ph.append(2)
                units.append(ch)
    return phones, word2ph, units, warnings


def _is_han_word(w: str) -> bool:
    return bool(w) and all("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or ord(c) > 0xFFFF for c in w)


def _erhua(words: list[str], sylls: list[list[tuple[str, str, int]]]) -> None:
    """A word-final 儿 suffix (哪儿, 玩儿) is unstressed: neutral tone, unless a real syllable."""
    for wi, w in enumerate(words):
        if len(w) > 1 and w.endswith("儿") and w not in _ER_FULL:
            ini, fin, _ = sylls[wi][-1]
            sylls[wi][-1] = (ini, fin, 5)


def check_han_supported(ch: str) -> bool:
    """True when pypinyin knows a reading for this character (rare characters may lack one)."""
    from pypinyin import Style, lazy_pinyin

    py = lazy_pinyin(ch, style=Style.TONE3, errors=lambda x: [""])
    return bool(py and py[0])


def ensure_ready() -> None:
    """Load jieba's dictionary now (so the first phonemize call is not the slow one)."""
    try:
        _jieba()
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(f"Mandarin support needs jieba ({e}): pip install -r requirements.txt")
