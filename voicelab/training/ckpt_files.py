"""Checkpoint files on disk: how one is written, read back, named, kept and moved aside.

checkpoint.py decides what a checkpoint holds and when it is usable; this module owns the bytes
and the folder (runs/<run>/checkpoints/):

    step-%08d.pt     one checkpoint (workspace.checkpoint_name); written through a temp file
                     `.step-*.tmp` + fsync + os.replace + fsync of the folder
    LATEST           the name of the newest save;  BEST  {"file", "step", "val_loss", "stage"}
    superseded/      checkpoints of abandoned timelines (moved here and kept: never pruned
                     or overwritten; a second file of one step becomes step-X.2.pt)

`state_digest` is the CRC-32 that save stores and load verifies: torch itself never checks its
zip CRCs, so a flipped bit in tensor data would otherwise load silently. `torch_load` is
torch.load restricted to tensors and plain values, every failure a CheckpointError.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from voicelab.errors import VoicelabError
from voicelab.fileio import fsync_dir, write_text_atomic
from voicelab.workspace import CHECKPOINT_RE, RunDir

log = logging.getLogger("voicelab.training.checkpoint")

K_CHECKSUM = "checksum"  # written by save_checkpoint, verified and removed by load_checkpoint
CKPT_DIR = RunDir.CHECKPOINTS
LATEST = "LATEST"
BEST = "BEST"
SUPERSEDED = "superseded"
NAME_RE = CHECKPOINT_RE  # step-%08d.pt (workspace.checkpoint_name)
TEMP_GLOB = ".step-*.tmp"


class CheckpointError(VoicelabError):
    """A checkpoint could not be written, read or used; the message says which and what to do."""


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


def os_error(e: OSError, path: Path, what: str) -> CheckpointError:
    """Turn a failed write into a message that says what to do."""
    folder = path.parent
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = (
            f"the disk holding {folder} is full: free some space (lower train.keep_last, or delete "
            f"{SUPERSEDED}/ there: checkpoints of abandoned timelines, kept until you do), then "
            "resume; the earlier checkpoints are intact"
        )
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (
            f"{folder} cannot be written ({e.strerror}): fix its permissions or put the "
            "workspace elsewhere with VOICELAB_HOME, then resume; earlier checkpoints are intact"
        )
    else:
        hint = f"{e.strerror or e}: the earlier checkpoints are intact"
    return CheckpointError(f"could not {what} {path.name}: {hint}")


def find_os_error(e: BaseException) -> OSError | None:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def remove_stale_temps(ckpt_dir: Path) -> None:
    # temp files of a save killed half-way (SIGKILL, power cut); never a complete checkpoint
    for tmp in ckpt_dir.glob(TEMP_GLOB):
        try:
            tmp.unlink()
            log.debug("removed %s, left by an interrupted save", tmp.name)
        except OSError:
            pass


def write_checkpoint_file(path: Path, state: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------------------------
# LATEST / BEST / pruning
# --------------------------------------------------------------------------------------------


def step_files(folder: Path) -> list[tuple[int, Path]]:
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


def update_best(
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


def superseded_name(dest: Path, name: str) -> Path:
    """Where `name` goes in superseded/: its own name, or `step-X.2.pt`, `.3`... when an earlier
    abandoned timeline already left a file of that step there (neither is ever overwritten)."""
    target, n = dest / name, 1
    while target.exists():
        n += 1
        target = dest / f"{Path(name).stem}.{n}{Path(name).suffix}"
    return target


def supersede(ckpt_dir: Path, files: list[Path]) -> list[Path]:
    """Move `files` to checkpoints/superseded/, where they are kept: never pruned, overwritten
    or resumed from (a person deletes them, or resumes one with --resume PATH). Returns them."""
    if not files:
        return []
    dest = ckpt_dir / SUPERSEDED
    dest.mkdir(exist_ok=True)
    for p in files:
        target = superseded_name(dest, p.name)
        os.replace(p, target)
        log.warning("moved %s to %s/%s: it belongs to a timeline this run abandoned", p.name,
                    SUPERSEDED, target.name)  # fmt: skip
    fsync_dir(dest)
    fsync_dir(ckpt_dir)
    return files


def supersede_newer(ckpt_dir: Path, step: int) -> None:
    supersede(ckpt_dir, [p for s, p in step_files(ckpt_dir) if s > step])


def supersede_after(run_dir: Path | str, step: int) -> list[Path]:
    """A run continues from step `step`: move every checkpoint file with a higher step (an
    abandoned timeline, or damaged files resume skipped) to superseded/, so that neither a later
    resume nor a save of the same step can take or overwrite them. Returns the moved files."""
    ckpt_dir = checkpoint_dir(run_dir)
    return supersede(ckpt_dir, [p for s, p in step_files(ckpt_dir) if s > step])


def prune(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and the BEST one; returns the deleted."""
    files = step_files(ckpt_dir)
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


def torch_load(path: Path, mmap: bool = False) -> Any:
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
