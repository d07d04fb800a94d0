"""Checkpoint save / load time and size for the small and base presets; resume latency.

    python benchmarks/bench_checkpoint.py [--quick] [--presets small,base] [--repeat 3]
                                          [--resume-latency] [--fixtures ../shared/fixtures]

Save/load: the models come from voicelab.models.build.build_models(cfg); the state is the one
a stage-1 checkpoint holds (SoVITS + discriminator + GPT weights, both AdamW optimisers with
their moment buffers populated, EMA of SoVITS, GradScaler, RNG, config), saved with
voicelab.training.checkpoint.save_checkpoint into a temporary run folder on the same disk as
the repository. "save" includes the CRC-32 digest, torch.save, fsync, rename, folder fsync,
LATEST and pruning; "load" is load_checkpoint (torch.load weights_only + digest verification);
"digest" is the verification hash alone.

--resume-latency: trains the tiny preset on the fixture voice until its first checkpoint, then
times `python -m voicelab train --resume auto` from process start to its first new step in
metrics.jsonl (what a person waits after pressing Resume). --quick: small only, 2 repeats.
Writes benchmarks/results/checkpoint.json and checkpoint.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.config import config_to_dict, load_config  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.models.build import build_models  # noqa: E402
from voicelab.training import checkpoint as ck  # noqa: E402
from voicelab.training.ema import EMA  # noqa: E402
from voicelab.training.optim import build_gan_optimizers  # noqa: E402
from voicelab.training.rng import capture_rng  # noqa: E402

OUT = REPO / "benchmarks" / "results"
STEM = "checkpoint"  # "checkpoint_quick" after --quick: a quick run never replaces full results


def machine() -> dict:
    return machine_info() | {"device": "cpu"}


def stage1_state(preset: str) -> tuple[dict, int]:
    """A full stage-1 checkpoint state for `preset`, and its parameter count."""
    cfg = load_config(preset, ["train.device=cpu"])
    torch.manual_seed(0)
    models = build_models(cfg)
    opt_g, opt_d = build_gan_optimizers(models.sovits, models.disc, cfg.train)
    for opt in (opt_g, opt_d):  # one zero-gradient step creates every moment buffer
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
        opt.step()
        opt.zero_grad(set_to_none=True)
    ema = EMA(models.sovits, decay=cfg.train.ema_decay)
    scaler = torch.amp.GradScaler("cpu")
    n_params = sum(p.numel() for m in (models.sovits, models.disc, models.gpt) for p in m.parameters())
    state = {
        ck.K_STAGE: "sovits", ck.K_STEP: 1000, ck.K_STAGE_STEP: 1000, ck.K_EPOCH: 10,
        ck.K_EPOCH_POS: 3,
        ck.K_MODELS: {k: getattr(models, k).state_dict() for k in ("sovits", "disc", "gpt")},
        ck.K_OPTIMIZERS: {"g": opt_g.state_dict(), "d": opt_d.state_dict()},
        ck.K_SCHEDULERS: {"g": {"step": 1000}, "d": {"step": 1000}},
        ck.K_SCALER: scaler.state_dict(), ck.K_EMA: {"sovits": ema.state_dict()},
        ck.K_RNG: capture_rng(), ck.K_METRICS: [{"step": 1000, "loss_mel": 1.0}],
        ck.K_CONFIG: config_to_dict(cfg), ck.K_DATASET_HASH: "bench", ck.K_VAL_LOSS: None,
    }  # fmt: skip
    return state, n_params


def bench_preset(preset: str, repeat: int) -> dict:
    t = time.perf_counter()
    state, n_params = stage1_state(preset)
    build_s = time.perf_counter() - t
    saves, loads, digests = [], [], []
    with tempfile.TemporaryDirectory(dir=REPO.parent, prefix=".bench-ckpt-") as tmp:
        run = Path(tmp)
        for i in range(repeat):
            state[ck.K_STEP] = 1000 + i
            t = time.perf_counter()
            path = ck.save_checkpoint(run, state, keep_last=1)
            saves.append(time.perf_counter() - t)
            t = time.perf_counter()
            loaded = ck.load_checkpoint(path)
            loads.append(time.perf_counter() - t)
            t = time.perf_counter()
            ck.state_digest(loaded)
            digests.append(time.perf_counter() - t)
            del loaded
        size = path.stat().st_size
    r = {
        "preset": preset, "parameters": n_params, "size_mb": round(size / 1e6, 1),
        "save_s": round(statistics.median(saves), 3), "load_s": round(statistics.median(loads), 3),
        "digest_s": round(statistics.median(digests), 3), "repeat": repeat,
        "save_mb_per_s": round(size / 1e6 / statistics.median(saves), 1),
        "build_s": round(build_s, 1),
    }  # fmt: skip
    print(json.dumps(r), flush=True)
    return r


def _log_times(log: Path, since: float) -> dict[str, float]:
    """Seconds after `since` at which train.log reached the resume milestones."""
    import datetime as _dt

    # "resuming from" is logged once find_resume has loaded and verified the checkpoint (after
    # the models are built); "stage ..." once everything is restored and the loop starts
    marks = {"data_loaded_s": "training and", "checkpoint_verified_s": "resuming from",
             "loop_started_s": "stage "}  # fmt: skip
    out: dict[str, float] = {}
    for line in log.read_text().splitlines():
        try:
            t = _dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        for key, text in marks.items():
            if t >= since - 0.01 and key not in out and text in line:
                out[key] = round(t - since, 2)
    return out


def resume_latency(fixtures: Path) -> dict:
    """Seconds from `train --resume auto` process start to its first new step (tiny preset),
    with the milestones in between and the CPU time the resumed process used."""
    import resource
    import signal
    import subprocess

    sys.path.insert(0, str(REPO / "benchmarks"))
    from kill_resume import make_voice, read_steps, run_path, train_cmd  # the kill test's setup

    with tempfile.TemporaryDirectory(prefix="vl-resume-") as tmp:
        env, voice = make_voice(Path(tmp), fixtures)
        first = subprocess.run(train_cmd(voice, steps=(3, 0)), env=env, cwd=REPO, capture_output=True, text=True)
        if first.returncode != 0:
            raise SystemExit(f"first training run failed:\n{first.stderr[-2000:]}")
        done = max(read_steps(env, voice))
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_wall, t0 = time.time(), time.perf_counter()
        p = subprocess.Popen(train_cmd(voice, steps=(6, 0), resume=True), env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while time.perf_counter() - t0 < 600:
            steps = read_steps(env, voice)
            if steps and max(steps) > done:
                latency = time.perf_counter() - t0
                break
            if p.poll() is not None:
                raise SystemExit(f"resumed run ended without a new step (exit {p.returncode})")
            time.sleep(0.02)
        else:
            raise SystemExit("no new step within 600 s")
        p.send_signal(signal.SIGTERM)  # it saves and exits: CPU below includes that save
        p.wait()
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        marks = _log_times(run_path(env, voice) / "train.log", t_wall)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"preset": "tiny", "from_step": done, "process_start_to_first_new_step_s": round(latency, 2),
            **marks, "cpu_s_of_resumed_process": round(cpu, 1),
            "load_average_1min": round(os.getloadavg()[0], 1)}  # fmt: skip


def write_results(results: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{STEM}.json").write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    lines = [
        "# Checkpoint save / load",
        "",
        f"{m['date']} · {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads) · "
        f"torch {m['torch']} · {m['device']}",
        "",
        "Stage-1 state (SoVITS + discriminator + GPT weights, both AdamW optimisers, SoVITS EMA, "
        "RNG, config). Save = digest + torch.save + fsync + rename + LATEST; load = torch.load "
        "(weights_only) + digest check. Medians.",
        "",
        "| preset | parameters | file size | save | load (verified) | of which digest | save rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["presets"]:
        lines.append(
            f"| {r['preset']} | {r['parameters'] / 1e6:.1f} M | {r['size_mb']:.0f} MB | "
            f"{r['save_s']:.2f} s | {r['load_s']:.2f} s | {r['digest_s']:.2f} s | "
            f"{r['save_mb_per_s']:.0f} MB/s |"
        )
    if results.get("resume"):
        r = results["resume"]
        lines += ["", f"Resume latency (`python -m voicelab train --resume auto`, {r['preset']} "
                  f"preset, from step {r['from_step']}, load average {r['load_average_1min']}): "
                  f"{r['process_start_to_first_new_step_s']:.1f} s from process start to the "
                  f"first new step; data loaded at {r.get('data_loaded_s', '?')} s, models built "
                  f"and checkpoint verified at {r.get('checkpoint_verified_s', '?')} s, state "
                  f"restored and loop started at {r.get('loop_started_s', '?')} s; the process used "
                  f"{r['cpu_s_of_resumed_process']} CPU-seconds including one save."]  # fmt: skip
    (OUT / f"{STEM}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small preset only, 2 repeats")
    ap.add_argument("--presets", default="small,base",
                    help='comma-separated; "" keeps the rows of the last results file')
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resume-latency", action="store_true")
    ap.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures")
    args = ap.parse_args()
    global STEM
    STEM = "checkpoint_quick" if args.quick else "checkpoint"
    presets = ["small"] if args.quick else [p for p in args.presets.split(",") if p]
    repeat = 2 if args.quick else args.repeat
    results = {"machine": machine(), "presets": [bench_preset(p, repeat) for p in presets]}
    if not presets and (OUT / f"{STEM}.json").is_file():  # --presets "": keep earlier rows
        previous = json.loads((OUT / f"{STEM}.json").read_text())
        results["presets"] = previous.get("presets", [])
        results["machine_presets"] = previous.get("machine_presets", previous.get("machine"))
    if args.resume_latency:
        results["resume"] = resume_latency(args.fixtures)
        print(json.dumps(results["resume"]))
    write_results(results)
    print((OUT / f"{STEM}.md").read_text())


if __name__ == "__main__":
    main()
