"""Losses as small pure functions (the VITS / HiFi-GAN set), so the trainer composes them.

Weights (c_mel, c_kl, c_fm, c_commit) are applied by the trainer, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from voicelab.config import FeatureConfig


def mel_l1(wav_hat: Tensor, wav_real: Tensor, fcfg: FeatureConfig, sample_rate: int) -> Tensor:
    """L1 between log-mel spectrograms of generated and real audio.

    wav_hat, wav_real [B, 1, T] -> scalar. The mel comes from voicelab.audio.features so that
    the loss sees exactly the features the dataset computes.
    """
    from voicelab.audio.features import mel_spectrogram

    if wav_hat.shape != wav_real.shape:
        raise ValueError(f"generated {tuple(wav_hat.shape)} and real {tuple(wav_real.shape)} audio differ")
    # the STFT runs in fp32 even under autocast (features.py casts); compare in fp32 too
    return F.l1_loss(
        mel_spectrogram(wav_hat.float(), fcfg, sample_rate), mel_spectrogram(wav_real.float(), fcfg, sample_rate)
    )


def kl_loss(z_p: Tensor, logs_q: Tensor, m_p: Tensor, logs_p: Tensor, mask: Tensor) -> Tensor:
    """VITS's KL(q(z|x) || p(z|c)) estimated at the flowed posterior sample.

    z_p: the posterior sample pushed through the flow; logs_q: the posterior's log-std;
    m_p, logs_p: the prior. All [B, C, T]; mask [B, 1, T]. Returns the sum over channels and
    real frames divided by the number of real frames (a per-frame KL, as VITS).
    The flow is volume preserving, so there is no log-determinant term.
    """
    z_p, logs_q, m_p, logs_p = (t.float() for t in (z_p, logs_q, m_p, logs_p))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    mask = mask.float()
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def kl_balanced(terms: list[Tensor] | tuple[Tensor, ...], alpha: float) -> Tensor:
    """sum_i alpha^(L-i) KL_i / sum_i alpha^(L-i), i = 1..L.

    The LAST term gets weight 1 and earlier ones alpha, alpha^2, ...; alpha = 1 is the plain
    mean, alpha < 1 leans on the last term (SoVITS puts the inference-path prior last).
    """
    if len(terms) == 0:
        raise ValueError("kl_balanced needs at least one KL term")
    if alpha <= 0:
        raise ValueError(f"kl_balanced: alpha must be > 0, got {alpha}")
    n = len(terms)
    weights = [alpha ** (n - i) for i in range(1, n + 1)]
    total = sum(w * t for w, t in zip(weights, terms))
    return total / sum(weights)


def feature_matching(real_fmaps: list[list[Tensor]], fake_fmaps: list[list[Tensor]]) -> Tensor:
    """Sum over discriminators and layers of mean |D_l(y) - D_l(y_hat)| (real side detached)."""
    loss = torch.zeros((), device=real_fmaps[0][0].device)
    for dr, dg in zip(real_fmaps, fake_fmaps):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.detach().float() - g.float()))
    return loss


def generator_adversarial(fake_logits: list[Tensor]) -> Tensor:
    """LSGAN generator loss: sum over discriminators of mean (1 - D(y_hat))^2."""
    return sum(torch.mean((1.0 - d.float()) ** 2) for d in fake_logits)  # type: ignore[return-value]


def discriminator_adversarial(real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """LSGAN discriminator loss: sum over discriminators of mean (1 - D(y))^2 + mean D(y_hat)^2.

    Pass logits computed from a *detached* y_hat so the generator gets no gradient here.
    """
    total = torch.zeros((), device=real_logits[0].device)
    for dr, dg in zip(real_logits, fake_logits):
        total = total + torch.mean((1.0 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return total


def token_cross_entropy(logits: Tensor, targets: Tensor, lens: Tensor) -> Tensor:
    """Mean next-token cross-entropy over real positions.

    logits [B, T, V], targets [B, T] long, lens [B] (positions >= lens[b] are ignored).
    """
    t = targets.shape[1]
    mask = torch.arange(t, device=targets.device)[None, :] < lens[:, None]
    targets = targets.masked_fill(~mask, -100)
    return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100)
