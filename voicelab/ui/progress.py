"""Bridge between the library's progress callbacks and Gradio's progress bar.

Library steps (prepare_files, slice_voice, extract_features, transcription) take an optional
`progress` callable. Callers in the library call it as `progress(done, total)` or
`progress(done, total, message)`; a plain fraction `progress(0.4)` is accepted too. The bridge
also raises `Cancelled` when the person pressed Cancel, which stops a long job at the next item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from voicelab.errors import VoicelabError


class Cancelled(VoicelabError):
    """The person cancelled a long job; what finished before stays saved."""


class CancelFlag:
    """Set from a Cancel button's handler, checked by the running job between items."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> str:
        self._event.set()
        return "cancelling after the current file..."

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()


def bridge(
    gr_progress: Callable[..., Any] | None, what: str, cancel: CancelFlag | None = None
) -> Callable[..., None]:
    """A `progress(done, total[, message])` callable that drives `gr_progress` and honours cancel."""

    def progress(done: float, total: float | None = None, message: str | None = None) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{what} cancelled: what finished before is saved, run it again to go on")
        if gr_progress is None:
            return
        if total:
            frac = float(done) / float(total)
            desc = f"{what}: {int(done)} / {int(total)}" + (f" ({message})" if message else "")
        else:
            frac = float(done)
            desc = f"{what}" + (f": {message}" if message else "")
        gr_progress(min(max(frac, 0.0), 1.0), desc=desc)

    return progress
