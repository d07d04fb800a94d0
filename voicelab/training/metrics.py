"""What the trainer reports: metrics.jsonl, status.json, train.log (+ TensorBoard when installed).

All files go through voicelab/training/runfiles.py, which the UI reads. Only rank 0 writes
(`RunReporter(..., enabled=False)` on other ranks makes every call a no-op), so a DDP run produces
one set of files.

    rep = RunReporter(run_dir, enabled=info.is_main)
    rep.log("stage 1: SoVITS, 2000 steps")
    rep.metrics({"step": 10, "stage": "sovits", "loss/mel": 1.2, ...})
    rep.status("running", stage="sovits", step=10, total_steps=3000, ...)
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from voicelab.training import runfiles

log = logging.getLogger("voicelab.train")


class Meter:
    """Running means of scalar losses between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            v = float(v)
            if math.isfinite(v):  # a skipped NaN step is counted elsewhere, not averaged in
                self.sums[k] += v
                self.counts[k] += 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in sorted(self.sums) if self.counts[k]}

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


class ThroughputClock:
    """Samples/s and steps/s over a log interval, and an ETA from a smoothed step time."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.samples = 0
        self.steps = 0
        self.step_time: float | None = None  # seconds per optimiser step, exponential average

    def tick(self, samples: int) -> None:
        self.samples += samples
        self.steps += 1

    def rates(self) -> dict[str, float]:
        """{'samples_per_s', 'steps_per_s'} since the last call (then restarts the interval)."""
        now = time.perf_counter()
        dt = max(now - self.t0, 1e-9)
        out = {"samples_per_s": self.samples / dt, "steps_per_s": self.steps / dt}
        if self.steps:
            st = dt / self.steps
            # smooth so one slow save or eval does not make the ETA jump
            self.step_time = st if self.step_time is None else 0.7 * self.step_time + 0.3 * st
        self.t0, self.samples, self.steps = now, 0, 0
        return out

    def eta(self, steps_left: int) -> float | None:
        return None if self.step_time is None else max(0.0, steps_left * self.step_time)


class RunReporter:
    """Writes the run folder's report files (rank 0 only) and mirrors them to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.started = time.time()
        self._handler: logging.Handler | None = None
        self._tb: Any = None
        self.last_status: dict[str, Any] = {}
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.run_dir / runfiles.LOG, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(self._handler)
        log.setLevel(logging.INFO)
        if tensorboard:
            self._tb = _open_tensorboard(self.run_dir / "tensorboard")

    def log(self, message: str, level: int = logging.INFO) -> None:
        """One line in train.log (and on the console through the root logger)."""
        if self.enabled:
            log.log(level, message)

    def warn(self, message: str) -> None:
        self.log(message, logging.WARNING)

    def metrics(self, record: dict[str, Any]) -> None:
        """Append one record to metrics.jsonl; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        record = {"time": time.time(), "wall_s": time.time() - self.started, **record}
        runfiles.append_metrics(self.run_dir, record)
        if self._tb is not None:
            step = int(record.get("step", 0))
            for k, v in record.items():
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "step":
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def status(self, state: str, **fields: Any) -> None:
        """Rewrite status.json (state, stage, step, total_steps, stage_step, eta_s, message...)."""
        if not self.enabled:
            return
        self.last_status = {"state": state, **fields}
        runfiles.write_status(self.run_dir, **self.last_status)

    def heartbeat(self, min_interval_s: float = 5.0) -> None:
        """Refresh status.json's heartbeat when it is older than `min_interval_s` (long evals)."""
        if self.enabled and self.last_status:
            st = runfiles.read_status(self.run_dir) or {}
            if time.time() - float(st.get("heartbeat", 0)) >= min_interval_s:
                runfiles.write_status(self.run_dir, **self.last_status)

    def close(self) -> None:
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _open_tensorboard(folder: Path) -> Any:
    """A SummaryWriter when tensorboard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: metrics.jsonl is the record of truth
        return None
    return SummaryWriter(log_dir=str(folder))


def status_fields(
    progress: Any, plan: list[str], totals: dict[str, int], order: tuple[str, ...], run: str,
    clock: ThroughputClock | None,
) -> dict[str, Any]:
    """status.json's numbers: `step` / `total_steps` count over the planned stages (`plan`, in
    stage `order`) of this invocation; `progress` is the trainer's state.Progress."""
    done = total = 0
    for s in plan:
        total += totals[s]
        if order.index(s) < order.index(progress.stage):
            done += totals[s]
        elif s == progress.stage:
            done += min(progress.stage_step, totals[s])
    return {
        "stage": progress.stage, "step": done, "total_steps": total,
        "stage_step": progress.stage_step, "stage_total": totals[progress.stage],
        "global_step": progress.global_step, "epoch": progress.epoch, "run": run,
        "skipped_steps": progress.skipped_steps, "rollbacks": progress.rollbacks,
        "eta_s": clock.eta(total - done) if clock is not None else None,
    }  # fmt: skip


def log_record(
    stage: str, progress: Any, means: dict[str, float], lrs: dict[str, float],
    rates: dict[str, float],
) -> dict[str, Any]:
    """One metrics.jsonl record of a log interval (loss means, LRs, throughput, counters)."""
    return {"step": progress.global_step, "stage": stage, "stage_step": progress.stage_step,
            "epoch": progress.epoch, **means, **lrs, **rates,
            "skipped_steps": progress.skipped_steps}  # fmt: skip


def log_line(stage: str, stage_step: int, total: int, record: dict[str, Any]) -> str:
    """The train.log line of a log interval: losses, the highest LR, throughput."""
    shown = " ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in record.items()
                     if k.startswith("loss/"))  # fmt: skip
    lr = max((v for k, v in record.items() if k.startswith("lr/")), default=0)
    return (f"[{stage}] step {stage_step}/{total} {shown} lr={lr:.3g} "
            f"{record['samples_per_s']:.1f} samples/s")  # fmt: skip
