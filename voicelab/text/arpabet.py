"""The English phone front end of the CPU path: text -> ARPAbet phones with pauses.

The CPU path's acoustic model is trained on phones whose durations come from pocketsphinx's
forced aligner (voicelab/text/align.py), so its phone set *is* pocketsphinx's en-us phone set
(39 ARPAbet phones without stress, as in the CMU dictionary shipped in the pocketsphinx wheel).
This module is the text side of that contract; the GAN path keeps its IPA front end
(voicelab/text/phonemes.py, symbols.py) unchanged.

Symbols (`SYMBOLS`, ids fixed; `SYMBOLS_VERSION` + `symbols_hash()` pinned in a test):
  - "_"   pad (id 0),
  - "SIL" silence at the start and end of an utterance (always exactly one of each),
  - "SP"  a pause between words (at sentence-internal punctuation here; in an alignment also
          wherever the speaker paused >= 50 ms),
  - the 39 ARPAbet phones.

Word boundaries are a parallel per-phone feature `word_pos` (`WORD_POS`: none / begin / middle /
end / single) rather than a boundary symbol. Why: every symbol of the sequence is an acoustic
segment with >= 1 frame, so the GPT's one-token-per-phone stream and the duration model stay
aligned one to one (a boundary symbol would need a zero-length segment), while the duration
model still sees word-initial and word-final positions (word-final lengthening, the strongest
duration cue after the phone identity) and one-phone words ("a", "I"). A second parallel
feature `stress` (`STRESS`: none / unstressed / secondary / primary) gives vowels their lexical
stress as espeak-ng reads the sentence in context (function words unstressed): the CMU phones
carry no stress, and stress is the main cue for F0 and duration after the phone itself.

Pronunciations: the first CMU-dictionary variant ("the" -> DH AH). The aligner may pick another
variant ("the(2)" -> DH IY); training uses the aligned phones, so the model sees both. Words not
in the dictionary are read by espeak-ng (the same backend as voicelab/text/english.py) and its
IPA is mapped to ARPAbet (`ipa_to_arpabet`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field

from voicelab.errors import VoicelabError
from voicelab.text import numbers_en as num

SYMBOLS_VERSION = 2  # 2: + the per-phone STRESS feature

PAD = "_"
SIL = "SIL"  # leading / trailing silence
SP = "SP"  # a pause between words
PAUSES = (SIL, SP)
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
SYMBOLS: tuple[str, ...] = (PAD, SIL, SP) + ARPABET
PAD_ID = 0
SIL_ID = 1
SP_ID = 2
NUM_SYMBOLS = len(SYMBOLS)
SYMBOL_TO_ID = {s: i for i, s in enumerate(SYMBOLS)}

# per-phone position in its word (pauses and pad: NONE)
WORD_POS = ("none", "begin", "middle", "end", "single")
POS_NONE, POS_BEGIN, POS_MIDDLE, POS_END, POS_SINGLE = range(5)
NUM_WORD_POS = len(WORD_POS)

# per-phone lexical stress, in context (espeak-ng's: function words come out unstressed)
STRESS = ("none", "unstressed", "secondary", "primary")  # none = consonant or pause
ST_NONE, ST_UNSTRESSED, ST_SECONDARY, ST_PRIMARY = range(4)
NUM_STRESS = len(STRESS)
VOWELS = frozenset(
    ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
)


def symbols_hash() -> str:
    """A short hash of the symbol table, word-position and stress values (pinned in the tests)."""
    text = "\n".join(SYMBOLS) + "\n#\n" + "\n".join(WORD_POS) + "\n#\n" + "\n".join(STRESS)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def to_ids(phones: list[str]) -> list[int]:
    """ARPAbet symbols -> ids (KeyError names an unknown symbol)."""
    return [SYMBOL_TO_ID[p] for p in phones]


def from_ids(ids: list[int]) -> list[str]:
    return [SYMBOLS[i] for i in ids]


def word_positions(n_phones: int) -> list[int]:
    """Per-phone position values for one word of `n_phones` phones."""
    if n_phones == 1:
        return [POS_SINGLE]
    return [POS_BEGIN] + [POS_MIDDLE] * (n_phones - 2) + [POS_END]


# --------------------------------------------------------------------------------------------
# The CMU dictionary shipped with pocketsphinx
# --------------------------------------------------------------------------------------------


def model_dir() -> str:
    """pocketsphinx's en-us model folder (acoustic model + dictionary) inside its wheel."""
    try:
        from pocketsphinx import get_model_path
    except ImportError as e:  # pragma: no cover - in requirements.txt
        raise VoicelabError(
            f"the English aligner needs pocketsphinx ({e}): pip install -r requirements.txt"
        ) from None
    return os.path.join(get_model_path(), "en-us")


def dict_path() -> str:
    return os.path.join(model_dir(), "cmudict-en-us.dict")


class Lexicon:
    """The CMU dictionary as sorted lines, looked up by bisection.

    Loading is one read + sort (~30 ms) instead of parsing 135k entries into a dict (~0.4 s on a
    free core, seconds on a busy one): the first sentence a person synthesises does not wait.
    """

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8", errors="replace") as f:
            self._lines = sorted(
                ln for ln in f.read().split("\n") if ln and not ln.startswith(";;;")
            )

    def _scan(self, prefix: str) -> list[str]:
        lines = self._lines
        i = bisect.bisect_left(lines, prefix)
        out = []
        while i < len(lines) and lines[i].startswith(prefix):
            out.append(lines[i])
            i += 1
        return out

    def get(self, word: str) -> list[tuple[str, ...]]:
        """word -> its pronunciations in dictionary order (the main one first); [] if unknown."""
        main = self._scan(word + " ")
        variants = sorted(
            self._scan(word + "("), key=lambda ln: int(ln[len(word) + 1 : ln.index(")")])
        )
        return [tuple(ln.partition(" ")[2].split()) for ln in main + variants]

    def __contains__(self, word: str) -> bool:
        return bool(self._scan(word + " "))


@functools.lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The one loaded copy of the dictionary (per process)."""
    return Lexicon(dict_path())


@functools.lru_cache(maxsize=1)
def cmudict() -> dict[str, list[tuple[str, ...]]]:
    """The whole dictionary as word -> pronunciations (main first); slow to build (tests, tools)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    with open(dict_path(), encoding="utf-8", errors="replace") as f:
        for line in f:
            word, _, pron = line.partition(" ")
            if not pron or word.startswith(";;;"):
                continue
            if word.endswith(")"):  # "the(2)": a variant
                word = word[: word.rfind("(")]
            out.setdefault(word, []).append(tuple(pron.split()))
    return out


# --------------------------------------------------------------------------------------------
# espeak-ng IPA -> ARPAbet (for words the dictionary lacks)
# --------------------------------------------------------------------------------------------

_IPA = {
    # vowels and diphthongs (espeak en-us)
    "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "a": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɔː": "AO", "ɔ": "AO", "oː": "AO", "aʊ": "AW", "aɪ": "AY", "ɛ": "EH", "e": "EH",
    "ɚ": "ER", "ɜː": "ER", "ɜ": "ER", "ɝ": "ER", "eɪ": "EY", "ɪ": "IH", "ᵻ": "IH", "iː": "IY",
    "i": "IY", "oʊ": "OW", "o": "OW", "əʊ": "OW", "ɔɪ": "OY", "ʊ": "UH", "uː": "UW", "u": "UW",
    "ɪɹ": "IH R", "ɛɹ": "EH R", "ʊɹ": "UH R", "ɑːɹ": "AA R", "ɔːɹ": "AO R", "oːɹ": "AO R",
    "aɪɚ": "AY ER", "aɪə": "AY ER", "aʊɚ": "AW ER", "iə": "IY AH", "eə": "EH R",
    "əl": "AH L", "n̩": "AH N", "m̩": "AH M", "l̩": "AH L",
    # consonants
    "b": "B", "tʃ": "CH", "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH",
    "dʒ": "JH", "k": "K", "x": "K", "l": "L", "ɬ": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P",
    "ɹ": "R", "r": "R", "ɾ": "T", "ʔ": "T", "s": "S", "ʃ": "SH", "t": "T", "θ": "TH", "v": "V",
    "w": "W", "j": "Y", "z": "Z", "ʒ": "ZH", "ç": "HH",
}  # fmt: skip
_IPA_MAX = max(len(k) for k in _IPA)
_IPA_IGNORE = set("ˈˌ-.ˑ̃") | {"\u0303"}  # stress, syllable and nasalisation marks


def ipa_to_arpabet(ipa: str) -> tuple[list[str], set[str]]:
    """One espeak word ('h|ə|l|ˈoʊ', separators optional) -> (ARPAbet phones, unknown chars).

    Longest match first, so 'aɪɚ' -> AY ER and 'ɔːɹ' -> AO R; stress marks are dropped (the CMU
    dictionary in pocketsphinx has no stress either). Unknown characters are dropped and returned.
    """
    out: list[str] = []
    unknown: set[str] = set()
    for chunk in ipa.split("|"):
        chunk = "".join(c for c in chunk if c not in _IPA_IGNORE)
        i = 0
        while i < len(chunk):
            for size in range(min(_IPA_MAX, len(chunk) - i), 0, -1):
                piece = chunk[i : i + size]
                if piece in _IPA:
                    out.extend(_IPA[piece].split())
                    i += size
                    break
            else:
                if chunk[i] != "ː":  # a length mark after an unmapped vowel
                    unknown.add(chunk[i])
                i += 1
    return out, unknown


_oov_lock = threading.Lock()
_oov_cache: dict[str, tuple[str, ...]] = {}


def _espeak_prons(words: list[str]) -> dict[str, tuple[str, ...]]:
    """OOV words -> ARPAbet via espeak-ng (one espeak call for all; cached per process)."""
    from voicelab.text.english import espeak_words

    with _oov_lock:
        todo = [w for w in dict.fromkeys(words) if w not in _oov_cache]
    if todo:
        lines = espeak_words(todo)
        with _oov_lock:
            for w, ipa_words in zip(todo, lines, strict=True):
                phones: list[str] = []
                for ipa in ipa_words:  # espeak may split a word ("abc" -> three letters)
                    phones.extend(ipa_to_arpabet(ipa)[0])
                _oov_cache[w] = tuple(phones)
    return {w: _oov_cache[w] for w in words}


def _ipa_stress(ipa: str) -> tuple[int, ...]:
    """One espeak word ('t|ə|m|ˈeɪ|ɾ|oʊ|z') -> the stress of each vowel it maps to (1, 3, 1)."""
    out: list[int] = []
    for chunk in ipa.split("|"):
        level = ST_PRIMARY if "ˈ" in chunk else ST_SECONDARY if "ˌ" in chunk else ST_UNSTRESSED
        for k, _ in enumerate(v for v in ipa_to_arpabet(chunk)[0] if v in VOWELS):
            out.append(level if k == 0 else ST_UNSTRESSED)  # 'aɪɚ' -> AY ER: the mark is AY's
    return tuple(out)


def _stress_patterns(keys: list[str]) -> list[tuple[int, ...]]:
    """Per word, the stress of its vowels as espeak-ng reads the words *in context* (so "the",
    "a", "of" come out unstressed). One espeak call; per-word calls when espeak splits words."""
    from voicelab.text.english import espeak_words

    lines = espeak_words([" ".join(keys)])
    ipa_words = lines[0] if lines else []
    if len(ipa_words) != len(keys):  # espeak split or joined a word: read them one by one
        ipa_words = ["|".join(w) for w in espeak_words(keys)]
    return [_ipa_stress(w) for w in ipa_words]


def phone_stress(pron: tuple[str, ...] | list[str], pattern: tuple[int, ...]) -> list[int]:
    """Per-phone STRESS of one word's phones given its vowels' stress pattern.

    When the dictionary's vowel count differs from espeak's (a different pronunciation), the
    pattern is stretched over the vowels by position; consonants are ST_NONE.
    """
    vowels = [i for i, p in enumerate(pron) if p in VOWELS]
    out = [ST_NONE] * len(pron)
    for k, i in enumerate(vowels):
        if not pattern:
            out[i] = ST_UNSTRESSED
        elif len(pattern) == len(vowels):
            out[i] = pattern[k]
        else:
            out[i] = pattern[min(len(pattern) - 1, k * len(pattern) // len(vowels))]
    return out


# --------------------------------------------------------------------------------------------
# Text -> phones
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordSpan:
    """One spoken word: `key` is its dictionary spelling, phones[start:end] are its phones."""

    key: str
    start: int
    end: int
    oov: bool = False  # True: the dictionary lacks it; `pron` came from espeak-ng
    stress: tuple[int, ...] = ()  # per vowel, espeak-ng's stress in context (STRESS values)


@dataclass
class PhoneSequence:
    """The model input for one utterance.

    phones [P] ARPAbet / SIL / SP, ids [P], word_pos [P] (WORD_POS index), stress [P] (STRESS
    index: vowels get their word's stress in context, the rest none), words [W] spans into
    phones (pauses belong to no word); prons maps each OOV word key to the pronunciation used
    (the aligner needs it); normalized is the text after number / abbreviation expansion;
    warnings lists what was dropped (never raises for it).
    """

    phones: list[str]
    ids: list[int]
    word_pos: list[int]
    words: list[WordSpan]
    normalized: str
    stress: list[int] = field(default_factory=list)
    prons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.phones)

    def align_text(self) -> str:
        """The words as the aligner's dictionary spells them, space-separated."""
        return " ".join(w.key for w in self.words)


# a pause between words: any sentence-internal punctuation (sentence ends inside the text too)
# (quotes are not pauses: readers rarely pause at them)
_PAUSE_PUNCT = set(",;:.!?()[]{}—–…/") | {"--"}
_TOKEN = re.compile(r"[a-z]+(?:['’][a-z]+)*(?:-[a-z]+(?:['’][a-z]+)*)*'?|--|[^\sa-z]")


def _fold(text: str) -> str:
    """Lower-case, accents removed ('café' -> 'cafe'), curly apostrophes straightened."""
    t = unicodedata.normalize("NFKD", text.lower())
    t = "".join(c for c in t if not unicodedata.combining(c))
    return t.replace("’", "'").replace("‘", "'")


def _split_word(tok: str) -> list[str]:
    """A token -> dictionary keys: split at hyphens, apostrophes trimmed at the ends.

    Always split ("twenty-one" -> twenty one, although the dictionary has "twenty-one"): the same
    words then get the same phones and word positions however they were hyphenated.
    """
    return [p.strip("'") for p in tok.split("-") if p.strip("'")]


def text_to_phones(text: str) -> PhoneSequence:
    """English text -> PhoneSequence: SIL, words' phones (SP at punctuation), SIL.

    Numbers, currency, dates, abbreviations are spelled out by voicelab.text.english first.
    Raises VoicelabError when nothing speakable is left.
    """
    from voicelab.text.english import normalize_english

    if not isinstance(text, str):
        raise VoicelabError(f"expected text as a string, got {type(text).__name__}")
    normalized = normalize_english(text)
    # digits the normaliser left inside words ("mp3", "4x4") are read one by one
    folded = re.sub(r"\d+", lambda m: f" {num.digits(m.group())} ", _fold(normalized))
    lex = lexicon()
    warnings: list[str] = []
    items: list[str | None] = []  # word keys, None = a pause
    dropped: set[str] = set()
    for tok in _TOKEN.findall(folded):
        if "a" <= tok[0] <= "z":
            items.extend(_split_word(tok))
        elif tok in _PAUSE_PUNCT:
            items.append(None)
        elif tok not in "'-_*~`^|\\<>\"«»“”":
            dropped.add(tok)
    if dropped:
        warnings.append(
            "dropped characters that are not English letters: " + " ".join(sorted(dropped))
        )
    main = {w: lex.get(w) for w in dict.fromkeys(items) if w is not None}  # key -> prons
    oov = [w for w in items if w is not None and not main[w]]
    prons = _espeak_prons(oov) if oov else {}
    keys = [w for w in items if w is not None]
    patterns = _stress_patterns(keys) if keys else []
    for w in dict.fromkeys(oov):
        if not prons[w]:
            warnings.append(f"dropped {w!r}: neither the dictionary nor espeak-ng could read it")

    phones: list[str] = [SIL]
    pos: list[int] = [POS_NONE]
    words: list[WordSpan] = []
    stress: list[int] = [ST_NONE]
    pending_pause = False
    wi = -1
    for item in items:
        if item is not None:
            wi += 1
        if item is None:
            pending_pause = bool(words)  # no pause before the first word
            continue
        pron = main[item][0] if main[item] else prons[item]
        if not pron:
            continue
        if pending_pause:
            phones.append(SP)
            pos.append(POS_NONE)
            stress.append(ST_NONE)
            pending_pause = False
        start = len(phones)
        phones.extend(pron)
        pos.extend(word_positions(len(pron)))
        stress.extend(phone_stress(pron, patterns[wi]))
        words.append(WordSpan(item, start, len(phones), not main[item], patterns[wi]))
    if not words:
        raise VoicelabError(
            f"the text has no English words to speak: {text!r}; type the sentence in English words"
        )
    phones.append(SIL)
    pos.append(POS_NONE)
    stress.append(ST_NONE)
    return PhoneSequence(
        stress=stress,
        phones=phones,
        ids=to_ids(phones),
        word_pos=pos,
        words=words,
        normalized=normalized,
        prons={w: prons[w] for w in dict.fromkeys(oov) if prons[w]},
        warnings=warnings,
    )
