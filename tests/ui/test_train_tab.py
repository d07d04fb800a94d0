"""Train tab handlers without a browser: a run's own settings drive its resume and its display."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from voicelab.config import config_to_dict, list_presets, load_config, save_config_json
from voicelab.errors import VoicelabError
from voicelab.training import checkpoint, runfiles
from voicelab.ui import jobs, train_runs, train_settings, train_status

sys.path.insert(0, str(Path(__file__).parent))
from test_handlers import _voice_with_slices  # noqa: E402

# a "trainer" that exits at once: the test reads the command line the UI gave it (console.log)
NOOP = [sys.executable, "-c", "pass"]


def _checkpoint(run_dir: Path, step: int, stage: str = "sovits", stage_step: int | None = None):
    """A small but complete checkpoint at `step` (the trainer's keys, real tensors)."""
    w = torch.zeros(2)
    return checkpoint.save_checkpoint(run_dir, {
        checkpoint.K_STAGE: stage, checkpoint.K_STEP: step,
        checkpoint.K_STAGE_STEP: step if stage_step is None else stage_step,
        checkpoint.K_EPOCH: 0, checkpoint.K_EPOCH_POS: 0, checkpoint.K_MODELS: {"m": {"w": w}},
        checkpoint.K_OPTIMIZERS: {}, checkpoint.K_SCHEDULERS: {}, checkpoint.K_SCALER: None,
        checkpoint.K_EMA: {"m": {"w": w}}, checkpoint.K_RNG: {}, checkpoint.K_METRICS: {},
        checkpoint.K_CONFIG: {}, checkpoint.K_DATASET_HASH: "x", checkpoint.K_VAL_LOSS: None,
    })  # fmt: skip


def _run(voice, name: str, preset: str, overrides: list[str]) -> Path:
    run_dir = voice.run_dir(name)
    run_dir.mkdir(parents=True)
    save_config_json(load_config(preset, overrides), run_dir / runfiles.CONFIG)
    return run_dir


def _command(run_dir: Path) -> list[str]:
    """The argv of the last trainer the UI started for this run (console.log's `$` line)."""
    jobs.wait(run_dir, 30)
    lines = (run_dir / jobs.CONSOLE_LOG).read_text().splitlines()
    return [ln for ln in lines if ln.startswith("$ ")][-1][2:].split(" ")


def _sets(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--set")


@pytest.mark.parametrize("preset", list_presets())
def test_run_config_rebuilds_the_saved_settings_exactly(tmp_path, preset):
    cfg = load_config(preset, ["train.lr_g=3e-05", "train.freeze=[\"a\", \"b'c\"]",
                               "train.sample_text=\"say \\\"hi\\\"\"", "train.sovits_steps=7"])
    save_config_json(cfg, tmp_path / runfiles.CONFIG)
    rc = train_runs.run_config(tmp_path)
    assert rc.preset == preset and rc.values == train_settings.typed_values(rc.values)
    rebuilt = load_config(rc.preset, rc.overrides)
    assert config_to_dict(rebuilt) == config_to_dict(cfg)


def test_run_config_of_a_gone_preset_falls_back_with_every_value(tmp_path):
    data = config_to_dict(load_config("tiny"))
    data["preset"] = "retired"
    (tmp_path / runfiles.CONFIG).write_text(json.dumps(data))
    rc = train_runs.run_config(tmp_path)
    assert rc.preset_gone and rc.preset == train_settings.default_preset()
    assert config_to_dict(load_config(rc.preset, rc.overrides))["model"] == data["model"]
    (tmp_path / runfiles.CONFIG).write_text("[1, 2")
    with pytest.raises(VoicelabError, match="cannot be read"):
        train_runs.run_config(tmp_path)
    assert train_runs.run_config(tmp_path / "none") is None


def test_resume_after_reload_uses_the_runs_own_preset(tmp_home):
    """Issue 15.1: a tiny run, the page reloaded (picker back on the default preset): Resume
    still starts the trainer with tiny and the run's own values, never the picker's."""
    v = _voice_with_slices("rr")
    run_dir = _run(v, "r1", "tiny", ["train.sovits_steps=40", "train.lr_g=0.0003"])
    _checkpoint(run_dir, 12)
    shown = train_settings.default_preset() if train_settings.default_preset() != "tiny" else "small"
    msg = train_runs.start("rr", "r1", shown, train_settings.preset_values(shown), resume=True, prefix=NOOP)
    argv = _command(run_dir)
    assert argv[argv.index("--preset") + 1] == "tiny" and "--resume" in argv
    sets = _sets(argv)
    assert sets["train.sovits_steps"] == "40" and sets["train.lr_g"] == "0.0003"
    assert "own preset `tiny`" in msg and "steps 13 to 40" in msg
    assert "for new runs" in msg, "the picker's other preset is said to be ignored"


def test_picking_a_run_shows_its_preset_settings_and_start(tmp_home, monkeypatch, tmp_path):
    monkeypatch.setenv("VOICELAB_BASE_DIR", str(tmp_path / "no-bases"))
    v = _voice_with_slices("sr")
    run_dir = _run(v, "r1", "tiny", ["train.gpt_steps=33"])
    preset, *values = train_runs.show_run("sr", "r1")
    keys = [s.key for s in train_settings.SETTINGS]
    assert preset == "tiny" and values[keys.index("gpt_steps")] == 33
    assert values[keys.index("batch_size")] == load_config("tiny").train.batch_size
    info = train_runs.run_info("sr", "r1", "small")
    assert "**tiny**" in info, "the run's own preset, whatever the picker shows"
    (run_dir / runfiles.LOG).write_text("x\ninitial weights from /a/b/base.safetensors (ok)\n")
    assert "started from **base.safetensors**" in train_runs.run_info("sr", "r1", "tiny")
    (run_dir / runfiles.LOG).write_text("voice sr: 3 training slices\n")
    assert "from scratch" in train_runs.run_info("sr", "r1", "tiny")
    new = train_runs.show_run("sr", "fresh")
    assert len(new) == len(train_settings.SETTINGS) + 1
    info = train_runs.run_info("sr", "fresh", "tiny")
    assert "New run" in info and "**from scratch**" in info and "no pretrained base" in info


def _values(rc: train_runs.RunConfig, **changes) -> list:
    keys = [s.key for s in train_settings.SETTINGS]
    vals = list(rc.values)
    for k, val in changes.items():
        vals[keys.index(k)] = float(val)  # gr.Number hands back floats
    return vals


def test_resume_says_what_step_changes_will_train(tmp_home):
    v = _voice_with_slices("st")
    run_dir = _run(v, "r1", "tiny", ["train.sovits_steps=30", "train.gpt_steps=20"])
    rc = train_runs.run_config(run_dir)
    # in stage 2 at its step 8: a new stage-1 count cannot apply and is said so, not sent
    _checkpoint(run_dir, 38, "gpt", 8)
    newest = train_runs.newest_checkpoint(run_dir)
    ov, notes = train_runs.resume_plan(rc, "tiny", _values(rc, sovits_steps=50, gpt_steps=40), newest)
    text = " ".join(notes)
    assert "Stage 1 is already finished (30 steps)" in text and "(50) does not apply" in text
    assert "train.sovits_steps=50" not in ov and ov[-1] == "train.gpt_steps=40"
    assert "stage 2 (GPT) steps 9 to 40" in text
    # fewer stage-2 steps than done: refused, saying how many are done
    with pytest.raises(VoicelabError, match="already trained 8 steps of stage 2.*above 8"):
        train_runs.resume_plan(rc, "tiny", _values(rc, gpt_steps=5), newest)
    with pytest.raises(VoicelabError, match="nothing is left"):
        train_runs.resume_plan(rc, "tiny", _values(rc), _checkpoint(run_dir, 50, "gpt", 20) and
                          train_runs.newest_checkpoint(run_dir))
    # in stage 1 at step 12, asked for 10: stage 1 ends here, stage 2 follows
    run2 = _run(v, "r2", "tiny", ["train.sovits_steps=30", "train.gpt_steps=20"])
    _checkpoint(run2, 12)
    ov, notes = train_runs.resume_plan(rc, "tiny", _values(rc, sovits_steps=10), train_runs.newest_checkpoint(run2))
    text = " ".join(notes)
    assert "already has 12 steps, more than the 10 asked" in text and "20 steps" in text


def test_resume_without_a_checkpoint_is_refused(tmp_home):
    v = _voice_with_slices("nc")
    _run(v, "r1", "tiny", [])
    with pytest.raises(VoicelabError, match="no checkpoint yet"):
        train_runs.start("nc", "r1", "tiny", train_settings.preset_values("tiny"), resume=True, prefix=NOOP)


class _Base:
    def __init__(self, name: str, preset: str, matches: bool):
        self.name, self.meta, self._m = name, {"preset": preset, "corpus": {"hours": 2.5,
                                                                        "speakers": {"a": 1}}}, matches

    def mismatch(self, cfg):
        return [] if self._m else ["model.hidden: 1 in the base, 2 in the preset"]


def test_new_run_says_which_base_it_starts_from(monkeypatch):
    from voicelab.ui import train_start

    monkeypatch.setattr(train_start, "bases", lambda: [_Base("base", "small", True)])
    md = train_start.start_line("tiny")
    assert "pretrained base `base` (1 speakers, 2.5 h)**" in md
    monkeypatch.setattr(train_start, "bases", lambda: [_Base("base", "small", False)])
    md = train_start.start_line("tiny")
    assert "**from scratch**" in md and "preset `small`" in md and "pick that preset" in md


def test_checkpoint_table_shows_the_losses_a_person_watches(tmp_home):
    """Issue 15.19: the table showed adv/commit/d (alphabetical first three)."""
    sovits = {"loss/mel": 1.234, "loss/kl": 2.5, "loss/fm": 0.2, "loss/adv": 2.9,
              "loss/commit": 6.8, "loss/g_total": 235.0, "loss/d": 2.98}
    assert train_status.watched_losses(sovits) == "mel 1.23, kl 2.5"
    assert train_status.watched_losses({"loss/gpt": 3.1}, 2.75) == "val 2.75, gpt 3.1"
    world = {"loss/mgc": 1.0, "loss/lf0": 0.5, "loss/vuv": 0.1, "loss/bap": 0.2}
    assert train_status.watched_losses(world) == "mgc 1, lf0 0.5, vuv 0.1"


def test_reload_opens_the_voice_this_browser_worked_on(tmp_home):
    """Issue 15.19: after a reload the picker chose the newest voice folder."""
    import os

    from voicelab.ui import voice as voice_tab
    from voicelab.workspace import get_voice

    a, b = get_voice("a").create(), get_voice("b").create()
    old = 1_000_000_000
    for sub in [b.root, *b.root.iterdir()]:
        os.utime(sub, (old, old))
    (a.raw / "x.wav").write_bytes(b"1")
    for sub in [a.root]:
        os.utime(sub, (old - 10, old - 10))  # a's folder looks older, its files are newer
    assert voice_tab.default_voice(["a", "b"]) == "a", "the voice changed last, by its files"
    assert voice_tab.default_voice(["a", "b"], remembered="b") == "b", "this browser's voice"
    assert voice_tab.default_voice(["a", "b"], remembered="gone") == "a"


def test_time_estimate_comes_from_the_measured_benchmark(tmp_path, monkeypatch):
    """Issue 15.17: hints disagreed ("~2000" vs 1500, "hours" vs "an hour or so")."""
    bench = tmp_path / "train.json"
    bench.write_text(json.dumps({"machine": {"cores": 2, "cpu": "Test CPU", "gpu": None},
                                 "results": {"tiny": {"batch_size": 2,
                                                      "sovits": {"s_per_step": 2.0},
                                                      "gpt": {"s_per_step": 0.5}}}}))
    monkeypatch.setattr(train_settings, "BENCH_TRAIN", bench)
    keys = [s.key for s in train_settings.SETTINGS]
    vals = train_settings.preset_values("tiny")
    vals[keys.index("sovits_steps")], vals[keys.index("gpt_steps")] = 600, 120
    vals[keys.index("batch_size")] = 4  # twice the measured batch: twice the time per step
    md = train_settings.estimate("tiny", vals)
    assert "about 42 min 00 s" in md and "600 + 120 steps" in md and "2-core Test CPU" in md
    assert train_settings.estimate("small", vals) == "", "no measurement: no made-up number"
    assert not any("~" in s.help or "hour" in s.help for s in train_settings.SETTINGS)


def test_paused_is_said_at_once_while_the_trainer_exits():
    """Issue 15.5: the tab said Paused only ~20 s after the trainer stopped."""
    closing = train_status.state_markdown(jobs.RunView("r1", "paused", True, step=5, total_steps=40))
    assert "Paused" in closing and "closing" in closing
    done = train_status.state_markdown(jobs.RunView("r1", "paused", False, step=5, total_steps=40))
    assert "Paused" in done and "closing" not in done
