"""Training throughput: optimiser steps/s and samples/s per stage and preset, and the share of
step time spent outside forward/backward (data, augmentation, clipping, optimiser, the bad-step
guard, EMA).

    python benchmarks/bench_train.py [--quick] [--presets tiny,small,cpu,tiny-world] [--steps N]
                                     [--device cpu] [--threads N] [--batch-size N]

Runs what the trainer runs per step, from its own rooms: the data and models by model kind
(training/setup.py), the stage's modules and step function (training/steps.py: build_stage,
step_for, StepEnv), the batches in the resumable order (training/feed.py: BatchFeed), the token
hand-over between the stages (handover.extract_for), and around each step what
Trainer._run_stage adds: the buffer snapshot, the non-finite-weights check and the EMA update.
The world path (model.acoustic = "world": cpu, the default preset, and tiny-world) aligns and
analyses the slices first; that is not timed.

Data: real speech imported into a temporary voice: the first 12 sentences of
../shared/fixtures/speech/flite_slt (11 for training) where present, else tests/assets/mini.list
(3 utterances, 2 for training); one warm-up step per stage. Writes benchmarks/results/train.json
and train.md (train_quick.* after --quick) with the machine, torch version and date; the Train
tab's time estimate reads results[preset][stage]["s_per_step"] and results[preset]["batch_size"].
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.config import Config, load_config  # noqa: E402
from voicelab.devices import resolve_device  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.listfile import Entry, read_list, write_list  # noqa: E402
from voicelab.training import setup as run_setup  # noqa: E402
from voicelab.training import steps  # noqa: E402
from voicelab.training.ema import EMA  # noqa: E402
from voicelab.training.feed import BatchFeed  # noqa: E402
from voicelab.training.handover import extract_for  # noqa: E402
from voicelab.training.rng import seed_everything  # noqa: E402
from voicelab.training.schedules import Schedule, set_lr  # noqa: E402
from voicelab.training.state import Progress  # noqa: E402
from voicelab.training.steps import StepEnv  # noqa: E402
from voicelab.workspace import get_voice  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
FIXTURE_LIST = (
    Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))
    / "speech"
    / "flite_slt"
    / "metadata.list"
)
MAX_SLICES = 12
FULL_PRESETS = "tiny,small,cpu,tiny-world"
QUICK_PRESETS = "tiny,tiny-world,cpu"


def source_entries() -> tuple[list[Entry], str]:
    if FIXTURE_LIST.is_file():
        return read_list(FIXTURE_LIST)[:MAX_SLICES], f"{FIXTURE_LIST.parent.name} ({MAX_SLICES} sentences)"
    return read_list(REPO / "tests" / "assets" / "mini.list"), "tests/assets/mini.list (3 utterances)"


class Timer:
    """Seconds spent in the parts of a step that are not forward/backward (synchronised on CUDA,
    so that queued kernels are charged to the part that queued them)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.outside, self.guard, self.ema = device, 0.0, 0.0, 0.0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def around(self, fn: Callable[..., Any], field: str = "outside") -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            self.sync()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            self.sync()
            setattr(self, field, getattr(self, field) + time.perf_counter() - t0)
            return out

        return timed


def bench_stage(
    stage: str, cfg: Config, models: Any, feed: BatchFeed, progress: Progress, n_steps: int,
    device: torch.device, amp: torch.dtype | None, scaler: torch.amp.GradScaler,
) -> tuple[dict[str, float], EMA]:
    """Time n_steps optimiser steps of `stage` after one warm-up step. Returns (figures, EMA)."""
    modules = steps.build_stage(stage, cfg, models.sovits, models.disc, models.gpt, lambda m: m)
    step_fn = steps.step_for(cfg, stage)
    ema = EMA(modules.model, cfg.train.ema_decay)
    schedule = Schedule.from_config(cfg.train, cfg.train.sovits_steps if stage == "sovits" else cfg.train.gpt_steps)
    timer = Timer(device)
    batch = timer.around(lambda k: feed.augmented(k, with_tokens=stage == "gpt"))
    clip = steps.clip_and_step
    steps.clip_and_step = timer.around(clip)  # the step functions look it up per call
    progress.stage, progress.stage_step, progress.epoch, progress.epoch_pos = stage, 0, 0, 0
    feed.reset()

    def one_step() -> int:
        for opt in modules.optimizers.values():
            set_lr(opt, schedule(progress.stage_step))
        env = StepEnv(cfg, device, scaler, amp, progress.stage_step, batch)
        # what the trainer's loop does around the step: the guard against a bad step
        saved = timer.around(steps.snapshot, "guard")(modules)
        result = step_fn(env, modules)
        if result.bad:
            steps.restore(modules, saved)
        finite = timer.around(steps.weights_finite, "guard")(modules)
        if not result.bad and finite:
            timer.around(ema.update, "ema")(modules.model)
        progress.stage_step += 1
        progress.global_step += 1
        return result.samples

    try:
        one_step()  # warm-up: allocator, first-call overheads
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timer.outside = timer.guard = timer.ema = 0.0
        samples = 0
        timer.sync()
        t0 = time.perf_counter()
        for _ in range(n_steps):
            samples += one_step()
        timer.sync()
        total = time.perf_counter() - t0
    finally:
        steps.clip_and_step = clip
    out = {
        "steps": n_steps,
        "steps_per_s": n_steps / total,
        "samples_per_s": samples / total,
        "s_per_step": total / n_steps,
        "share_outside_fwd_bwd": (timer.outside + timer.guard + timer.ema) / total,
        "guard_ms_per_step": 1000 * timer.guard / n_steps,
    }
    if device.type == "cuda":
        out["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out, ema


def bench_preset(preset: str, n_steps: int, device: str, batch: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        v = get_voice("bench", base=Path(tmp)).create()
        entries = []
        for e in source_entries()[0]:
            shutil.copy(e.path, v.slices / e.path.name)
            entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
        write_list(v.dataset_list, entries)
        over = [f"train.device={device}", "train.ema_decay=0.999"]
        if batch:
            over.append(f"train.batch_size={batch}")
        cfg = load_config(preset, over)
        dev = resolve_device(cfg.train.device)
        seed_everything(cfg.train.seed)
        t0 = time.perf_counter()
        data = run_setup.load_data(v, cfg, lambda msg: print(f"  {msg}", file=sys.stderr))
        models = run_setup.build_on_device(cfg, data, dev)
        load_s = time.perf_counter() - t0
        amp, scaler = run_setup.precision(cfg, dev, lambda msg: print(f"  {msg}", file=sys.stderr))
        progress = Progress()
        feed = BatchFeed(data, cfg.train, 0, 1, dev, progress)
        res: dict[str, Any] = {"batch_size": cfg.train.batch_size, "acoustic": getattr(cfg.model, "acoustic", "hifigan"),
                               "train_slices": len(data.train), "data_and_models_s": load_s}  # fmt: skip
        res["sovits"], ema = bench_stage("sovits", cfg, models, feed, progress, n_steps, dev, amp, scaler)
        tokens, styles = extract_for(models.sovits, ema, data, cfg, dev)  # the hand-over
        data.set_tokens(tokens, styles)
        res["gpt"], _ = bench_stage("gpt", cfg, models, feed, progress, n_steps, dev, amp, scaler)
        print(f"{preset}: sovits {res['sovits']['s_per_step']:.3f} s/step, gpt "
              f"{res['gpt']['s_per_step']:.3f} s/step", file=sys.stderr)
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_PRESETS}, 3 steps")
    ap.add_argument("--presets", default=FULL_PRESETS)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    ap.add_argument("--batch-size", type=int, default=0, help="override train.batch_size")
    args = ap.parse_args()
    stem = "train_quick" if args.quick else "train"  # a quick run never replaces full results
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = (QUICK_PRESETS if args.quick else args.presets).split(",")
    n_steps = 3 if args.quick else args.steps
    machine = machine_info() | {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
    }
    results = {p: bench_preset(p, n_steps, args.device, args.batch_size or None) for p in presets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=2) + "\n"
    )
    rows = [
        "| preset | model | stage | batch | s/step | steps/s | samples/s | outside fwd/bwd "
        "| guard ms/step | peak GPU GiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p, r in results.items():
        for stage in ("sovits", "gpt"):
            s = r[stage]
            mem = f"{s['peak_gpu_mem_gib']:.2f}" if "peak_gpu_mem_gib" in s else "-"
            rows.append(
                f"| {p} | {r['acoustic']} | {stage} | {r['batch_size']} | {s['s_per_step']:.3f} "
                f"| {s['steps_per_s']:.2f} | {s['samples_per_s']:.2f} "
                f"| {100 * s['share_outside_fwd_bwd']:.1f}% | {s['guard_ms_per_step']:.1f} | {mem} |"
            )
    md = (
        "# Training throughput (benchmarks/bench_train.py)\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in machine.items())
        + f"\nData: {source_entries()[1]}, one held out (the world path drops clips it cannot "
        f"align); {n_steps} timed steps per stage after one warm-up step. 'outside fwd/bwd' = "
        "data + augmentation + clipping + optimiser + guard + EMA time over step time; 'guard' = "
        "the trainer's per-step buffer snapshot and non-finite-weights check. stage 'sovits' is "
        "stage 1 of either model kind (hifigan: SoVITS + discriminator; world: WorldAcoustic).\n\n"
        + "\n".join(rows) + "\n"
    )
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
