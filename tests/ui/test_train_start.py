"""Train tab, what a new run starts from (issue 14): the matching pretrained base with the
preset's fine-tune schedule, or from scratch as chosen under "Start from", said in one line with
the steps and the time; a resume keeps the run's own settings whatever the tab shows.

A "shipped" base here is the two files read_base checks (its JSON with the right versions,
phoneme table, config and sha256), in a folder that VOICELAB_BASE_DIR points at; its weights
are never loaded by these handlers. The trainer is a no-op process: the tests read the argv the
UI gave it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import gradio as gr
import pytest
import torch
from safetensors.torch import save

from voicelab import __version__
from voicelab import base as B
from voicelab.config import config_to_dict, load_config, save_config_json
from voicelab.text import symbols
from voicelab.training import runfiles
from voicelab.ui import train_runs, train_settings, train_start
from voicelab.ui.train_start import FROM_BASE, FROM_SCRATCH

sys.path.insert(0, str(Path(__file__).parent))
from test_handlers import _voice_with_slices  # noqa: E402
from test_train_tab import NOOP, _checkpoint, _command, _sets  # noqa: E402

KEYS = [s.key for s in train_settings.SETTINGS]


def write_base(folder: Path, preset: str = "cpu", name: str = "base") -> Path:
    """A base as `pretrain --ship` lays it out (weights, JSON, card) that read_base accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    st, js, card = B.base_paths(folder, name)
    blob = save({"gpt.w": torch.zeros(4, dtype=torch.float16)}, metadata={"format": B.BASE_FORMAT})
    st.write_bytes(blob)
    meta = {
        "format": B.BASE_FORMAT, "format_version": B.BASE_FORMAT_VERSION,
        "voicelab_version": __version__, "symbols_version": symbols.SYMBOLS_VERSION,
        "n_symbols": symbols.NUM_SYMBOLS, "n_langs": symbols.NUM_LANGS, "preset": preset,
        "config": config_to_dict(load_config(preset)),
        "steps": {"sovits": 40000, "gpt": 8000, "total": 48000},
        "corpus": {"corpus": "base-corpus", "clips": 2400, "hours": 1.9,
                   "speakers": {f"spk{i}": {"clips": 240, "seconds": 700.0} for i in range(10)}},
        "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob),
    }  # fmt: skip
    js.write_text(json.dumps(meta))
    card.write_text("# voicelab base model: model card\n")
    return st


@pytest.fixture
def bases(tmp_path, monkeypatch) -> Path:
    """An empty VOICELAB_BASE_DIR (write_base puts a base in it) and a measured CPU benchmark."""
    folder = tmp_path / "bases"
    folder.mkdir()
    monkeypatch.setenv("VOICELAB_BASE_DIR", str(folder))
    bench = tmp_path / "train.json"
    bench.write_text(json.dumps({"machine": {"cores": 2, "cpu": "Test CPU", "gpu": None},
                                 "results": {"cpu": {"batch_size": 8,
                                                     "sovits": {"s_per_step": 1.0},
                                                     "gpt": {"s_per_step": 0.2}}}}))  # fmt: skip
    monkeypatch.setattr(train_settings, "BENCH_TRAIN", bench)
    monkeypatch.setattr(train_start, "BENCH_BASE", tmp_path / "no-base-bench.json")
    return folder


def test_default_run_fine_tunes_the_matching_base(tmp_home, bases):
    st = write_base(bases)
    preset = train_settings.default_preset()
    assert preset == "cpu"
    tuned = load_config(preset, finetune=True)
    vals = train_start.start_values(preset, FROM_BASE)
    assert vals == train_settings.preset_values(preset, finetune=True)  # the boxes: its schedule
    n_s, n_g = tuned.train.sovits_steps, tuned.train.gpt_steps
    assert vals[KEYS.index("sovits_steps")] == n_s < load_config(preset).train.sovits_steps
    line = train_start.start_line(preset, FROM_BASE, vals)
    assert ("Starts from **the pretrained English base `base` (10 speakers, 1.9 h, SoVITS 40000 "
            f"+ GPT 8000 steps)**: fine-tunes **{n_s} + {n_g} steps**") in line
    # n_s x 1.0 s + n_g x 0.2 s, from the benchmark (batch 8 as measured)
    assert "(measured on a quiet 2-core Test CPU)" in line and "from scratch" not in line
    # the acoustic model kept as pretrained (0 steps) is said, as are frozen modules otherwise
    assert ("stays as pretrained" in line) if n_s == 0 else ("frozen" in line)
    assert f"{n_s} + {n_g} steps" in train_settings.estimate(preset, vals)
    v = _voice_with_slices("fb")
    assert "New run `r1`" in train_runs.run_info("fb", "r1", preset, FROM_BASE, vals)
    msg = train_runs.start("fb", "r1", preset, vals, prefix=NOOP)
    argv = _command(v.run_dir("r1"))
    assert argv[argv.index("--from") + 1] == str(st) and "--resume" not in argv
    assert _sets(argv) == {}, "the fine-tune schedule is the trainer's own: nothing to override"
    assert "from the pretrained base `base`" in msg
    # a box changed on purpose is counted from the fine-tune schedule, and still wins
    vals[KEYS.index("sovits_steps")] = 800.0
    line = train_start.start_line(preset, FROM_BASE, vals)
    assert f"**800 + {n_g} steps**" in line and "learns your voice on top" in line
    train_runs.start("fb", "r2", preset, vals, prefix=NOOP)
    assert _sets(_command(v.run_dir("r2"))) == {"train.sovits_steps": "800"}


def test_from_scratch_is_a_choice_with_the_plain_preset(tmp_home, bases):
    write_base(bases)
    vals = train_start.start_values("cpu", FROM_SCRATCH)
    assert vals == train_settings.preset_values("cpu") and vals[KEYS.index("sovits_steps")] == 1500
    line = train_start.start_line("cpu", FROM_SCRATCH, vals)
    assert line.startswith("Starts **from scratch** (as chosen under Start from; the pretrained "
                           "base `base` fits this preset): trains **1500 + 300 steps**, about")
    v = _voice_with_slices("fs")
    msg = train_runs.start("fs", "r1", "cpu", vals, prefix=NOOP, start_from=FROM_SCRATCH)
    argv = _command(v.run_dir("r1"))
    assert argv[argv.index("--from") + 1] == "none" and _sets(argv) == {}
    assert "from scratch" in msg


def test_without_a_fitting_base_it_says_from_scratch_and_why(tmp_home, bases):
    line = train_start.start_line("cpu")
    assert "Starts **from scratch** (there is no pretrained base in" in line and str(bases) in line
    assert train_start.start_values("cpu") == train_settings.preset_values("cpu")
    write_base(bases, preset="tiny")  # another architecture than cpu's
    p = train_start.plan("cpu", FROM_BASE)
    assert not p.finetune and p.from_value == "none"
    assert "made with preset `tiny`, not `cpu`: pick that preset" in train_start.start_line("cpu")
    assert train_start.plan("tiny", FROM_BASE).finetune  # and tiny starts from it
    v = _voice_with_slices("nb")
    train_runs.start("nb", "r1", "cpu", train_start.start_values("cpu"), prefix=NOOP)
    argv = _command(v.run_dir("r1"))
    assert argv[argv.index("--from") + 1] == "none", "what the tab said, not the trainer's guess"
    # a damaged base is no base (find_bases skips it, with a warning)
    st = write_base(bases)
    st.write_bytes(st.read_bytes()[:-1])
    assert not train_start.plan("cpu", FROM_BASE).finetune


def test_boxes_from_the_other_schedule_are_pointed_out(bases):
    write_base(bases)
    plain = train_settings.preset_values("cpu")  # e.g. a page opened before the base shipped
    line = train_start.start_line("cpu", FROM_BASE, plain)
    assert "fine-tunes **1500 + 300 steps**" in line and "hold the other schedule" in line
    assert "other schedule" not in train_start.start_line("cpu", FROM_BASE)


def test_a_fine_tuned_run_resumes_with_its_own_settings(tmp_home, bases):
    """Its saved config is rebuilt from the fine-tune schedule (as the trainer's resume does),
    so a value set back to the plain preset's survives; Start from does not touch its boxes."""
    write_base(bases)
    plain = load_config("cpu")
    v = _voice_with_slices("rf")
    run_dir = v.run_dir("r1")
    run_dir.mkdir(parents=True)
    cfg = load_config("cpu", [f"train.lr_g={plain.train.lr_g!r}", "train.gpt_steps=200"],
                      finetune=True)  # fmt: skip
    save_config_json(cfg, run_dir / runfiles.CONFIG)
    rc = train_runs.run_config(run_dir)
    tuned = load_config("cpu", finetune=True).train.sovits_steps
    assert rc.cfg.train.finetuned and rc.values[KEYS.index("sovits_steps")] == tuned
    rebuilt = load_config(rc.preset, rc.overrides, finetune=True)
    assert config_to_dict(rebuilt) == config_to_dict(cfg)
    kept = train_runs.new_run_values("rf", "r1", "cpu", FROM_SCRATCH)
    assert len(kept) == len(KEYS) and all(x == gr.skip() for x in kept)
    assert train_runs.new_run_values("rf", "new", "cpu", FROM_SCRATCH) == tuple(
        train_settings.preset_values("cpu"))
    _checkpoint(run_dir, 12)
    msg = train_runs.start("rf", "r1", "cpu", rc.values, resume=True, prefix=NOOP)
    argv = _command(run_dir)
    assert "--from" not in argv and argv[argv.index("--resume") + 1] == "auto"
    sets = [f"{k}={x}" for k, x in _sets(argv).items()]
    assert config_to_dict(load_config("cpu", sets, finetune=True)) == config_to_dict(cfg)
    assert "from step-00000012.pt" in msg and "keeps its own preset `cpu`" in msg


def test_the_trainer_builds_the_schedule_the_tab_showed(tmp_home, bases, monkeypatch):
    """The argv the tab gives the trainer, through the real `train` command (training itself
    replaced): from the base it is the fine-tune config and that base; from scratch, the plain."""
    from voicelab.cli import main
    from voicelab.training import trainer

    st = write_base(bases)
    seen = []
    monkeypatch.setattr(trainer, "train_voice", lambda v, cfg, opts: seen.append((cfg, opts)) or 0)
    v = _voice_with_slices("tb")
    for run, choice in (("r1", FROM_BASE), ("r2", FROM_SCRATCH)):
        vals = train_start.start_values("cpu", choice)
        vals[KEYS.index("gpt_steps")] = 99.0  # one deliberate change
        train_runs.start("tb", run, "cpu", vals, prefix=NOOP, start_from=choice)
        assert main(_command(v.run_dir(run))[3:]) == 0  # without `python -c pass`
    (tuned, opts), (plain, scratch) = seen
    assert opts.from_path == st and scratch.from_path is None
    want = load_config("cpu", ["train.gpt_steps=99"], finetune=True)
    assert config_to_dict(tuned) == config_to_dict(want) and tuned.train.finetuned
    assert config_to_dict(plain) == config_to_dict(load_config("cpu", ["train.gpt_steps=99"]))


def test_the_whole_fine_tune_time_comes_from_the_base_benchmark(tmp_home, bases, monkeypatch,
                                                                tmp_path):  # fmt: skip
    """The step estimate leaves out features, checks, saves and the blend's choice: for the
    default schedule the tab also says what a whole default fine-tune took when it was measured."""
    write_base(bases)
    assert train_start.measured_finetune_minutes("cpu") is None  # nothing measured: nothing said
    assert "All of it" not in train_start.start_line("cpu")
    bench = tmp_path / "base.json"
    run = {"preset": "cpu", "finetuned": True}
    bench.write_text(json.dumps({"voices": {
        "a": {"runs": {"default": {**run, "train_min": 1.84}, "scratch": {"train_min": 9.0}}},
        "b": {"runs": {"default": {**run, "train_min": 2.04}}},
        "c": {"error": "prepare failed"},
        "d": {"runs": {"default": {"preset": "tiny", "finetuned": True, "train_min": 0.2}}}}}))
    monkeypatch.setattr(train_start, "BENCH_BASE", bench)
    assert train_start.measured_finetune_minutes("cpu") == (1.84, 2.04)
    assert train_start.measured_finetune_minutes("base") is None
    line = train_start.start_line("cpu")
    assert "took 1.8-2.0 min for a one-minute voice" in line
    vals = train_start.start_values("cpu", FROM_BASE)
    vals[KEYS.index("sovits_steps")] = 900  # another schedule: the measurement does not apply
    assert "All of it" not in train_start.start_line("cpu", FROM_BASE, vals)
    bench.write_text("{broken")
    assert train_start.measured_finetune_minutes("cpu") is None
