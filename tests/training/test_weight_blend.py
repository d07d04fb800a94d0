"""train.weight_blend: a run that starts from weights ends on a blend of the initial and the
trained acoustic model (weight-space ensembling). The same run with and without the blend, from
the same start and seed: the blended weights are exactly (1 - w) * start + w * trained."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from voicelab.errors import EXIT_OK
from voicelab.training import checkpoint as ck
from voicelab.training.trainer import Trainer, TrainOptions

sys.path.insert(0, str(Path(__file__).parent))
from test_world_path import cfg_with, make_voice, one_thread  # noqa: E402, F401  (autouse)

STEPS = ["train.gpt_steps=0", "train.eval_every=100", "train.save_every=100"]


def _sovits(run: Path) -> dict[str, torch.Tensor]:
    state = ck.find_resume(run).state
    return {k: v for k, v in state[ck.K_EMA]["sovits"].items() if v.is_floating_point()}


def test_a_run_without_stage_2_ends_on_the_blend_of_start_and_trained_weights(tmp_path):
    voice = make_voice(tmp_path / "ws")
    assert Trainer(voice, cfg_with("train.sovits_steps=3", *STEPS),
                   TrainOptions(run="start", tensorboard=False)).run() == EXIT_OK  # fmt: skip
    start = voice.run_dir("start") / "checkpoints" / "step-00000003.pt"
    for run, w in (("plain", "1.0"), ("blend", "0.25")):
        cfg = cfg_with("train.sovits_steps=4", f"train.weight_blend={w}", *STEPS)
        code = Trainer(voice, cfg, TrainOptions(run=run, from_path=start, tensorboard=False)).run()
        assert code == EXIT_OK
    initial = {k: v for k, v in ck.load_checkpoint(start)[ck.K_EMA]["sovits"].items()
               if v.is_floating_point()}  # fmt: skip
    plain, blend = _sovits(voice.run_dir("plain")), _sovits(voice.run_dir("blend"))
    moved = [k for k in plain if not torch.equal(plain[k], initial[k])]
    assert moved, "training changed nothing: the test would prove nothing"
    for k in plain:
        torch.testing.assert_close(blend[k], 0.75 * initial[k] + 0.25 * plain[k])
    assert "blended with the initial weights" in (voice.run_dir("blend") / "train.log").read_text()


def test_from_scratch_nothing_is_blended(tmp_path):
    voice = make_voice(tmp_path / "ws")
    cfg = cfg_with("train.sovits_steps=2", "train.weight_blend=0.5", *STEPS)
    assert Trainer(voice, cfg, TrainOptions(run="s", tensorboard=False)).run() == EXIT_OK
    assert "blended" not in (voice.run_dir("s") / "train.log").read_text()


def test_a_resumed_fine_tune_still_blends_with_where_it_started(tmp_path):
    """The start file is kept in the checkpoint: a resume (which gets no --from) blends too."""
    voice = make_voice(tmp_path / "ws")
    assert Trainer(voice, cfg_with("train.sovits_steps=2", *STEPS),
                   TrainOptions(run="start", tensorboard=False)).run() == EXIT_OK  # fmt: skip
    start = voice.run_dir("start") / "checkpoints" / "step-00000002.pt"
    first = cfg_with("train.sovits_steps=2", "train.weight_blend=1.0", *STEPS)
    assert Trainer(voice, first, TrainOptions(run="ft", from_path=start,
                                              tensorboard=False)).run() == EXIT_OK  # fmt: skip
    more = cfg_with("train.sovits_steps=4", "train.weight_blend=0.5", *STEPS)
    assert Trainer(voice, more, TrainOptions(run="ft", resume="auto",
                                             tensorboard=False)).run() == EXIT_OK  # fmt: skip
    log = (voice.run_dir("ft") / "train.log").read_text()
    assert "blended with the initial weights: 0.50 x step-00000002.pt" in log


def test_with_a_gpt_stage_the_blend_comes_at_the_end_of_the_run_and_only_once(tmp_path):
    """Stage 2 trains on the adapted (unblended) acoustic model's tokens; the run's end blends
    it, so the choice of share can listen with the adapted GPT. A resume given more steps after
    that end does not blend a second time."""
    voice = make_voice(tmp_path / "ws")
    assert Trainer(voice, cfg_with("train.sovits_steps=2", *STEPS),
                   TrainOptions(run="start", tensorboard=False)).run() == EXIT_OK  # fmt: skip
    start = voice.run_dir("start") / "checkpoints" / "step-00000002.pt"
    both = ["train.sovits_steps=3", "train.weight_blend=0.5", "train.eval_every=100",
            "train.save_every=100"]
    cfg = cfg_with(*both, "train.gpt_steps=2")
    assert Trainer(voice, cfg, TrainOptions(run="ft", from_path=start,
                                            tensorboard=False)).run() == EXIT_OK  # fmt: skip
    ckpts = voice.run_dir("ft") / "checkpoints"
    initial = {k: v for k, v in ck.load_checkpoint(start)[ck.K_EMA]["sovits"].items()
               if v.is_floating_point()}  # fmt: skip
    end_of_stage_1 = {k: v for k, v in ck.load_checkpoint(ckpts / "step-00000003.pt")[ck.K_EMA]
                      ["sovits"].items() if v.is_floating_point()}  # fmt: skip
    final = _sovits(voice.run_dir("ft"))
    assert any(not torch.equal(end_of_stage_1[k], initial[k]) for k in initial)
    for k in final:
        torch.testing.assert_close(final[k], 0.5 * initial[k] + 0.5 * end_of_stage_1[k])
    log = (voice.run_dir("ft") / "train.log").read_text()
    assert log.index("stage gpt") < log.index("blended with the initial weights: 0.50")
    more = cfg_with(*both, "train.gpt_steps=4")
    assert Trainer(voice, more, TrainOptions(run="ft", resume="auto",
                                             tensorboard=False)).run() == EXIT_OK  # fmt: skip
    again = _sovits(voice.run_dir("ft"))
    for k in final:
        torch.testing.assert_close(again[k], final[k])
    assert "blended already (share 0.50)" in (voice.run_dir("ft") / "train.log").read_text()
