"""`train --from PATH` with a shipped base checks it like the default lookup does (issue 14).

A base given by path used to be loaded without read_base's checks: a replaced or truncated file,
or one trained with another phoneme table, went straight into the models. The base here is the
one test_pretrain.py pretrains and ships (its `shipped` fixture, tiny preset, a few steps).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from voicelab import base as B
from voicelab.config import load_config
from voicelab.errors import EXIT_ERROR, VoicelabError
from voicelab.models.build import build_models
from voicelab.training.initial_weights import load_initial_weights

sys.path.insert(0, str(Path(__file__).parent))
import test_pretrain as tp  # noqa: E402
from test_pretrain import FAST, cli, new_voice  # noqa: E402

# its fixtures, shared here: a tiny pretraining run (a few steps) and the base shipped from it
one_thread, pretrained, shipped = tp.one_thread, tp.pretrained, tp.shipped


def _copy(shipped: Path, dst: Path) -> Path:
    shutil.copytree(shipped, dst)
    return B.base_paths(dst)[0]


def _models(cfg):
    m = build_models(cfg)
    return {"sovits": m.sovits, "disc": m.disc, "gpt": m.gpt}


def test_train_from_a_tampered_base_is_refused_and_writes_nothing(shipped, tmp_path, capsys):
    st = _copy(shipped, tmp_path / "bad")
    data = bytearray(st.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte, in the weights
    st.write_bytes(bytes(data))
    voice = new_voice(tmp_path / "ws", "me")
    code = cli(tmp_path / "ws", "train", "--voice", "me", "--preset", "tiny", "--run", "ft",
               "--from", str(st), "--sovits-steps", "1", "--gpt-steps", "1", "--no-tensorboard",
               *[a for s in FAST for a in ("--set", s)])  # fmt: skip
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not match base.json" in err and "copy both files again" in err, err
    run = voice.run("ft")
    assert not run.has_checkpoints() and not run.config.exists()  # no weights, no settings


def test_truncated_or_mismatched_base_by_path_is_refused(shipped, tmp_path):
    cfg = load_config("tiny", FAST)
    st = _copy(shipped, tmp_path / "cut")
    st.write_bytes(st.read_bytes()[:-100])
    with pytest.raises(B.BaseModelError, match=r"--from .*base\.safetensors.*does not match"):
        load_initial_weights(st, cfg, _models(cfg))
    st = _copy(shipped, tmp_path / "table")
    js = st.with_suffix(".json")
    meta = json.loads(js.read_text())
    meta["n_symbols"] += 1  # the JSON is not hashed: the table check must catch it
    js.write_text(json.dumps(meta))
    with pytest.raises(B.BaseModelError, match="phoneme table"):
        load_initial_weights(st, cfg, _models(cfg))
    js.write_text("{not json")
    with pytest.raises(VoicelabError, match="base.json beside it is damaged"):
        load_initial_weights(st, cfg, _models(cfg))


def test_an_intact_base_by_path_loads(shipped, tmp_path):
    cfg = load_config("tiny", FAST)
    st = _copy(shipped, tmp_path / "ok")  # anywhere on disk, by path
    note = load_initial_weights(st, cfg, _models(cfg))
    assert note == "export: sovits, gpt, disc"


def test_the_size_cap_counts_the_model_card(shipped):
    assert B.MAX_MB == 50.0  # issue 14
    files = B.base_paths(shipped)
    assert all(p.is_file() for p in files)
    assert sum(p.stat().st_size for p in files) <= B.MAX_MB * 1e6


def test_ship_refuses_a_base_whose_card_breaks_the_cap(pretrained, tmp_path):
    from voicelab.pretrain import ship_base

    full = ship_base(pretrained["run"], out=tmp_path / "a", allow_unverified_licence=True)
    small = ship_base(pretrained["run"], out=tmp_path / "s", allow_unverified_licence=True,
                      max_mb=full.meta["bytes"] / 1e6 * 0.8)  # fmt: skip (no discriminators)
    files = B.base_paths(tmp_path / "s")
    assert not small.with_disc and small.total_bytes == sum(p.stat().st_size for p in files)
    card = files[2].stat().st_size
    # weights + JSON fit, the three files together do not: refused, nothing written
    cap = (small.total_bytes - card / 2) / 1e6
    with pytest.raises(VoicelabError, match="JSON and model card"):
        ship_base(pretrained["run"], out=tmp_path / "b", max_mb=cap, allow_unverified_licence=True,
                  force=True)  # fmt: skip
    assert not (tmp_path / "b").exists()


def test_a_resumed_fine_tune_keeps_its_fine_tune_schedule(shipped, tmp_path):
    """`train --resume auto` of a run that started from a base rebuilds the [finetune] config
    (train.finetuned in its config.json), not the preset's from-scratch one."""
    voice = new_voice(tmp_path / "ws", "me")
    sets = [a for s in FAST for a in ("--set", s)]
    common = ["train", "--voice", "me", "--preset", "tiny", "--run", "ft", "--no-tensorboard",
              "--gpt-steps", "0", *sets]  # fmt: skip
    st = B.base_paths(shipped)[0]
    assert cli(tmp_path / "ws", *common, "--from", str(st), "--sovits-steps", "1") == 0
    cfg = json.loads(voice.run("ft").config.read_text())
    assert cfg["train"]["finetuned"] is True
    assert cli(tmp_path / "ws", *common, "--resume", "auto", "--sovits-steps", "2") == 0
    cfg = json.loads(voice.run("ft").config.read_text())
    assert cfg["train"]["finetuned"] is True and cfg["train"]["sovits_steps"] == 2


def test_a_finished_fine_tune_without_stage_2_exports_with_the_bases_gpt(shipped, tmp_path):
    """gpt_steps = 0 from a base: the GPT is the base's (trained), so export does not refuse;
    the same run from scratch has an untrained GPT and is refused."""
    voice = new_voice(tmp_path / "ws", "me")
    sets = [a for s in FAST for a in ("--set", s)]
    common = ["train", "--voice", "me", "--preset", "tiny", "--no-tensorboard", "--gpt-steps",
              "0", "--sovits-steps", "1", *sets]  # fmt: skip
    st = B.base_paths(shipped)[0]
    assert cli(tmp_path / "ws", *common, "--run", "ft", "--from", str(st)) == 0
    assert cli(tmp_path / "ws", *common, "--run", "sc", "--from", "none") == 0
    out = tmp_path / "ft.safetensors"
    assert cli(tmp_path / "ws", "export", "--voice", "me", "--run", "ft", "-o", str(out)) == 0
    assert out.is_file()
    assert cli(tmp_path / "ws", "export", "--voice", "me", "--run", "sc", "-o",
               str(tmp_path / "sc.safetensors")) == EXIT_ERROR  # fmt: skip
    assert not (tmp_path / "sc.safetensors").exists()
    assert voice.run("ft").config.is_file()
