"""Checkpoints: complete state round trip, atomic writes, pruning, fallback, refusal, RNG, compat.

The "training state" here is real: a small conv + linear model trained a few AdamW steps under a
LambdaLR schedule, a GradScaler, voicelab's EMA and the RNG states, assembled with the same keys
the trainer uses.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from voicelab.config import config_to_dict, load_config
from voicelab.training import checkpoint as ck
from voicelab.training import ckpt_files, rng
from voicelab.training.checkpoint import CheckpointError
from voicelab.training.ema import EMA


class Rig:
    """A model, its optimizer / scheduler / scaler / EMA, and a deterministic step."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Conv1d(2, 8, 3, padding=1), nn.GELU(), nn.Flatten(), nn.Linear(8 * 16, 4))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-2, betas=(0.8, 0.99))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 1.0 / (1 + s))
        self.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
        self.ema = EMA(self.model, decay=0.9)
        self.step = 0
        self.losses: list[float] = []

    def train_step(self) -> float:
        x = torch.randn(4, 2, 16)  # draws from the global torch RNG, like dropout/augmentation
        loss = self.model(x).pow(2).mean()
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        self.ema.update(self.model)
        self.step += 1
        self.losses.append(loss.item())
        return self.losses[-1]

    def state(self, val_loss: float | None = None, cfg: dict | None = None) -> dict:
        return {
            ck.K_STAGE: "sovits",
            ck.K_STEP: self.step,
            ck.K_STAGE_STEP: self.step,
            ck.K_EPOCH: self.step // 5,
            ck.K_EPOCH_POS: self.step % 5,
            ck.K_MODELS: {"sovits": self.model.state_dict()},
            ck.K_OPTIMIZERS: {"g": self.opt.state_dict()},
            ck.K_SCHEDULERS: {"g": self.sched.state_dict()},
            ck.K_SCALER: self.scaler.state_dict(),
            ck.K_EMA: {"sovits": self.ema.state_dict()},
            ck.K_RNG: rng.capture_rng(),
            ck.K_METRICS: [{"step": self.step, "loss_mel": l, "lr": 0.01} for l in self.losses[-3:]],
            ck.K_CONFIG: cfg or {"model": {"hidden": 8}, "features": {}, "audio": {"sample_rate": 32000}},
            ck.K_DATASET_HASH: "abc123",
            ck.K_VAL_LOSS: val_loss,
        }

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state[ck.K_MODELS]["sovits"])
        self.opt.load_state_dict(state[ck.K_OPTIMIZERS]["g"])
        self.sched.load_state_dict(state[ck.K_SCHEDULERS]["g"])
        self.scaler.load_state_dict(state[ck.K_SCALER])
        self.ema.load_state_dict(state[ck.K_EMA]["sovits"])
        rng.restore_rng(state[ck.K_RNG])
        self.step = state[ck.K_STEP]


def trained(steps: int, seed: int = 0) -> Rig:
    r = Rig(seed)
    for _ in range(steps):
        r.train_step()
    return r


def _ckpt_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))


def _save_steps(run: Path, steps, keep_last=3, val=None) -> Rig:
    r = Rig()
    for s in steps:
        while r.step < s:
            r.train_step()
        ck.save_checkpoint(run, r.state(val_loss=None if val is None else val(s)), keep_last=keep_last)
    return r


# --------------------------------------------------------------------------------------------
# round trip and exact continuation
# --------------------------------------------------------------------------------------------


def test_save_load_round_trip_is_complete_and_weights_only(tmp_path: Path) -> None:
    r = trained(3)
    state = r.state(val_loss=1.5)
    before = dict(state)
    path = ck.save_checkpoint(tmp_path, state)
    assert path == tmp_path / "checkpoints" / "step-00000003.pt"
    assert state == before and ck.K_CHECKSUM not in state  # the caller's dict is untouched
    assert (tmp_path / "checkpoints" / "LATEST").read_text().strip() == "step-00000003.pt"
    raw = torch.load(path, weights_only=True)  # plain torch can read it without unpickling code
    assert raw[ck.K_FORMAT] == ck.FORMAT_VERSION and raw[ck.K_VERSION]
    loaded = ck.load_checkpoint(path)
    assert set(ck.REQUIRED_KEYS) <= set(loaded) and ck.K_CHECKSUM not in loaded
    for k, v in state[ck.K_MODELS]["sovits"].items():
        assert torch.equal(loaded[ck.K_MODELS]["sovits"][k], v)
    assert loaded[ck.K_SCALER] == r.scaler.state_dict()
    assert loaded[ck.K_SCHEDULERS]["g"]["last_epoch"] == 3
    assert loaded[ck.K_VAL_LOSS] == 1.5


def test_resume_from_checkpoint_continues_bit_identically(tmp_path: Path) -> None:
    """3 steps + save + fresh objects + restore + 3 steps == 6 steps straight."""
    straight = trained(6)
    first = trained(3)
    ck.save_checkpoint(tmp_path, first.state())
    random.random(), np.random.rand(), torch.rand(5)  # disturb every RNG before resuming
    second = Rig(seed=99)  # different init: everything must come from the checkpoint
    second.restore(ck.find_resume(tmp_path).state)
    second.losses = list(first.losses)
    for _ in range(3):
        second.train_step()
    for a, b in zip(straight.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = straight.opt.state_dict()["state"], second.opt.state_dict()["state"]
    for i in sa:
        for k in sa[i]:
            assert torch.equal(sa[i][k], sb[i][k])
    assert straight.sched.get_last_lr() == second.sched.get_last_lr()
    assert straight.scaler.state_dict() == second.scaler.state_dict()
    for k, v in straight.ema.shadow.items():
        assert torch.equal(v, second.ema.shadow[k])
    assert straight.losses == second.losses


# --------------------------------------------------------------------------------------------
# atomicity and write failures
# --------------------------------------------------------------------------------------------


def test_fsync_and_rename_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", os.path.basename(target)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", f"{os.path.basename(src)}->{os.path.basename(dst)}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ck.save_checkpoint(tmp_path, trained(1).state())
    kinds = [(k, n.split("->")[-1] if k == "replace" else n) for k, n in events]
    i_file = next(i for i, (k, n) in enumerate(kinds) if k == "fsync" and n.startswith(".step-00000001.pt."))
    i_rename = kinds.index(("replace", "step-00000001.pt"))
    i_dir = next(i for i, e in enumerate(kinds) if e == ("fsync", "checkpoints") and i > i_rename)
    i_latest = kinds.index(("replace", "LATEST"))
    assert i_file < i_rename < i_dir < i_latest  # data durable, then name, then LATEST
    assert events[i_rename][1].startswith(".step-00000001.pt.")  # renamed from a temp beside it


class _DiskFull:
    """A file wrapper whose writes fail with ENOSPC after `limit` bytes (a disk filling up)."""

    def __init__(self, f, limit: int) -> None:
        self.f, self.left = f, limit

    def write(self, b) -> int:
        if len(b) > self.left:
            self.f.write(bytes(b)[: self.left])
            self.left = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.left -= len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def test_disk_full_keeps_earlier_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _save_steps(tmp_path, [1, 2])
    real_save = torch.save
    monkeypatch.setattr(ck.torch, "save", lambda obj, f: real_save(obj, _DiskFull(f, 3000)))
    r.train_step()
    with pytest.raises(CheckpointError, match="full.*earlier checkpoints are intact"):
        ck.save_checkpoint(tmp_path, r.state())
    monkeypatch.undo()
    assert _ckpt_files(tmp_path) == ["step-00000001.pt", "step-00000002.pt"]
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))  # the partial temp is gone
    assert ck.read_latest(tmp_path) == "step-00000002.pt"
    point = ck.find_resume(tmp_path)
    assert point.path.name == "step-00000002.pt" and point.skipped == []
    ck.load_checkpoint(tmp_path / "checkpoints" / "step-00000001.pt")


def test_unwritable_folder_and_failed_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save_steps(tmp_path, [1])

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(ckpt_files.tempfile, "mkstemp", denied)  # where the temp is made
    with pytest.raises(CheckpointError, match="cannot be written.*permissions"):
        ck.save_checkpoint(tmp_path, trained(2).state())
    monkeypatch.undo()
    # the checkpoint lands but LATEST cannot be written: still an error (training must stop),
    # and the new checkpoint is complete under its final name
    monkeypatch.setattr(ck, "write_text_atomic", lambda *a: denied())
    with pytest.raises(CheckpointError, match="LATEST"):
        ck.save_checkpoint(tmp_path, trained(2).state())
    monkeypatch.undo()
    assert ck.find_resume(tmp_path).path.name == "step-00000002.pt"


def test_interrupted_save_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C (KeyboardInterrupt) in the middle of torch.save: temp removed."""
    _save_steps(tmp_path, [1])
    real_save = torch.save

    def save_then_interrupt(obj, f):
        real_save(obj, f)
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path, trained(2).state())
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["LATEST", "step-00000001.pt"]


def test_stale_temp_files_are_cleaned_on_next_save(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1])
    stale = tmp_path / "checkpoints" / ".step-00000002.pt.abc123.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")  # what a SIGKILL mid-save leaves
    assert ck.find_resume(tmp_path).path.name == "step-00000001.pt"  # temps are never resumed
    ck.save_checkpoint(tmp_path, trained(2).state())
    assert not stale.exists()


# --------------------------------------------------------------------------------------------
# pruning, BEST, superseded timelines
# --------------------------------------------------------------------------------------------


def test_prune_keeps_last_n_plus_best(tmp_path: Path) -> None:
    losses = {1: 5.0, 2: 1.0, 3: 4.0, 4: 3.0, 5: 2.0, 6: 3.5, 7: None}
    _save_steps(tmp_path, range(1, 8), keep_last=3, val=losses.get)
    assert _ckpt_files(tmp_path) == ["step-00000002.pt", "step-00000005.pt", "step-00000006.pt", "step-00000007.pt"]
    best = ck.read_best(tmp_path / "checkpoints")
    assert best["file"] == "step-00000002.pt" and best["val_loss"] == 1.0
    infos = {i.path.name: i for i in ck.list_checkpoints(tmp_path)}
    assert infos["step-00000002.pt"].is_best and infos["step-00000007.pt"].is_latest


def test_best_is_chosen_within_a_stage(tmp_path: Path) -> None:
    """SoVITS mel L1 and GPT cross-entropy are different quantities: the first GPT checkpoint
    replaces a stage-1 best even with a higher number, and later GPT ones compete with it."""
    r = Rig()
    for s, stage, val in [(1, "sovits", 0.5), (2, "sovits", 0.7), (3, "gpt", 3.0), (4, "gpt", 2.0), (5, "gpt", 2.5)]:
        while r.step < s:
            r.train_step()
        state = r.state(val_loss=val)
        state[ck.K_STAGE] = stage
        ck.save_checkpoint(tmp_path, state, keep_last=1)
        best = ck.read_best(tmp_path / "checkpoints")
        expected = {1: 1, 2: 1, 3: 3, 4: 4, 5: 4}[s]
        assert best["step"] == expected and best["stage"] == stage
    assert _ckpt_files(tmp_path) == ["step-00000004.pt", "step-00000005.pt"]


def test_prune_without_val_loss_keeps_last_n(tmp_path: Path) -> None:
    _save_steps(tmp_path, range(1, 6), keep_last=2)
    assert _ckpt_files(tmp_path) == ["step-00000004.pt", "step-00000005.pt"]


def test_saving_an_older_step_supersedes_newer_files(tmp_path: Path) -> None:
    """Resume from step 3 (e.g. newer ones damaged, or a NaN rollback) and save step 4: the old
    steps 6 and 9 belong to another timeline and must never be resumed from again."""
    _save_steps(tmp_path, [3, 6, 9])
    ck.save_checkpoint(tmp_path, trained(4).state())
    assert _ckpt_files(tmp_path) == ["step-00000003.pt", "step-00000004.pt"]
    moved = sorted(p.name for p in (tmp_path / "checkpoints" / "superseded").iterdir())
    assert moved == ["step-00000006.pt", "step-00000009.pt"]
    assert ck.find_resume(tmp_path).path.name == "step-00000004.pt"


def test_superseded_checkpoints_are_all_kept_and_never_overwritten(tmp_path: Path) -> None:
    """Two abandoned timelines, more files than keep_last, the same step in both: every file
    moved aside is still there byte for byte (superseded/ is never pruned nor overwritten)."""
    _save_steps(tmp_path, [2, 5, 6, 7], keep_last=3)
    first = {n: (tmp_path / "checkpoints" / n).read_bytes() for n in _ckpt_files(tmp_path)[1:]}
    ck.save_checkpoint(tmp_path, trained(3).state(), keep_last=1)  # abandons 5, 6, 7
    ck.save_checkpoint(tmp_path, trained(5, seed=1).state(), keep_last=1)
    second = (tmp_path / "checkpoints" / "step-00000005.pt").read_bytes()
    ck.save_checkpoint(tmp_path, trained(4, seed=2).state(), keep_last=1)  # abandons the new 5
    sup = tmp_path / "checkpoints" / "superseded"
    assert sorted(p.name for p in sup.iterdir()) == [
        "step-00000005.2.pt", "step-00000005.pt", "step-00000006.pt", "step-00000007.pt"]
    assert {n: (sup / n).read_bytes() for n in first} == first
    assert (sup / "step-00000005.2.pt").read_bytes() == second
    assert ck.find_resume(tmp_path).path.name == "step-00000004.pt"


# --------------------------------------------------------------------------------------------
# damaged checkpoints: fallback and clear errors
# --------------------------------------------------------------------------------------------


def _tensor_data_offset(path: Path) -> int:
    """Byte offset of the largest tensor's data inside a torch zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        with open(path, "rb") as f:  # local header: 30 bytes + name + extra field
            f.seek(info.header_offset + 26)
            n, m = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        return info.header_offset + 30 + n + m + info.file_size // 2


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _bitflip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[_tensor_data_offset(p)] ^= 0x04
    p.write_bytes(bytes(b))


@pytest.mark.parametrize(
    "damage, reason", [(_truncate, "truncated"), (_empty, "empty"), (_bitflip, "checksum")]
)
def test_damaged_newest_falls_back_with_warning(tmp_path: Path, caplog, damage, reason) -> None:
    _save_steps(tmp_path, [2, 4])
    newest = tmp_path / "checkpoints" / "step-00000004.pt"
    damage(newest)
    with caplog.at_level(logging.WARNING, logger="voicelab.training.checkpoint"):
        point = ck.find_resume(tmp_path)
    assert point.path.name == "step-00000002.pt" and point.state[ck.K_STEP] == 2
    assert [p for p, _ in point.skipped] == [newest] and reason in point.skipped[0][1]
    assert "step-00000004.pt" in caplog.text and "resuming from step-00000002.pt" in caplog.text
    with pytest.raises(CheckpointError, match=reason):
        ck.load_checkpoint(newest)


def test_bitflip_detected_even_though_torch_loads_it(tmp_path: Path) -> None:
    """torch.load does not verify zip CRCs: the flipped file loads with a changed tensor."""
    _save_steps(tmp_path, [1])
    p = tmp_path / "checkpoints" / "step-00000001.pt"
    _bitflip(p)
    torch.load(p, weights_only=True)  # no error from torch itself
    with pytest.raises(CheckpointError, match="checksum"):
        ck.load_checkpoint(p)


def test_tampered_plain_value_is_detected(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1])
    p = tmp_path / "checkpoints" / "step-00000001.pt"
    raw = torch.load(p, weights_only=True)
    raw[ck.K_EPOCH_POS] += 1
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match="checksum"):
        ck.load_checkpoint(p)


def test_all_damaged_is_a_clear_error(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1, 2])
    _truncate(tmp_path / "checkpoints" / "step-00000001.pt")
    _bitflip(tmp_path / "checkpoints" / "step-00000002.pt")
    with pytest.raises(CheckpointError, match="none of the 2 checkpoints.*new --run") as e:
        ck.find_resume(tmp_path)
    assert "truncated" in str(e.value) and "checksum" in str(e.value)


def test_no_checkpoints_and_deleted_checkpoints(tmp_path: Path) -> None:
    assert ck.find_resume(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "LATEST").write_text("step-00000005.pt\n")
    with pytest.raises(CheckpointError, match="no checkpoint files"):
        ck.find_resume(tmp_path)


def test_renamed_checkpoint_is_not_resumed(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1, 2])
    d = tmp_path / "checkpoints"
    os.replace(d / "step-00000001.pt", d / "step-00000009.pt")
    point = ck.find_resume(tmp_path)
    assert point.path.name == "step-00000002.pt" and "not the step in its name" in point.skipped[0][1]


def test_not_a_checkpoint_and_newer_format(tmp_path: Path) -> None:
    p = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="not a voicelab checkpoint"):
        ck.load_checkpoint(p)
    p.write_text("hello, not a zip")
    with pytest.raises(CheckpointError, match="other.pt"):
        ck.load_checkpoint(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "missing.pt")
    raw = trained(1).state()
    raw[ck.K_FORMAT] = ck.FORMAT_VERSION + 1
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match="newer than this voicelab.*update voicelab"):
        ck.load_checkpoint(p)


def test_incomplete_state_is_refused_at_save(tmp_path: Path) -> None:
    state = trained(1).state()
    del state[ck.K_OPTIMIZERS]
    state[ck.K_EPOCH] = -1
    with pytest.raises(CheckpointError, match="'optimizers' is missing.*epoch must be"):
        ck.save_checkpoint(tmp_path, state)
    state = trained(1).state()
    state[ck.K_METRICS] = [{"loss": np.float32(1.0)}]  # would not load with weights_only
    with pytest.raises(CheckpointError, match=r"metrics.*numpy.*float\(x\)"):
        ck.save_checkpoint(tmp_path, state)
    assert not (tmp_path / "checkpoints").exists() or _ckpt_files(tmp_path) == []


# --------------------------------------------------------------------------------------------
# security: a pickle that would run code is refused, and the code does not run
# --------------------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))  # "code" that leaves a trace when unpickled


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = trained(1).state()
    evil[ck.K_EXTRA] = {"x": _Payload(marker)}
    data = pickle.dumps(_Payload(marker))
    pickle.loads(data)  # control: the payload really runs when unpickled normally
    assert marker.exists()
    marker.unlink()
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    p = run / "checkpoints" / "step-00000001.pt"
    torch.save(evil, p)  # a zip checkpoint with the payload inside
    with pytest.raises(CheckpointError, match="refused.*could run code"):
        ck.load_checkpoint(p)
    legacy = tmp_path / "legacy.pt"
    with open(legacy, "wb") as f:  # a bare pickle stream, no zip
        pickle.dump({"format_version": 1, "x": _Payload(marker)}, f)
    with pytest.raises(CheckpointError, match="refused"):
        ck.load_checkpoint(legacy)
    with pytest.raises(CheckpointError, match="none of the 1 checkpoints"):
        ck.find_resume(run)  # never falls back to "start from scratch"
    ck.list_checkpoints(run, verify=False)
    assert not marker.exists()


def test_save_refuses_objects(tmp_path: Path) -> None:
    state = trained(1).state()
    state[ck.K_EXTRA] = {"obj": _Payload(tmp_path / "m")}
    with pytest.raises(CheckpointError, match=r"state\['extra'\]\['obj'\].*_Payload"):
        ck.save_checkpoint(tmp_path, state)


# --------------------------------------------------------------------------------------------
# RNG, compatibility, listing
# --------------------------------------------------------------------------------------------


def test_rng_capture_restore_through_a_file(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(7)
    torch.randn(3, generator=g)
    state = trained(1).state()
    state[ck.K_RNG] = rng.capture_rng(generators={"data": g})
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3), torch.rand(2, generator=g), np.random.randn())
    ck.save_checkpoint(tmp_path, state)
    random.seed(1), np.random.seed(1), torch.manual_seed(1), g.manual_seed(1)
    g2 = torch.Generator()
    rng.restore_rng(ck.find_resume(tmp_path).state[ck.K_RNG], generators={"data": g2})
    got = (random.random(), np.random.rand(3).tolist(), torch.rand(3), torch.rand(2, generator=g2), np.random.randn())
    assert got[0] == expected[0] and got[1] == expected[1] and got[4] == expected[4]
    assert torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])
    with pytest.raises(CheckpointError, match="generator 'other'"):
        rng.restore_rng(state[ck.K_RNG], generators={"other": torch.Generator()})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_and_cuda_tensors(tmp_path: Path) -> None:
    torch.cuda.manual_seed(5)
    torch.rand(3, device="cuda")
    state = trained(1).state()
    state[ck.K_MODELS]["gpu"] = {"w": torch.randn(4, device="cuda")}
    state[ck.K_RNG] = rng.capture_rng()
    expected = torch.rand(4, device="cuda")
    ck.save_checkpoint(tmp_path, state)
    torch.cuda.manual_seed(99)
    loaded = ck.find_resume(tmp_path).state
    assert loaded[ck.K_MODELS]["gpu"]["w"].device.type == "cpu"  # map_location="cpu"
    assert torch.equal(loaded[ck.K_MODELS]["gpu"]["w"], state[ck.K_MODELS]["gpu"]["w"].cpu())
    rng.restore_rng(loaded[ck.K_RNG])
    assert torch.equal(torch.rand(4, device="cuda"), expected)


def test_gaussian_cache_is_restored() -> None:
    np.random.seed(3)
    random.seed(3)
    np.random.randn(), random.gauss(0, 1)  # leaves a cached second gaussian in both
    d = rng.capture_rng()
    a = (np.random.randn(), random.gauss(0, 1))
    rng.restore_rng(d)
    assert (np.random.randn(), random.gauss(0, 1)) == a


def test_check_compatible_lists_architecture_differences() -> None:
    saved = config_to_dict(load_config("tiny"))
    ck.check_compatible(saved, config_to_dict(load_config("tiny", ["train.sovits_steps=99", "train.save_every=7", "train.lr_g=0.001"])))
    new = config_to_dict(load_config("tiny", ["model.hidden=64", "features.n_mels=64", "audio.sample_rate=16000", "model.upsample_rates=[10,8,2,2,2]"]))
    with pytest.raises(CheckpointError) as e:
        ck.check_compatible(saved, new)
    msg = str(e.value)
    assert "model.hidden: 32 in the checkpoint, 64 now" in msg
    assert "features.n_mels: 80 in the checkpoint, 64 now" in msg
    assert "audio.sample_rate: 32000 in the checkpoint, 16000 now" in msg
    assert "train." not in msg and "--from" in msg
    del new["model"]["gpt_layers"]
    with pytest.raises(CheckpointError, match=r"model.gpt_layers: 2 in the checkpoint, \(absent\) now"):
        ck.check_compatible(saved, new)


def test_list_checkpoints_reports_metadata_and_problems(tmp_path: Path) -> None:
    _save_steps(tmp_path, [1, 2, 3], val=lambda s: 10.0 - s)
    _truncate(tmp_path / "checkpoints" / "step-00000003.pt")
    infos = ck.list_checkpoints(tmp_path)
    assert [i.step for i in infos] == [1, 2, 3]
    assert infos[0].problem is None and infos[0].stage == "sovits" and infos[0].val_loss == 9.0
    assert set(infos[1].losses) == {"loss_mel"} and infos[1].size_bytes > 1000 and infos[1].time
    assert "truncated" in infos[2].problem and infos[2].is_latest
    fast = ck.list_checkpoints(tmp_path, verify=False)
    assert [i.problem is None for i in fast] == [True, True, False]


def _checkpoints_cmd(*argv: str) -> int:
    import argparse

    from voicelab.commands import checkpoints

    parser = argparse.ArgumentParser()
    checkpoints.register(parser.add_subparsers())
    args = parser.parse_args(["checkpoints", *argv])
    return args.func(args)


def test_checkpoints_command(tmp_home: Path, capsys) -> None:
    from voicelab.errors import VoicelabError
    from voicelab.workspace import get_voice

    voice = get_voice("v1").create()
    with pytest.raises(VoicelabError, match="no training runs yet"):
        _checkpoints_cmd("--voice", "v1")
    run = voice.run_dir("r1")
    _save_steps(run, [2, 4, 6], val=lambda s: 10.0 - s)
    _bitflip(run / "checkpoints" / "step-00000006.pt")
    assert _checkpoints_cmd("--voice", "v1") == 0  # the newest run by default
    out = capsys.readouterr().out
    assert "run r1: 3 checkpoint(s)" in out and "x         6  damaged" in out
    assert "would continue from step-00000004.pt" in out and "skipped: step-00000006.pt" in out
    assert _checkpoints_cmd("--voice", "v1", "--run", "r1", "--json") == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert [c["step"] for c in data["checkpoints"]] == [6, 4, 2]
    assert [c["resume"] for c in data["checkpoints"]] == [False, True, False]
    for p in run.glob("checkpoints/step-*.pt"):
        _empty(p)
    assert _checkpoints_cmd("--voice", "v1", "--run", "r1") == 1
    assert "none of these checkpoints can be used" in capsys.readouterr().out
    with pytest.raises(VoicelabError, match="has no run 'nope'"):
        _checkpoints_cmd("--voice", "v1", "--run", "nope")
