"""Training-time regularisers applied to a Batch: SpecAugment and reference mixup.

Both take an explicit `torch.Generator`, so the randomness of step N is a pure function of
(seed, step): a resumed run draws exactly what the uninterrupted run drew. Each is a no-op that
returns the batch object unchanged when switched off.

- SpecAugment (Park et al. 2019) on the *posterior-encoder input* (linear magnitude), written to
  `batch.posterior_spec` so that the content encoder, whose output is quantised into the
  semantic tokens, keeps the clean `batch.spec`: one frequency band of up to `freq_mask` bins and one time span of up to
  `time_mask` frames per example are zeroed, inside the true length only. The audio targets
  (`wav`, `mel`) stay untouched, so the model must reconstruct through the gap: with a minute of
  speech this stops the posterior from memorising exact spectra.
- Mixup on the timbre conditioning: each example's reference mel (and precomputed style vector
  in stage 2) is blended with another example's, lambda ~ Beta(alpha, alpha) kept >= 0.5 so the
  example's own reference dominates. In a one-speaker few-shot set every reference is the same
  voice, so this smooths the style space without changing any target.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from voicelab.data.batch import Batch


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, step, rank): the augmentation RNG of one step."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(step) * 9_973 + int(rank) * 101) % (2**63 - 1))
    return g


def spec_augment(
    spec: Tensor, lens: Tensor, freq_mask: int, time_mask: int, generator: torch.Generator
) -> Tensor:
    """Mask one frequency band and one time span per example.

    spec: [B, F, T]; lens: [B] valid frames. Returns a new tensor (input left unchanged).
    Widths are drawn uniformly in [0, max]; a width of 0 masks nothing for that example.
    """
    if freq_mask <= 0 and time_mask <= 0:
        return spec
    out = spec.clone()
    B, F, T = spec.shape
    for b in range(B):
        n = int(lens[b])
        if freq_mask > 0:
            w = int(torch.randint(0, min(freq_mask, F) + 1, (1,), generator=generator))
            f0 = int(torch.randint(0, F - w + 1, (1,), generator=generator))
            out[b, f0 : f0 + w, :] = 0.0
        if time_mask > 0 and n > 1:
            w = int(torch.randint(0, min(time_mask, n - 1) + 1, (1,), generator=generator))
            t0 = int(torch.randint(0, n - w + 1, (1,), generator=generator))
            out[b, :, t0 : t0 + w] = 0.0
    return out


def mix_weights(batch_size: int, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(lam [B] in [0.5, 1], perm [B]): partner of example i is perm[i]."""
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    # Beta.sample takes no generator: draw a seed from ours and sample inside fork_rng, so the
    # global RNG (dropout, segment choice) is not disturbed and the draw stays reproducible.
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lam = beta.sample((batch_size,))
    lam = torch.maximum(lam, 1.0 - lam)
    perm = torch.randperm(batch_size, generator=generator)
    return lam, perm


def mixup_reference(
    ref_mel: Tensor, ref_lens: Tensor, lam: Tensor, perm: Tensor
) -> tuple[Tensor, Tensor]:
    """Blend reference mels: ref[i] * lam[i] + ref[perm[i]] * (1 - lam[i]).

    ref_mel: [B, n_mels, T_r] (log mel, zero padded). The mixed length is the shorter of the
    two, so no padding frames leak into the valid part. Returns (ref_mel, ref_lens).
    """
    lam_ = lam.to(ref_mel.dtype).view(-1, 1, 1)
    mixed = ref_mel * lam_ + ref_mel[perm] * (1.0 - lam_)
    lens = torch.minimum(ref_lens, ref_lens[perm])
    mask = torch.arange(ref_mel.shape[-1]).view(1, 1, -1) < lens.view(-1, 1, 1)
    return mixed * mask.to(mixed.dtype), lens


def augment_batch(batch: Batch, train_cfg: Any, generator: torch.Generator) -> Batch:
    """Apply the switched-on regularisers of `train_cfg` (spec_augment, mixup_alpha)."""
    out = batch
    if train_cfg.spec_augment and batch.spec.shape[-1] > 0:
        spec = spec_augment(
            batch.spec,
            batch.spec_lens,
            int(train_cfg.spec_augment_freq_mask),
            int(train_cfg.spec_augment_time_mask),
            generator,
        )
        out = replace(out, posterior_spec=spec)  # `spec` stays clean for the tokens
    if (
        train_cfg.mixup_alpha > 0
        and batch.size > 1
        and (batch.ref_mel.shape[-1] > 0 or batch.style is not None)
    ):
        lam, perm = mix_weights(batch.size, float(train_cfg.mixup_alpha), generator)
        ref_mel, ref_lens = mixup_reference(batch.ref_mel, batch.ref_lens, lam, perm)
        changes: dict[str, Any] = {"ref_mel": ref_mel, "ref_lens": ref_lens}
        if batch.style is not None:
            lam_ = lam.to(batch.style.dtype).view(-1, 1)
            changes["style"] = batch.style * lam_ + batch.style[perm] * (1.0 - lam_)
        out = replace(out, **changes)
    return out
