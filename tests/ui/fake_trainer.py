"""A stand-in trainer for the jobs tests: obeys the run-folder contract, trains nothing.

Invoked as `python fake_trainer.py train --voice V --run R --preset P [--set k=v] [--resume auto]
[--from X]`
(the same argv voicelab.ui.jobs builds). It holds trainer.lock, writes status.json with a
heartbeat, appends one metrics record per step, writes checkpoints/step-N.pt placeholders, obeys
request.json (pause -> exit 3) and exits 1 with an `error:` line for `--set fail=1`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time

import torch

from voicelab.training import checkpoint, runfiles
from voicelab.workspace import get_voice


def _state(step: int) -> dict:
    """A minimal but complete checkpoint state (real tensors, the trainer's keys)."""
    w = torch.full((2, 2), float(step))
    return {
        checkpoint.K_STAGE: "sovits", checkpoint.K_STEP: step, checkpoint.K_STAGE_STEP: step,
        checkpoint.K_EPOCH: 0, checkpoint.K_EPOCH_POS: step, checkpoint.K_MODELS: {"m": {"w": w}},
        checkpoint.K_OPTIMIZERS: {}, checkpoint.K_SCHEDULERS: {}, checkpoint.K_SCALER: None,
        checkpoint.K_EMA: {"m": {"w": w}}, checkpoint.K_RNG: {},
        checkpoint.K_METRICS: [{"step": step, "loss/mel": 10.0 / step}],
        checkpoint.K_CONFIG: {}, checkpoint.K_DATASET_HASH: "fake", checkpoint.K_VAL_LOSS: None,
    }


p = argparse.ArgumentParser()
p.add_argument("verb")
p.add_argument("--voice")
p.add_argument("--run")
p.add_argument("--preset")
p.add_argument("--set", action="append", default=[])
p.add_argument("--resume")
p.add_argument("--from", dest="from_value")  # a new run's initial weights: ignored here
a = p.parse_args()
sets = dict(s.split("=", 1) for s in a.set)
if sets.get("fail"):
    print("error: fake failure requested for the test", file=sys.stderr)
    sys.exit(1)
run_dir = get_voice(a.voice).run_dir(a.run)
run_dir.mkdir(parents=True, exist_ok=True)
lock = open(run_dir / runfiles.LOCK, "w")
fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
lock.write(str(os.getpid()))
lock.flush()
total = int(sets.get("steps", 1000))
delay = float(sets.get("delay", 0.05))
ck = run_dir / runfiles.CHECKPOINTS
ck.mkdir(exist_ok=True)
start = 0
if a.resume:
    found = sorted(ck.glob("step-*.pt"))
    start = int(found[-1].stem.split("-")[1]) if found else 0
runfiles.write_status(run_dir, state="starting", stage="sovits", step=start, total_steps=total)
for step in range(start + 1, total + 1):
    time.sleep(delay)
    runfiles.append_metrics(
        run_dir, {"step": step, "stage": "sovits", "loss/mel": 10.0 / step, "lr/g": 1e-4}
    )
    with open(run_dir / runfiles.LOG, "a") as f:
        f.write(f"step {step} loss {10.0 / step:.3f}\n")
    action = runfiles.read_request(run_dir)
    if action or step == total:
        checkpoint.save_checkpoint(run_dir, _state(step), keep_last=3)
        runfiles.clear_request(run_dir)
        state = {"pause": "paused", "stop": "stopped", None: "finished"}[action]
        runfiles.write_status(run_dir, state=state, stage="sovits", step=step, total_steps=total)
        sys.exit(3 if action else 0)
    runfiles.write_status(
        run_dir, state="running", stage="sovits", step=step, total_steps=total,
        eta_s=(total - step) * delay,
    )
