"""Background training, controlled from the UI without ever training in the UI process.

Start runs `[sys.executable, "-m", "voicelab", "train", --voice V, --run R, --preset P, --set ...,
--from BASE|none]` with `subprocess.Popen` (no shell) in its own session, so Ctrl-C in the app's terminal does not
hit the trainer and the trainer's own signal handling (checkpoint on SIGINT / SIGTERM) stays in
charge. The two sides talk only through the run folder (voicelab/training/runfiles.py):

    UI reads   status.json (state, step, total_steps, eta_s, heartbeat, pid), metrics.jsonl
    UI writes  request.json  via runfiles.request_action(run_dir, "pause" | "stop")

The trainer's stdout + stderr go to runs/<run>/console.log, so a crash before the trainer could
write status.json (an import error, a bad setting) is still shown with its cause.

Re-attach after a browser refresh or an app restart: a run is *live* when its process is one
this UI started and has not exited, or when the pid in status.json / trainer.lock is alive and
the heartbeat is fresh (or the trainer still holds trainer.lock). `active_run(voice)` finds it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from voicelab.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_TERMINATED, VoicelabError
from voicelab.training import runfiles
from voicelab.workspace import RunDir, Voice, validate_name

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONSOLE_LOG = RunDir.CONSOLE_LOG
LIVE_STATES = ("starting", "running", "saving")
# exit codes after which a checkpoint exists and the run can be resumed
CLEAN_EXITS = (EXIT_OK, EXIT_PAUSED, EXIT_INTERRUPTED, EXIT_TERMINATED)

_procs: dict[Path, subprocess.Popen] = {}  # run_dir -> trainer started by this UI process
_procs_lock = threading.Lock()


@dataclass(frozen=True)
class RunView:
    """What the Train tab shows about one run, derived from its files and its process."""

    run: str
    state: str  # a runfiles.STATES value, "not started", "crashed" (died without saying so),
    # or "damaged" (status.json is unreadable: the error says why)
    alive: bool
    step: int = 0
    total_steps: int = 0
    stage: str = ""
    eta_s: float | None = None
    pid: int | None = None
    error: str = ""  # the cause of a crash, in the trainer's words where it gave any
    message: str = ""  # the trainer's last status message (e.g. "rolled back after NaN")

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


def train_command(
    voice: str,
    run: str,
    preset: str,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    prefix: list[str] | None = None,
    from_value: str | None = None,
) -> list[str]:
    """The argv of one trainer process. `prefix` replaces `python -m voicelab` (tests);
    `from_value` is `train --from` (a base's path, or "none" for scratch) of a new run."""
    cmd = list(prefix or [sys.executable, "-m", "voicelab"])
    cmd += ["train", "--voice", voice, "--run", run, "--preset", preset]
    for item in overrides:
        cmd += ["--set", item]
    if resume:
        cmd += ["--resume", "auto"]
    if from_value is not None:
        cmd += ["--from", from_value]
    return cmd


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def lock_held(run_dir: Path) -> bool:
    """True when some process holds trainer.lock (RunDir.lock_holder asks the kernel)."""
    return RunDir(Path(run_dir)).lock_holder() is not None


def _own_proc(run_dir: Path) -> subprocess.Popen | None:
    with _procs_lock:
        return _procs.get(Path(run_dir).resolve())


def console_tail(run_dir: Path, lines: int = 40) -> str:
    return _tail(RunDir(Path(run_dir)).console_log, lines)


def log_tail(run_dir: Path, lines: int = 40) -> str:
    """The last lines of train.log (the trainer's own log), else of console.log."""
    text = _tail(RunDir(Path(run_dir)).log, lines)
    return text or console_tail(run_dir, lines)


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64_000))  # the tail only: logs grow for days
            data = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _crash_cause(run_dir: Path, status: dict | None) -> str:
    if status and status.get("error"):
        return str(status["error"])
    tail = console_tail(run_dir, 60).splitlines()
    # The person needs the line that says what went wrong: the CLI's "error: ..." line or the
    # last line of a traceback; fall back to the last lines.
    for line in reversed(tail):
        if line.startswith("error:") or (line and not line.startswith(" ") and "Error" in line):
            return line.strip()
    return "\n".join(tail[-5:]) or "the trainer stopped without writing a reason"


def run_view(run_dir: Path) -> RunView:
    """The current state of one run, whoever started its trainer."""
    run_dir = Path(run_dir)
    status, problem = runfiles.load_status(run_dir)
    proc = _own_proc(run_dir)
    rc = proc.poll() if proc is not None else None
    fields = {}
    if status:
        fields = dict(
            step=int(status.get("step") or 0),
            total_steps=int(status.get("total_steps") or 0),
            stage=str(status.get("stage") or ""),
            eta_s=status.get("eta_s"),
            message=str(status.get("message") or ""),
        )
    name = run_dir.name
    if proc is not None and rc is None:
        # Our child is running. Until it writes its own status the old file (e.g. "paused" from
        # the previous session) is stale, so say "starting".
        fresh = status is not None and status.get("pid") == proc.pid
        state = status["state"] if fresh else "starting"
        return RunView(name, state, True, pid=proc.pid, **fields)
    if status is None:
        if proc is not None and rc not in CLEAN_EXITS:
            return RunView(name, "crashed", False, error=_crash_cause(run_dir, None))
        if problem:  # this run alone shows it; a trainer holding the lock rewrites it soon
            holder = RunDir(run_dir).lock_holder()
            return RunView(name, "damaged", holder is not None,
                           pid=holder if holder and holder > 0 else None,
                           error=f"{problem}: its checkpoints are not affected; resume the run "
                                 "(the trainer rewrites the file) or delete the file")  # fmt: skip
        return RunView(name, "not started", False)
    state = status.get("state", "starting")
    holder = RunDir(run_dir).lock_holder()  # the kernel's word: None when no trainer holds it
    pid = status.get("pid") or (holder if holder and holder > 0 else None)
    if proc is not None:  # our child has exited: its exit code is the truth
        if state in LIVE_STATES or (rc not in CLEAN_EXITS and state != "failed"):
            state = "crashed" if rc not in CLEAN_EXITS else "stopped"
        alive = False
    else:
        beat = float(status.get("heartbeat") or 0)
        fresh = time.time() - beat < runfiles.HEARTBEAT_STALE_S
        alive = state in LIVE_STATES and pid_alive(pid) and (fresh or holder is not None)
        if state in LIVE_STATES and not alive:
            state = "crashed"
    error = _crash_cause(run_dir, status) if state in ("failed", "crashed") else ""
    return RunView(name, state, alive, pid=pid if alive else None, error=error, **fields)


def active_run(voice: Voice) -> str | None:
    """The run of this voice whose trainer is alive (at most one by construction), else None."""
    for run in reversed(voice.list_runs()):  # newest first
        if run_view(voice.run_dir(run)).alive:
            return run
    return None


def start_training(
    voice: Voice,
    run: str,
    preset: str,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    prefix: list[str] | None = None,
    from_value: str | None = None,
) -> subprocess.Popen:
    """Start one trainer for `voice` (refused while another of its runs is training)."""
    validate_name(run, "run name")
    busy = active_run(voice)
    if busy is not None:
        raise VoicelabError(
            f"voice {voice.name!r} is already training (run {busy!r}): pause or stop it first, "
            "only one trainer per voice runs at a time"
        )
    run_dir = voice.run(run)
    if not resume and run_dir.has_checkpoints():
        raise VoicelabError(
            f"run {run!r} already has checkpoints: press Resume to continue it, "
            "or give a new run name to start from scratch"
        )
    run_dir.root.mkdir(parents=True, exist_ok=True)
    runfiles.clear_request(run_dir)  # a stale pause request would stop the new trainer at once
    cmd = train_command(voice.name, run, preset, overrides, resume, prefix, from_value)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["VOICELAB_HOME"] = str(voice.root.parent)  # the trainer must see the same workspace
    # this checkout's voicelab, whatever the app's working directory was
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(run_dir.console_log, "ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: app Ctrl-C does not kill training
        )
    with _procs_lock:
        _procs[run_dir.root.resolve()] = proc
    return proc


def request(run_dir: Path, action: str) -> RunView:
    """Ask a live trainer to pause or stop at its next step boundary (it saves a checkpoint)."""
    view = run_view(run_dir)
    if not view.alive:
        raise VoicelabError(f"run {view.run!r} is not training ({view.state}): nothing to {action}")
    runfiles.request_action(run_dir, action)
    return view


def terminate(run_dir: Path) -> bool:
    """SIGTERM the trainer's process group (it checkpoints and exits 143). For app shutdown."""
    view = run_view(run_dir)
    if not view.alive or not view.pid:
        return False
    try:
        os.killpg(os.getpgid(view.pid), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def wait(run_dir: Path, timeout: float = 60.0) -> int | None:
    """Wait for a trainer this UI started to exit; its exit code (None on timeout)."""
    proc = _own_proc(run_dir)
    if proc is None:
        return None
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
