"""Stage 1 -> stage 2: the semantic tokens and style vectors the GPT learns from.

    tokens, styles = extract_for(sovits, ema_sovits, data, cfg, device)   # by model kind (extract_tokens)
    write_tokens(run.tokens, tokens, styles)   # runs/<run>/tokens.pt (rank 0)

tokens.pt = {keys: slice file names (sorted), tokens: list of [T_t] long, styles: [N, style_dim]},
extracted with the EMA SoVITS (what export and synthesis use too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from voicelab.config import Config
from voicelab.fileio import write_atomic
from voicelab.models.build import is_world
from voicelab.training.ema import EMA
from voicelab.training.rng import fork_rng


@torch.no_grad()
def extract_tokens(
    sovits: nn.Module, ema: EMA, items: list[Any], device: torch.device, data: Any = None,
    dvectors: dict[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """First-quantizer tokens [T_t] and style vectors [style_dim] of every slice (EMA SoVITS).

    Styles come from each slice's own mel. Runs under fork_rng: a resumed run re-extracts at
    the start of stage 2 without consuming any training randomness.
    """
    tokens, styles = {}, {}
    with fork_rng(device), ema.applied(sovits) as sv:
        was = sv.training
        sv.eval()
        if data is not None:  # the world path: one prosody token per phone, style of the d-vector
            for i, item in enumerate(data.items):
                toks, tlens = sv.extract_tokens(data.collate([i]).to(device))
                tokens[item.key] = toks[0, : int(tlens[0])].cpu()
                styles[item.key] = sv.style(item.dvector[None].to(device))[0].float().cpu()
            items = []
        for item in items:
            spec = item.spec[None].to(device)
            lens = torch.tensor([item.frames], device=device)
            wav = item.wav[None, None].to(device)
            toks, tlens = sv.extract_tokens(spec, lens, wav)
            mel = item.mel[None].to(device)
            tokens[item.key] = toks[0, : int(tlens[0])].cpu()
            dv = dvectors[item.speaker][None].to(device) if dvectors else None  # use_dvector
            styles[item.key] = sv.style(mel, lens, dv)[0].float().cpu()
        sv.train(was)
    return tokens, styles


def extract_for(
    sovits: nn.Module, ema: EMA, data: Any, cfg: Config, device: torch.device
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """extract_tokens for cfg's model kind: the world path's aligned items (one prosody token per
    phone), else the spectrograms (with each speaker's d-vector under model.use_dvector)."""
    world = data if is_world(cfg) else None
    return extract_tokens(sovits, ema, data.items, device, world, getattr(data, "dvectors", None))


def write_tokens(path: Path, tokens: dict[str, Tensor], styles: dict[str, Tensor]) -> int:
    """Write tokens.pt atomically; returns the number of slices."""
    keys = sorted(tokens)
    blob = {"keys": keys, "tokens": [tokens[k] for k in keys],
            "styles": torch.stack([styles[k] for k in keys])}  # fmt: skip
    write_atomic(path, lambda f: torch.save(blob, f))
    return len(keys)
