"""Training throughput: optimiser steps/s and samples/s per stage and preset, and the share of
step time spent outside forward/backward (data, augmentation, clipping, optimiser, EMA).

    python benchmarks/bench_train.py [--quick] [--presets tiny,small] [--steps N] [--device cpu]

Runs the real Trainer's step functions on real speech imported into a temporary voice: the first
12 sentences of ../shared/fixtures/speech/flite_slt (11 for training) where present, else
tests/assets/mini.list (3 utterances, 2 for training); one warm-up step per stage. Writes
benchmarks/results/train.json and train.md with the machine, torch version and date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.config import load_config  # noqa: E402
from voicelab.eval.machine import machine_info
from voicelab.listfile import Entry, read_list, write_list  # noqa: E402
from voicelab.training.trainer import Trainer, TrainOptions  # noqa: E402
from voicelab.workspace import get_voice  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
STEM = "train"  # "train_quick" after --quick: a quick run never replaces full results
FIXTURE_LIST = (
    Path(os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))
    / "speech"
    / "flite_slt"
    / "metadata.list"
)
MAX_SLICES = 12


def source_entries() -> tuple[list[Entry], str]:
    if FIXTURE_LIST.is_file():
        return read_list(FIXTURE_LIST)[
            :MAX_SLICES
        ], f"{FIXTURE_LIST.parent.name} ({MAX_SLICES} sentences)"
    return read_list(REPO / "tests" / "assets" / "mini.list"), "tests/assets/mini.list (3 utterances)"


class Timed(Trainer):
    """The trainer with timers around everything in a step that is not forward/backward."""

    outside = 0.0

    def _augmented(self, k, with_tokens):
        t0 = time.perf_counter()
        out = super()._augmented(k, with_tokens)
        self._sync()
        Timed.outside += time.perf_counter() - t0
        return out

    def _clip_and_step(self, opt, model, freeze):
        self._sync()
        t0 = time.perf_counter()
        out = super()._clip_and_step(opt, model, freeze)
        self._sync()
        Timed.outside += time.perf_counter() - t0
        return out

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def bench_stage(tr: Timed, stage: str, steps: int) -> dict:
    ema, model = (tr.ema_sovits, tr.sovits) if stage == "sovits" else (tr.ema_gpt, tr.gpt)
    step_fn = tr._gan_step if stage == "sovits" else tr._gpt_step
    step_fn()  # warm-up: allocator, first-call overheads
    if tr.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(tr.device)
    Timed.outside, samples, ema_time = 0.0, 0, 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        _, n = step_fn()
        t1 = time.perf_counter()
        ema.update(model)
        tr._sync()
        ema_time += time.perf_counter() - t1
        samples += n
        tr.stage_step += 1
        tr.global_step += 1
    tr._sync()
    total = time.perf_counter() - t0
    out = {
        "steps": steps,
        "steps_per_s": steps / total,
        "samples_per_s": samples / total,
        "s_per_step": total / steps,
        "share_outside_fwd_bwd": (Timed.outside + ema_time) / total,
    }
    if tr.device.type == "cuda":
        out["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(tr.device) / 2**30
    return out


def bench_preset(preset: str, steps: int, device: str, batch: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        v = get_voice("bench", base=Path(tmp)).create()
        entries = []
        for e in source_entries()[0]:
            shutil.copy(e.path, v.slices / e.path.name)
            entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
        write_list(v.dataset_list, entries)
        over = [f"train.device={device}", "train.log_every=1000000", "train.ema_decay=0.999"]
        if batch:
            over.append(f"train.batch_size={batch}")
        cfg = load_config(preset, over)
        tr = Timed(v, cfg, TrainOptions(run="bench", tensorboard=False))
        tr.setup()
        try:
            tr._enter_stage("sovits")
            res = {"batch_size": cfg.train.batch_size, "sovits": bench_stage(tr, "sovits", steps)}
            tr._prepare_gpt_stage()
            res["gpt"] = bench_stage(tr, "gpt", steps)
        finally:
            tr.cleanup()
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny only, 3 steps")
    ap.add_argument("--presets", default="tiny,small")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    ap.add_argument("--batch-size", type=int, default=0, help="override train.batch_size")
    args = ap.parse_args()
    global STEM
    STEM = "train_quick" if args.quick else "train"
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = ["tiny"] if args.quick else args.presets.split(",")
    steps = 3 if args.quick else args.steps
    machine = machine_info() | {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
    }
    results = {p: bench_preset(p, steps, args.device, args.batch_size or None) for p in presets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{STEM}.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=2) + "\n"
    )
    rows = [
        "| preset | stage | batch | s/step | steps/s | samples/s | outside fwd/bwd | peak GPU GiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p, r in results.items():
        for stage in ("sovits", "gpt"):
            s = r[stage]
            mem = f"{s['peak_gpu_mem_gib']:.2f}" if "peak_gpu_mem_gib" in s else "-"
            rows.append(
                f"| {p} | {stage} | {r['batch_size']} | {s['s_per_step']:.3f} | {s['steps_per_s']:.2f} "
                f"| {s['samples_per_s']:.2f} | {100 * s['share_outside_fwd_bwd']:.1f}% | {mem} |"
            )
    md = (
        "# Training throughput (benchmarks/bench_train.py)\n\n"
        + "".join(f"- {k}: {v}\n" for k, v in machine.items())
        + f"\nData: {source_entries()[1]}, one held out; {steps} timed steps per "
        "stage after one warm-up step. 'outside fwd/bwd' = data + augmentation + clipping + "
        "optimiser + EMA time over step time.\n\n" + "\n".join(rows) + "\n"
    )
    (RESULTS / f"{STEM}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
