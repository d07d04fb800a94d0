"""A checkpoint written by main at f257dd1 (before the trainer was split) still resumes.

assets/main-f257dd1-tiny.pt.xz is that checkpoint (xz-compressed: 0.8 MB instead of 1.2): step
1 of 2 in stage 1 of a run on tests/assets/mini.list, made with OLD_OVERRIDES (the tiny preset
shrunk further so the file stays small) and `train.sovits_steps=2 train.gpt_steps=1
train.save_every=1 train.eval_every=1 train.keep_last=5`, run name "old". Resuming it must put
every part back exactly where it was (the state captured right after resume equals the saved
one, tensor for tensor), and training must carry on through the stage hand-over to the end.
"""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest
import torch

from voicelab.config import config_from_dict, load_config
from voicelab.errors import EXIT_OK
from voicelab.listfile import Entry, read_list, write_list
from voicelab.training import checkpoint as ck
from voicelab.training.trainer import Trainer, TrainOptions
from voicelab.workspace import get_voice

ASSET = Path(__file__).resolve().parent / "assets" / "main-f257dd1-tiny.pt.xz"
OLD_OVERRIDES = [
    "model.hidden=8", "model.filter_channels=16", "model.style_dim=8", "model.n_layers_posterior=1",
    "model.codebook_size=16", "model.disc_channels=1", "model.mpd_periods=[2]", "model.gpt_hidden=8",
    "model.gpt_layers=1", "model.gpt_max_positions=256", "features.n_fft=1024",
    "features.win_length=1024", "features.n_mels=40", "model.upsample_rates=[10,8,8]",
    "model.upsample_kernel_sizes=[20,16,16]", "model.upsample_initial_channel=8",
    "train.sovits_steps=2", "train.gpt_steps=2", "train.save_every=1", "train.eval_every=1",
    "train.keep_last=5", "train.device=cpu", "train.log_every=1", "train.save_every_minutes=0",
]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact comparisons and a shared 2-core machine
    yield
    torch.set_num_threads(n)


def _old_run(tmp_path: Path, mini_list: Path):
    """A voice built from mini.list (as the checkpoint's was) holding the old checkpoint."""
    voice = get_voice("mini", base=tmp_path).create()
    entries = []
    for e in read_list(mini_list):
        shutil.copy(e.path, voice.slices / e.path.name)
        entries.append(Entry(voice.slices / e.path.name, e.speaker, e.lang, e.text))
    write_list(voice.dataset_list, entries)
    ckpt = voice.run("old").checkpoint(1)
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(lzma.decompress(ASSET.read_bytes()))
    return voice, ckpt


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_resume_restores_every_part_of_an_old_checkpoint(tmp_path, mini_list):
    voice, ckpt = _old_run(tmp_path, mini_list)
    saved = ck.load_checkpoint(ckpt)
    assert saved[ck.K_STAGE] == "sovits" and saved[ck.K_STEP] == 1 and set(saved[ck.K_OPTIMIZERS]) == {"g", "d"}
    # its config names a setting voicelab has since dropped: still a config this voicelab reads
    assert "num_workers" in saved[ck.K_CONFIG]["train"]
    assert config_from_dict(saved[ck.K_CONFIG]).model.hidden == 8
    tr = Trainer(voice, load_config("tiny", OLD_OVERRIDES), TrainOptions(run="old", resume="auto", tensorboard=False))
    try:
        tr.setup()
        now = tr.checkpoint_state()
    finally:
        tr.cleanup()
    for key in (ck.K_STAGE, ck.K_STEP, ck.K_STAGE_STEP, ck.K_EPOCH, ck.K_EPOCH_POS, ck.K_MODELS,
                ck.K_EMA, ck.K_OPTIMIZERS, ck.K_SCHEDULERS, ck.K_SCALER, ck.K_RNG, ck.K_METRICS,
                ck.K_EXTRA):  # fmt: skip
        _assert_same(saved[key], now[key], key)


def test_old_checkpoint_trains_on_to_the_end(tmp_path, mini_list):
    voice, _ = _old_run(tmp_path, mini_list)
    cfg = load_config("tiny", OLD_OVERRIDES)
    code = Trainer(voice, cfg, TrainOptions(run="old", resume="auto", tensorboard=False)).run()
    assert code == EXIT_OK
    final = ck.load_checkpoint(voice.run("old").checkpoint(4))
    assert final[ck.K_STAGE] == "gpt" and final[ck.K_STAGE_STEP] == 2
    assert final[ck.K_EXTRA]["ema_updates"] == {"sovits": 2, "gpt": 2}
    assert set(final[ck.K_OPTIMIZERS]) == {"gpt"}
