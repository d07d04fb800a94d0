"""The trainer on the tiny preset with real speech (tests/assets/mini.list imported into a voice).

Runs are a few optimiser steps each (a tiny step is well under a second on a free CPU): the
point is that every path runs and hands over correctly, not that the voice is any good.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import pytest
import torch

from voicelab.config import load_config
from voicelab.errors import EXIT_OK, EXIT_PAUSED, VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.training.trainer import TOKENS_FILE, Trainer, TrainOptions
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent.parent / "assets"
FAST = ["train.device=cpu", "train.log_every=1", "train.save_every_minutes=0"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine two
    threads per process oversubscribe the CPU (a step goes from ~0.7 s to 10 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_voice(home: Path, name: str = "mini"):
    v = get_voice(name, base=home).create()
    entries = []
    for e in read_list(DATA / "mini.list"):
        shutil.copy(e.path, v.slices / e.path.name)
        entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
    write_list(v.dataset_list, entries)
    return v


def cfg_with(*overrides: str):
    return load_config("tiny", [*FAST, *overrides])


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory):
    """One full run: 3 SoVITS steps, token hand-over, 3 GPT steps."""
    home = tmp_path_factory.mktemp("ws")
    voice = make_voice(home)
    cfg = cfg_with(
        "train.sovits_steps=3",
        "train.gpt_steps=3",
        "train.save_every=3",
        "train.eval_every=3",
        "train.lr_gpt=1e-3",
    )
    code = Trainer(voice, cfg, TrainOptions(run="r1", tensorboard=False)).run()
    return voice, cfg, code, voice.run_dir("r1")


def test_run_reports_everything(two_stage):
    voice, cfg, code, run = two_stage
    assert code == EXIT_OK
    status = runfiles.read_status(run)
    assert status["state"] == "finished" and status["step"] == status["total_steps"] == 6
    assert status["stage"] == "gpt" and status["global_step"] == 6
    recs = [r for r in runfiles.read_metrics(run) if "loss/mel" in r or "loss/gpt" in r]
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5, 6]
    s1 = recs[0]
    for key in (
        "loss/mel",
        "loss/kl",
        "loss/fm",
        "loss/adv",
        "loss/commit",
        "loss/d",
        "grad_norm/g",
        "grad_norm/d",
        "lr/g.text",
        "lr/g.main",
        "lr/d.main",
        "samples_per_s",
        "wall_s",
        "epoch",
        "stage_step",
    ):
        assert key in s1, key
    assert s1["stage"] == "sovits" and recs[3]["stage"] == "gpt"
    # text modules learn at text_lr_mult of the generator LR
    assert s1["lr/g.text"] == pytest.approx(s1["lr/g.main"] * cfg.train.text_lr_mult)
    vals = [r for r in runfiles.read_metrics(run) if "val/sovits" in r or "val/gpt" in r]
    assert len(vals) == 2 and all(
        math.isfinite(next(v for k, v in r.items() if k.startswith("val/"))) for r in vals
    )
    names = sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))
    assert names == ["step-00000003.pt", "step-00000006.pt"]
    samples = sorted(p.name for p in (run / "samples").glob("*.wav"))
    assert samples == ["step-00000003.wav", "step-00000006.wav"]
    log = (run / runfiles.LOG).read_text()
    assert "extracted semantic tokens of 3 slices" in log and "training finished" in log


def test_losses_fall(two_stage):
    _, _, _, run = two_stage
    recs = runfiles.read_metrics(run)
    kl = [r["loss/kl"] for r in recs if "loss/kl" in r]
    ce = [r["loss/gpt"] for r in recs if "loss/gpt" in r]
    assert kl[-1] < kl[0], kl  # the prior learns to explain the posterior
    assert ce[-1] < ce[0], ce  # the GPT learns the token sequences


def test_stages_hand_over(two_stage):
    """tokens.pt holds, for every slice, exactly what the final EMA SoVITS extracts."""
    voice, cfg, _, run = two_stage
    from voicelab.data.dataset import VoiceData
    from voicelab.models.build import build_models

    blob = torch.load(run / TOKENS_FILE, weights_only=True)
    assert blob["keys"] == sorted(["slt_000.wav", "slt_001.wav", "rms_000.wav"])
    state = ck.load_checkpoint(run / "checkpoints" / "step-00000006.pt")
    assert state[ck.K_STAGE] == "gpt" and state[ck.K_STAGE_STEP] == 3
    sovits = build_models(cfg).sovits
    sovits.load_state_dict(state[ck.K_EMA]["sovits"])
    sovits.eval()
    data = VoiceData.load(voice, cfg)
    for it in data.items:
        toks, lens = sovits.extract_tokens(it.spec[None], torch.tensor([it.frames]))
        got = blob["tokens"][blob["keys"].index(it.key)]
        assert torch.equal(got, toks[0, : int(lens[0])])
        assert got.max() < cfg.model.codebook_size
    assert blob["styles"].shape == (3, cfg.model.style_dim)


def test_existing_run_needs_resume_and_from_starts_fresh(two_stage, monkeypatch):
    voice, cfg, _, run = two_stage
    with pytest.raises(VoicelabError, match="--resume auto"):
        Trainer(voice, cfg, TrainOptions(run="r1", tensorboard=False)).run()
    assert runfiles.read_status(run)["state"] == "finished"  # the refused start changed nothing
    # the CLI: a new run from r1's last checkpoint, stage 2 only, one step
    from voicelab.commands import train as train_cmd

    monkeypatch.setenv("VOICELAB_HOME", str(voice.root.parent))
    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    src = run / "checkpoints" / "step-00000006.pt"
    args = parser.parse_args(
        [
            "train",
            "--voice",
            voice.name,
            "--preset",
            "tiny",
            "--run",
            "ft",
            "--from",
            str(src),
            "--stage",
            "gpt",
            "--gpt-steps",
            "1",
            "--no-tensorboard",
            *sum((["--set", o] for o in FAST), []),
        ]
    )
    assert args.func(args) == EXIT_OK
    ft = voice.run_dir("ft")
    state = ck.load_checkpoint(ft / "checkpoints" / "step-00000001.pt")
    assert (
        state[ck.K_STAGE] == "gpt"
        and state[ck.K_STEP] == 1
        and set(state[ck.K_OPTIMIZERS]) == {"gpt"}
    )
    base = ck.load_checkpoint(src)
    for k, v in base[ck.K_EMA]["sovits"].items():  # SoVITS untouched by a GPT-only run
        assert torch.equal(state[ck.K_MODELS]["sovits"][k], v), k


def test_stage_gpt_alone_needs_weights(tmp_path):
    voice = make_voice(tmp_path)
    cfg = cfg_with("train.gpt_steps=1")
    with pytest.raises(VoicelabError, match="needs a trained SoVITS"):
        Trainer(voice, cfg, TrainOptions(run="g", stage="gpt", tensorboard=False)).run()
    assert runfiles.read_status(voice.run_dir("g"))["state"] == "failed"


class PauseAt(Trainer):
    """Asks for a pause (as the UI does) right after global step `at`."""

    at = 0

    def _step_boundary(self, stage, st):
        if self.global_step == self.at:
            runfiles.request_action(self.run_dir, "pause")
        return super()._step_boundary(stage, st)


def test_pause_and_resume_is_exact(tmp_path):
    """2+2 steps straight == pause inside stage 2 + resume, bit for bit (CPU)."""
    voice = make_voice(tmp_path)
    cfg = cfg_with(
        "train.sovits_steps=2",
        "train.gpt_steps=2",
        "train.save_every=100",
        "train.eval_every=100",
        "train.mixup_alpha=0.4",
    )
    assert Trainer(voice, cfg, TrainOptions(run="straight", tensorboard=False)).run() == EXIT_OK
    PauseAt.at = 3
    assert PauseAt(voice, cfg, TrainOptions(run="paused", tensorboard=False)).run() == EXIT_PAUSED
    st = runfiles.read_status(voice.run_dir("paused"))
    assert st["state"] == "paused" and st["global_step"] == 3
    PauseAt.at = -1
    code = PauseAt(voice, cfg, TrainOptions(run="paused", resume="auto", tensorboard=False)).run()
    assert code == EXIT_OK
    a = ck.load_checkpoint(voice.run_dir("straight") / "checkpoints" / "step-00000004.pt")
    b = ck.load_checkpoint(voice.run_dir("paused") / "checkpoints" / "step-00000004.pt")
    for group in (ck.K_MODELS, ck.K_EMA):
        for name in a[group]:
            for k, v in a[group][name].items():
                assert torch.equal(v, b[group][name][k]), f"{group}.{name}.{k}"
    sa, sb = a[ck.K_OPTIMIZERS]["gpt"]["state"], b[ck.K_OPTIMIZERS]["gpt"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert (a[ck.K_EPOCH], a[ck.K_EPOCH_POS]) == (b[ck.K_EPOCH], b[ck.K_EPOCH_POS])


def _nan_mel(monkeypatch, bad_calls: set[int]):
    """Make the training mel loss NaN on the given (1-based) calls."""
    from voicelab.models import losses

    real, calls = losses.mel_l1, {"n": 0}

    def mel(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] in bad_calls else out

    monkeypatch.setattr(losses, "mel_l1", mel)


def test_nan_guard_rolls_back_with_lower_lr(tmp_path, monkeypatch):
    voice = make_voice(tmp_path)
    cfg = cfg_with(
        "train.sovits_steps=3",
        "train.gpt_steps=0",
        "train.save_every=1",
        "train.eval_every=100",
        "train.nan_patience=1",
        "train.warmup_steps=0",
        "train.schedule=constant",
    )
    _nan_mel(monkeypatch, {2})  # call 1: step 1; call 2: step 2 -> NaN -> back to step 1
    assert Trainer(voice, cfg, TrainOptions(run="n", tensorboard=False)).run() == EXIT_OK
    run = voice.run_dir("n")
    st = runfiles.read_status(run)
    assert st["state"] == "finished" and st["rollbacks"] == 1 and st["skipped_steps"] == 1
    assert "rolled back to step-00000001.pt" in (run / runfiles.LOG).read_text()
    assert "rolled back" in st["message"]  # still shown to the UI after later steps
    lrs = [r["lr/g.main"] for r in runfiles.read_metrics(run) if "lr/g.main" in r]
    assert lrs[0] == pytest.approx(cfg.train.lr_g) and lrs[-1] == pytest.approx(cfg.train.lr_g / 2)
    assert all(
        math.isfinite(v)
        for p in ck.load_checkpoint(run / "checkpoints" / "step-00000003.pt")[ck.K_MODELS][
            "sovits"
        ].values()
        for v in [float(p.float().sum())]
    )


def test_nan_before_any_checkpoint_stops_clearly(tmp_path, monkeypatch):
    voice = make_voice(tmp_path)
    cfg = cfg_with("train.sovits_steps=3", "train.gpt_steps=0", "train.nan_patience=1")
    _nan_mel(monkeypatch, {1})
    with pytest.raises(VoicelabError, match="before the first checkpoint"):
        Trainer(voice, cfg, TrainOptions(run="n", tensorboard=False)).run()
    st = runfiles.read_status(voice.run_dir("n"))
    assert st["state"] == "failed" and "lower the learning rates" in st["message"]


def test_gradient_accumulation_consumes_micro_batches(tmp_path):
    """grad_accum=2 x batch 1: one optimiser step eats both training slices (one epoch)."""
    voice = make_voice(tmp_path)
    cfg = cfg_with(
        "train.sovits_steps=1",
        "train.gpt_steps=1",
        "train.batch_size=1",
        "train.grad_accum=2",
        "train.eval_every=100",
    )
    assert Trainer(voice, cfg, TrainOptions(run="acc", tensorboard=False)).run() == EXIT_OK
    state = ck.load_checkpoint(voice.run_dir("acc") / "checkpoints" / "step-00000002.pt")
    assert (state[ck.K_EPOCH], state[ck.K_EPOCH_POS]) == (0, 2)
    recs = [r for r in runfiles.read_metrics(voice.run_dir("acc")) if "loss/gpt" in r]
    assert len(recs) == 1 and math.isfinite(recs[0]["loss/gpt"])


def test_early_stopping_and_plateau():
    """The evaluation bookkeeping alone (no model): patience counts evals without a gain."""
    from voicelab.training.schedules import PlateauReducer
    from voicelab.training.validation import StageState

    cfg = cfg_with(
        "train.early_stop_patience=2", "train.plateau_patience=1", "train.plateau_factor=0.5"
    )
    st = StageState("sovits", 10, PlateauReducer(1, 0.5), cfg.train.early_stop_patience)
    losses = iter([2.0, 1.0, 1.0, 1.5])
    st.observe(next(losses))
    st.observe(next(losses))
    assert st.best_val == 1.0 and not st.stopped_early and st.plateau.scale == 1.0
    st.observe(next(losses))  # no gain: plateau halves the LR, early stop not yet
    assert st.plateau.scale == 0.5 and not st.stopped_early
    _, note = st.observe(next(losses))  # second eval without gain: stop this stage
    assert st.stopped_early and st.evals_without_gain == 2
    assert note is not None and "early stop" in note


class Fp16OnCpu(Trainer):
    """The CUDA fp16 path (autocast + GradScaler, two optimisers, one update) run on the CPU,
    which supports both, so its code is exercised where no GPU is available."""

    def setup(self):
        super().setup()
        self.amp_dtype = torch.float16
        self.scaler = torch.amp.GradScaler("cpu", enabled=True)


def test_fp16_grad_scaler_path(tmp_path):
    voice = make_voice(tmp_path)
    cfg = cfg_with("train.sovits_steps=1", "train.gpt_steps=1", "train.eval_every=100")
    assert Fp16OnCpu(voice, cfg, TrainOptions(run="amp", tensorboard=False)).run() == EXIT_OK
    state = ck.load_checkpoint(voice.run_dir("amp") / "checkpoints" / "step-00000002.pt")
    assert state[ck.K_SCALER]["scale"] > 0  # the scaler's state is checkpointed
    recs = [r for r in runfiles.read_metrics(voice.run_dir("amp")) if "loss/gpt" in r]
    assert math.isfinite(recs[0]["loss/gpt"])
