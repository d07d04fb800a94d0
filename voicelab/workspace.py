"""The workspace: one folder per voice under VOICELAB_HOME (default ./workspace).

    workspace/<voice>/
      raw/       originals exactly as recorded or uploaded: never modified
      clean/     32 kHz mono cleaned WAVs + <stem>.report.json
      slices/    utterance WAVs + dataset.list (path|speaker|lang|text)
      features/  spectrogram cache keyed by settings + audio hash
      runs/<run>/  one training run (config.json, metrics.jsonl, status.json, checkpoints/ ...)
      exports/   <name>.safetensors + <name>.json

Every path handed in from outside (voice names, run names, file names) is validated here, so
no name can climb out of the workspace.
"""

from __future__ import annotations

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
