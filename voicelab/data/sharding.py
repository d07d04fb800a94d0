"""Which examples one rank sees in one epoch: a pure function of (n, seed, epoch, rank, world).

`shard_indices` is equivalent to DistributedSampler(shuffle=True) with set_epoch: the same
permutation on every rank (seeded with seed + epoch), padded by wrapping around to a multiple of
the world size, rank r taking every world-th index from r. So data order depends only on
(seed, epoch, rank, world size), which exact resume relies on. It lives in data/ (not
training/distributed.py) because the dataset's epoch order is built from it and data/ sits below
training/.
"""

from __future__ import annotations

import torch


def shard_indices(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This rank's sample order for one epoch (DistributedSampler(shuffle=True) + set_epoch)."""
    if n <= 0:
        return []
    g = torch.Generator()
    g.manual_seed(int(seed) + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    total = -(-n // world_size) * world_size
    order = (order * (total // n + 1))[:total]  # wrap around so every rank gets the same count
    return order[rank:total:world_size]
