"""Interruption recovery end to end: real `python -m voicelab train` processes, tiny preset.

One straight run is the reference. Every other run is interrupted (SIGTERM, Ctrl-C, a pause
request, SIGKILL at random moments, a full disk, damaged checkpoints), resumed with
`--resume auto` until it finishes, and must then end bit-identical to the reference: same
weights, optimiser moments, EMA, schedules, scaler, RNG, epoch position, and the same logged
losses and learning rates at every step. That is the issue's proof (1)-(5) on the CPU.

All processes run with OMP_NUM_THREADS=1 so that CPU reductions happen in the same order.
The whole module costs about 14 trainer start-ups, hence the `slow` marks: 3.3 minutes on a
shared 2-core VM, 13 minutes at load average 10 (start-up, not training, dominates;
`-m "not slow"` skips them).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from voicelab.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_TERMINATED
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "assets"
VOICE = "mini"
TOTAL = 8  # 4 SoVITS steps + 4 GPT steps
# batch_size 1 over 5 training slices: 5 batches per epoch, so stage 1 (4 steps) stops mid-epoch
SETS = [
    "train.device=cpu", "train.batch_size=1", "train.sovits_steps=4", "train.gpt_steps=4",
    "train.save_every=3", "train.eval_every=2", "train.log_every=1", "train.save_every_minutes=0",
]  # fmt: skip
# what a checkpoint holds that legitimately differs between two runs of the same training
VOLATILE = {ck.K_TIME, ck.K_METRICS, ck.K_CONFIG}
LOGGED = ("loss/", "lr/", "grad_norm/", "acc/", "val/")
STEP_TIMEOUT = 300  # seconds; generous: CI machines are shared


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def make_voice(home: Path) -> None:
    """Six real utterances (tests/assets, twice under different names) as a sliced voice."""
    slices = home / VOICE / "slices"
    slices.mkdir(parents=True)
    lines = []
    for copy in ("a", "b"):
        for line in (DATA / "mini.list").read_text().splitlines():
            name, rest = line.split("|", 1)
            shutil.copy(DATA / name, slices / f"{copy}_{name}")
            lines.append(f"{copy}_{name}|{rest}")
    (slices / "dataset.list").write_text("\n".join(lines) + "\n")


def env_for(home: Path) -> dict[str, str]:
    return dict(
        os.environ, VOICELAB_HOME=str(home), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )  # fmt: skip


def train_cmd(run: str, resume: bool = False, sets: list[str] = SETS) -> list[str]:
    cmd = [sys.executable, "-m", "voicelab", "train", "--voice", VOICE, "--preset", "tiny",
           "--run", run, "--no-tensorboard"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    return cmd + (["--resume", "auto"] if resume else [])


def run_dir(home: Path, run: str) -> Path:
    return home / VOICE / "runs" / run


def logged_steps(run: Path) -> list[int]:
    """Steps of the training records in metrics.jsonl (validation records carry no losses)."""
    return [m["step"] for m in runfiles.read_metrics(run) if any(k.startswith("loss/") for k in m)]


def train(home: Path, run: str, resume: bool = False, sets: list[str] = SETS, until=None,
          action=None, prefix: list[str] | None = None) -> tuple[int, str]:  # fmt: skip
    """Run a trainer; when `until(run_dir)` becomes true, call `action(proc, run_dir)` once.

    Returns (exit code, stderr)."""
    rd = run_dir(home, run)
    err_path = home / f"{run}.{time.time_ns()}.stderr"
    with open(err_path, "w") as err:
        p = subprocess.Popen(
            (prefix + train_cmd(run, resume, sets)[3:]) if prefix else train_cmd(run, resume, sets),
            cwd=REPO, env=env_for(home),
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        deadline = time.time() + STEP_TIMEOUT
        try:
            if until is not None:
                while p.poll() is None and time.time() < deadline:
                    if until(rd):
                        action(p, rd)
                        break
                    time.sleep(0.02)
            code = p.wait(timeout=max(1.0, deadline - time.time()))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    return code, err_path.read_text()


def newest(run: Path) -> Path:
    return max(run.glob("checkpoints/step-*.pt"))


def differences(a, b, where: str = "") -> list[str]:
    """Paths at which two checkpoint states differ (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b))  # fmt: skip
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where} keys {sorted(map(str, set(a) ^ set(b)))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def assert_same_training(ref: Path, other: Path) -> None:
    """Final checkpoints and every logged loss / LR / grad norm are identical."""
    a = ck.load_checkpoint(ref / "checkpoints" / ck.checkpoint_name(TOTAL))
    b = ck.load_checkpoint(other / "checkpoints" / ck.checkpoint_name(TOTAL))
    a[ck.K_EXTRA].pop("run", None), b[ck.K_EXTRA].pop("run", None)
    diffs = [d for k in a if k not in VOLATILE for d in differences(a[k], b[k], k)]
    assert not diffs, f"{len(diffs)} differences, e.g. {diffs[:5]}"
    assert a[ck.K_OPTIMIZERS] and a[ck.K_MODELS]["sovits"]  # compared something real

    def by_step(run: Path) -> dict[int, dict]:  # a re-done step (after SIGKILL): last one wins
        out: dict[int, dict] = {}
        for m in runfiles.read_metrics(run):
            out.setdefault(m["step"], {}).update({k: v for k, v in m.items() if k.startswith(LOGGED)})
        return out

    ma, mb = by_step(ref), by_step(other)
    assert sorted(ma) == sorted(mb) == list(range(1, TOTAL + 1))
    for step in ma:
        assert ma[step] == mb[step], f"step {step}: {ma[step]} != {mb[step]}"
        assert any(k.startswith("loss/") for k in ma[step]) and any(k.startswith("lr/") for k in ma[step])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("recovery")
    make_voice(h)
    return h


@pytest.fixture(scope="module")
def reference(home: Path) -> Path:
    """The uninterrupted run: TOTAL steps straight."""
    code, err = train(home, "straight")
    assert code == EXIT_OK, err[-3000:]
    assert logged_steps(run_dir(home, "straight")) == list(range(1, TOTAL + 1))
    return run_dir(home, "straight")


def after_step(n: int):
    return lambda rd: bool(logged_steps(rd)) and max(logged_steps(rd)) >= n


def send(sig: int):
    return lambda p, rd: p.send_signal(sig)


def request_pause(p, rd) -> None:
    runfiles.request_action(rd, "pause")


def assert_stopped_cleanly(run: Path, code: int, expected: int, err: str) -> int:
    """The exit code, a checkpoint at the last completed step, and status paused/stopped."""
    assert code == expected, err[-3000:]
    last = max(logged_steps(run))
    state = ck.load_checkpoint(newest(run))
    assert state[ck.K_STEP] == last, "a completed step was lost"
    status = runfiles.read_status(run)
    assert status["state"] == ("paused" if expected == EXIT_PAUSED else "stopped")
    assert not list(run.glob("checkpoints/.*tmp"))
    return last


# --------------------------------------------------------------------------------------------
# (1) + (3): SIGTERM, Ctrl-C and pause lose no step, and the resumed run is bit-identical
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_ctrl_c_pause_then_resume_is_exact(home: Path, reference: Path) -> None:
    rd = run_dir(home, "signals")
    code, err = train(home, "signals", until=after_step(1), action=send(signal.SIGTERM))
    s1 = assert_stopped_cleanly(rd, code, EXIT_TERMINATED, err)
    state = ck.load_checkpoint(newest(rd))
    assert state[ck.K_STAGE] == "sovits" and 0 < state[ck.K_EPOCH_POS] < 5  # mid-epoch
    code, err = train(home, "signals", resume=True, until=after_step(s1 + 1), action=send(signal.SIGINT))
    s2 = assert_stopped_cleanly(rd, code, EXIT_INTERRUPTED, err)
    assert s2 > s1 and "resuming from" in (rd / runfiles.LOG).read_text()
    code, err = train(home, "signals", resume=True, until=after_step(max(s2 + 1, 5)), action=request_pause)
    s3 = assert_stopped_cleanly(rd, code, EXIT_PAUSED, err)
    assert s3 > 4 and ck.load_checkpoint(newest(rd))[ck.K_STAGE] == "gpt"  # resumed across stages
    assert runfiles.read_request(rd) is None  # obeyed, so the next resume does not pause again
    code, err = train(home, "signals", resume=True)
    assert code == EXIT_OK, err[-3000:]
    assert_same_training(reference, rd)


# --------------------------------------------------------------------------------------------
# (2): SIGKILL at random moments
# --------------------------------------------------------------------------------------------


def check_after_kill(run: Path) -> tuple[int, list[str]]:
    """Every file under a final step-*.pt name loads and verifies; returns the newest step."""
    names = sorted(p.name for p in run.glob("checkpoints/step-*.pt"))
    for p in run.glob("checkpoints/step-*.pt"):
        ck.load_checkpoint(p)  # raises if half-written
    point = ck.find_resume(run)
    assert point is None or point.skipped == []
    return (point.state[ck.K_STEP] if point else 0), names


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_exact(home: Path, reference: Path) -> None:
    rng = random.Random(int(os.environ.get("VL_KILL_SEED", "0")) or time.time_ns())
    sets = [s for s in SETS if not s.startswith("train.save_every=")] + ["train.save_every=1"]
    rd = run_dir(home, "killed")
    kills, resumes_from = 0, []
    resume = False
    while kills < 3:
        start = max(logged_steps(rd), default=0)
        target = start + rng.randint(1, 2)
        if target >= TOTAL:
            break
        delay = rng.uniform(0.0, 0.4)  # somewhere inside the next step, or inside its save

        def kill(p, rd, delay=delay):
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)

        code, err = train(home, "killed", resume=resume, sets=sets, until=after_step(target), action=kill)
        if code != -signal.SIGKILL:  # it finished first: nothing to test in this round
            assert code == EXIT_OK, err[-3000:]
            break
        kills += 1
        step, _ = check_after_kill(rd)
        assert step >= target - 1  # saves every step: at most the step in flight is lost
        resumes_from.append(step)
        resume = True
    code, err = train(home, "killed", resume=True, sets=sets)
    assert code == EXIT_OK, err[-3000:]
    if resumes_from:
        log = (rd / runfiles.LOG).read_text()
        assert f"resuming from {ck.checkpoint_name(resumes_from[-1])}" in log
    assert kills >= 1
    assert_same_training(reference, rd)


# --------------------------------------------------------------------------------------------
# (4): damaged newest checkpoints through the CLI; (5) a full disk
# --------------------------------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    else:  # flip one bit in the middle of the largest tensor's data
        import zipfile

        with zipfile.ZipFile(path) as z:
            info = max(z.infolist(), key=lambda i: i.file_size)
        start = info.header_offset + 30  # local header: 30 bytes + name + extra field
        n = int.from_bytes(data[start - 4 : start - 2], "little")
        m = int.from_bytes(data[start - 2 : start], "little")
        b = bytearray(data)
        b[start + n + m + info.file_size // 2] ^= 0x01
        path.write_bytes(bytes(b))


@pytest.mark.slow
def test_damaged_newest_falls_back_through_the_cli(home: Path, reference: Path) -> None:
    rd = run_dir(home, "damaged")
    shutil.copytree(reference / "checkpoints", rd / "checkpoints")
    (rd / runfiles.CONFIG).write_text((reference / runfiles.CONFIG).read_text())
    names = sorted(p.name for p in (rd / "checkpoints").glob("step-*.pt"))
    # keep_last 3 of the saves at global steps 3, 4 (end of stage 1), 7 (stage 2 step 3) and 8
    assert names == ["step-00000004.pt", "step-00000007.pt", "step-00000008.pt"]
    _damage(rd / "checkpoints" / names[2], "truncate")
    _damage(rd / "checkpoints" / names[1], "bitflip")
    listing = subprocess.run(
        [sys.executable, "-m", "voicelab", "checkpoints", "--voice", VOICE, "--run", "damaged"],
        cwd=REPO, env=env_for(home), capture_output=True, text=True, timeout=STEP_TIMEOUT,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert "would continue from step-00000004.pt" in listing.stdout
    assert "truncated" in listing.stdout and "checksum" in listing.stdout
    # steps 5..8 are re-done by the resumed run (the reference's first 4 records are copied)
    for m in runfiles.read_metrics(reference):
        if m["step"] <= 4:
            runfiles.append_metrics(rd, m)
    code, err = train(home, "damaged", resume=True)
    assert code == EXIT_OK, err[-3000:]
    assert "step-00000008.pt" in err and "step-00000007.pt" in err and "damaged" in err.lower()
    assert "resuming from step-00000004.pt" in (rd / runfiles.LOG).read_text()
    assert_same_training(reference, rd)


@pytest.mark.slow
def test_all_damaged_is_a_clear_error_through_the_cli(home: Path, reference: Path) -> None:
    rd = run_dir(home, "ruined")
    shutil.copytree(reference / "checkpoints", rd / "checkpoints")
    for p, how in zip(sorted(rd.glob("checkpoints/step-*.pt")), ("empty", "truncate", "bitflip")):
        _damage(p, how)
    code, err = train(home, "ruined", resume=True)
    assert code == EXIT_ERROR
    assert "none of the 3 checkpoints" in err and "new --run" in err
    assert not list(rd.glob("checkpoints/step-*.pt")) or max(logged_steps(rd), default=0) == 0


# ENOSPC from the 2nd checkpoint write on: the real CLI in a process whose file writes of
# checkpoint temp files fail like a full disk after 64 kB.
DISK_FULL = r"""
import errno, os, sys, torch
import voicelab.training.checkpoint as ck
real_save, calls = torch.save, []
class Full:
    def __init__(self, f): self.f, self.left = f, 65536
    def write(self, b):
        if len(b) > self.left:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.left -= len(b)
        return self.f.write(b)
    def flush(self): self.f.flush()
def save(obj, f, *a, **k):
    name = os.readlink(f"/proc/self/fd/{f.fileno()}") if hasattr(f, "fileno") else str(f)
    if "/checkpoints/.step-" in name:  # only checkpoint temp files fill the "disk"
        calls.append(name)
        if len(calls) >= 2:
            f = Full(f)
    return real_save(obj, f, *a, **k)
ck.torch.save = save
from voicelab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_disk_full_stops_clearly_and_keeps_earlier_checkpoints(home: Path, reference: Path) -> None:
    rd = run_dir(home, "diskfull")
    cmd_prefix = [sys.executable, "-c", DISK_FULL]
    code, err = train(home, "diskfull", prefix=cmd_prefix)
    # the prefix replaces "python -m voicelab" by the patched main (argv after it is the same)
    assert code == EXIT_ERROR, err[-3000:]
    assert "full" in err and "earlier checkpoints are intact" in err
    assert sorted(p.name for p in rd.glob("checkpoints/step-*.pt")) == ["step-00000003.pt"]
    assert not list(rd.glob("checkpoints/.*tmp"))
    ck.load_checkpoint(rd / "checkpoints" / "step-00000003.pt")
    status = runfiles.read_status(rd)
    assert status["state"] == "failed" and "full" in status.get("message", status.get("error", ""))
    code, err = train(home, "diskfull", resume=True)  # space freed: resume finishes the run
    assert code == EXIT_OK, err[-3000:]
    assert_same_training(reference, rd)
