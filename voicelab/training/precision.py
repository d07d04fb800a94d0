"""Mixed precision: which dtype the forward runs in, and the autocast context for it.

bf16 where the GPU supports it, else fp16 with a GradScaler (`train.precision`: auto | fp32 |
bf16 | fp16); always fp32 on the CPU.
"""

from __future__ import annotations

import contextlib

import torch

from voicelab.config import Config


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """None = fp32. bf16 where the GPU supports it, else fp16 (with a GradScaler)."""
    p = cfg.train.precision
    if device.type != "cuda" or p == "fp32":
        return None
    if p == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if p == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision on the device (None = fp32: no autocast)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
