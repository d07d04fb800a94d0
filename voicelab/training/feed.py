"""The training batches of this rank, in an order that exact resume can reproduce.

    feed = BatchFeed(data, cfg.train, rank, world, device, progress)
    batch = feed.augmented(k, with_tokens=False)   # micro-batch k of the current step

The order is a pure function of (seed, epoch, rank, world) (data.dataset.epoch_batches) and the
position is `progress.epoch` / `progress.epoch_pos` (batches consumed in the epoch), which the
checkpoint holds; augmentation draws from a generator seeded by (seed, global step * grad_accum
+ k, rank). So a resumed run sees exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

from typing import Any

import torch

from voicelab.config import TrainConfig
from voicelab.data.augment import augment_batch, step_generator
from voicelab.data.batch import Batch
from voicelab.data.dataset import epoch_batches


class BatchFeed:
    def __init__(
        self, data: Any, t: TrainConfig, rank: int, world: int, device: torch.device, progress: Any
    ) -> None:
        self.data, self.t, self.rank, self.world, self.device = data, t, rank, world, device
        self.progress = progress  # state.Progress: epoch, epoch_pos, global_step (shared)
        self._cache: tuple[int, list[list[int]]] | None = None

    def reset(self) -> None:
        """Forget the cached epoch order (after the position was changed from outside)."""
        self._cache = None

    def next(self, with_tokens: bool) -> Batch:
        """The next micro-batch of this rank; crosses epochs. Advances (epoch, epoch_pos)."""
        p = self.progress
        while True:
            if self._cache is None or self._cache[0] != p.epoch:
                order = epoch_batches(len(self.data.train), self.t.batch_size, self.t.seed,
                                      p.epoch, self.rank, self.world)  # fmt: skip
                self._cache = (p.epoch, order)
            order = self._cache[1]
            if p.epoch_pos < len(order):
                break
            p.epoch += 1
            p.epoch_pos = 0
        idx = [self.data.train[i] for i in order[p.epoch_pos]]
        p.epoch_pos += 1
        # stage 2 (with_tokens) needs no spectrograms or audio: skip copying them
        return self.data.collate(idx, p.epoch, with_tokens=with_tokens, audio=not with_tokens)

    def augmented(self, k: int, with_tokens: bool) -> Batch:
        """Micro-batch k of the current optimiser step, augmented, on the device."""
        batch = self.next(with_tokens)
        gen = step_generator(self.t.seed, self.progress.global_step * self.t.grad_accum + k, self.rank)
        return augment_batch(batch, self.t, gen).to(self.device, non_blocking=True)
