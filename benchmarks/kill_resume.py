"""Reliability: SIGKILL a real training process at random moments, resume, repeat.

    python benchmarks/kill_resume.py [--kills 50] [--seed N] [--steps 6,6] [--quick]

A trainer (`python -m voicelab train`, tiny preset, a checkpoint every step, 6 real utterances
from tests/assets) is killed with SIGKILL at a random moment: during start-up, inside a step, or
inside a checkpoint save. After every kill the script checks that
  - every file under a final `step-*.pt` name loads and verifies (never half-written),
  - `find_resume` takes the newest file without skipping anything,
and restarts the trainer with `--resume auto`. A run that reaches its last step is compared with
an uninterrupted reference run: final checkpoint (weights, optimisers, EMA, RNG, ...) and every
logged loss / LR must be bit-identical. Then a new run starts, until --kills kills are done.

Writes benchmarks/results/recovery.json and recovery.md (counts and outcomes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.training import checkpoint as ck  # noqa: E402
from voicelab.training import runfiles  # noqa: E402

OUT = REPO / "benchmarks" / "results"
DATA = REPO / "tests" / "assets"
VOICE = "mini"


def make_voice(home: Path, fixtures: Path | None = None) -> tuple[dict, str]:
    """A sliced voice of 6 real utterances under `home`; returns (env for trainers, voice)."""
    slices = home / VOICE / "slices"
    slices.mkdir(parents=True)
    lines = []
    for copy in ("a", "b"):
        for line in (DATA / "mini.list").read_text().splitlines():
            name, rest = line.split("|", 1)
            shutil.copy(DATA / name, slices / f"{copy}_{name}")
            lines.append(f"{copy}_{name}|{rest}")
    (slices / "dataset.list").write_text("\n".join(lines) + "\n")
    env = dict(
        os.environ, VOICELAB_HOME=str(home), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )  # fmt: skip
    return env, VOICE


# The `train` verb alone, as `python -m voicelab train` runs it, without importing the other
# verbs' modules (audio pipeline, synthesis): on a busy 2-core machine that halves start-up, so
# more of the kills land inside steps and saves rather than inside imports.
TRAIN_ONLY = (
    "import argparse, sys; from voicelab.commands import train; "
    "p = argparse.ArgumentParser(); train.register(p.add_subparsers()); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def train_cmd(voice: str, steps: tuple[int, int], resume: bool = False, run: str = "r",
              save_every: int = 1, full_cli: bool = True) -> list[str]:  # fmt: skip
    sets = [
        "train.device=cpu", "train.batch_size=1", f"train.sovits_steps={steps[0]}",
        f"train.gpt_steps={steps[1]}", f"train.save_every={save_every}", "train.eval_every=3",
        "train.log_every=1", "train.save_every_minutes=0", "train.keep_last=2",
    ]  # fmt: skip
    launcher = ["-m", "voicelab"] if full_cli else ["-c", TRAIN_ONLY]
    cmd = [sys.executable, *launcher, "train", "--voice", voice, "--preset", "tiny",
           "--run", run, "--no-tensorboard"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    return cmd + (["--resume", "auto"] if resume else [])


def run_path(env: dict, voice: str, run: str = "r") -> Path:
    return Path(env["VOICELAB_HOME"]) / voice / "runs" / run


def read_steps(env: dict, voice: str, run: str = "r") -> list[int]:
    """Steps of the training records (validation records carry no losses)."""
    records = runfiles.read_metrics(run_path(env, voice, run))
    return [m["step"] for m in records if any(k.startswith("loss/") for k in m)]


def compare_runs(ref: Path, other: Path, total: int) -> list[str]:
    """Differences between two finished runs (empty = bit-identical)."""
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from test_recovery import differences  # the same comparison the tests make

    a = ck.load_checkpoint(ref / "checkpoints" / ck.checkpoint_name(total))
    b = ck.load_checkpoint(other / "checkpoints" / ck.checkpoint_name(total))
    a[ck.K_EXTRA].pop("run", None), b[ck.K_EXTRA].pop("run", None)
    diffs = [d for k in a if k not in (ck.K_TIME, ck.K_METRICS, ck.K_CONFIG)
             for d in differences(a[k], b[k], k)]  # fmt: skip

    def logged(run: Path) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for m in runfiles.read_metrics(run):  # a step redone after a kill: the last one counts
            out.setdefault(m["step"], {}).update(
                {k: v for k, v in m.items() if k.startswith(("loss/", "lr/", "grad_norm/", "acc/", "val/"))})
        return out

    la, lb = logged(ref), logged(other)
    diffs += [f"metrics of step {s}" for s in sorted(set(la) | set(lb)) if la.get(s) != lb.get(s)]
    return diffs


def check_after_kill(run: Path) -> dict:
    """What a kill left behind; raises AssertionError on a broken promise."""
    files = sorted(run.glob("checkpoints/step-*.pt"))
    for p in files:
        ck.load_checkpoint(p)  # a half-written file under a final name would fail here
    point = ck.find_resume(run)
    if point is not None:
        assert not point.skipped, point.skipped
        assert point.path == files[-1]
    return {
        "newest": point.state[ck.K_STEP] if point else 0,
        "temp_files": len(list(run.glob("checkpoints/.*.tmp"))),
        "status": (runfiles.read_status(run) or {}).get("state"),
    }


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "device": "cpu",
            "python": platform.python_version(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip


def snapshot_code(dest: Path) -> Path:
    """Copy voicelab/, presets/ and assets/ so that edits to the checkout during a long run
    cannot change the code between a checkpoint and its resume (or the reference)."""
    for name in ("voicelab", "presets", "assets"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def kill_worker(wid: int, args: argparse.Namespace, ctx: dict, res: dict, lock: threading.Lock) -> None:
    """Start / kill / check / resume runs k<wid>-<n> until the kill target or the time limit."""
    rng = random.Random(ctx["seed"] * 1000 + wid)
    env, voice, steps, total, step_s = ctx["env"], ctx["voice"], ctx["steps"], ctx["total"], ctx["step_s"]
    run_no = 0
    while True:
        with lock:
            if res["kills"] >= ctx["target"] or res["failures"] or time.time() > ctx["deadline"]:
                return
        run = f"k{wid}-{run_no}"
        rp = run_path(env, voice, run)
        resume = rp.exists()
        before = max(read_steps(env, voice, run), default=0)
        err_path = ctx["tmp"] / f"{run}.stderr"
        with open(err_path, "a") as err_file:  # a file: a full pipe would block the trainer
            p = subprocess.Popen(train_cmd(voice, steps, resume, run, full_cli=args.full_cli), env=env,
                                 cwd=ctx["code"], stdout=subprocess.DEVNULL, stderr=err_file)  # fmt: skip
        # a random moment: 15% during start-up, else 0-1.5 steps after a new step is logged
        during_startup = rng.random() < 0.15
        if not during_startup:
            want = before + rng.randint(1, 3)
            while p.poll() is None and max(read_steps(env, voice, run), default=0) < want:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 1.5 * step_s))
        else:
            time.sleep(rng.uniform(0.0, 8.0))
        if p.poll() is None:
            status = (runfiles.read_status(rp) or {}).get("state")
            p.send_signal(signal.SIGKILL)
            p.wait()
            try:
                after = check_after_kill(rp)
                error = None
            except Exception as e:  # recorded, never hidden: the report shows it
                after, error = None, f"{type(e).__name__}: {e}"
            with lock:
                res["kills"] += 1
                res["resumes"] += int(resume)
                if error:
                    res["half_written_files"] += 1
                    res["failures"].append(f"kill {res['kills']} (run {run}): {error}")
                    return
                res["kills_during_startup"] += int(during_startup and max(read_steps(env, voice, run), default=0) == before)
                res["kills_while_saving"] += int(status == "saving")
                res["kills_with_temp_file"] += int(after["temp_files"] > 0)
                lost = max(read_steps(env, voice, run), default=0) - after["newest"]
                res["steps_lost_max"] = max(res["steps_lost_max"], lost)
                print(f"kill {res['kills']}: run {run}, newest intact step {after['newest']}, "
                      f"status {status}, temp files {after['temp_files']}", flush=True)  # fmt: skip
            continue
        p.wait()
        if p.returncode != 0:
            with lock:
                res["resume_failures"] += 1
                res["failures"].append(f"run {run} exited {p.returncode}: {err_path.read_text()[-500:]}")
            return
        diffs = compare_runs(run_path(env, voice, "ref"), rp, total)
        with lock:
            res["resumes"] += int(resume)
            res["runs_completed"] += 1
            res["runs_bit_identical"] += int(not diffs)
            if diffs:
                res["failures"].append(f"run {run} differs from the reference: {diffs[:5]}")
        print(f"run {run} finished; bit-identical to the reference: {not diffs}", flush=True)
        run_no += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--steps", default="6,6", help="SoVITS,GPT steps of each run")
    ap.add_argument("--workers", type=int, default=1, help="runs killed in parallel")
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop starting new trainers after this long (0 = no limit)")
    ap.add_argument("--quick", action="store_true", help="5 kills")
    ap.add_argument("--full-cli", action="store_true",
                    help="start trainers as `python -m voicelab train` (slower start-up)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**31
    steps = tuple(int(x) for x in args.steps.split(","))
    total = sum(steps)
    t_start = time.time()
    res = {"seed": seed, "steps_per_run": total, "workers": args.workers, "kills": 0,
           "kills_during_startup": 0, "kills_with_temp_file": 0, "kills_while_saving": 0,
           "resumes": 0, "resume_failures": 0, "half_written_files": 0, "steps_lost_max": 0,
           "runs_completed": 0, "runs_bit_identical": 0, "failures": []}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vl-kill-") as tmp:
        code = snapshot_code(Path(tmp) / "code")
        env, voice = make_voice(Path(tmp) / "ws")
        env["PYTHONPATH"] = str(code)
        t = time.time()
        ref = subprocess.run(train_cmd(voice, steps, run="ref", full_cli=args.full_cli), env=env,
                             cwd=code, capture_output=True, text=True)  # fmt: skip
        if ref.returncode != 0:
            raise SystemExit(f"reference run failed:\n{ref.stderr[-3000:]}")
        ctx = {
            "seed": seed, "env": env, "voice": voice, "steps": steps, "total": total,
            "step_s": (time.time() - t) / (total + 10),  # rough; start-up counts as ~10 steps
            "target": 5 if args.quick else args.kills, "tmp": Path(tmp), "code": code,
            "deadline": t_start + args.max_minutes * 60 if args.max_minutes > 0 else float("inf"),
        }  # fmt: skip
        lock = threading.Lock()
        workers = [threading.Thread(target=kill_worker, args=(w, args, ctx, res, lock))
                   for w in range(args.workers)]  # fmt: skip
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    res["wall_s"] = round(time.time() - t_start, 1)
    res["machine"] = machine()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "recovery.json").write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    md = [
        "# Kill-and-resume reliability",
        "",
        f"{m['date']} · {m['cpu']} ({m['cores']} cores) · torch {m['torch']} · tiny preset, "
        f"{total} steps per run, a checkpoint every step · seed {seed} · {args.workers} worker(s)",
        "",
        "| SIGKILLs | during start-up | while saving (status) | temp file present after | resumes | "
        "resume failures | half-written files | runs completed | bit-identical to reference |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {res['kills']} | {res['kills_during_startup']} | {res['kills_while_saving']} | "
        f"{res['kills_with_temp_file']} | {res['resumes']} | {res['resume_failures']} | "
        f"{res['half_written_files']} | {res['runs_completed']} | {res['runs_bit_identical']} |",
        "",
        f"Most steps redone after a kill: {res['steps_lost_max']} (the step in flight). "
        f"Wall time {res['wall_s']:.0f} s.",
    ]
    if res["failures"]:
        md += ["", "Failures:", *[f"- {f}" for f in res["failures"]]]
    (OUT / "recovery.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(1 if res["failures"] else 0)


if __name__ == "__main__":
    main()
