"""The world path (model.acoustic = "world", preset tiny-world) end to end on real speech:
alignment + WORLD features -> stage 1 -> one prosody token per phone -> stage 2 -> export ->
synthesis, exact resume, and clips that cannot be aligned skipped with their reason.

A few optimiser steps each: the point is that every part runs and hands over correctly; whether
the voice speaks is benchmarks/bench_speaks.py's job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from voicelab.config import load_config
from voicelab.data import world_cache
from voicelab.data.world_data import WorldVoiceData
from voicelab.errors import EXIT_OK, EXIT_PAUSED, VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.text import arpabet
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.training.trainer import Trainer, TrainOptions
from voicelab.workspace import get_voice

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FAST = ["train.device=cpu", "train.log_every=1", "train.save_every_minutes=0", "train.val_slices=1"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_voice(home: Path, name: str = "mini", extra: list[tuple[str, str]] = ()):
    """The 3 mini clips (slt x2, rms x1), plus (copy of clip, text) pairs in `extra`."""
    v = get_voice(name, base=home).create()
    entries = []
    for e in read_list(ASSETS / "mini.list"):
        shutil.copy(e.path, v.slices / e.path.name)
        entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
    for i, (src, text) in enumerate(extra):
        dst = v.slices / f"extra_{i}.wav"
        shutil.copy(ASSETS / src, dst)
        entries.append(Entry(dst, "flite_slt", "en", text))
    write_list(v.dataset_list, entries)
    return v


def cfg_with(*overrides: str):
    return load_config("tiny-world", [*FAST, *overrides])


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("ws")
    voice = make_voice(home)
    cfg = cfg_with("train.sovits_steps=3", "train.gpt_steps=3", "train.save_every=3",
                   "train.eval_every=3")
    code = Trainer(voice, cfg, TrainOptions(run="w1", tensorboard=False)).run()
    return voice, cfg, code, voice.run_dir("w1")


def test_world_run_trains_both_stages_with_one_token_per_phone(world_run):
    voice, cfg, code, run = world_run
    assert code == EXIT_OK
    assert runfiles.read_status(run)["state"] == "finished"
    blob = torch.load(run / "tokens.pt", weights_only=True)
    data = WorldVoiceData.load(voice, cfg)
    phones = {it.key: len(it.phone_ids) for it in data.items}
    assert sorted(blob["keys"]) == sorted(phones)
    for key, toks in zip(blob["keys"], blob["tokens"]):
        assert toks.shape == (phones[key],)  # exactly one prosody token per phone
        assert int(toks.max()) < cfg.model.codebook_size
    # the samples speak (stage 1: a held-out slice's text; stage 2: train.sample_text)
    samples = sorted((run / "samples").glob("*.wav"))
    assert len(samples) == 2
    records = [r for r in runfiles.read_metrics(run) if "loss/mgc" in r]
    assert records and all(np.isfinite(r["loss/g_total"]) for r in records)


def test_world_export_synthesises_with_the_d_vector_of_the_reference(world_run, tmp_path):
    from voicelab.export import export_run
    from voicelab.synth import Synthesizer

    voice, cfg, _, _ = world_run
    path = export_run(voice, "w1", tmp_path / "w.safetensors")
    synth = Synthesizer.from_bundle(path, device="cpu")
    ref = ASSETS / "slt_000.wav"
    text = "Please call Stella."
    res = synth.synthesize(text, "en", str(ref), seed=3)
    assert res.sample_rate == cfg.audio.sample_rate
    assert np.isfinite(res.waveform).all() and res.duration_s > 0.2
    # one token per phone of the text: nothing skipped, nothing repeated
    assert res.sentences[0].n_tokens == len(arpabet.text_to_phones(text).ids)
    again = synth.synthesize(text, "en", str(ref), seed=3)
    assert np.array_equal(res.waveform, again.waveform)  # same seed, same audio
    other = synth.synthesize(text, "en", str(ASSETS / "rms_000.wav"), seed=3)
    assert not np.array_equal(res.waveform, other.waveform)  # the reference gives the voice
    with pytest.raises(VoicelabError, match="English"):
        synth.synthesize("你好", "zh", str(ref))
    with pytest.raises(VoicelabError):
        synth.synthesize("... !!!", "en", str(ref))


class PauseAt(Trainer):
    """Asks for a pause (as the UI does) right after global step `at`."""

    at = 0

    def _step_boundary(self, stage, st):
        if self.global_step == self.at:
            runfiles.request_action(self.run_dir, "pause")
        return super()._step_boundary(stage, st)


def test_world_pause_and_resume_is_exact(tmp_path):
    """2+2 steps straight == pause in stage 1 + resume, bit for bit (CPU), on the world path."""
    voice = make_voice(tmp_path)
    cfg = cfg_with("train.sovits_steps=2", "train.gpt_steps=2", "train.save_every=100",
                   "train.eval_every=100", "model.dropout=0.1")
    assert Trainer(voice, cfg, TrainOptions(run="straight", tensorboard=False)).run() == EXIT_OK
    PauseAt.at = 1
    assert PauseAt(voice, cfg, TrainOptions(run="paused", tensorboard=False)).run() == EXIT_PAUSED
    PauseAt.at = -1
    code = PauseAt(voice, cfg, TrainOptions(run="paused", resume="auto", tensorboard=False)).run()
    assert code == EXIT_OK
    a = ck.load_checkpoint(voice.run_dir("straight") / "checkpoints" / "step-00000004.pt")
    b = ck.load_checkpoint(voice.run_dir("paused") / "checkpoints" / "step-00000004.pt")
    for group in (ck.K_MODELS, ck.K_EMA):
        for name in a[group]:
            for k, v in a[group][name].items():
                assert torch.equal(v, b[group][name][k]), f"{group}.{name}.{k}"


def test_unalignable_clips_are_skipped_with_their_reason_and_cached(tmp_path, monkeypatch):
    # a real slt clip with another sentence's text: the aligner finds no path through it
    voice = make_voice(tmp_path, extra=[("slt_001.wav", "Seven big dogs jumped over the moon.")])
    cfg = cfg_with()
    logged = []
    data = WorldVoiceData.load(voice, cfg, log=logged.append)
    assert len(data.items) == 3
    assert [name for name, _ in data.skipped] == ["extra_0.wav"]
    assert "extra_0.wav" in logged[0] and "transcript" in logged[0]

    def boom(*a, **k):
        raise AssertionError("recomputed a cached clip")

    monkeypatch.setattr(world_cache, "compute_world_item", boom)
    again = WorldVoiceData.load(voice, cfg, log=logged.append)  # everything from the cache
    assert len(again.items) == 3 and again.skipped == data.skipped
    assert again.dataset_hash == data.dataset_hash


def test_a_voice_with_nothing_alignable_says_what_to_do(tmp_path):
    voice = get_voice("bad", base=tmp_path).create()
    shutil.copy(ASSETS / "slt_000.wav", voice.slices / "a.wav")
    write_list(voice.dataset_list, [Entry(voice.slices / "a.wav", "s", "en",
                                          "Nothing here matches what is said at all.")])
    with pytest.raises(VoicelabError, match="Slice tab"):
        WorldVoiceData.load(voice, cfg_with())


def test_the_gan_path_trains_and_synthesises_with_use_dvector(tmp_path):
    """model.use_dvector=true on the hifigan path: the d-vector reaches stage 1, the token
    hand-over, the samples and synthesis (it failed in the hand-over before)."""
    from voicelab.export import export_run
    from voicelab.synth import Synthesizer

    voice = make_voice(tmp_path)
    cfg = load_config("tiny", [*FAST, "model.use_dvector=true", "train.sovits_steps=2",
                               "train.gpt_steps=2", "train.save_every=2", "train.eval_every=2"])
    assert Trainer(voice, cfg, TrainOptions(run="dv", tensorboard=False)).run() == EXIT_OK
    assert len(list((voice.run_dir("dv") / "samples").glob("*.wav"))) == 2
    path = export_run(voice, "dv", tmp_path / "dv.safetensors")
    res = Synthesizer.from_bundle(path, device="cpu").synthesize(
        "Hello there.", "en", str(ASSETS / "slt_000.wav"), seed=1)
    assert np.isfinite(res.waveform).all() and res.duration_s > 0
