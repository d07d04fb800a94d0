"""Next-token sampling for the semantic GPT: repetition penalty, temperature, top-k, top-p.

Pure functions over logits `[B, V]` so they can be tested without a model. The order follows
Hugging Face's logits processors: repetition penalty on the raw logits, then temperature (so that
top-p sees the *tempered* distribution), then top-k, then top-p, then one multinomial draw from a
caller-owned `torch.Generator` (same generator state -> same token, which is what makes
`synthesize(seed=...)` reproducible).
"""

from __future__ import annotations

import torch
from torch import Tensor

from voicelab.errors import VoicelabError


def check_sampling_args(top_k: int, top_p: float, temperature: float, repetition_penalty: float) -> None:
    """Raise VoicelabError for settings that cannot be sampled with (names match SynthConfig)."""
    problems = []
    if top_k < 1:
        problems.append(f"top_k={top_k} must be >= 1")
    if not 0.0 < top_p <= 1.0:
        problems.append(f"top_p={top_p} must be in (0, 1]")
    if temperature <= 0:
        problems.append(f"temperature={temperature} must be > 0")
    if repetition_penalty < 1.0:
        problems.append(f"repetition_penalty={repetition_penalty} must be >= 1 (1 = off)")
    if problems:
        raise VoicelabError("bad sampling settings: " + "; ".join(problems) + " (see synth.* in presets)")


def apply_repetition_penalty(logits: Tensor, history: Tensor | None, penalty: float) -> Tensor:
    """Make tokens already in `history` less likely (CTRL / GPT-SoVITS style).

    logits: [B, V] float; history: [B, N] long token ids (N may be 0) or None.
    A positive logit is divided by `penalty`, a negative one multiplied, so the token always
    becomes less likely whatever its sign. Returns a new tensor.
    """
    if history is None or history.numel() == 0 or penalty == 1.0:
        return logits
    picked = torch.gather(logits, 1, history)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    # scatter of duplicates writes the same value, so repeated tokens are penalised once
    return logits.scatter(1, history, picked)


def filter_top_k_top_p(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Set everything outside the top-k and outside the top-p nucleus to -inf.

    logits: [B, V]. The most likely token always survives, so a row never becomes all -inf.
    """
    vocab = logits.shape[-1]
    if top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the mass *before* it already reaches top_p (keeps the first always)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: Tensor,
    *,
    top_k: int,
    top_p: float,
    temperature: float,
    repetition_penalty: float = 1.0,
    history: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row. logits: [B, V] (any float dtype); returns [B] long."""
    logits = logits.float()
    logits = apply_repetition_penalty(logits, history, repetition_penalty)
    logits = logits / temperature
    logits = filter_top_k_top_p(logits, top_k, top_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
