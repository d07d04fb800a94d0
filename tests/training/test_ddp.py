"""DDP with 2 CPU processes (gloo): replicas stay equal, only rank 0 writes the run files."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from voicelab.data.sharding import shard_indices
from voicelab.training.distributed import DistInfo

DATA = Path(__file__).resolve().parent.parent / "assets"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, home: str, out: str) -> None:
    """One torchrun-like rank: env vars as torchrun sets them, then the real trainer."""
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    from voicelab.config import load_config
    from voicelab.training.trainer import Trainer, TrainOptions
    from voicelab.workspace import get_voice

    class Dumping(Trainer):
        def cleanup(self) -> None:  # before the process group goes: this rank's weights
            torch.save({"sovits": self.sovits.state_dict(), "disc": self.disc.state_dict(),
                        "gpt": self.gpt.state_dict(), "step": self.global_step,
                        "epoch": self.epoch}, f"{out}/rank{rank}.pt")  # fmt: skip
            super().cleanup()

    cfg = load_config("tiny", ["train.device=cpu", "train.sovits_steps=2", "train.gpt_steps=2",
                               "train.save_every=2", "train.eval_every=2", "train.batch_size=1",
                               "train.save_every_minutes=0"])  # fmt: skip
    code = Dumping(
        get_voice("mini", base=Path(home)), cfg, TrainOptions(run="ddp", tensorboard=False)
    ).run()
    assert code == 0


def test_two_processes_keep_replicas_equal(tmp_path):
    from voicelab.listfile import Entry, read_list, write_list
    from voicelab.training import runfiles
    from voicelab.workspace import get_voice

    home = tmp_path / "ws"
    v = get_voice("mini", base=home).create()
    entries = []
    for e in read_list(DATA / "mini.list"):
        shutil.copy(e.path, v.slices / e.path.name)
        entries.append(Entry(v.slices / e.path.name, e.speaker, e.lang, e.text))
    write_list(v.dataset_list, entries)
    out = tmp_path / "dump"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(home), str(out)), nprocs=2, join=True)

    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 4
    for name in ("sovits", "disc", "gpt"):
        for k, v0 in r0[name].items():
            assert torch.equal(v0, r1[name][k]), f"{name}.{k} differs between ranks"
    run = v.run_dir("ddp")
    recs = [r for r in runfiles.read_metrics(run) if "loss/mel" in r or "loss/gpt" in r]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]  # one writer: no duplicated records
    # 2 ranks x batch 1: each step sees 2 samples; 2 training slices -> one step per epoch
    assert r0["epoch"] == 1  # stage 2 ran epochs 0 and 1
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*.pt")) == [
        "step-00000002.pt",
        "step-00000004.pt",
    ]
    assert runfiles.read_status(run)["state"] == "finished"


def test_shards_are_disjoint_and_cover_the_epoch():
    n, world = 9, 2
    shards = [shard_indices(n, seed=1, epoch=4, rank=r, world_size=world) for r in range(world)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert set(shards[0]) | set(shards[1]) == set(range(n))
    assert DistInfo(rank=1, world_size=2).is_main is False and DistInfo().enabled is False
