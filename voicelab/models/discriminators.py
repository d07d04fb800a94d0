"""HiFi-GAN's discriminators: multi-period (MPD) and multi-scale (MSD), in one module.

Channel widths scale with `model.disc_channels` (32 gives HiFi-GAN's own MPD widths 32-128-512-
1024-1024, and MSD 16-64-256-1024-1024-1024), so the tiny preset gets a discriminator as cheap
as its generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from voicelab.config import ModelConfig
from voicelab.models.layers import get_padding

LRELU_SLOPE = 0.1


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU conv stack + output conv -> (logits [B, N], every layer's output as fmaps)."""
    fmaps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmaps.append(x)
    x = post(x)
    fmaps.append(x)
    return x.flatten(1), fmaps


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into [B, 1, T/p, p] and runs 2-D convs along time (period p)."""

    def __init__(self, period: int, base: int, kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        widths = [1, base, 4 * base, 16 * base, 32 * base, 32 * base]
        pad = (get_padding(kernel_size), 0)
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(cin, cout, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad)
            )
            for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x [B, 1, T] -> (logits [B, N], feature maps)."""
        b, c, t = x.shape
        if t % self.period:  # reflect-pad to a whole number of periods
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), mode="reflect" if t > n_pad else "constant")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        return _conv_stack(self.convs, self.post, x)


class ScaleDiscriminator(nn.Module):
    """1-D grouped-conv discriminator on the raw (or average-pooled) waveform."""

    def __init__(self, base: int):
        super().__init__()
        widths = [1, base, 4 * base, 16 * base, 64 * base, 64 * base, 64 * base]
        kernels = [15, 41, 41, 41, 41, 5]
        strides = [1, 2, 2, 4, 4, 1]
        target_groups = [1, 4, 16, 16, 16, 1]
        layers = []
        for cin, cout, k, s, tg in zip(widths[:-1], widths[1:], kernels, strides, target_groups):
            groups = math.gcd(cin, cout, tg)  # must divide both widths at any scale
            layers.append(weight_norm(nn.Conv1d(cin, cout, k, s, groups=groups, padding=k // 2)))
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv1d(widths[-1], 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _conv_stack(self.convs, self.post, x)


class MultiDiscriminator(nn.Module):
    """MPD (one per period in cfg.mpd_periods) + MSD (cfg.msd_scales scales).

    forward(y [B, 1, T], y_hat [B, 1, T]) -> (real_logits, fake_logits, real_fmaps, fake_fmaps):
    lists with one entry per sub-discriminator; fmaps entries are lists of feature maps.
    Real and fake go through in one batch (cat on dim 0): half the kernel launches.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.disc_channels
        self.discs = nn.ModuleList(PeriodDiscriminator(p, c) for p in cfg.mpd_periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(max(1, c // 2)) for _ in range(cfg.msd_scales))

    def forward(
        self, y: Tensor, y_hat: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[list[Tensor]], list[list[Tensor]]]:
        if y.shape != y_hat.shape:
            raise ValueError(f"real {tuple(y.shape)} and generated {tuple(y_hat.shape)} audio differ in shape")
        b = y.shape[0]
        x = torch.cat([y, y_hat], dim=0)
        real_logits, fake_logits, real_fmaps, fake_fmaps = [], [], [], []

        def collect(logits: Tensor, fmaps: list[Tensor]) -> None:
            real_logits.append(logits[:b])
            fake_logits.append(logits[b:])
            real_fmaps.append([f[:b] for f in fmaps])
            fake_fmaps.append([f[b:] for f in fmaps])

        for d in self.discs:
            collect(*d(x))
        xs = x
        for i, d in enumerate(self.scales):
            if i > 0:  # each further scale sees the signal average-pooled by another factor 2
                xs = F.avg_pool1d(xs, 4, 2, padding=2)
            collect(*d(xs))
        return real_logits, fake_logits, real_fmaps, fake_fmaps

