"""Record & Clean tab, the takes: the prompt sentences, saving a recorded take, uploads, and
removing recordings.

Takes are saved in raw/ exactly as recorded (never modified afterwards); raw/takes.list holds
each take's prompt text in GPT-SoVITS format (`path|voice|lang|text`), so the Slice tab can use
the sentence the person read as the transcript. Redoing a prompt saves a new take and points
takes.list at it; the earlier file stays in raw/ untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.ui.common import AUDIO_EXTENSIONS, check_audio, copy_into
from voicelab.workspace import Voice

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PROMPTS = REPO_ROOT / "assets" / "prompts" / "en.txt"
TAKES_LIST = "takes.list"
TARGET_TAKES = 40  # about two to three minutes of speech: plenty for few-shot cloning


def load_prompts(path: Path = PROMPTS) -> list[str]:
    """Prompt sentences, one a line ('#' comments and blank lines skipped)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")][:TARGET_TAKES]


def prompt_view(index: int, prompts: list[str]) -> tuple[str, str]:
    """(progress like '12 / 40', the sentence to read) for prompt number `index` (0-based)."""
    if not prompts:
        return "no prompts", (
            f"No prompt list at {PROMPTS}: read any text you like (about a minute in total), "
            "and type what you said in the Slice tab."
        )
    if index >= len(prompts):
        return f"{len(prompts)} / {len(prompts)}", "All prompts done: press Clean below."
    return f"{index + 1} / {len(prompts)}", prompts[index]


def move(index: int, delta: int, prompts: list[str]) -> tuple[int, str, str, None, str]:
    """Skip (+1) or Redo previous (-1): (new index, progress, sentence, cleared take, feedback)."""
    i = max(0, min(len(prompts), index + delta))
    if delta < 0 and i == index:
        feedback = "This is the first sentence: there is no previous one to redo."
    elif delta < 0:
        feedback = (f"Redo sentence {i + 1}: record it again and press Save take and next. The "
                    "new take replaces the old one for slicing; the old file stays in raw/.")
    elif i == index:
        feedback = "All sentences are done: press Clean below."
    else:
        feedback = f"Skipped sentence {index + 1}."
    return i, *prompt_view(i, prompts), None, feedback


def read_takes(voice: Voice) -> list[Entry]:
    path = voice.raw / TAKES_LIST
    return read_list(path) if path.is_file() else []


def save_take(voice: Voice, recording: str | None, index: int, prompts: list[str]) -> Path:
    """Save a microphone take for prompt `index` into raw/ and record its text in takes.list."""
    if not recording:
        raise VoicelabError("nothing recorded yet: press the microphone button, read, then stop")
    src = check_audio(recording)
    if not prompts or index >= len(prompts):
        text = ""
        stem = "take"
    else:
        text = prompts[index]
        stem = f"take-{index + 1:03d}"
    dest = copy_into(voice.raw, src, stem)
    takes = [e for e in read_takes(voice) if not (text and e.text == text)]  # redo replaces
    takes.append(Entry(dest.resolve(), voice.name, "en", text))
    write_list(voice.raw / TAKES_LIST, takes)
    return dest


def next_prompt(voice: Voice, prompts: list[str]) -> int:
    """Where to continue: after the furthest prompt this voice already has a take for."""
    done = {e.text for e in read_takes(voice)}
    return max((i + 1 for i, p in enumerate(prompts) if p in done), default=0)


def add_uploads(voice: Voice, files: list[str] | None) -> list[Path]:
    """Copy uploaded audio files into raw/ (each decoded and checked first: all or none)."""
    if not files:
        raise VoicelabError("choose one or more audio files to upload first")
    checked = [check_audio(f) for f in files]
    from voicelab.audio import pipeline  # torch: imported when used, not at app start
    # store_raw keeps one copy per content and gives every file its own stem (clean/<stem>.wav)
    return [pipeline.store_raw(voice, p) for p in checked]


REMOVED = "removed"  # <voice>/removed/: where a recording removed in the UI goes (recoverable)


def remove_recordings(voice: Voice, names: list[str]) -> list[str]:
    """Move raw/<name> (and its cleaned file and report) to <voice>/removed/, on request only.

    raw/ is never changed otherwise; a removed file can be moved back by hand. Takes lose their
    line in takes.list. Returns the names moved.
    """
    if not names:
        raise VoicelabError("pick the recordings to remove first")
    files = []
    for n in names:
        p = voice.raw / Path(n).name  # names come from our own list: no folders
        if not p.is_file() or p.suffix.lower() not in AUDIO_EXTENSIONS:
            raise VoicelabError(f"{n} is not a recording in {voice.raw}: refresh the list")
        files.append(p)
    bin_ = voice.root / REMOVED
    bin_.mkdir(exist_ok=True)
    stamp_ = time.strftime("%Y%m%d-%H%M%S")
    for p in files:
        derived = [voice.clean / f"{p.stem}.wav", voice.clean / f"{p.stem}.report.json"]
        for f in [p, *derived]:
            if not f.is_file():
                continue
            # a new name per removal: an earlier removed file is never replaced
            dest, n = bin_ / f"{stamp_}-{f.parent.name}-{f.name}", 2
            while dest.exists():
                dest, n = bin_ / f"{stamp_}-{n}-{f.parent.name}-{f.name}", n + 1
            os.replace(f, dest)
    gone = {p.resolve() for p in files}
    takes = read_takes(voice)
    if any(e.path.resolve() in gone for e in takes):
        write_list(voice.raw / TAKES_LIST, [e for e in takes if e.path.resolve() not in gone])
    return [p.name for p in files]
