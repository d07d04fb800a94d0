"""StopSignals (Ctrl-C, SIGTERM, pause/stop requests) and RunLock, in-process and across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from voicelab.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, EXIT_TERMINATED, VoicelabError
from voicelab.training import runfiles
from voicelab.training.interrupt import RunLock, StopSignals, process_start_time

REPO = Path(__file__).resolve().parents[2]

# A stand-in trainer: "steps" of 50 ms, a stop check at every boundary, a slow "save".
LOOP = r"""
import sys, time
from pathlib import Path
from voicelab.training.interrupt import RunLock, StopSignals
run = Path(sys.argv[1])
try:
    with RunLock(run), StopSignals(run) as stop:
        step = 0
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
            step += 1
            (run / "steps").write_text(str(step))
            if stop.check():
                time.sleep(float(sys.argv[2]))  # the checkpoint being written
                (run / "saved").write_text(f"{step} {stop.reason}")
                sys.exit(stop.exit_code)
except KeyboardInterrupt:
    sys.exit(99)
"""


def _start(run: Path, save_s: float = 0.0) -> subprocess.Popen:
    run.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen(
        [sys.executable, "-c", LOOP, str(run), str(save_s)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def _wait_steps(run: Path, n: int) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if (run / "steps").is_file() and int((run / "steps").read_text() or 0) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("the loop did not advance")


# --------------------------------------------------------------------------------------------
# in-process
# --------------------------------------------------------------------------------------------


def test_sigint_sets_flag_then_second_raises(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopSignals(tmp_path) as stop:
        assert stop.check() is None and stop.exit_code == EXIT_OK
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: the step completes
        assert stop.reason == "sigint" and stop.check() == "sigint"
        assert stop.exit_code == EXIT_INTERRUPTED
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert signal.getsignal(signal.SIGINT) is before  # previous handler restored


def test_sigterm_and_first_reason_wins(tmp_path: Path) -> None:
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.reason == "sigterm" and stop.exit_code == EXIT_TERMINATED
        runfiles.request_action(tmp_path, "pause")
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.check(tmp_path) == "sigterm"


@pytest.mark.parametrize("action", ["pause", "stop"])
def test_request_file(tmp_path: Path, action: str) -> None:
    with StopSignals(tmp_path) as stop:
        assert stop.check() is None
        runfiles.request_action(tmp_path, action)
        assert stop.check() == action and stop.exit_code == EXIT_PAUSED
    assert runfiles.read_request(tmp_path) is None  # obeyed: the next resume must not pause


def test_stale_request_from_an_earlier_trainer_is_dropped(tmp_path: Path) -> None:
    (tmp_path / runfiles.REQUEST).write_text(json.dumps({"action": "pause", "time": 1000.0}))
    with StopSignals(tmp_path) as stop:
        assert stop.check() is None
    assert not (tmp_path / runfiles.REQUEST).exists()
    assert process_start_time() <= time.time()


def test_request_ignored_without_run_dir_and_bad_reason() -> None:
    stop = StopSignals()
    assert stop.check() is None
    with pytest.raises(ValueError, match="unknown stop reason"):
        stop.request("nap")
    stop.request("stop")
    assert stop.exit_code == EXIT_PAUSED


def test_outside_the_main_thread_only_requests_work(tmp_path: Path) -> None:
    seen: list[object] = []

    def worker() -> None:
        try:
            with StopSignals(tmp_path) as stop:
                runfiles.request_action(tmp_path, "stop")
                seen.append(stop.check())
        except Exception as e:  # signal.signal would raise ValueError here
            seen.append(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == ["stop"]


def test_runlock_in_process(tmp_path: Path) -> None:
    run = tmp_path / "r1"
    assert RunLock.holder(run) is None
    with RunLock(run):
        assert RunLock.holder(run) == os.getpid()
        assert (run / runfiles.LOCK).read_text().strip() == str(os.getpid())
        with pytest.raises(VoicelabError, match=f"run r1 is already being trained by pid {os.getpid()}"):
            RunLock(run).acquire()
    assert RunLock.holder(run) is None
    with RunLock(run):  # released: can be taken again
        pass


# --------------------------------------------------------------------------------------------
# real processes
# --------------------------------------------------------------------------------------------


def test_runlock_against_a_second_process_and_after_sigkill(tmp_path: Path) -> None:
    run = tmp_path / "run"
    p = _start(run)
    try:
        with pytest.raises(VoicelabError, match=f"already being trained by pid {p.pid}"):
            RunLock(run).acquire()
        assert RunLock.holder(run) == p.pid
        other = subprocess.run(
            [sys.executable, "-c", LOOP, str(run), "0"], cwd=REPO, capture_output=True, text=True, timeout=30
        )
        assert other.returncode == 1 and f"already being trained by pid {p.pid}" in other.stderr
    finally:
        p.kill()  # SIGKILL: no cleanup at all
        p.wait()
    assert RunLock.holder(run) is None  # the kernel released the lock with the process
    with RunLock(run):
        pass


@pytest.mark.parametrize(
    "sig, reason, code",
    [(signal.SIGINT, "sigint", EXIT_INTERRUPTED), (signal.SIGTERM, "sigterm", EXIT_TERMINATED)],
)
def test_signal_stops_at_step_boundary_after_saving(tmp_path: Path, sig, reason, code) -> None:
    run = tmp_path / "run"
    p = _start(run)
    _wait_steps(run, 3)
    p.send_signal(sig)
    assert p.wait(timeout=20) == code, p.stderr.read()
    step, why = (run / "saved").read_text().split()
    assert why == reason and int(step) == int((run / "steps").read_text())  # no step lost


def test_pause_request_from_another_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    p = _start(run)
    _wait_steps(run, 2)
    runfiles.request_action(run, "pause")
    assert p.wait(timeout=20) == EXIT_PAUSED
    assert (run / "saved").read_text().split()[1] == "pause"
    assert runfiles.read_request(run) is None


def test_double_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    p = _start(run, save_s=30.0)  # a "save" that would take 30 s
    _wait_steps(run, 2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 99  # KeyboardInterrupt reached the script
    assert time.time() - t0 < 5 and not (run / "saved").exists()
