"""Training never silently corrupts a run or loses a file (issue 16 items 1, 4, 9, 10).

Each test fails on main at f257dd1: NaN data is refused where it enters, a skipped step leaves
the model's buffers as they were, non-finite weights roll back instead of being saved, a resume
from an older checkpoint keeps the abandoned timeline (checkpoints and metrics) aside instead of
overwriting it, and a refused resume leaves status.json as it was.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from voicelab.config import load_config
from voicelab.data.dataset import VoiceData
from voicelab.errors import EXIT_OK, VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.training.trainer import Trainer, TrainOptions
from voicelab.workspace import get_voice

FAST = ["train.device=cpu", "train.log_every=1", "train.save_every_minutes=0",
        "train.gpt_steps=0", "train.eval_every=100", "train.save_every=1", "train.keep_last=5",
        "train.warmup_steps=0", "train.schedule=constant"]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def voice(tmp_path, mini_list):
    v = get_voice("mini", base=tmp_path).create()
    entries = []
    for e in read_list(mini_list):
        shutil.copy(e.path, v.slices / e.path.name)
        entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
    write_list(v.dataset_list, entries)
    return v


def train(voice, *overrides: str, **opts) -> int:
    cfg = load_config("tiny", [*FAST, *overrides])
    return Trainer(voice, cfg, TrainOptions(tensorboard=False, **opts)).run()


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state[ck.K_MODELS]["sovits"].values()
               if t.is_floating_point())  # fmt: skip


# ---- item 1: NaN ----------------------------------------------------------------------------


def test_nan_in_the_feature_cache_is_refused_naming_the_slice(voice):
    cfg = load_config("tiny", FAST)
    VoiceData.load(voice, cfg)  # fills the feature cache
    cached = sorted((voice.features).rglob("*.safetensors"))
    assert cached
    tensors = load_file(str(cached[0]))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, str(cached[0]))
    with pytest.raises(VoicelabError, match=r"slice \w+\.wav: .*NaN"):
        VoiceData.load(voice, cfg)


def _nan_mel_on(monkeypatch, calls: set[int]) -> None:
    from voicelab.models import losses

    real, n = losses.mel_l1, {"calls": 0}

    def mel(*a, **k):
        n["calls"] += 1
        out = real(*a, **k)
        return out * float("nan") if n["calls"] in calls else out

    monkeypatch.setattr(losses, "mel_l1", mel)


def test_a_skipped_step_leaves_the_codebooks_as_they_were(voice, monkeypatch):
    """Step 2 is non-finite and skipped: its forward must not have moved the VQ codebooks."""
    _nan_mel_on(monkeypatch, {2})
    assert train(voice, "train.sovits_steps=2", "train.nan_patience=5", run="s") == EXIT_OK
    run = voice.run("s")
    one, two = (ck.load_checkpoint(run.checkpoint(s))[ck.K_MODELS]["sovits"] for s in (1, 2))
    assert runfiles.read_status(run)["skipped_steps"] == 1
    changed = [k for k in one if not torch.equal(one[k], two[k])]
    assert changed == [], changed  # parameters (not stepped) and buffers (put back) alike


def test_non_finite_weights_roll_back_instead_of_being_saved(voice):
    """A buffer turns NaN while the losses stay finite (what a NaN batch does to a codebook):
    the run rolls back to the last checkpoint, and no saved checkpoint holds NaN."""
    cfg = load_config("tiny", [*FAST, "train.sovits_steps=3", "train.nan_patience=5"])
    tr = Trainer(voice, cfg, TrainOptions(run="w", tensorboard=False))
    calls = {"n": 0}

    def poison(module, inputs, output):
        if not module.training:
            return  # samples and validation run in eval mode: count training forwards only
        calls["n"] += 1
        if calls["n"] == 2:  # after the forward of step 2: its losses are still finite
            with torch.no_grad():  # the codebooks a forward updates (saved with the model)
                for name, b in module.named_buffers():
                    if name.endswith("embed"):
                        b.fill_(float("nan"))

    try:
        tr.setup()
        tr.sovits.quantizer.register_forward_hook(poison)
        assert tr.train() == EXIT_OK
    finally:
        tr.cleanup()
    run = voice.run("w")
    assert "the weights became non-finite: rolled back to step-00000001.pt" in run.log.read_text()
    for p in run.checkpoint_files():
        assert all_finite(ck.load_checkpoint(p)), p.name


# ---- item 4 and 9: the abandoned timeline is kept aside, never overwritten ----------------------


def logged(run) -> list[int]:
    return [r["step"] for r in runfiles.read_metrics(run) if "loss/mel" in r]


def test_resume_from_an_older_checkpoint_keeps_the_abandoned_timeline(voice):
    assert train(voice, "train.sovits_steps=3", run="t") == EXIT_OK
    run = voice.run("t")
    old = {p.name: p.read_bytes() for p in run.checkpoint_files()}
    assert sorted(old) == ["step-00000001.pt", "step-00000002.pt", "step-00000003.pt"]
    code = train(voice, "train.sovits_steps=3", run="t", resume=str(run.checkpoint(1)))
    assert code == EXIT_OK
    superseded = run.checkpoints / ck.SUPERSEDED
    for name in ("step-00000002.pt", "step-00000003.pt"):  # kept byte for byte, not overwritten
        assert (superseded / name).read_bytes() == old[name], name
        assert (run.checkpoints / name).read_bytes() != old[name], name
    assert logged(run) == [1, 2, 3]  # one timeline: no step twice, no zigzag
    abandoned = [json.loads(line) for line in run.metrics_superseded.read_text().splitlines()]
    assert [r["step"] for r in abandoned if "loss/mel" in r] == [2, 3]  # kept beside, raw


def test_a_damaged_checkpoint_skipped_by_resume_is_kept(voice):
    assert train(voice, "train.sovits_steps=2", run="d") == EXIT_OK
    run = voice.run("d")
    newest = run.checkpoint(2)
    newest.write_bytes(newest.read_bytes()[:1000])  # cut off
    damaged = newest.read_bytes()
    assert train(voice, "train.sovits_steps=3", run="d", resume="auto") == EXIT_OK
    assert (run.checkpoints / ck.SUPERSEDED / newest.name).read_bytes() == damaged
    assert ck.load_checkpoint(run.checkpoint(2))[ck.K_STEP] == 2  # the new step 2 is intact
    assert logged(run) == [1, 2, 3]


# ---- item 10: a refused resume changes no status ------------------------------------------------


def test_a_refused_resume_leaves_the_status_as_it_was(voice):
    assert train(voice, "train.sovits_steps=1", run="f") == EXIT_OK
    run = voice.run("f")
    before = run.status.read_bytes()
    assert runfiles.read_status(run)["state"] == "finished"
    with pytest.raises(ck.CheckpointError, match="different architecture"):
        train(voice, "train.sovits_steps=2", "model.hidden=16", run="f", resume="auto")
    assert run.status.read_bytes() == before
    assert [p.name for p in run.checkpoint_files()] == ["step-00000001.pt"]
    assert logged(run) == [1]
