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

from voicelab.fileio import write_json_atomic
from voicelab.workspace import RunDir

CONFIG = RunDir.CONFIG
STATUS = RunDir.STATUS
METRICS = RunDir.METRICS
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


def read_status(run_dir: Path) -> dict | None:
    """The last status, or None when the run has none yet. Never raises on a damaged file."""
    try:
        return json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


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
