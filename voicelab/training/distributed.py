"""torch.distributed helpers for `torchrun --nproc_per_node=N -m voicelab train ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them the
trainer runs as a single process (rank 0 of 1) and nothing here touches torch.distributed.
Backend: nccl for CUDA devices, gloo on the CPU (what the 2-process test uses).

Data sharding (which examples a rank sees) is `voicelab.data.sharding.shard_indices`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from voicelab import devices
from voicelab.errors import VoicelabError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """What torchrun asked for (rank 0 of 1 outside torchrun)."""
    try:
        return DistInfo(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as e:
        raise VoicelabError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {e}") from None


def init_distributed(device: torch.device, timeout_s: float = 600.0) -> DistInfo:
    """Join the process group when launched by torchrun; returns this process's DistInfo."""
    info = env_dist_info()
    if not info.enabled or dist.is_initialized():
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return info


def resolve_device(name: str, info: DistInfo | None = None) -> torch.device:
    """train.device -> torch.device; under torchrun with CUDA each rank takes cuda:LOCAL_RANK."""
    info = info or env_dist_info()
    return devices.resolve_device(
        name, info.local_rank if info.enabled else None,
        hint="use --set train.device=cpu (or install the CUDA build of torch)",
    )  # fmt: skip


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap_ddp(module: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around `module` when running multi-process, else the module.

    find_unused_parameters=True: SoVITS has inference-only branches that a training forward does
    not reach, and a freeze schedule drops some gradients; DDP would otherwise hang or raise.
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=True, broadcast_buffers=True
    )


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over ranks (for logged losses). Same keys on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=False))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (stop requests, NaN guards)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank src's `obj` on every rank (small Python objects: decisions, paths)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
