"""Stopping a trainer cleanly: Ctrl-C, SIGTERM and pause/stop requests; one trainer per run.

    with RunLock(run_dir), StopSignals(run_dir) as stop:
        for step in ...:
            train_one_step()
            if stop.check(run_dir):            # only ever at a step boundary
                save_checkpoint(run_dir, state)
                write_status(run_dir, state="paused" if stop.reason == "pause" else "stopped")
                return stop.exit_code          # 3, 130 or 143 (voicelab.errors)

Signal handlers only set a flag, so a step (and a checkpoint being written) always completes;
the trainer saves at the next step boundary. A second Ctrl-C raises KeyboardInterrupt at once,
for a person who really wants out (the previous checkpoint is intact: saves are atomic).

RunLock is an fcntl lock on runs/<run>/trainer.lock: the kernel releases it when the process
dies in any way (SIGKILL included), so a stale lock never blocks a resume.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from voicelab.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_TERMINATED, VoicelabError
from voicelab.training import runfiles
from voicelab.workspace import RunDir

log = logging.getLogger(__name__)

REASONS = ("sigint", "sigterm", "pause", "stop")
EXIT_CODES = {
    None: EXIT_OK,
    "sigint": EXIT_INTERRUPTED,
    "sigterm": EXIT_TERMINATED,
    "pause": EXIT_PAUSED,
    "stop": EXIT_PAUSED,
}


def process_start_time() -> float:
    """Unix time this process started (Linux /proc; elsewhere, when this module was imported)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_TIME


_IMPORT_TIME = time.time()


def _request_time(run_dir: Path) -> float | None:
    try:
        data = json.loads((Path(run_dir) / runfiles.REQUEST).read_text(encoding="utf-8"))
        return float(data["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StopSignals:
    """Turns SIGINT / SIGTERM / request.json into a `reason` the trainer checks between steps.

    `reason`: None, "sigint", "sigterm", "pause" or "stop" (the first one wins). Handlers are
    installed on __enter__ (main thread only: elsewhere only requests are seen) and the previous
    handlers restored on __exit__. With `run_dir`, a request left over from before this process
    started is removed on __enter__ (it was meant for an earlier trainer), and a request this
    trainer obeyed is removed on __exit__ (so the next resume does not pause at once).
    """

    def __init__(self, run_dir: Path | str | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    # -- signal side ----------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            if self.reason == "sigint":
                # the person pressed Ctrl-C twice: leave now (the last checkpoint is intact)
                raise KeyboardInterrupt
            if self.reason is None:
                self.reason = "sigint"
            log.warning(
                "Ctrl-C: saving a checkpoint after the current step, then stopping "
                "(press Ctrl-C again to quit at once without saving)"
            )
        elif signum == signal.SIGTERM and self.reason is None:
            self.reason = "sigterm"
            log.warning("SIGTERM: saving a checkpoint after the current step, then stopping")

    def __enter__(self) -> StopSignals:
        if self.run_dir is not None:
            t = _request_time(self.run_dir)
            if t is not None and t < process_start_time():
                log.info("ignoring a %s request left from an earlier trainer", self._peek())
                runfiles.clear_request(self.run_dir)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        else:
            log.debug("not in the main thread: Ctrl-C/SIGTERM are not caught here")
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self.run_dir is not None and self.reason in ("pause", "stop"):
            runfiles.clear_request(self.run_dir)

    def _peek(self) -> str | None:
        return runfiles.read_request(self.run_dir) if self.run_dir is not None else None

    # -- what the trainer calls -----------------------------------------------------------
    def check(self, run_dir: Path | str | None = None) -> str | None:
        """The reason to stop now, or None. Reads request.json of `run_dir` (or the one given
        at construction). Cheap enough to call after every step (one small file read)."""
        if self.reason is None:
            folder = Path(run_dir) if run_dir is not None else self.run_dir
            if folder is not None:
                action = runfiles.read_request(folder)
                if action in ("pause", "stop"):
                    self.reason = action
                    log.info("%s requested: saving a checkpoint and stopping", action)
        return self.reason

    def request(self, reason: str) -> None:
        """Ask to stop for `reason` (in-process callers, tests, the NaN guard...)."""
        if reason not in REASONS:
            raise ValueError(f"unknown stop reason {reason!r}; use one of {REASONS}")
        if self.reason is None:
            self.reason = reason

    @property
    def exit_code(self) -> int:
        """EXIT_OK, EXIT_PAUSED (pause/stop), EXIT_INTERRUPTED (Ctrl-C) or EXIT_TERMINATED."""
        return EXIT_CODES[self.reason]


class RunLock:
    """Exclusive lock of one run folder for one trainer process (runs/<run>/trainer.lock).

    Raises VoicelabError "run X is already being trained by pid N" when another live process
    holds it. The lock file stays (deleting it would race with a process opening it); its
    content is the holder's pid while held and empty after release.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / runfiles.LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _read_pid(self.path)
            who = f"pid {pid}" if pid else "another process"
            raise VoicelabError(
                f"run {self.run_dir.name} is already being trained by {who}: wait for it, pause "
                "it (the app's Pause button or the trainer's Ctrl-C), or train under another "
                "--run name"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def holder(run_dir: Path | str) -> int | None:
        """The pid of the process training this run now, or None (what a restarted UI asks)."""
        return RunDir(Path(run_dir)).lock_holder()


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
