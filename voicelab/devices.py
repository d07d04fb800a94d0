"""Which torch device a setting names: the one place "auto" / "cuda" / "cpu" are resolved.

    resolve_device("auto")                       # cuda:<current> when PyTorch sees a GPU, else cpu
    resolve_device(cfg.train.device, local_rank=info.local_rank)   # each torchrun rank its GPU
"""

from __future__ import annotations

import torch

from voicelab.errors import VoicelabError


def resolve_device(
    name: str | torch.device, local_rank: int | None = None, hint: str = "use cpu"
) -> torch.device:
    """A device setting -> torch.device. "auto": CUDA when available, else the CPU; "cuda": GPU
    `local_rank` (a torchrun rank's own) or the current one. Asking for CUDA on a machine
    without it raises VoicelabError ending in `hint` (what to do instead)."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VoicelabError(f"device {name!r} was asked for but PyTorch sees no CUDA GPU: {hint}")
        if name == "cuda":
            return torch.device(
                "cuda", local_rank if local_rank is not None else torch.cuda.current_device()
            )
    return torch.device(name)
