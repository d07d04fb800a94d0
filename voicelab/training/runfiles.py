"""What is inside the files through which a training process and the UI talk.

Where each file lives is `voicelab.workspace.RunDir`'s business (the names below are its); this
module reads and writes status.json, metrics.jsonl and request.json.

status.json `state` is one of STATES. `heartbeat` is a unix time the trainer refreshes at least
every few seconds while alive, so a reader can tell a crashed trainer from a running one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from voicelab.fileio import write_json_atomic, write_text_atomic
from voicelab.workspace import RunDir

CONFIG = RunDir.CONFIG
STATUS = RunDir.STATUS
METRICS = RunDir.METRICS
METRICS_SUPERSEDED = RunDir.METRICS_SUPERSEDED
LOG = RunDir.LOG
REQUEST = RunDir.REQUEST
LOCK = RunDir.LOCK
SAMPLES = RunDir.SAMPLES
CHECKPOINTS = RunDir.CHECKPOINTS

STATES = ("starting", "running", "saving", "paused", "stopped", "finished", "failed")
ACTIONS = ("pause", "stop")
HEARTBEAT_STALE_S = 30.0


def write_status(run_dir: Path, **fields: Any) -> dict:
    """Rewrite status.json atomically, stamping `heartbeat` (and `pid`)."""
    status = {"heartbeat": time.time(), "pid": os.getpid(), **fields}
    assert status.get("state") in STATES, status.get("state")
    write_json_atomic(Path(run_dir) / STATUS, status)
    return status


# status.json fields a reader does arithmetic with: a number (or null) when present
_NUMBER_FIELDS = ("step", "total_steps", "stage_step", "stage_total", "global_step", "epoch",
                  "eta_s", "heartbeat", "pid", "skipped_steps", "rollbacks")  # fmt: skip


def load_status(run_dir: Path) -> tuple[dict | None, str | None]:
    """(status, None), (None, None) when the run has none yet, or (None, what is wrong) for a
    status.json that is not a status (cut off, not an object, a field of the wrong type).
    Never raises: one damaged file must not break a page that lists every run."""
    path = Path(run_dir) / STATUS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
        return None, f"status.json cannot be read ({type(e).__name__})"
    if not isinstance(data, dict):
        return None, f"status.json holds a {type(data).__name__}, not a status"
    if data.get("state") not in STATES:
        return None, f"status.json has no valid state ({str(data.get('state'))[:40]!r})"
    for k in _NUMBER_FIELDS:
        v = data.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            return None, f"status.json field {k} is {str(v)[:40]!r}, not a number"
    return data, None


def read_status(run_dir: Path) -> dict | None:
    """The last status, or None when the run has none yet or it is damaged (load_status says
    which). Never raises on a damaged file."""
    return load_status(run_dir)[0]


def put_status_back(run_dir: Path, status: dict) -> None:
    """Rewrite status.json exactly as it was read (a start refused before training changes
    nothing a reader sees: heartbeat and pid stay the old ones)."""
    write_json_atomic(Path(run_dir) / STATUS, status)


def append_metrics(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_metrics(run_dir: Path, since_line: int = 0) -> list[dict]:
    """All metric records (from line `since_line`), skipping a half-written last line."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < since_line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def truncate_metrics(run_dir: Path, after_step: int) -> int:
    """A run continues from global step `after_step`: records of later steps belong to the
    abandoned timeline. They move to metrics.superseded.jsonl (appended, kept) and metrics.jsonl
    is rewritten atomically without them, so every reader sees one timeline. Returns how many."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return 0
    keep, drop = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        try:
            rec = json.loads(line)
            step = rec.get("step") if isinstance(rec, dict) else None
        except json.JSONDecodeError:
            step = None  # a half-written last line (killed mid-write): not kept either way
            if not line.endswith("\n"):
                drop.append(line + "\n")
                continue
        (drop if isinstance(step, int | float) and step > after_step else keep).append(line)
    if not drop:
        return 0
    with open(Path(run_dir) / METRICS_SUPERSEDED, "a", encoding="utf-8") as f:
        f.writelines(drop)
    write_text_atomic(path, "".join(keep))
    return len(drop)


def request_action(run_dir: Path, action: str) -> None:
    """Ask the trainer of this run to pause or stop at the next step boundary."""
    assert action in ACTIONS, action
    write_json_atomic(Path(run_dir) / REQUEST, {"action": action, "time": time.time()})


def read_request(run_dir: Path) -> str | None:
    try:
        data = json.loads((Path(run_dir) / REQUEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    action = data.get("action") if isinstance(data, dict) else None
    return action if action in ACTIONS else None


def clear_request(run_dir: Path) -> None:
    try:
        (Path(run_dir) / REQUEST).unlink()
    except FileNotFoundError:
        pass
