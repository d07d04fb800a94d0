"""Read and write GPT-SoVITS annotation lists: one utterance per line, `path|speaker|lang|text`.

Paths are written relative to the list's folder when the audio lives below it (so a voice folder
can be moved), and read back as absolute paths. Language codes are lower-cased ("ZH" -> "zh").

A file format with no knowledge of audio, text or training, so it sits on the ground floor beside
config and workspace: audio/ (slicing, features), data/ (dataset, transcripts), corpus/, eval/
and the UI all read and write it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from voicelab.errors import VoicelabError
from voicelab.fileio import write_text_atomic

LANG_ALIASES = {"en": "en", "zh": "zh", "all_zh": "zh", "cmn": "zh", "auto": "auto", "": "auto"}


@dataclass(frozen=True)
class Entry:
    path: Path  # absolute path of the audio file
    speaker: str
    lang: str  # "en", "zh" or "auto"
    text: str

    def with_text(self, text: str) -> Entry:
        return replace(self, text=text)


def _norm_lang(lang: str, where: str) -> str:
    key = lang.strip().lower()
    if key not in LANG_ALIASES:
        raise VoicelabError(f"{where}: language {lang!r} is not supported (use en, zh or auto)")
    return LANG_ALIASES[key]


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, an optional BOM dropped), or a VoicelabError saying what it is instead.

    A WAV or a Latin-1 list given by mistake would otherwise surface as a UnicodeDecodeError
    traceback, or as NUL-filled "lines" that each fail the 4-field check.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VoicelabError(f"{path}: cannot be read ({e.strerror}): check its permissions") from None
    if b"\0" in data[:8192]:
        raise VoicelabError(
            f"{path} is a binary file, not an annotation list: give a UTF-8 text .list file "
            f"with one 'path|speaker|lang|text' line per clip"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise VoicelabError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}): save the list as UTF-8 "
            f"(in a text editor: save as, encoding UTF-8) and try again"
        ) from None


def read_list(path: Path | str, audio_root: Path | None = None) -> list[Entry]:
    """Parse a .list file. Relative audio paths resolve against `audio_root` (default: its folder).

    Raises VoicelabError naming the line for a malformed line, and naming the file for a file
    that is missing, binary or not UTF-8. Blank lines and lines starting with '#' are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise VoicelabError(f"{path} does not exist: give the path of a .list annotation file")
    root = Path(audio_root) if audio_root else path.parent
    entries = []
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("|", 3)
        if len(parts) != 4:
            raise VoicelabError(
                f"{path}:{i}: expected 'path|speaker|lang|text' (4 fields separated by '|'), "
                f"got {line[:80]!r}"
            )
        audio, speaker, lang, text = (p.strip() for p in parts)
        if not audio:
            raise VoicelabError(f"{path}:{i}: the audio path is empty")
        p = Path(audio)
        if not p.is_absolute():
            p = root / p
        entries.append(Entry(p.resolve(), speaker, _norm_lang(lang, f"{path}:{i}"), text))
    return entries


def format_entry(e: Entry, base: Path | None = None) -> str:
    p = Path(e.path)
    if base is not None:
        try:
            p = p.resolve().relative_to(Path(base).resolve())
        except ValueError:
            pass
    text = " ".join(e.text.replace("|", " ").split())  # no '|' or newlines inside a field
    return f"{p.as_posix()}|{e.speaker}|{e.lang}|{text}"


def write_list(path: Path | str, entries: list[Entry]) -> Path:
    """Write atomically; paths below the list's folder are stored relative to it."""
    path = Path(path)
    lines = [format_entry(e, base=path.parent) for e in entries]
    return write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))
