"""The transcripts of a voice's slices: proofreading table, ASR fill-in, .list import/export.

slices/dataset.list stays a pure GPT-SoVITS list (`path|speaker|lang|text`). Where each text came
from, and whether a person has checked it, lives beside it in slices/transcripts.json:

    {"version": 1,
     "files": {"slice_0003.wav": {"source": "asr", "verified": false, "text": "..."}}}

Sources: "typed" (saved from the table), "imported" (`--from-list`), "asr" (pocketsphinx,
unverified until a person saves it), "list" (the text was already in dataset.list, e.g. from a
prompt the person read, or was edited there by hand). A text that differs from the one recorded
in the state file was edited outside voicelab and counts as the person's own ("list", verified).

Rules: ASR fills only EMPTY English texts; nothing a person typed or imported is overwritten
unless they ask (`overwrite=True`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voicelab.errors import VoicelabError
from voicelab.fileio import write_json_atomic
from voicelab.listfile import Entry, read_list, write_list
from voicelab.workspace import Voice

log = logging.getLogger(__name__)

STATE_NAME = "transcripts.json"
STATE_VERSION = 1
SOURCES = ("typed", "imported", "asr", "list")
_lock = threading.Lock()  # the UI may save while a transcription job runs in another thread
# The longest text one slice may carry. A slice is at most slice.max_length_s (12 s by default)
# of speech, about 200 characters read aloud; 1000 leaves room for slow slices and long words
# while refusing what is clearly not one utterance (a pasted chapter, a 1 MB line, a list whose
# lines were joined). The model's own limit (phonemes + tokens <= model.gpt_max_positions) is
# checked where the config is known: when the training data is loaded (voicelab/data/dataset.py).
MAX_TEXT_CHARS = 1000

Progress = Callable[..., object]


@dataclass(frozen=True)
class TranscriptRow:
    """One slice in the proofreading table."""

    file: str  # path relative to slices/ ("slice_0003.wav"): the key the UI sends back
    path: Path  # absolute path of the audio
    lang: str  # "en", "zh" or "auto"
    text: str
    verified: bool  # a person typed, imported or saved it
    source: str  # one of SOURCES, or "" for an empty text


@dataclass
class TranscribeSummary:
    """What `transcribe_voice` did, in counts a person can read."""

    filled: int = 0  # empty English texts now filled by ASR (unverified)
    no_speech: int = 0  # ASR heard nothing
    kept: int = 0  # slices that already had a text (never touched)
    skipped_lang: int = 0  # empty texts of non-English slices (pocketsphinx is English only)
    failed: list[str] = field(default_factory=list)  # "file: reason"

    def message(self) -> str:
        parts = [f"filled {self.filled} empty English text(s) with speech recognition"]
        if self.filled:
            parts.append("proofread them: they are marked unverified")
        if self.kept:
            parts.append(f"kept {self.kept} existing text(s)")
        if self.no_speech:
            parts.append(f"{self.no_speech} slice(s) had no recognisable speech")
        if self.skipped_lang:
            parts.append(f"{self.skipped_lang} empty non-English slice(s) need typing")
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({'; '.join(self.failed[:3])})")
        return "; ".join(parts)


@dataclass
class ImportSummary:
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # verified texts not replaced (overwrite=False)
    unmatched: list[str] = field(default_factory=list)  # list entries with no such slice

    def message(self) -> str:
        msg = f"imported {self.updated} text(s), {self.unchanged} already the same"
        if self.kept:
            msg += f"; kept {self.kept} text(s) you had typed (use --overwrite to replace them)"
        if self.unmatched:
            msg += f"; {len(self.unmatched)} line(s) match no slice (e.g. {self.unmatched[0]})"
        return msg


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def state_path(voice: Voice) -> Path:
    return voice.slices / STATE_NAME


def _key(voice: Voice, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(voice.slices.resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()  # audio outside slices/: key by absolute path


def _read_entries(voice: Voice) -> list[Entry]:
    if not voice.dataset_list.is_file():
        raise VoicelabError(
            f"voice {voice.name!r} has no slices yet ({voice.dataset_list} is missing): run "
            f"`python -m voicelab slice --voice {voice.name}` first"
        )
    return read_list(voice.dataset_list)


def _read_state(voice: Voice) -> dict[str, dict]:
    p = state_path(voice)
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        files = data.get("files", {})
        if not isinstance(files, dict):
            raise ValueError("'files' is not an object")
        return {str(k): v for k, v in files.items() if isinstance(v, dict)}
    except (ValueError, OSError) as e:
        # the list itself is intact: losing the flags only makes texts count as verified
        log.warning("%s is unreadable (%s): treating every text as the person's own", p, e)
        return {}


def _write(voice: Voice, entries: list[Entry], state: dict[str, dict]) -> None:
    """Write the list first, then the state (a crash in between leaves texts 'edited by hand')."""
    keys = {_key(voice, e.path) for e in entries}
    state = {k: v for k, v in state.items() if k in keys}
    write_list(voice.dataset_list, entries)
    write_json_atomic(state_path(voice), {"version": STATE_VERSION, "files": state})


def _row(voice: Voice, e: Entry, state: dict[str, dict]) -> TranscriptRow:
    key = _key(voice, e.path)
    st = state.get(key)
    text = e.text.strip()
    if not text:
        return TranscriptRow(key, e.path, e.lang, "", False, "")
    if st is None or st.get("text") != text:  # no record, or edited outside voicelab
        return TranscriptRow(key, e.path, e.lang, text, True, "list")
    source = st.get("source") if st.get("source") in SOURCES else "list"
    return TranscriptRow(key, e.path, e.lang, text, bool(st.get("verified", True)), source)


def check_text_length(text: str, where: str) -> None:
    """VoicelabError naming `where` (a slice or list line) for a text longer than MAX_TEXT_CHARS."""
    if len(text) > MAX_TEXT_CHARS:
        raise VoicelabError(
            f"{where}: the text is {len(text):,} characters long; one slice's text can be at most "
            f"{MAX_TEXT_CHARS:,} (a slice is a few seconds of speech). Check that the text belongs "
            "to this slice, or cut the audio into shorter slices"
        )


def load_table(voice: Voice) -> list[TranscriptRow]:
    """Every slice of dataset.list with its text and whether a person has checked it."""
    with _lock:
        entries = _read_entries(voice)
        state = _read_state(voice)
    return [_row(voice, e, state) for e in entries]


def save_texts(voice: Voice, texts: dict[str, str], lang: dict[str, str] | None = None) -> int:
    """Save texts a person typed ({file: text}, file as in TranscriptRow.file); marks them verified.

    An empty string clears a text. Returns how many rows changed. Raises VoicelabError for a
    file that is not a slice of this voice.
    """
    lang = lang or {}
    with _lock:
        entries = _read_entries(voice)
        state = _read_state(voice)
        by_key = {_key(voice, e.path): i for i, e in enumerate(entries)}
        unknown = [f for f in texts if f not in by_key]
        if unknown:
            raise VoicelabError(
                f"{unknown[0]!r} is not a slice of voice {voice.name!r}: reload the table "
                "(the slices may have been redone)"
            )
        for f, text in texts.items():  # all or nothing: check every text before changing any
            check_text_length(" ".join(str(text).split()), f)
        changed = 0
        for f, text in texts.items():
            text = " ".join(str(text).replace("|", " ").split())
            i = by_key[f]
            old = _row(voice, entries[i], state)
            new_lang = lang.get(f, entries[i].lang)
            if text == old.text and (old.verified or not text) and new_lang == entries[i].lang:
                continue  # unchanged (a whole table is often sent back): not a change
            entries[i] = Entry(entries[i].path, entries[i].speaker, new_lang, text)
            if text:
                state[f] = {"source": "typed", "verified": True, "text": text}
            else:
                state.pop(f, None)
            changed += 1
        if changed:
            _write(voice, entries, state)
    return changed


def import_list(voice: Voice, list_path: Path | str, overwrite: bool = False) -> ImportSummary:
    """Take texts (and languages) from a GPT-SoVITS .list for slices with the same file name.

    Empty and ASR (unverified) texts are replaced; texts a person typed or imported are kept
    unless `overwrite`. Matching is by file name, so a list written on another machine works.
    """
    if Path(list_path).is_dir():
        raise VoicelabError(f"{list_path} is a folder: give the .list file inside it "
                            "(lines of path|speaker|lang|text)")
    source = read_list(list_path)
    for s in source:  # before anything is imported: a bad list changes nothing
        check_text_length(" ".join(s.text.split()), f"{Path(list_path).name}, {Path(s.path).name}")
    summary = ImportSummary()
    with _lock:
        entries = _read_entries(voice)
        state = _read_state(voice)
        by_name: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            by_name.setdefault(Path(e.path).name, []).append(i)
        for s in source:
            idx = by_name.get(Path(s.path).name)
            if not idx or not s.text.strip():
                if not idx:
                    summary.unmatched.append(Path(s.path).name)
                continue
            for i in idx:
                row = _row(voice, entries[i], state)
                text = " ".join(s.text.split())
                new_lang = s.lang if s.lang != "auto" else entries[i].lang
                if row.text == text and new_lang == entries[i].lang:
                    if not row.verified:  # the list confirms the ASR text
                        state[row.file] = {"source": "imported", "verified": True, "text": text}
                        summary.updated += 1
                    else:
                        summary.unchanged += 1
                    continue
                if row.text and row.verified and not overwrite:
                    summary.kept += 1
                    continue
                entries[i] = Entry(entries[i].path, entries[i].speaker, new_lang, text)
                state[row.file] = {"source": "imported", "verified": True, "text": text}
                summary.updated += 1
        if summary.updated:
            _write(voice, entries, state)
    return summary


# files a list export must never replace, whatever --force says: a voice's own list and its
# provenance (typed texts would be lost), and anything in raw/ (originals are never modified)
_PROTECTED_NAMES = {("slices", "dataset.list"), ("slices", STATE_NAME)}


def check_export_target(voice: Voice, out: Path | str, force: bool = False) -> Path:
    """The resolved path `export_list` may write, or VoicelabError saying why not.

    Refused always: a folder, a missing parent folder, anything inside a voice's raw/, any
    voice's slices/dataset.list or slices/transcripts.json. Refused unless `force`: an existing
    file.
    """
    from voicelab.workspace import home

    given = Path(out).expanduser()
    if not given.name.strip(".") or given.is_dir():
        raise VoicelabError(f"{out} is a folder: give a file name for the list, e.g. {given / 'texts.list'}")
    path = given.resolve()  # follows a symlink: its target is what would be written
    if not path.parent.is_dir():
        raise VoicelabError(f"the folder {path.parent} does not exist: create it first, or pick another path")
    for base in {home(), voice.root.parent.resolve()}:
        if base not in path.parents:
            continue
        parts = path.relative_to(base).parts  # (voice, area, ...)
        if len(parts) >= 3 and parts[1] == "raw":
            raise VoicelabError(f"{path} is inside {parts[0]}/raw/, where the original recordings "
                                "are kept and never modified: export the list somewhere else")
        if tuple(parts[1:]) in _PROTECTED_NAMES:
            raise VoicelabError(f"{path} is voice {parts[0]!r}'s own {parts[-1]} (its texts would be "
                                "lost): export the list to another file")
    if path.exists() and not force:
        raise VoicelabError(f"{path} already exists and is not overwritten: pick another file, or "
                            "add --force to replace it")
    return path


def export_list(
    voice: Voice, out: Path | str, include_unverified: bool = True, force: bool = False
) -> tuple[Path, int]:
    """Write the voice's transcribed slices as a GPT-SoVITS .list (absolute audio paths unless
    `out` is inside slices/). Empty texts are left out. Returns (path, lines written).

    Never replaces an existing file unless `force`, and never a voice's own list or anything
    in raw/ (see `check_export_target`).
    """
    out = check_export_target(voice, out, force)
    rows = load_table(voice)
    keep = [r for r in rows if r.text and (r.verified or include_unverified)]
    entries = {(_key(voice, e.path)): e for e in _read_entries(voice)}
    write_list(out, [entries[r.file].with_text(r.text) for r in keep])
    return out, len(keep)


# --------------------------------------------------------------------------------------------
# Speech recognition
# --------------------------------------------------------------------------------------------


def _report(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def transcribe_voice(
    voice: Voice, progress: Progress | None = None, redo_unverified: bool = False
) -> TranscribeSummary:
    """Fill the empty texts of English slices with pocketsphinx; they are marked unverified.

    `redo_unverified` also re-recognises texts that ASR wrote and nobody has checked yet.
    Results are saved after every slice, so cancelling (progress raising) keeps what was done.
    `progress(done, total, message)` is called before each slice and at the end.
    """
    from voicelab.audio.io import load_audio
    from voicelab.text.asr import ASR_SAMPLE_RATE, recognize

    rows = load_table(voice)
    todo = []
    summary = TranscribeSummary()
    for r in rows:
        if r.text and not (redo_unverified and r.source == "asr" and not r.verified):
            summary.kept += 1
        elif r.lang != "en":
            summary.skipped_lang += 1
        else:
            todo.append(r)
    for n, r in enumerate(todo):
        _report(progress, n, len(todo), f"recognising {r.file}")
        try:
            audio, sr = load_audio(r.path, target_sr=ASR_SAMPLE_RATE, allow_silence=True)
            text = recognize(audio, sr)
        except VoicelabError as e:
            summary.failed.append(f"{r.file}: {e}")
            continue
        if not text:
            summary.no_speech += 1
            continue
        with _lock:  # re-read: the person may have typed this text meanwhile
            entries = _read_entries(voice)
            state = _read_state(voice)
            for i, e in enumerate(entries):
                if _key(voice, e.path) != r.file:
                    continue
                now = _row(voice, e, state)
                if now.text and not (redo_unverified and now.source == "asr" and not now.verified):
                    summary.kept += 1
                    break
                entries[i] = e.with_text(text)
                state[r.file] = {"source": "asr", "verified": False, "text": text}
                _write(voice, entries, state)
                summary.filled += 1
                break
    _report(progress, len(todo), len(todo), summary.message())
    return summary
