"""train.blend_margin: a fine-tune chooses how much of its adaptation to keep, by ear, at its end.

The choice itself (pick_share) is pure and tested on numbers; the trainer test runs a real tiny
fine-tune whose start file "lists" speakers (base.speaker_dvectors patched): a speaker nothing
sounds like lets the smallest share pass, a speaker identical to the voice lets none pass. In both
the weights that end stage 1 are exactly the blend at the share the log names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from voicelab import base
from voicelab.config import load_config
from voicelab.errors import EXIT_OK, ConfigError
from voicelab.training import blend
from voicelab.training import checkpoint as ck
from voicelab.training.blend import Likeness, pick_share
from voicelab.training.trainer import Trainer, TrainOptions

sys.path.insert(0, str(Path(__file__).parent))
from test_world_path import cfg_with, make_voice, one_thread  # noqa: E402, F401  (autouse)

STEPS = ["train.gpt_steps=0", "train.eval_every=100", "train.save_every=100"]
SHARES = "train.blend_shares=[0.3, 0.6, 1.0]"


def _like(target: float, **others: float) -> Likeness:
    return Likeness(target, dict(others))


def test_pick_share_takes_the_smallest_share_that_keeps_the_margin():
    measured = [(0.3, _like(0.80, a=0.82)), (0.5, _like(0.85, a=0.81)), (0.7, _like(0.86, a=0.80))]
    assert pick_share(measured, 0.03) == 0.5  # 0.3 sounds like speaker a; 0.5 is 0.04 closer
    assert pick_share(measured, 0.05) == 0.7
    assert pick_share(measured, 0.0) == 0.5
    # nothing reaches the margin: the share that sounds most like the voice
    assert pick_share(measured, 0.5) == 0.7
    assert pick_share([(0.4, _like(0.8, a=0.9, b=0.1)), (1.0, _like(0.7, a=0.9))], 0.1) == 0.4
    with pytest.raises(ValueError):
        pick_share([], 0.03)


def test_likeness_margin_is_to_the_closest_other_speaker():
    s = _like(0.85, far=0.40, near=0.83)
    assert s.closest == ("near", 0.83)
    assert s.margin == pytest.approx(0.02)
    assert _like(0.9).margin == pytest.approx(1.9)  # no other speaker: nothing to be mistaken for


def test_config_checks_the_blend_settings():
    cfg = load_config("tiny-world", ["train.blend_margin=0.03", SHARES])
    assert cfg.train.blend_shares == (0.3, 0.6, 1.0)
    for bad in ("train.blend_margin=1.5", "train.blend_margin=-0.1", "train.blend_shares=[]",
                "train.blend_shares=[0.0, 0.5]", "train.blend_shares=[1.2]"):
        with pytest.raises(ConfigError, match="blend"):
            load_config("tiny-world", [bad])


def test_speaker_dvectors_reads_a_bases_json_and_nothing_else(tmp_path):
    st = tmp_path / "b.safetensors"
    st.write_bytes(b"")
    assert base.speaker_dvectors(st) == {}  # no JSON
    (tmp_path / "b.json").write_text("{broken", encoding="utf-8")
    assert base.speaker_dvectors(st) == {}
    table = {"a": [3.0, 4.0], "zero": [0.0, 0.0], "nan": [float("nan"), 1.0]}
    (tmp_path / "b.json").write_text(json.dumps({"format": "export", "speaker_dvectors": table}))
    assert base.speaker_dvectors(st) == {}  # not a base
    (tmp_path / "b.json").write_text(json.dumps({"format": base.BASE_FORMAT,
                                                 "speaker_dvectors": table}))  # fmt: skip
    got = base.speaker_dvectors(st)
    assert list(got) == ["a"]  # unusable vectors are left out
    np.testing.assert_allclose(got["a"], [0.6, 0.8])


def test_shipped_base_lists_every_corpus_speaker(shipped_base):
    vecs = base.speaker_dvectors(shipped_base / "base.safetensors")
    meta = json.loads((shipped_base / "base.json").read_text(encoding="utf-8"))
    assert sorted(vecs) == sorted(meta["corpus"]["speakers"])
    assert all(v.shape == (256,) for v in vecs.values())


def _ema_sovits(path: Path) -> dict[str, torch.Tensor]:
    state = ck.load_checkpoint(path) if path.suffix == ".pt" else ck.find_resume(path).state
    return {k: v for k, v in state[ck.K_EMA]["sovits"].items() if v.is_floating_point()}


@pytest.fixture(scope="module")
def fine_tunes(tmp_path_factory):
    """A start run, and the same 4-step fine-tune from it: plain, and choosing its share with a
    far speaker, an identical speaker and no speakers listed (two probe sentences, not twenty:
    the choice is the same code, in a fraction of the time)."""
    from voicelab.audio import dvector
    from voicelab.data.world_data import WorldVoiceData

    home = tmp_path_factory.mktemp("ws")
    voice = make_voice(home)
    assert Trainer(voice, cfg_with("train.sovits_steps=3", *STEPS),
                   TrainOptions(run="start", tensorboard=False)).run() == EXIT_OK  # fmt: skip
    start = voice.run_dir("start") / "checkpoints" / "step-00000003.pt"
    data = WorldVoiceData.load(voice, cfg_with())
    slt = [it.dvector for it in data.items if it.speaker == "flite_slt"]
    same = torch.stack(slt).mean(0).numpy()
    far = -same  # nothing re-spoken from these slices can be close to it
    tables = {"far": {"far": far}, "same": {"twin": same}, "none": {}}
    logs = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(blend, "PROBE_SENTENCES", blend.PROBE_SENTENCES[:2])
    try:
        runs = [("plain", ["train.weight_blend=1.0"], None)]
        runs += [(n, ["train.blend_margin=0.05", "train.weight_blend=0.8"], t)
                 for n, t in tables.items()]  # fmt: skip
        for run, settings, table in runs:
            mp.setattr(base, "speaker_dvectors", lambda path, t=table: dict(t or {}))
            cfg = cfg_with("train.sovits_steps=4", *settings, SHARES, *STEPS)
            code = Trainer(voice, cfg, TrainOptions(run=run, from_path=start,
                                                    tensorboard=False)).run()  # fmt: skip
            assert code == EXIT_OK
            logs[run] = (voice.run_dir(run) / "train.log").read_text(encoding="utf-8")
    finally:
        mp.undo()
    dvector.get_encoder()  # (loaded by the runs; keeps the fixture's cost in one place)
    return voice, start, logs


def _assert_blend(voice, start, run: str, w: float) -> None:
    initial, plain = _ema_sovits(start), _ema_sovits(voice.run_dir("plain"))
    got = _ema_sovits(voice.run_dir(run))
    assert any(not torch.equal(plain[k], initial[k]) for k in plain), "training changed nothing"
    for k in plain:
        # (0.3 and 0.7 are not exact in binary: float32 rounding, nothing more)
        torch.testing.assert_close(got[k], (1 - w) * initial[k] + w * plain[k], rtol=1e-4, atol=1e-4)


def test_a_voice_unlike_every_base_speaker_keeps_the_smallest_share(fine_tunes):
    voice, start, logs = fine_tunes
    log = logs["far"]
    assert "[blend] share 0.30: new sentences" in log
    assert "share 0.60" not in log  # the first share passed: no more measuring
    assert "[blend] share 0.30 chosen: the smallest that keeps the voice" in log
    _assert_blend(voice, start, "far", 0.3)


def test_a_voice_no_share_separates_keeps_the_most_like_it(fine_tunes):
    voice, start, logs = fine_tunes
    log = logs["same"]
    assert all(f"share {w}: new sentences" in log for w in ("0.30", "0.60", "1.00"))
    assert "no share reached the margin" in log
    chosen = float(log.split(" chosen: ")[0].rsplit("[blend] share ", 1)[1])
    assert chosen in (0.3, 0.6, 1.0)
    if chosen < 1.0:
        _assert_blend(voice, start, "same", chosen)
    else:
        assert "blended with the initial weights" not in log


def test_without_listed_speakers_the_fixed_share_applies(fine_tunes):
    voice, start, logs = fine_tunes
    assert "lists no speaker d-vectors: share 0.80" in logs["none"]
    _assert_blend(voice, start, "none", 0.8)


def test_probe_sentences_are_in_no_corpus_fixture_or_eval_list():
    """The share is chosen on these: held-out measurements must never have been tuned on."""
    from voicelab.eval.evaluate import norm_text
    from voicelab.training.blend import PROBE_SENTENCES

    pkg = Path(__file__).resolve().parents[2] / "voicelab"
    lists = [pkg / "corpus" / "sentences_en.txt", pkg / "corpus" / "heldout_en.txt",
             pkg / "eval" / "sentences_en.txt"]
    fixtures = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "speech"
    lists += sorted(fixtures.glob("*/metadata.list"))
    seen = set()
    for p in lists:
        seen |= {norm_text(line.split("|")[-1]) for line in p.read_text(encoding="utf-8").splitlines()}
    for p in sorted(fixtures.glob("long/*.json")):
        seen |= {norm_text(s["text"]) for s in json.loads(p.read_text(encoding="utf-8"))}
    assert len(PROBE_SENTENCES) >= 4
    assert not {norm_text(s) for s in PROBE_SENTENCES} & seen


def test_choose_share_listens_from_the_smallest_share_up_and_stops_at_a_pass():
    from voicelab.training.blend import choose_share

    table = {0.3: _like(0.80, a=0.82), 0.5: _like(0.85, a=0.81), 0.7: _like(0.86, a=0.80)}
    heard = []
    w, measured = choose_share(lambda s: heard.append(s) or table[s], [0.7, 0.5, 0.3, 0.5], 0.03,
                               lambda s, sound: heard.append(("told", s)))  # fmt: skip
    assert w == 0.5
    assert heard == [0.3, ("told", 0.3), 0.5, ("told", 0.5)]  # 0.7 is never needed
    assert [s for s, _ in measured] == [0.3, 0.5]
    w, measured = choose_share(table.__getitem__, [0.3, 0.5, 0.7], 0.5)
    assert (w, len(measured)) == (0.7, 3)  # none passes: all heard, the most like the voice
