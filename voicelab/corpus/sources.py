"""Readers for speech corpora as their publishers lay them out on disk -> `Entry` lists.

    read_corpus("ljspeech", "/data/LJSpeech-1.1")   # [Entry(path, "ljspeech", "en", text), ...]

Layouts (the folder given is the corpus root, the one holding these):
- ljspeech:  metadata.csv (`id|text|normalised text`) + wavs/<id>.wav
- libritts:  <subset>/<speaker>/<chapter>/<utt>.wav + <utt>.normalized.txt (LibriTTS and
             LibriTTS-R alike; any depth of subsets above the speaker folders)
- vctk:      txt/<spk>/<spk>_<n>.txt + wav48_silence_trimmed/<spk>/<spk>_<n>_mic1.flac (0.92)
             or wav48/<spk>/<spk>_<n>.wav (0.80)
- aishell3:  {train,test}/content.txt (`<utt>.wav<TAB>字 pin1 字 pin2 ...`) + {train,test}/wav/<spk>/<utt>.wav
- asterisk:  the Asterisk English prompts as Debian installs them: <root>/*.g722 (+ digits/,
             letters/ ...; from asterisk-core-sounds-en-g722, or its -wav / -gsm siblings) with
             the transcripts of asterisk-core-sounds-en (core-sounds-en.txt[.gz], looked for in
             the root, next to it, and in /usr/share/doc/asterisk-core-sounds-en/). One speaker
             (Allison Smith), 16 kHz; prompts that are only a sound ("[beep]") are left out.
- list:      a GPT-SoVITS .list (path|speaker|lang|text)

Speaker names get the corpus as a prefix (libritts_19, vctk_p225) so that corpora never collide.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable
from pathlib import Path

from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list

CORPORA = ("ljspeech", "libritts", "vctk", "aishell3", "asterisk")
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds/en")
ASTERISK_DOC = Path("/usr/share/doc/asterisk-core-sounds-en")
ASTERISK_TEXT = ("core-sounds-en.txt", "core-sounds-en.txt.gz")
ASTERISK_AUDIO = (".wav", ".g722", ".gsm", ".ulaw", ".alaw")  # best first
ASTERISK_SPEAKER = "asterisk_allison"


def _need(root: Path, what: str, hint: str) -> None:
    if not root.is_dir():
        raise VoicelabError(f"{what}: {root} is not a folder: give the corpus root ({hint})")


def read_ljspeech(root: Path) -> list[Entry]:
    _need(root, "LJSpeech", "the folder with metadata.csv and wavs/")
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise VoicelabError(f"LJSpeech: {meta} not found: give the LJSpeech-1.1 folder "
                            "(metadata.csv + wavs/)")  # fmt: skip
    out = []
    with meta.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE):
            if len(row) < 2:
                continue
            text = (row[2] if len(row) > 2 and row[2].strip() else row[1]).strip()
            wav = root / "wavs" / f"{row[0]}.wav"
            if wav.is_file() and text:
                out.append(Entry(wav.resolve(), "ljspeech", "en", text))
    return out


def read_libritts(root: Path) -> list[Entry]:
    _need(root, "LibriTTS", "the folder holding train-clean-100/ ... or the speaker folders")
    out = []
    for txt in sorted(root.rglob("*.normalized.txt")):
        wav = txt.with_name(txt.name[: -len(".normalized.txt")] + ".wav")
        if not wav.is_file():
            continue
        speaker = txt.parent.parent.name  # <speaker>/<chapter>/<utt>
        text = " ".join(txt.read_text(encoding="utf-8").split())
        if text:
            out.append(Entry(wav.resolve(), f"libritts_{speaker}", "en", text))
    if not out and not any(root.rglob("*.wav")):
        raise VoicelabError(f"LibriTTS: no <speaker>/<chapter>/*.wav + *.normalized.txt under {root}")
    return out


def read_vctk(root: Path) -> list[Entry]:
    _need(root, "VCTK", "the folder with txt/ and wav48_silence_trimmed/ or wav48/")
    txt_root = root / "txt"
    if not txt_root.is_dir():
        raise VoicelabError(f"VCTK: {txt_root} not found: give the VCTK-Corpus folder (txt/ + wav48*/)")
    out = []
    for txt in sorted(txt_root.glob("*/*.txt")):
        spk, stem = txt.parent.name, txt.stem
        candidates = [root / "wav48_silence_trimmed" / spk / f"{stem}_mic1.flac",
                      root / "wav48_silence_trimmed" / spk / f"{stem}_mic2.flac",
                      root / "wav48" / spk / f"{stem}.wav"]  # fmt: skip
        wav = next((c for c in candidates if c.is_file()), None)
        text = " ".join(txt.read_text(encoding="utf-8", errors="replace").split())
        if wav is not None and text:
            out.append(Entry(wav.resolve(), f"vctk_{spk}", "en", text))
    return out


def read_aishell3(root: Path) -> list[Entry]:
    _need(root, "AISHELL-3", "the folder with train/ and test/")
    out = []
    splits = [root / s for s in ("train", "test") if (root / s / "content.txt").is_file()]
    if not splits:
        raise VoicelabError(f"AISHELL-3: no train/content.txt or test/content.txt under {root}")
    for split in splits:
        for line in (split / "content.txt").read_text(encoding="utf-8").splitlines():
            name, _, labels = line.partition("\t")
            name = name.strip()
            if not name or not labels:
                continue
            text = "".join(labels.split()[0::2])  # characters alternate with their pinyin
            spk = name[:7]  # SSB0005 0001.wav: the speaker id is the first 7 characters
            wav = split / "wav" / spk / name
            if wav.is_file() and text:
                out.append(Entry(wav.resolve(), f"aishell3_{spk}", "zh", text))
    return out


def _asterisk_transcripts(root: Path) -> Path | None:
    for d in (root, root.parent, ASTERISK_DOC):
        for name in ASTERISK_TEXT:
            if (d / name).is_file():
                return d / name
    return None


def asterisk_text(raw: str) -> str | None:
    """A prompt's transcript as spoken, or None for a prompt that is only a sound.

    "[beep tone]", "<beep ascending>", "(1 second of silence)" -> None; "at [@]" -> "at" and
    "IAX (note: does not say 2)" -> "IAX" (brackets are notes, not speech); "press * to toggle"
    -> "press star to toggle"; "#" -> "pound" (how the prompts say them).
    """
    t = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)", " ", raw)
    t = t.replace("*", " star ").replace("#", " pound ")
    t = " ".join(t.split()).strip()
    return t if re.search(r"[A-Za-z0-9]", t) else None


def read_asterisk(root: Path) -> list[Entry]:
    _need(root, "Asterisk prompts", f"the sounds folder, e.g. {ASTERISK_ROOT} "
          "(apt install asterisk-core-sounds-en-g722 asterisk-core-sounds-en)")  # fmt: skip
    txt = _asterisk_transcripts(root)
    if txt is None:
        raise VoicelabError(f"Asterisk prompts: no core-sounds-en.txt(.gz) in {root}, its parent or "
                            f"{ASTERISK_DOC}: apt install asterisk-core-sounds-en (the transcripts)")  # fmt: skip
    opener = gzip.open if txt.suffix == ".gz" else open
    with opener(txt, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, sep, raw = line.partition(":")
        text = asterisk_text(raw) if sep else None
        if not text or not re.fullmatch(r"[A-Za-z0-9_/.-]+", name.strip()):
            continue
        audio = next((root / f"{name.strip()}{ext}" for ext in ASTERISK_AUDIO
                      if (root / f"{name.strip()}{ext}").is_file()), None)  # fmt: skip
        if audio is not None:
            out.append(Entry(audio.resolve(), ASTERISK_SPEAKER, "en", text))
    return out


def read_gptsovits_list(path: Path) -> list[Entry]:
    return [e for e in read_list(path) if e.text.strip()]


READERS: dict[str, Callable[[Path], list[Entry]]] = {
    "ljspeech": read_ljspeech,
    "libritts": read_libritts,
    "vctk": read_vctk,
    "aishell3": read_aishell3,
    "asterisk": read_asterisk,
    "list": read_gptsovits_list,
}


def read_corpus(kind: str, path: Path | str) -> list[Entry]:
    """Entries of one corpus (or .list); a clear error when the layout is not what it should be."""
    if kind not in READERS:
        raise VoicelabError(f"unknown corpus kind {kind!r}: choose from {', '.join(READERS)}")
    entries = READERS[kind](Path(path).expanduser())
    if not entries:
        raise VoicelabError(f"{kind}: found no audio with a transcript in {path}: check the path")
    return entries


def limit_per_speaker(entries: list[Entry], max_per_voice: int) -> list[Entry]:
    """The first `max_per_voice` entries of each speaker (0 = all), order kept."""
    if max_per_voice <= 0:
        return entries
    seen: dict[str, int] = {}
    out = []
    for e in entries:
        if seen.get(e.speaker, 0) < max_per_voice:
            seen[e.speaker] = seen.get(e.speaker, 0) + 1
            out.append(e)
    return out
