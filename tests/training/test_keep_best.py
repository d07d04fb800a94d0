"""train.keep_best: a stage ends on the weights of its best validated checkpoint.

On a minute of speech the validation loss is lowest early (~100 steps) and the early stop comes
later, after it has seen the rise; without keep_best the stage handed over its last, overfitted
weights. The validation losses are scripted here so that the best step is known.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from voicelab.errors import EXIT_OK
from voicelab.training import checkpoint as ck
from voicelab.training import validation as val
from voicelab.training.trainer import Trainer, TrainOptions

sys.path.insert(0, str(Path(__file__).parent))
from test_world_path import cfg_with, make_voice, one_thread  # noqa: E402, F401  (autouse)


def _scripted(monkeypatch, losses: list[float]) -> None:
    it = iter(losses)
    monkeypatch.setattr(val, "validation_loss", lambda *a, **k: next(it))


def _weights(state: dict, name: str = "sovits") -> dict[str, torch.Tensor]:
    return state[ck.K_MODELS][name]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep", [True, False])
def test_the_stage_ends_on_its_best_validated_weights(tmp_path, monkeypatch, keep):
    voice = make_voice(tmp_path / "ws")
    # best at step 2; early stop after 2 evaluations without a gain (steps 3, 4)
    _scripted(monkeypatch, [1.0, 0.5, 0.9, 0.8])
    cfg = cfg_with("train.sovits_steps=8", "train.gpt_steps=0", "train.eval_every=1",
                   "train.save_every=1", "train.early_stop_patience=2", "train.keep_last=10",
                   f"train.keep_best={str(keep).lower()}")  # fmt: skip
    code = Trainer(voice, cfg, TrainOptions(run="k", tensorboard=False)).run()
    assert code == EXIT_OK
    run = voice.run_dir("k")
    last = ck.find_resume(run).state
    assert last[ck.K_STEP] == 4  # stopped early
    at_best = ck.load_checkpoint(run / "checkpoints" / "step-00000002.pt")
    at_3 = ck.load_checkpoint(run / "checkpoints" / "step-00000003.pt")
    assert not _same(_weights(at_best), _weights(at_3))  # training moved the weights
    assert _same(_weights(last), _weights(at_best)) is keep
    assert _same(last[ck.K_EMA]["sovits"], at_best[ck.K_EMA]["sovits"]) is keep
    log = (run / "train.log").read_text()
    assert ("back to the weights of step 2" in log) is keep


def test_a_last_step_that_is_best_keeps_its_weights(tmp_path, monkeypatch):
    voice = make_voice(tmp_path / "ws")
    _scripted(monkeypatch, [1.0, 0.9, 0.8])
    cfg = cfg_with("train.sovits_steps=3", "train.gpt_steps=0", "train.eval_every=1",
                   "train.save_every=1", "train.keep_best=true")  # fmt: skip
    assert Trainer(voice, cfg, TrainOptions(run="k", tensorboard=False)).run() == EXIT_OK
    assert "back to the weights" not in (voice.run_dir("k") / "train.log").read_text()
