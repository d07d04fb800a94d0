"""Training checkpoints: complete, atomic, verified, pruned; resume with fallback.

One file per save, `runs/<run>/checkpoints/step-%08d.pt`, a dict of tensors and plain values
only (it loads with `torch.load(weights_only=True)`), holding everything needed to continue a
run exactly: every model / optimizer / scheduler / GradScaler / EMA state, stage, global step,
epoch and position inside the epoch, RNG states, recent metrics, the resolved config, the
dataset hash and the voicelab version. Keys are the K_* constants below.

    path = save_checkpoint(run_dir, state, keep_last=cfg.train.keep_last)
    point = find_resume(run_dir)        # None: no checkpoints; raises if all are damaged
    if point: restore(point.state)      # point.skipped lists damaged newer files (warn!)

Guarantees (see tests/training/test_checkpoint.py):
- Atomic: temp file in the same folder, flush, fsync, os.replace, fsync of the folder; then
  LATEST names the new file (also atomically). A crash at any instant leaves every earlier
  checkpoint intact and never a half-written file under a `step-*.pt` name.
- Verified: torch does not check its zip CRCs, so a flipped bit in tensor data would load
  silently. save_checkpoint stores a CRC-32 of the whole state (tensor bytes, dtypes, shapes,
  plain values) under K_CHECKSUM; load_checkpoint recomputes it and refuses a mismatch.
- Safe: nothing beyond tensors and plain values is ever unpickled (weights_only=True, passed
  explicitly so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override it).
- Pruned: the last `keep_last` by step, plus the best by K_VAL_LOSS (named in BEST).
- Checkpoints newer than the one being saved belong to an abandoned timeline (a resume from an
  older checkpoint, a NaN rollback): they are moved to checkpoints/superseded/, never deleted
  outright, so that `find_resume` only ever sees one consistent history.

Only the process holding the run's RunLock (voicelab/training/interrupt.py) may save.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import tempfile
import time
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voicelab import __version__
from voicelab.config import ABSENT, architecture_differences
from voicelab.errors import VoicelabError
from voicelab.fileio import fsync_dir, write_text_atomic
from voicelab.workspace import CHECKPOINT_RE, RunDir, checkpoint_name

__all__ = [
    "FORMAT_VERSION", "REQUIRED_KEYS", "CheckpointError", "CheckpointInfo", "ResumePoint",
    "save_checkpoint", "load_checkpoint", "find_resume", "list_checkpoints", "state_digest",
    "check_compatible", "inference_weights", "checkpoint_dir", "supersede_after",
]  # fmt: skip

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

K_FORMAT = "format_version"
K_STAGE = "stage"
K_STEP = "global_step"  # optimiser steps over the whole run (both stages)
K_STAGE_STEP = "stage_step"
K_EPOCH = "epoch"
K_EPOCH_POS = "epoch_position"  # batches already consumed in this epoch
K_MODELS = "models"
K_OPTIMIZERS = "optimizers"
K_SCHEDULERS = "schedulers"
K_SCALER = "scaler"
K_EMA = "ema"
K_RNG = "rng"
K_METRICS = "metrics"
K_CONFIG = "config"
K_DATASET_HASH = "dataset_hash"
K_VERSION = "voicelab_version"
K_VAL_LOSS = "val_loss"  # optional: None or a float (picks the "best" checkpoint kept by pruning)
K_TIME = "time"
K_EXTRA = "extra"  # optional: anything else the trainer needs (tensors and plain values)
K_CHECKSUM = "checksum"  # written by save_checkpoint, verified and removed by load_checkpoint

# save_checkpoint fills K_FORMAT, K_VERSION and K_TIME itself when the trainer leaves them out
REQUIRED_KEYS: tuple[str, ...] = (
    K_FORMAT, K_STAGE, K_STEP, K_STAGE_STEP, K_EPOCH, K_EPOCH_POS, K_MODELS, K_OPTIMIZERS,
    K_SCHEDULERS, K_SCALER, K_EMA, K_RNG, K_METRICS, K_CONFIG, K_DATASET_HASH, K_VERSION, K_TIME,
)  # fmt: skip
_INT_KEYS = (K_STEP, K_STAGE_STEP, K_EPOCH, K_EPOCH_POS)
_DICT_KEYS = (K_MODELS, K_OPTIMIZERS, K_SCHEDULERS, K_EMA, K_RNG, K_CONFIG)

CKPT_DIR = RunDir.CHECKPOINTS
LATEST = "LATEST"
BEST = "BEST"
SUPERSEDED = "superseded"
NAME_RE = CHECKPOINT_RE  # step-%08d.pt (checkpoint_name)
TEMP_GLOB = ".step-*.tmp"


class CheckpointError(VoicelabError):
    """A checkpoint could not be written, read or used; the message says which and what to do."""


@dataclass
class ResumePoint:
    """The checkpoint a run resumes from, and the newer ones that had to be skipped."""

    path: Path
    state: dict[str, Any]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class CheckpointInfo:
    """One row of `python -m voicelab checkpoints` (problem is None when the file is usable)."""

    path: Path
    step: int
    stage: str | None = None
    stage_step: int | None = None
    epoch: int | None = None
    epoch_position: int | None = None
    time: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    val_loss: float | None = None
    size_bytes: int = 0
    problem: str | None = None
    is_latest: bool = False
    is_best: bool = False


def checkpoint_dir(run_dir: Path | str) -> Path:
    return RunDir(Path(run_dir)).checkpoints


# --------------------------------------------------------------------------------------------
# Digest: detects any change to the saved state (torch.load itself never checks zip CRCs)
# --------------------------------------------------------------------------------------------


def _feed(h: Any, obj: Any, where: str) -> None:
    """Hash `obj` into `h`, tagging types so that e.g. 1, 1.0, "1" and True all differ."""
    tp = type(obj)
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.is_quantized:
            raise TypeError(f"{where}: only dense tensors can be saved, got {obj.layout}")
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().data)
    elif tp in (dict, OrderedDict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            _feed(h, k, where)
            _feed(h, v, f"{where}[{k!r}]")
    elif tp in (list, tuple, torch.Size):
        h.update(f"L{tp.__name__}{len(obj)}".encode())
        for i, v in enumerate(obj):
            _feed(h, v, f"{where}[{i}]")
    elif tp is float:
        h.update(f"f{obj.hex()}".encode())
    elif tp in (bool, int, str, bytes) or obj is None:
        h.update(f"{tp.__name__}{len(repr(obj))}:{obj!r}".encode())
    elif tp in (torch.dtype, torch.device):
        h.update(f"{tp.__name__}:{obj}".encode())
    else:
        # numpy scalars, dataclasses, Paths...: torch.load(weights_only=True) would refuse them
        raise TypeError(
            f"{where} holds a {tp.__module__}.{tp.__qualname__}: a checkpoint may only hold "
            "tensors, dicts, lists, tuples and plain int/float/str/bool/None (convert it first, "
            "e.g. float(x) or torch.as_tensor(x))"
        )


class _Crc32:
    """zlib.crc32 with hashlib's update() interface: 2x faster than SHA-256 here, and this
    guards against damage (bit rot, torn writes), not against a forger."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: Any) -> None:
        self.value = zlib.crc32(data, self.value)


def state_digest(state: dict[str, Any]) -> str:
    """CRC-32 over every key and value of `state` except K_CHECKSUM ("crc32:<8 hex>")."""
    h = _Crc32()
    _feed(h, {k: v for k, v in state.items() if k != K_CHECKSUM}, "state")
    return f"crc32:{h.value:08x}"


# --------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------


def _check_state(state: dict[str, Any]) -> list[str]:
    """Structural problems of a state dict (missing keys, wrong types), as sentences."""
    if not isinstance(state, dict):
        return [f"the checkpoint holds a {type(state).__name__}, not a dict"]
    p = [f"key {k!r} is missing" for k in REQUIRED_KEYS if k not in state]
    for k in _INT_KEYS:
        v = state.get(k)
        if k in state and (type(v) is not int or v < 0):
            p.append(f"{k} must be a whole number >= 0, got {v!r}")
    for k in _DICT_KEYS:
        if k in state and not isinstance(state[k], dict):
            p.append(f"{k} must be a dict, got {type(state[k]).__name__}")
    if K_STAGE in state and not isinstance(state[K_STAGE], str):
        p.append(f"{K_STAGE} must be a string, got {state[K_STAGE]!r}")
    v = state.get(K_VAL_LOSS)
    if v is not None and type(v) not in (int, float):
        p.append(f"{K_VAL_LOSS} must be a number or None, got {v!r}")
    return p


def _os_error(e: OSError, path: Path, what: str) -> CheckpointError:
    """Turn a failed write into a message that says what to do."""
    folder = path.parent
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = (
            f"the disk holding {folder} is full: free some space (or lower train.keep_last), "
            "then resume; the earlier checkpoints are intact"
        )
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (
            f"{folder} cannot be written ({e.strerror}): fix its permissions or put the "
            "workspace elsewhere with VOICELAB_HOME, then resume; earlier checkpoints are intact"
        )
    else:
        hint = f"{e.strerror or e}: the earlier checkpoints are intact"
    return CheckpointError(f"could not {what} {path.name}: {hint}")


def _find_os_error(e: BaseException) -> OSError | None:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _remove_stale_temps(ckpt_dir: Path) -> None:
    # temp files of a save killed half-way (SIGKILL, power cut); never a complete checkpoint
    for tmp in ckpt_dir.glob(TEMP_GLOB):
        try:
            tmp.unlink()
            log.debug("removed %s, left by an interrupted save", tmp.name)
        except OSError:
            pass


def _write_checkpoint_file(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temp file beside `path`, fsync it, rename it, fsync the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the data must be on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:  # includes a second Ctrl-C: never leave the temp behind
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)  # make the rename itself durable


def save_checkpoint(run_dir: Path | str, state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write `state` as checkpoints/step-%08d.pt atomically, update LATEST/BEST, prune.

    `state` must hold REQUIRED_KEYS (K_FORMAT, K_VERSION and K_TIME are filled in when absent);
    the caller's dict is not modified. Returns the checkpoint's path. Raises CheckpointError for
    a bad state or a failed write (disk full, unwritable folder); earlier checkpoints stay intact.
    """
    state = dict(state)
    state.setdefault(K_FORMAT, FORMAT_VERSION)
    state.setdefault(K_VERSION, __version__)
    state.setdefault(K_TIME, time.time())
    state.pop(K_CHECKSUM, None)
    problems = _check_state(state)
    if problems:
        raise CheckpointError("cannot save this checkpoint: " + "; ".join(problems))
    try:
        state[K_CHECKSUM] = state_digest(state)
    except TypeError as e:
        raise CheckpointError(f"cannot save this checkpoint: {e}") from None
    step = state[K_STEP]
    ckpt_dir = checkpoint_dir(run_dir)
    path = ckpt_dir / checkpoint_name(step)
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(ckpt_dir)
        # a file of this step already here belongs to an abandoned timeline (a resume from an
        # older checkpoint, a rollback, a damaged file skipped): keep it, never overwrite it
        _supersede(ckpt_dir, [p for s, p in _step_files(ckpt_dir) if s >= step], keep_last)
        _write_checkpoint_file(path, state)
    except OSError as e:
        raise _os_error(e, path, "save checkpoint") from e
    except RuntimeError as e:
        # torch's zip writer turns a failed write (ENOSPC...) into a RuntimeError while closing
        # the archive; the OSError that caused it is in the exception chain
        cause = _find_os_error(e)
        if cause is None:
            raise CheckpointError(f"could not save checkpoint {path.name}: {e}") from e
        raise _os_error(cause, path, "save checkpoint") from e
    try:
        write_text_atomic(ckpt_dir / LATEST, path.name + "\n")
    except OSError as e:
        raise _os_error(e, ckpt_dir / LATEST, "update") from e
    _update_best(ckpt_dir, path, step, state.get(K_VAL_LOSS), str(state.get(K_STAGE, "")))
    _supersede_newer(ckpt_dir, step, keep_last)
    prune(ckpt_dir, keep_last)
    return path


# --------------------------------------------------------------------------------------------
# LATEST / BEST / pruning
# --------------------------------------------------------------------------------------------


def _step_files(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every step-*.pt in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME_RE.match(p.name))]
    return sorted(found)


def read_latest(run_dir: Path | str) -> str | None:
    """The file name LATEST points at, or None."""
    try:
        name = (checkpoint_dir(run_dir) / LATEST).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if NAME_RE.match(name) else None


def read_best(ckpt_dir: Path) -> dict[str, Any] | None:
    """{"file", "step", "val_loss", "stage"} of the best checkpoint by validation loss (within
    the newest stage that reported one), or None."""
    try:
        best = json.loads((ckpt_dir / BEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(best, dict) and NAME_RE.match(str(best.get("file", "")))
    return best if ok and isinstance(best.get("val_loss"), (int, float)) else None


def _update_best(
    ckpt_dir: Path, path: Path, step: int, val_loss: float | None, stage: str = ""
) -> None:
    if val_loss is None or not math.isfinite(val_loss):
        return
    best = read_best(ckpt_dir)
    stale = best is None or not (ckpt_dir / best["file"]).is_file() or best["step"] >= step
    # validation losses of different stages are different quantities (SoVITS mel L1 vs GPT
    # cross-entropy): a checkpoint of a new stage replaces the best instead of competing with it
    new_stage = best is not None and best.get("stage", stage) != stage
    if stale or new_stage or val_loss < best["val_loss"]:
        record = {"file": path.name, "step": step, "val_loss": float(val_loss), "stage": stage}
        try:
            write_text_atomic(ckpt_dir / BEST, json.dumps(record) + "\n")
        except OSError as e:  # the checkpoint itself is saved; losing BEST only affects pruning
            log.warning("could not update %s: %s", ckpt_dir / BEST, e)


def _supersede(ckpt_dir: Path, files: list[Path], keep_last: int) -> list[Path]:
    """Move `files` to checkpoints/superseded/ (the newest keep_last kept there). Returns them."""
    if not files:
        return []
    dest = ckpt_dir / SUPERSEDED
    dest.mkdir(exist_ok=True)
    for p in files:
        os.replace(p, dest / p.name)
        log.warning("moved %s to %s/: it belongs to a timeline this run abandoned", p.name,
                    SUPERSEDED)  # fmt: skip
    fsync_dir(ckpt_dir)
    for _, p in _step_files(dest)[: -max(1, keep_last)]:
        p.unlink(missing_ok=True)
    return files


def _supersede_newer(ckpt_dir: Path, step: int, keep_last: int) -> None:
    _supersede(ckpt_dir, [p for s, p in _step_files(ckpt_dir) if s > step], keep_last)


def supersede_after(run_dir: Path | str, step: int, keep_last: int = 3) -> list[Path]:
    """A run continues from step `step`: move every checkpoint file with a higher step (an
    abandoned timeline, or damaged files resume skipped) to superseded/, so that neither a later
    resume nor a save of the same step can take or overwrite them. Returns the moved files."""
    ckpt_dir = checkpoint_dir(run_dir)
    return _supersede(ckpt_dir, [p for s, p in _step_files(ckpt_dir) if s > step], keep_last)


def prune(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and the BEST one; returns the deleted."""
    files = _step_files(ckpt_dir)
    keep = {p.name for _, p in files[-max(1, keep_last) :]}
    best = read_best(ckpt_dir)
    if best:
        keep.add(best["file"])
    deleted = []
    for _, p in files:
        if p.name not in keep:
            try:
                p.unlink()
                deleted.append(p)
            except OSError as e:  # not fatal: a later save retries
                log.warning("could not delete old checkpoint %s: %s", p, e)
    return deleted


# --------------------------------------------------------------------------------------------
# Load / resume / list
# --------------------------------------------------------------------------------------------


def _check_zip_complete(path: Path) -> None:
    """A torch checkpoint is a zip whose directory sits at the very end: a cut-off file lacks it.

    (Files that are not zips at all are left to torch.load, which knows the legacy format.)
    """
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return
    try:
        with zipfile.ZipFile(path) as z:
            end = max((i.header_offset + i.compress_size for i in z.infolist()), default=0)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path.name} is truncated (its save was cut off, or the disk lost its end): {e}"
        ) from None
    if end > path.stat().st_size:
        raise CheckpointError(f"{path.name} is truncated (a record runs past the end of the file)")


def _torch_load(path: Path, mmap: bool = False) -> Any:
    """torch.load restricted to tensors and plain values; every failure is a CheckpointError."""
    import pickle

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {e.strerror}") from None
    if size == 0:
        raise CheckpointError(f"{path.name} is empty (its save was cut off)")
    _check_zip_complete(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            # torch's long message holds the actual reason after "WeightsUnpickler error:"
            m = re.search(r"WeightsUnpickler error:\s*([^\n]+?)(?:\.\s|\n|$)", str(e))
            detail = m.group(1).strip()[:200] if m else "not a tensor or plain value"
            raise CheckpointError(
                f"{path.name} was refused: it contains a pickled Python object, not only tensors "
                f"and plain values, and loading it could run code ({detail}). Use only "
                "checkpoints written by voicelab."
            ) from None
        raise CheckpointError(f"{path.name} is damaged (unpickling failed: {e})") from None
    except RuntimeError as e:
        msg = str(e)
        if "zip archive" in msg or "central directory" in msg or "file not found" in msg:
            raise CheckpointError(
                f"{path.name} is truncated or not a checkpoint ({msg.splitlines()[0]})"
            ) from None
        raise CheckpointError(f"{path.name} is damaged: {msg.splitlines()[0]}") from None
    except (EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError, OSError) as e:
        raise CheckpointError(f"{path.name} is damaged ({type(e).__name__}: {e})") from None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load and verify one checkpoint onto the CPU; returns the state (without K_CHECKSUM).

    Raises CheckpointError saying what is wrong: missing, empty, truncated, not a checkpoint,
    refused (holds a pickled object), missing keys, newer format, checksum mismatch.
    """
    path = Path(path)
    state = _torch_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name} is not a voicelab checkpoint (no state dict inside)")
    version = state.get(K_FORMAT)
    if type(version) is int and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name} has checkpoint format {version}, newer than this voicelab "
            f"({__version__}, format {FORMAT_VERSION}) understands: update voicelab"
        )
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path.name} is not a voicelab checkpoint (format {version!r})")
    problems = _check_state(state)
    if problems:
        raise CheckpointError(f"{path.name} is not a complete checkpoint: " + "; ".join(problems))
    saved = state.pop(K_CHECKSUM, None)
    if not isinstance(saved, str):
        raise CheckpointError(f"{path.name} has no checksum: it was not written by voicelab")
    try:
        actual = state_digest(state)
    except TypeError as e:
        raise CheckpointError(f"{path.name} holds an unexpected value: {e}") from None
    if actual != saved:
        raise CheckpointError(
            f"{path.name} is damaged: its contents no longer match the checksum written when it "
            "was saved (a flipped bit or a failing disk)"
        )
    return state


def _verify_name(path: Path, state: dict[str, Any]) -> None:
    m = NAME_RE.match(path.name)
    if m and int(m.group(1)) != state[K_STEP]:
        raise CheckpointError(
            f"{path.name} holds step {state[K_STEP]}, not the step in its name (renamed by hand?)"
        )


def find_resume(run_dir: Path | str) -> ResumePoint | None:
    """The newest checkpoint that loads and verifies, falling back to earlier ones.

    Returns None only when the run has no checkpoint at all. The damaged ones skipped are in
    `.skipped` (and logged as warnings). Raises CheckpointError when checkpoints exist but none
    loads: a run is never restarted from scratch silently.
    """
    ckpt_dir = checkpoint_dir(run_dir)
    files = _step_files(ckpt_dir)
    if not files:
        latest = read_latest(run_dir)
        if latest:
            raise CheckpointError(
                f"{ckpt_dir} names {latest} in LATEST but holds no checkpoint files (deleted?). "
                "To start this run over, delete its folder or train under a new --run name."
            )
        return None
    skipped: list[tuple[Path, str]] = []
    for _, path in reversed(files):
        try:
            state = load_checkpoint(path)
            _verify_name(path, state)
        except CheckpointError as e:
            skipped.append((path, str(e)))
            log.warning("skipping checkpoint %s: %s", path.name, e)
            continue
        if skipped:
            log.warning(
                "resuming from %s instead of the newer %s (damaged)",
                path.name, ", ".join(p.name for p, _ in skipped),
            )  # fmt: skip
        return ResumePoint(path=path, state=state, skipped=skipped)
    reasons = "; ".join(reason for _, reason in skipped)
    raise CheckpointError(
        f"none of the {len(files)} checkpoints in {ckpt_dir} can be used ({reasons}). Nothing "
        "was started: restore the files from a backup, or train under a new --run name to start "
        "over."
    )


def recent_losses(metrics: Any) -> dict[str, float]:
    """The loss values of the latest metrics record (a dict, or a list of dicts)."""
    if isinstance(metrics, (list, tuple)):
        metrics = next((m for m in reversed(metrics) if isinstance(m, dict)), {})
    if not isinstance(metrics, dict):
        return {}
    nums = {
        str(k): float(v)
        for k, v in metrics.items()
        if type(v) in (int, float) or (isinstance(v, torch.Tensor) and v.numel() == 1)
    }
    losses = {k: v for k, v in nums.items() if "loss" in k}
    return losses or {k: v for k, v in nums.items() if k not in ("step", "time", "epoch")}


def list_checkpoints(run_dir: Path | str, verify: bool = True) -> list[CheckpointInfo]:
    """Every step-*.pt of the run, oldest first, with its metadata and any problem.

    verify=True loads each fully and checks its checksum (what resume does); verify=False only
    reads the metadata (memory-mapped, fast even for large files).
    """
    ckpt_dir = checkpoint_dir(run_dir)
    latest, best = read_latest(run_dir), read_best(ckpt_dir)
    out = []
    for step, path in _step_files(ckpt_dir):
        info = CheckpointInfo(path=path, step=step, is_latest=path.name == latest)
        info.is_best = best is not None and best["file"] == path.name
        try:
            info.size_bytes = path.stat().st_size
            if verify:
                state = load_checkpoint(path)
                _verify_name(path, state)
            else:
                state = _torch_load(path, mmap=True)
                if not isinstance(state, dict):
                    raise CheckpointError(f"{path.name} is not a voicelab checkpoint")
        except (CheckpointError, OSError) as e:
            info.problem = str(e)
            out.append(info)
            continue
        info.stage = state.get(K_STAGE)
        info.stage_step = state.get(K_STAGE_STEP)
        info.epoch, info.epoch_position = state.get(K_EPOCH), state.get(K_EPOCH_POS)
        info.time = state.get(K_TIME)
        info.losses = recent_losses(state.get(K_METRICS))
        v = state.get(K_VAL_LOSS)
        info.val_loss = float(v) if type(v) in (int, float) else None
        out.append(info)
    return out


# --------------------------------------------------------------------------------------------
# What other modules read out of a checkpoint
# --------------------------------------------------------------------------------------------


def check_compatible(saved_config: dict[str, Any], new_config: dict[str, Any]) -> None:
    """Refuse to resume with a different architecture; train.* changes are allowed.

    Which settings count is config.architecture_differences' business. Raises CheckpointError
    listing every differing key with both values.
    """

    def show(v: Any) -> str:
        return v if v is ABSENT else repr(v)

    diffs = [
        f"{k}: {show(old)} in the checkpoint, {show(new)} now"
        for k, old, new in architecture_differences(saved_config, new_config)
    ]
    if diffs:
        text = "; ".join(diffs)
        raise CheckpointError(
            f"this run was trained with a different architecture ({text}). Resume with the "
            "settings it was started with, start a new run with --run NAME, or fine-tune from it "
            "with --from (weights only)."
        )


def inference_weights(
    state: dict[str, Any], names: tuple[str, ...] = ("sovits", "gpt"), what: str = "the checkpoint"
) -> tuple[dict[str, dict[str, torch.Tensor]], str]:
    """The weights to speak with: each model's EMA weights, else its own weights.

    Returns ({name: state_dict}, "ema" | "model" | "ema+model" (which kind was used)). Raises
    CheckpointError naming `what` when a model has neither (not a voicelab training checkpoint).
    """
    ema, models = state.get(K_EMA) or {}, state.get(K_MODELS) or {}
    out, kinds = {}, set()
    missing = []
    for name in names:
        if isinstance(ema.get(name), dict) and ema[name]:
            out[name], kind = ema[name], "ema"
        elif isinstance(models.get(name), dict) and models[name]:
            out[name], kind = models[name], "model"
        else:
            missing.append(name)
            continue
        kinds.add(kind)
    if missing:
        raise CheckpointError(
            f"{what} holds no weights for {', '.join(missing)}: it was not written by the "
            "voicelab trainer; use a checkpoint of a voicelab run"
        )
    return out, "+".join(k for k in ("ema", "model") if k in kinds)
