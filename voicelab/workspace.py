"""The workspace: one folder per voice under VOICELAB_HOME (default ./workspace).

    workspace/<voice>/
      raw/       originals exactly as recorded or uploaded: never modified
      clean/     32 kHz mono cleaned WAVs + <stem>.report.json
      slices/    utterance WAVs + dataset.list (path|speaker|lang|text)
      features/  spectrogram cache keyed by settings + audio hash
      runs/<run>/  one training run: every file of it is named by RunDir (below)
      exports/   <name>.safetensors + <name>.json

Every path handed in from outside (voice names, run names, file names) is validated here, so
no name can climb out of the workspace.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

from voicelab.errors import WorkspaceError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def validate_name(name: str, what: str = "voice name") -> str:
    """Letters, digits, '-' and '_' (1-64 characters, not starting with - or _)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise WorkspaceError(
            f"{what} {name!r} is not allowed: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit (for example 'my-voice')"
        )
    return name


def home() -> Path:
    """VOICELAB_HOME, default ./workspace (resolved, not created)."""
    return Path(os.environ.get("VOICELAB_HOME", "workspace")).expanduser().resolve()


def inside(base: Path, path: Path | str) -> Path:
    """Resolve `path` and make sure it stays inside `base` (no '..' or symlink tricks)."""
    base = Path(base).resolve()
    p = Path(path)
    p = (base / p).resolve() if not p.is_absolute() else p.resolve()
    if p != base and base not in p.parents:
        raise WorkspaceError(f"{path} is outside {base}: only files inside the workspace are used")
    return p


CHECKPOINT_RE = re.compile(r"^step-(\d{8,})\.pt$")


def checkpoint_name(step: int) -> str:
    """step-%08d.pt: the file name of the checkpoint written at global step `step`."""
    return f"step-{step:08d}.pt"


@dataclass(frozen=True)
class RunDir:
    """Every file of one training run, runs/<run>/. Creating the object creates nothing.

    The trainer writes these files, the UI and the CLI read them (voicelab/training/runfiles.py
    and checkpoint.py hold what is inside). `os.fspath(run)` / `Path(run)` give the folder.

        config.json    resolved config (written once per start)
        status.json    rewritten atomically: state, stage, step, total_steps, eta_s, heartbeat
        metrics.jsonl  one JSON object per log interval (appended; one timeline)
        metrics.superseded.jsonl  records of abandoned timelines (after a resume from older)
        train.log      the trainer's human-readable log
        console.log    stdout + stderr of a trainer the UI started (UI-owned)
        request.json   written by the UI / CLI to ask the trainer to pause or stop
        trainer.lock   held (fcntl) by the one trainer of this run; holds its pid
        tokens.pt      semantic tokens + styles handed from stage 1 to stage 2
        samples/       step-XXXXXXXX.wav audio samples (EMA weights)
        checkpoints/   step-XXXXXXXX.pt + LATEST + BEST (+ superseded/)
        tensorboard/   TensorBoard event files, when tensorboard is installed
    """

    root: Path

    CONFIG = "config.json"
    STATUS = "status.json"
    METRICS = "metrics.jsonl"
    METRICS_SUPERSEDED = "metrics.superseded.jsonl"
    LOG = "train.log"
    CONSOLE_LOG = "console.log"
    REQUEST = "request.json"
    LOCK = "trainer.lock"
    TOKENS = "tokens.pt"
    SAMPLES = "samples"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / self.CONFIG

    @property
    def status(self) -> Path:
        return self.root / self.STATUS

    @property
    def metrics(self) -> Path:
        return self.root / self.METRICS

    @property
    def metrics_superseded(self) -> Path:
        return self.root / self.METRICS_SUPERSEDED

    @property
    def log(self) -> Path:
        return self.root / self.LOG

    @property
    def console_log(self) -> Path:
        return self.root / self.CONSOLE_LOG

    @property
    def request(self) -> Path:
        return self.root / self.REQUEST

    @property
    def lock(self) -> Path:
        return self.root / self.LOCK

    @property
    def tokens(self) -> Path:
        return self.root / self.TOKENS

    @property
    def samples(self) -> Path:
        return self.root / self.SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def tensorboard(self) -> Path:
        return self.root / self.TENSORBOARD

    def sample(self, step: int) -> Path:
        return self.samples / f"step-{step:08d}.wav"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def checkpoint_files(self) -> list[Path]:
        """Every checkpoints/step-*.pt, oldest step first (present, not necessarily intact)."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir()
                 if (m := CHECKPOINT_RE.match(p.name))]  # fmt: skip
        return [p for _, p in sorted(found)]

    def has_checkpoints(self) -> bool:
        """Whether a fresh start here would overwrite a run: any step-*.pt at all, damaged or not."""
        return bool(self.checkpoint_files())

    def exists(self) -> bool:
        return self.root.is_dir()

    def lock_holder(self) -> int | None:
        """The pid of the process training this run now, or None (-1: held, pid not written yet).

        Asks the kernel (a shared fcntl probe on trainer.lock), so a crashed trainer never looks
        alive: its lock died with it.
        """
        try:
            fd = os.open(self.lock, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            try:
                text = self.lock.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                text = ""
            return int(text) if text.isdigit() else -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Voice:
    """The folders of one voice. Creating the object creates nothing; `create()` does."""

    name: str
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def clean(self) -> Path:
        return self.root / "clean"

    @property
    def slices(self) -> Path:
        return self.root / "slices"

    @property
    def dataset_list(self) -> Path:
        return self.slices / "dataset.list"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def run_dir(self, run: str) -> Path:
        return self.runs / validate_name(run, "run name")

    def run(self, run: str) -> RunDir:
        """The files of run `run` (name validated)."""
        return RunDir(self.run_dir(run))

    def list_runs(self) -> list[str]:
        if not self.runs.is_dir():
            return []
        runs = [p for p in self.runs.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name)]
        return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime)]

    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> Voice:
        for d in (self.raw, self.clean, self.slices, self.features, self.runs, self.exports):
            d.mkdir(parents=True, exist_ok=True)
        return self


def get_voice(name: str, base: Path | None = None, must_exist: bool = False) -> Voice:
    name = validate_name(name)
    root = (base or home()) / name
    v = Voice(name=name, root=root)
    if must_exist and not v.exists():
        raise WorkspaceError(
            f"there is no voice {name!r} in {root.parent}: create it with "
            f"`python -m voicelab prepare --voice {name} FILE...` or in the app's Voice tab"
        )
    return v


def list_voices(base: Path | None = None) -> list[str]:
    b = base or home()
    if not b.is_dir():
        return []
    return sorted(p.name for p in b.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name))
