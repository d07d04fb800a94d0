"""Exponential moving average of model weights (used for samples, token extraction and export).

    ema = EMA(sovits, decay=0.999)
    ...optimizer.step(); ema.update(sovits)
    with ema.applied(sovits):   # temporarily swap the averaged weights in
        wav = sovits.infer(...)

The shadow holds float32 copies of every floating-point parameter *and* buffer (so VQ codebooks
kept as buffers are averaged too); integer buffers (counters) are copied as they are. The
effective decay ramps up as min(decay, (1 + n) / (10 + n)) so that the average is not dominated
by the random initialisation during the first few hundred steps of a short few-shot run.
decay = 0 disables averaging: the "EMA" is then the model itself, which keeps callers simple.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {}
        if self.enabled:
            self.reset(model)

    @property
    def enabled(self) -> bool:
        return self.decay > 0.0

    @staticmethod
    def _state(model: nn.Module) -> dict[str, Tensor]:
        # unwrap DDP so names never carry a "module." prefix
        inner = getattr(model, "module", model)
        return inner.state_dict()

    def reset(self, model: nn.Module) -> None:
        """Start the average from the model's current weights (e.g. after loading a base)."""
        self.num_updates = 0
        self.shadow = {
            k: (v.detach().float().clone() if v.is_floating_point() else v.detach().clone())
            for k, v in self._state(model).items()
        }

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow <- d * shadow + (1 - d) * weights, after each optimiser step."""
        if not self.enabled:
            return
        d = self.current_decay()
        floats_s, floats_m = [], []
        for k, v in self._state(model).items():
            s = self.shadow[k]
            if s.is_floating_point():
                floats_s.append(s)
                floats_m.append(v.detach().to(s.dtype))
            else:
                s.copy_(v)
        if floats_s:
            torch._foreach_lerp_(floats_s, floats_m, 1.0 - d)  # s += (1-d) * (m - s)
        self.num_updates += 1

    def weights(self, model: nn.Module) -> dict[str, Tensor]:
        """The averaged state dict (the model's own when disabled), in the model's dtypes."""
        if not self.enabled:
            return {k: v.detach() for k, v in self._state(model).items()}
        ref = self._state(model)
        return {k: self.shadow[k].to(ref[k].dtype) for k in ref}

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Swap the EMA weights into `model` for the duration of the block, then restore."""
        inner = getattr(model, "module", model)
        if not self.enabled:
            yield inner
            return
        backup = {k: v.detach().clone() for k, v in inner.state_dict().items()}
        inner.load_state_dict(self.weights(inner))
        try:
            yield inner
        finally:
            inner.load_state_dict(backup)

    def load_weights(self, weights: dict[str, Tensor], num_updates: int) -> None:
        """Continue from averaged weights as `weights()` gave them (what a checkpoint holds).

        The shadow stays float32 on the device it was built on; a no-op when disabled (the
        checkpoint then holds the model's own weights, which the model loads itself).
        """
        if not self.enabled:
            return
        device = next(iter(self.shadow.values())).device if self.shadow else "cpu"
        self.shadow = {
            k: (v.float() if v.is_floating_point() else v).to(device).clone()
            for k, v in weights.items()
        }
        self.num_updates = int(num_updates)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        shadow = state.get("shadow") or {}
        if self.enabled:
            missing = set(self.shadow) - set(shadow)
            if self.shadow and missing:
                raise KeyError(
                    f"EMA state lacks {len(missing)} tensors, e.g. {sorted(missing)[:3]}"
                )
            self.shadow = {
                k: v.to(self.shadow[k].device) if k in self.shadow else v for k, v in shadow.items()
            }
