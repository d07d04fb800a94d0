"""Pretraining a base on a corpus, resuming it, shipping it, and fine-tuning a voice from it.

A tiny two-speaker corpus is built by hand from tests/assets (real flite speech), laid out as
`python -m voicelab corpus` writes it, with one file name used by both speakers (as TTS corpora
do). Everything runs on the tiny preset on the CPU, a few optimiser steps per run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from voicelab import base as B
from voicelab.cli import main
from voicelab.config import load_config
from voicelab.errors import EXIT_OK, VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.pretrain import PRETRAIN_JSON, prepare_pretrain, ship_base
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.training.trainer import Trainer, TrainOptions
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent / "assets"
FAST = ["train.device=cpu", "train.log_every=1", "train.save_every_minutes=0", "train.eval_every=2"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads; two per process oversubscribe a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_corpus(root: Path, speakers: tuple[str, str] = ("spk_a", "spk_b")) -> Path:
    """root/wavs/<speaker>/*.wav + corpus.list; both speakers have a 0001.wav."""
    a, b = speakers
    src = {e.path.name: e for e in read_list(DATA / "mini.list")}
    layout = [(a, "0001.wav", "slt_000.wav"), (a, "0002.wav", "slt_001.wav"),
              (b, "0001.wav", "rms_000.wav"), (b, "0003.wav", "rms_000.wav")]  # fmt: skip
    entries = []
    for spk, name, wav in layout:
        dst = root / "wavs" / spk / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src[wav].path, dst)
        entries.append(Entry(dst, spk, "en", src[wav].text))
    write_list(root / "corpus.list", entries)
    return root


def cli(home: Path, *args: str) -> int:
    old = os.environ.get("VOICELAB_HOME")
    os.environ["VOICELAB_HOME"] = str(home)
    try:
        return main(list(args))
    finally:
        if old is None:
            os.environ.pop("VOICELAB_HOME", None)
        else:
            os.environ["VOICELAB_HOME"] = old


def test_prepare_points_at_the_corpus_and_links_shared_names(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    cfg = load_config("tiny", FAST)
    ps = prepare_pretrain(corpus, cfg, name="pre", home=tmp_path / "ws", allow_dev_voices=True)
    entries = read_list(ps.voice.dataset_list)
    assert [e.speaker for e in entries] == ["spk_a", "spk_a", "spk_b", "spk_b"]
    names = [e.path.name for e in entries]
    assert len(set(names)) == 4, names  # the dataset keys slices by file name
    for e, orig in zip(entries, ["spk_a/0001.wav", "spk_a/0002.wav", "spk_b/0001.wav", "spk_b/0003.wav"]):
        assert os.path.samefile(e.path, corpus / "wavs" / orig)  # the corpus audio, not a copy
    # unique names are read in place; the shared name is a hard link inside slices/
    assert entries[1].path == (corpus / "wavs/spk_a/0002.wav").resolve()
    assert entries[0].path.parent == ps.voice.slices.resolve() and ps.linked == 2 and ps.copied == 0
    assert os.stat(entries[0].path).st_nlink == 2
    info = json.loads((ps.voice.root / PRETRAIN_JSON).read_text())
    assert info["clips"] == 4 and set(info["speakers"]) == {"spk_a", "spk_b"}
    assert info["corpus"] == str(corpus.resolve()) and info["hours"] > 0
    before = ps.voice.dataset_list.read_bytes()
    prepare_pretrain(corpus, cfg, name="pre", home=tmp_path / "ws", allow_dev_voices=True)
    assert ps.voice.dataset_list.read_bytes() == before  # same corpus -> same data (exact resume)


def test_prepare_refuses_development_voices_and_bad_corpora(tmp_path):
    cfg = load_config("tiny", FAST)
    dev = make_corpus(tmp_path / "dev", speakers=("flite_slt", "flite_rms"))
    with pytest.raises(VoicelabError, match="development voices or held-out"):
        prepare_pretrain(dev, cfg, home=tmp_path / "ws")
    with pytest.raises(VoicelabError, match="not a corpus folder"):
        prepare_pretrain(tmp_path / "nowhere", cfg, home=tmp_path / "ws")
    (dev / "wavs/flite_slt/0002.wav").unlink()
    with pytest.raises(VoicelabError, match="1 audio file.*missing"):
        prepare_pretrain(dev, cfg, home=tmp_path / "ws", allow_dev_voices=True)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Pretrain stage 1 only (2 steps), then resume with more steps through both stages."""
    root = tmp_path_factory.mktemp("pre")
    corpus, home = make_corpus(root / "corpus"), root / "ws"
    home.mkdir()
    common = ["pretrain", "--corpus", str(corpus), "--preset", "tiny", "--name", "pre", "--run",
              "r1", "--no-tensorboard", "--allow-dev-voices", *[a for s in FAST for a in ("--set", s)]]
    first = cli(home, *common, "--sovits-steps", "2", "--gpt-steps", "0")
    run_dir = home / "_pretrain" / "pre" / "runs" / "r1"
    first_state = ck.find_resume(run_dir).state
    second = cli(home, *common, "--sovits-steps", "3", "--gpt-steps", "2", "--resume", "auto")
    return {"root": root, "home": home, "corpus": corpus, "run": run_dir, "codes": (first, second),
            "first": first_state}  # fmt: skip


def test_pretraining_resumes_across_runs(pretrained):
    assert pretrained["codes"] == (EXIT_OK, EXIT_OK)
    first = pretrained["first"]
    assert first[ck.K_STAGE] == "sovits" and first[ck.K_STEP] == 2
    state = ck.find_resume(pretrained["run"]).state
    assert state[ck.K_STAGE] == "gpt" and state[ck.K_STEP] == 5 and state[ck.K_STAGE_STEP] == 2
    steps = [r["step"] for r in runfiles.read_metrics(pretrained["run"]) if "loss/mel" in r or "loss/gpt" in r]
    assert steps == [1, 2, 3, 4, 5]  # step 3 continued stage 1: nothing was redone or skipped
    log = (pretrained["run"] / "train.log").read_text()
    assert "resuming from step-00000002.pt" in log
    assert "2 speakers" in log or "3 training and 1 validation" in log  # both speakers' clips


def test_ship_refuses_what_must_not_ship(pretrained, tmp_path):
    first_ckpt = tmp_path / "step-00000002.pt"
    torch.save({}, first_ckpt)  # not a checkpoint at all
    with pytest.raises(VoicelabError):
        ship_base(first_ckpt, out=tmp_path / "b", allow_unverified_licence=True)
    with pytest.raises(VoicelabError, match="no corpus.json"):
        ship_base(pretrained["run"], out=tmp_path / "b")
    with pytest.raises(VoicelabError, match="over the 0.1 MB limit"):
        ship_base(pretrained["run"], out=tmp_path / "b", max_mb=0.1, allow_unverified_licence=True)
    assert not (tmp_path / "b" / "base.json").exists()


@pytest.fixture(scope="module")
def shipped(pretrained):
    out = pretrained["root"] / "assets_base"
    code = cli(pretrained["home"], "pretrain", "--ship", str(pretrained["run"]), "-o", str(out),
               "--allow-unverified-licence", "--licence", "CC BY 4.0")  # fmt: skip
    assert code == EXIT_OK
    return out


def test_ship_writes_fp16_base_json_and_card(shipped, pretrained):
    st, js, card = B.base_paths(shipped)
    tensors = load_file(str(st))
    assert {k.split(".")[0] for k in tensors} == {"sovits", "gpt", "disc"}
    floats = [v for v in tensors.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    meta = json.loads(js.read_text())
    assert meta["steps"] == {"sovits": 3, "gpt": 2, "total": 5} and meta["preset"] == "tiny"
    assert meta["corpus"]["clips"] == 4 and set(meta["corpus"]["speakers"]) == {"spk_a", "spk_b"}
    assert meta["with_discriminators"] and meta["bytes"] == st.stat().st_size
    assert st.stat().st_size + js.stat().st_size + card.stat().st_size <= B.MAX_MB * 1e6
    assert meta["training"]["hours"] > 0 and meta["training"]["device"] == "cpu x1"
    text = card.read_text()
    assert "Steps: SoVITS 3, GPT 2" in text and "spk_a" in text and "CC BY 4.0" in text
    assert "not verified" in text  # shipped with --allow-unverified-licence: the card says so
    # the EMA weights of the newest checkpoint, rounded to fp16
    ema = ck.find_resume(pretrained["run"]).state[ck.K_EMA]["gpt"]
    k = next(k for k, v in ema.items() if v.is_floating_point())
    assert torch.equal(tensors[f"gpt.{k}"], ema[k].half())
    with pytest.raises(VoicelabError, match="already exists"):
        ship_base(pretrained["run"], out=shipped, allow_unverified_licence=True)


def test_ship_drops_the_discriminators_to_fit_the_cap(pretrained, tmp_path):
    full = B.read_base(ship_base(pretrained["run"], out=tmp_path / "a", allow_unverified_licence=True).weights)
    cap = (full.meta["bytes"] / 1e6) * 0.8  # the tiny disc is most of the file
    r = ship_base(pretrained["run"], out=tmp_path / "b", max_mb=cap, allow_unverified_licence=True)
    assert not r.with_disc and r.total_bytes <= cap * 1e6
    assert not any(k.startswith("disc.") for k in load_file(str(r.weights)))


def test_base_lookup_matches_the_preset(shipped, caplog):
    tiny, small = load_config("tiny", FAST), load_config("small", FAST)
    st = B.base_paths(shipped)[0]
    assert B.default_from(tiny, shipped) == st
    assert B.resolve_from("auto", tiny, shipped) == st and B.resolve_from(None, tiny, shipped) == st
    assert B.resolve_from("base", tiny, shipped) == st
    assert B.resolve_from("none", tiny, shipped) is None
    assert B.resolve_from("x/y.pt", tiny, shipped) == Path("x/y.pt")
    with caplog.at_level(logging.INFO, logger="voicelab.base"):
        assert B.default_from(small, shipped) is None
    assert "another architecture" in caplog.text and "training from scratch" in caplog.text
    with pytest.raises(VoicelabError, match="--preset tiny"):
        B.resolve_from("base", small, shipped)
    with pytest.raises(VoicelabError, match="no pretrained base"):
        B.resolve_from("base", tiny, shipped / "empty")
    assert B.default_from(tiny, shipped / "empty") is None


def test_damaged_base_is_refused(shipped, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(shipped, bad)
    st = B.base_paths(bad)[0]
    data = bytearray(st.read_bytes())
    data[-10] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(VoicelabError, match="does not match"):
        B.read_base(st)
    assert B.find_bases(bad) == []  # skipped (with a warning): training still starts from scratch
    js = B.base_paths(bad)[1]
    meta = json.loads(js.read_text())
    meta["symbols_version"] = -1
    js.write_text(json.dumps(meta))
    with pytest.raises(VoicelabError, match="phoneme table"):
        B.read_base(st, verify_hash=False)


def new_voice(home: Path, name: str):
    v = get_voice(name, base=home).create()
    entries = []
    for e in read_list(DATA / "mini.list"):
        shutil.copy(e.path, v.slices / e.path.name)
        entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
    write_list(v.dataset_list, entries)
    return v


def test_fine_tune_starts_from_the_base_with_fresh_optimisers(shipped, tmp_path):
    cfg = load_config("tiny", [*FAST, "train.sovits_steps=1", "train.gpt_steps=1"])
    start = B.resolve_from("base", cfg, shipped)
    voice = new_voice(tmp_path / "ws", "me")
    base = load_file(str(start))
    t = Trainer(voice, cfg, TrainOptions(run="ft", from_path=start, tensorboard=False))
    try:
        t.setup()
        for part, model in (("sovits", t.sovits), ("gpt", t.gpt), ("disc", t.disc)):
            sd = model.state_dict()
            for k, v in base.items():
                if k.startswith(part + "."):
                    assert torch.equal(sd[k[len(part) + 1 :]], v.to(sd[k[len(part) + 1 :]].dtype)), k
        assert t.optimizers == {}  # built fresh when the stage starts
    finally:
        t.cleanup()
    # and through the CLI: one step per stage, optimiser state counts only this run's step
    code = cli(tmp_path / "ws", "train", "--voice", "me", "--preset", "tiny", "--run", "ft2",
               "--from", str(start), "--sovits-steps", "1", "--gpt-steps", "1", "--no-tensorboard",
               *[a for s in FAST for a in ("--set", s)])  # fmt: skip
    assert code == EXIT_OK
    state = ck.find_resume(voice.run_dir("ft2")).state
    steps = {float(s["step"]) for s in state[ck.K_OPTIMIZERS]["gpt"]["state"].values()}
    assert steps == {1.0}
    assert "initial weights from" in (voice.run_dir("ft2") / "train.log").read_text()


def test_prepare_copies_only_where_a_hard_link_is_impossible(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "corpus")
    cfg = load_config("tiny", FAST)

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    ps = prepare_pretrain(corpus, cfg, name="pre", home=tmp_path / "ws", allow_dev_voices=True)
    assert ps.copied == 2 and ps.linked == 0 and any("copied" in n for n in ps.notes)
    again = prepare_pretrain(corpus, cfg, name="pre", home=tmp_path / "ws", allow_dev_voices=True)
    assert again.copied == 2  # the earlier copies are recognised, not made again
    for e in read_list(ps.voice.dataset_list):
        assert e.path.read_bytes() == (corpus / "wavs" / e.speaker / e.path.name.split("__")[-1]).read_bytes()
