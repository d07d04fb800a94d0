"""Every random number generator of a training process: seed, capture, restore, fork.

Exact resume needs the RNG states in the checkpoint (the SoVITS random window, posterior noise
and dropout draw from torch's global RNG), and work that must not disturb training (validation,
samples, token extraction, a save at an odd step) runs under `fork_rng`.

    seed_everything(cfg.train.seed)
    state[K_RNG] = capture_rng()        # plain values and tensors only (weights_only loads)
    restore_rng(state[K_RNG])           # every RNG continues where it was captured
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Any

import numpy as np
import torch

from voicelab.training.checkpoint import CheckpointError

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch (every device) from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Python, NumPy, torch (CPU) and CUDA RNG states, plus any named torch.Generators.

    Everything is a tensor or a plain value, so it loads with weights_only=True (NumPy's key
    array becomes an int64 tensor).
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda_live = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "python": (int(version), tuple(int(x) for x in internal), gauss),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        # the current GPU only: under DDP each rank owns one device, and get_rng_state_all()
        # would create a CUDA context on every GPU from every rank
        "cuda": [torch.cuda.get_rng_state()] if cuda_live else [],
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }


def restore_rng(d: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Undo capture_rng: after this every RNG continues exactly where it was captured.

    Raises CheckpointError when a named generator has no saved state.
    """
    version, internal, gauss = d["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    n = d["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(d["torch"].cpu())
    saved_cuda = list(d.get("cuda") or [])
    if saved_cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved_cuda[0].cpu())  # onto the current device
    elif saved_cuda:
        log.warning("the checkpoint was saved on a GPU; resuming on the CPU, GPU RNG not restored")
    saved_gens = d.get("generators") or {}
    for name, g in (generators or {}).items():
        if name not in saved_gens:
            raise CheckpointError(f"the checkpoint holds no state for the generator {name!r}")
        g.set_state(saved_gens[name].cpu())


def fork_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """Run a block without consuming or changing any torch RNG state (CPU + this GPU)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)
