"""jobs.py: start a trainer process, follow it through its run folder, pause, resume, re-attach."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from voicelab.errors import EXIT_PAUSED, VoicelabError
from voicelab.training import runfiles
from voicelab.ui import jobs
from voicelab.workspace import get_voice

FAKE = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


def _until(pred, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_train_command_is_argv_without_shell():
    cmd = jobs.train_command("v1", "r1", "tiny", ["train.sovits_steps=4"], resume=True)
    assert cmd[:3] == [sys.executable, "-m", "voicelab"]
    assert cmd[3:] == ["train", "--voice", "v1", "--run", "r1", "--preset", "tiny",
                       "--set", "train.sovits_steps=4", "--resume", "auto"]


def test_start_pause_resume_and_one_trainer_per_voice(tmp_home):
    voice = get_voice("v1").create()
    run_dir = voice.run_dir("r1")
    jobs.start_training(voice, "r1", "tiny", ["steps=400", "delay=0.05"], prefix=FAKE)
    assert _until(lambda: jobs.run_view(run_dir).state == "running")
    view = jobs.run_view(run_dir)
    assert view.alive and view.total_steps == 400 and view.pid
    assert jobs.active_run(voice) == "r1"
    with pytest.raises(VoicelabError, match="already training"):
        jobs.start_training(voice, "r2", "tiny", ["steps=5"], prefix=FAKE)

    jobs.request(run_dir, "pause")
    assert jobs.wait(run_dir, 20) == EXIT_PAUSED
    view = jobs.run_view(run_dir)
    assert view.state == "paused" and not view.alive
    paused_at = view.step
    assert (run_dir / "checkpoints" / f"step-{paused_at:08d}.pt").is_file()
    with pytest.raises(VoicelabError, match="not training"):
        jobs.request(run_dir, "stop")
    # a fresh start of the same run would silently discard its checkpoints: refused
    with pytest.raises(VoicelabError, match="Resume"):
        jobs.start_training(voice, "r1", "tiny", ["steps=400"], prefix=FAKE)

    jobs.start_training(voice, "r1", "tiny", ["steps=400", "delay=0.05"], resume=True, prefix=FAKE)
    assert _until(lambda: jobs.run_view(run_dir).step > paused_at)
    steps = [m["step"] for m in runfiles.read_metrics(run_dir)]
    assert steps == list(range(1, len(steps) + 1)), "resume continues from the checkpoint"
    jobs.request(run_dir, "stop")
    assert jobs.wait(run_dir, 20) == EXIT_PAUSED
    assert jobs.run_view(run_dir).state == "stopped"


def test_reattach_after_app_restart(tmp_home):
    voice = get_voice("v2").create()
    run_dir = voice.run_dir("r1")
    proc = jobs.start_training(voice, "r1", "tiny", ["steps=400", "delay=0.05"], prefix=FAKE)
    try:
        assert _until(lambda: jobs.run_view(run_dir).state == "running")
        jobs._procs.clear()  # what a restarted app knows: only the run folder
        view = jobs.run_view(run_dir)
        assert view.alive and view.pid == proc.pid
        assert jobs.lock_held(run_dir)
        assert jobs.active_run(voice) == "r1"
        jobs.request(run_dir, "stop")
        assert proc.wait(20) == EXIT_PAUSED
        assert not jobs.run_view(run_dir).alive
        assert jobs.active_run(voice) is None
    finally:
        if proc.poll() is None:
            proc.kill()


def test_dead_trainer_with_running_status_is_a_crash(tmp_home):
    voice = get_voice("v3").create()
    run_dir = voice.run_dir("r1")
    run_dir.mkdir(parents=True)
    # a trainer that died without a word: status says running, pid gone, heartbeat stale
    runfiles.write_status(run_dir, state="running", step=5, total_steps=10)
    import json

    data = json.loads((run_dir / "status.json").read_text())
    data.update(pid=2**22 + 12345, heartbeat=time.time() - 3600)
    (run_dir / "status.json").write_text(json.dumps(data))
    view = jobs.run_view(run_dir)
    assert view.state == "crashed" and not view.alive
    assert jobs.active_run(voice) is None


def test_crash_is_shown_with_its_cause(tmp_home):
    voice = get_voice("v4").create()
    run_dir = voice.run_dir("r1")
    jobs.start_training(voice, "r1", "tiny", ["fail=1"], prefix=FAKE)
    assert jobs.wait(run_dir, 20) == 1
    view = jobs.run_view(run_dir)
    assert view.state == "crashed" and not view.alive
    assert "fake failure requested" in view.error


def test_bad_run_name_refused(tmp_home):
    voice = get_voice("v5").create()
    with pytest.raises(VoicelabError, match="run name"):
        jobs.start_training(voice, "../evil", "tiny", prefix=FAKE)


@pytest.mark.parametrize("content", ['[1, 2]', '{"state": "running", "step": "zz"}',
                                     '{"step": 3}', '{"state": "finis', '"finished"'])  # fmt: skip
def test_a_malformed_status_shows_only_that_run_as_damaged(tmp_home, content):
    """A status.json that is not a status (valid JSON or not) marks its own run as damaged; the
    other runs of the voice and the voice list keep working (issue 16 item 6)."""
    voice = get_voice("v1").create()
    good, bad = voice.run_dir("good"), voice.run_dir("bad")
    good.mkdir(parents=True)
    runfiles.write_status(good, state="finished", step=4, total_steps=4)
    bad.mkdir(parents=True)
    (bad / runfiles.STATUS).write_text(content)
    view = jobs.run_view(bad)
    assert view.state == "damaged" and not view.alive and "status.json" in view.error
    assert runfiles.read_status(bad) is None
    assert jobs.run_view(good).state == "finished" and jobs.run_view(good).step == 4
    assert jobs.active_run(voice) is None
