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
  older checkpoint, a NaN rollback): they are moved to checkpoints/superseded/ and kept there
  (never pruned or overwritten), so that `find_resume` only ever sees one consistent history.

Only the process holding the run's RunLock (voicelab/training/interrupt.py) may save.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voicelab import __version__
from voicelab.config import ABSENT, architecture_differences
from voicelab.fileio import write_text_atomic
from voicelab.training.ckpt_files import (
    CKPT_DIR,
    K_CHECKSUM,
    LATEST,
    NAME_RE,
    SUPERSEDED,
    CheckpointError,
    checkpoint_dir,
    find_os_error,
    os_error,
    prune,
    read_best,
    read_latest,
    remove_stale_temps,
    state_digest,
    step_files,
    supersede,
    supersede_after,
    supersede_newer,
    torch_load,
    update_best,
    write_checkpoint_file,
)
from voicelab.workspace import checkpoint_name

__all__ = [
    "FORMAT_VERSION", "REQUIRED_KEYS", "CheckpointError", "CheckpointInfo", "ResumePoint",
    "save_checkpoint", "load_checkpoint", "find_resume", "list_checkpoints", "state_digest",
    "check_compatible", "inference_weights", "checkpoint_dir", "supersede_after", "K_CHECKSUM",
    "CKPT_DIR", "LATEST", "SUPERSEDED", "NAME_RE", "read_best", "read_latest", "prune",
    "checkpoint_name",
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

# save_checkpoint fills K_FORMAT, K_VERSION and K_TIME itself when the trainer leaves them out
REQUIRED_KEYS: tuple[str, ...] = (
    K_FORMAT, K_STAGE, K_STEP, K_STAGE_STEP, K_EPOCH, K_EPOCH_POS, K_MODELS, K_OPTIMIZERS,
    K_SCHEDULERS, K_SCALER, K_EMA, K_RNG, K_METRICS, K_CONFIG, K_DATASET_HASH, K_VERSION, K_TIME,
)  # fmt: skip
_INT_KEYS = (K_STEP, K_STAGE_STEP, K_EPOCH, K_EPOCH_POS)
_DICT_KEYS = (K_MODELS, K_OPTIMIZERS, K_SCHEDULERS, K_EMA, K_RNG, K_CONFIG)


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
        remove_stale_temps(ckpt_dir)
        # a file of this step already here belongs to an abandoned timeline (a resume from an
        # older checkpoint, a rollback, a damaged file skipped): keep it, never overwrite it
        supersede(ckpt_dir, [p for s, p in step_files(ckpt_dir) if s >= step])
        write_checkpoint_file(path, state)
    except OSError as e:
        raise os_error(e, path, "save checkpoint") from e
    except RuntimeError as e:
        # torch's zip writer turns a failed write (ENOSPC...) into a RuntimeError while closing
        # the archive; the OSError that caused it is in the exception chain
        cause = find_os_error(e)
        if cause is None:
            raise CheckpointError(f"could not save checkpoint {path.name}: {e}") from e
        raise os_error(cause, path, "save checkpoint") from e
    try:
        write_text_atomic(ckpt_dir / LATEST, path.name + "\n")
    except OSError as e:
        raise os_error(e, ckpt_dir / LATEST, "update") from e
    update_best(ckpt_dir, path, step, state.get(K_VAL_LOSS), str(state.get(K_STAGE, "")))
    supersede_newer(ckpt_dir, step)
    prune(ckpt_dir, keep_last)
    return path


# --------------------------------------------------------------------------------------------
# Load / resume / list
# --------------------------------------------------------------------------------------------


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load and verify one checkpoint onto the CPU; returns the state (without K_CHECKSUM).

    Raises CheckpointError saying what is wrong: missing, empty, truncated, not a checkpoint,
    refused (holds a pickled object), missing keys, newer format, checksum mismatch.
    """
    path = Path(path)
    state = torch_load(path)
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
    files = step_files(ckpt_dir)
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
    for step, path in step_files(ckpt_dir):
        info = CheckpointInfo(path=path, step=step, is_latest=path.name == latest)
        info.is_best = best is not None and best["file"] == path.name
        try:
            info.size_bytes = path.stat().st_size
            if verify:
                state = load_checkpoint(path)
                _verify_name(path, state)
            else:
                state = torch_load(path, mmap=True)
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
