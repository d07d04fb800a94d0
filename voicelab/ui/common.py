"""Helpers shared by the tabs: voice lookup, friendly errors, upload checks, small formatting.

Handlers in the tab modules are plain functions that raise `VoicelabError` for anything a person
must fix. `friendly()` turns those into toasts that leave the outputs as they were when the handler
is wired to Gradio, so tests can call the plain functions and check the exceptions and return
values directly.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from voicelab.errors import VoicelabError, WorkspaceError
from voicelab.workspace import Voice, get_voice, home, inside

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("voicelab.ui")

# Uploads: audio only, and not larger than this. A minute of 48 kHz stereo PCM-24 is ~17 MB;
# 200 MB leaves room for long takes while stopping accidental video files.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aiff")
MAX_UPLOAD_MB = 200
LIST_EXTENSIONS = (".list", ".txt")


TOAST_S = 15  # long enough to read; not forever, so old messages do not pile up over the page


# The library's messages name CLI flags; in the studio the same advice is a button or a box.
# (pattern, replacement) applied in order by ui_advice(); patterns are loose on purpose so a
# reworded message still reads right.
_UI_ADVICE: tuple[tuple[str, str], ...] = (
    (r"re-slice anyway with `?slice --force`?", "tick 're-slice even if typed texts are lost' and "
     "press Slice again"),
    (r"`?(?:python -m voicelab )?slice --force`?", "the 're-slice even if typed texts are lost' box"),
    (r"(?:resume|continue) with `?--resume auto`?", "press Resume to continue"),
    (r"(?:add|use|with) `?--resume auto`?", "press Resume"),
    (r"`?--resume auto`?", "Resume"),
    (r"(?:choose|give|train under|under) (?:a new|another) `?--run`? (?:name|NAME)",
     "type a new run name in the Train tab"),
    (r"start a new run with `?--run NAME`?", "type a new run name in the Train tab"),
    (r",? or fine-tune from it with `?--from`? \(weights only\)", ""),
    (r"\s*\(or raise synth\.max_tokens_per_phone\)", ""),
    (r"\s*\(or raise audio\.max_input_hours\)", ""),
    (r"`?--set train\.device=cpu`?", "Device 'cpu' in the Train tab's Key settings"),
)


def ui_advice(message: str) -> str:
    """`message` with CLI advice (flags, --set keys) turned into what to do in the studio."""
    import re

    for pattern, repl in _UI_ADVICE:
        message = re.sub(pattern, repl, message)
    return message


def friendly(fn: F, n_outputs: int) -> F:
    """Wrap a handler so a VoicelabError becomes a toast and its `n_outputs` outputs keep what
    they showed (`gr.skip()`).

    Raising `gr.Error` instead would mark every output with a red "Error" pill that stays after
    the toast and hides what it showed (the proofread texts, the sentence to read, the last
    result). A refusal is a warning toast; a cancelled job (`progress.Cancelled`) an info toast:
    cancelling is not an error. Also used for events that run on their own (page load, voice
    change, timers): a failed change event could make the page fire it again.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import gradio as gr

        from voicelab.ui.progress import Cancelled

        log.debug("event %s", fn.__qualname__)
        try:
            return fn(*args, **kwargs)
        except Cancelled as e:
            gr.Info(str(e), duration=TOAST_S)
        except VoicelabError as e:
            gr.Warning(ui_advice(str(e)), duration=TOAST_S)
        skips = tuple(gr.skip() for _ in range(n_outputs))
        return skips[0] if n_outputs == 1 else skips

    return wrapper  # type: ignore[return-value]


quiet = friendly  # the name the automatic events (load, change, timer) use


def voice_or_error(name: str | None, create: bool = False) -> Voice:
    """The voice picked in the Voice tab, or a message saying to pick one first."""
    if not name:
        raise VoicelabError("pick or create a voice in the Voice tab first")
    voice = get_voice(name)
    if create:
        return voice.create()
    if not voice.exists():
        raise WorkspaceError(f"voice {name!r} does not exist any more: create it in the Voice tab")
    return voice


def in_voice(voice: Voice, path: str | Path) -> Path:
    """Resolve a path handed back by the browser, refusing anything outside the voice folder."""
    return inside(voice.root, path)


def in_workspace(path: str | Path) -> Path:
    return inside(home(), path)


def check_upload(path: str | Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> Path:
    """An uploaded temp file: the right type and not too large, else a message saying what to do."""
    p = Path(path)
    if not p.is_file():
        raise VoicelabError(f"the upload {p.name} did not arrive: try uploading it again")
    if p.suffix.lower() not in extensions:
        raise VoicelabError(
            f"{p.name}: files of type {p.suffix or '(none)'} are not accepted; "
            f"use one of {', '.join(extensions)}"
        )
    if p.stat().st_size == 0:
        raise VoicelabError(f"{p.name} is empty (0 bytes): record or export it again")
    size_mb = p.stat().st_size / 1e6
    if size_mb > MAX_UPLOAD_MB:
        raise VoicelabError(
            f"{p.name} is {size_mb:.0f} MB, above the {MAX_UPLOAD_MB} MB limit: "
            "cut it into shorter files (a few minutes of speech is plenty)"
        )
    return p


SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff")
MAX_CHANNELS = 8  # more is a broken or tampered header, not a voice recording


def check_audio(path: str | Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> Path:
    """An upload that is really usable audio, checked before anything is stored (as the CLI's
    `prepare` decodes before copying): type and size, then the header (channels, length), then
    the samples (empty, not audio, truncated, NaN, silent) through `audio.io.load_audio`."""
    import soundfile as sf

    from voicelab.audio.io import load_audio
    from voicelab.config import AudioConfig

    p = check_upload(path, extensions)
    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.LibsndfileError) as e:
        if p.suffix.lower() in SNDFILE_EXTENSIONS:  # these libsndfile must read itself
            raise VoicelabError(f"{p.name} is not a readable audio file ({str(e).split(': ')[-1]}): "
                                "record or export it again") from None
        info = None  # mp3, m4a ...: decoded through ffmpeg below
    if info is not None and info.channels > MAX_CHANNELS:
        raise VoicelabError(f"{p.name}: its header claims {info.channels} channels: the file is "
                            "damaged or not a recording; export it again as mono or stereo WAV")
    load_audio(p, max_seconds=AudioConfig().max_input_hours * 3600)
    return p


def copy_into(folder: Path, src: Path, stem: str | None = None) -> Path:
    """Copy an upload into `folder` under a safe, unused name (never overwrite what is saved)."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in (stem or src.stem))[:60]
    safe = safe.strip("_-") or "upload"
    # unique by stem, whatever the suffix: clean/<stem>.wav is named after it
    dest, n = folder / f"{safe}{src.suffix.lower()}", 2
    while any(p.stem == dest.stem for p in folder.glob(f"{dest.stem}.*")):
        dest = folder / f"{safe}-{n}{src.suffix.lower()}"
        n += 1
    shutil.copy2(src, dest)
    return dest


def fmt_duration(seconds: float | None) -> str:
    """3725 -> '1 h 02 min', 75 -> '1 min 15 s', 4.2 -> '4.2 s'."""
    if seconds is None:
        return "unknown"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def audio_duration(path: Path) -> float:
    """Seconds of audio in a file (header only, no decoding)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise VoicelabError(f"{path.name} is not a readable audio file ({e})") from e
    return info.frames / float(info.samplerate)


def speech_seconds(voice: Voice) -> float | None:
    """Seconds of speech in the voice's cleaned audio: the sum of the cleaning reports' voice
    activity measure (audio.clean's `speech_s`). Record & Clean and Slice both show this one
    measure, so the two tabs never disagree about how much speech there is. None when no
    cleaned file has a report (slices imported from a list)."""
    import json

    total, found = 0.0, False
    for wav in voice.clean.glob("*.wav") if voice.clean.is_dir() else []:
        try:
            report = json.loads(wav.with_suffix(".report.json").read_text(encoding="utf-8"))
            total += float(report["speech_s"])
            found = True
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no or damaged report: that file's speech is not counted
    return total if found else None


def stamp() -> str:
    """A name-safe timestamp for new runs and takes: 20260131-142501."""
    return time.strftime("%Y%m%d-%H%M%S")
