"""HiFi-GAN generator (Kong et al. 2020, V1 layout), conditioned on the timbre vector.

z [B, C, T_frames] -> wav [B, 1, T_frames * prod(upsample_rates)]; with the default rates
(10, 8, 2, 2, 2) one 50 Hz frame becomes 640 samples at 32 kHz.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from voicelab.models.layers import get_padding, init_conv_weights

LRELU_SLOPE = 0.1


class ResBlock(nn.Module):
    """HiFi-GAN ResBlock1: pairs of (dilated conv, conv) with leaky ReLU, residual."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size)))
            for _ in dilations
        )
        self.apply(init_conv_weights)

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = x + xt
        return x


class Generator(nn.Module):
    """HiFi-GAN generator with global conditioning g [B, G, 1] added before the upsamplers."""

    def __init__(
        self,
        in_channels: int,
        upsample_initial_channel: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilations: tuple[int, ...],
        gin_channels: int,
    ):
        super().__init__()
        self.n_kernels = len(resblock_kernel_sizes)
        self.pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            out = ch // 2
            # padding ceil((k - u) / 2) (+ output_padding 1 when k - u is odd) gives
            # T_out == T_in * u exactly, so the waveform lines up with the frames
            d = k - u
            self.ups.append(
                weight_norm(nn.ConvTranspose1d(ch, out, k, stride=u, padding=(d + 1) // 2, output_padding=d % 2))
            )
            for rk in resblock_kernel_sizes:
                self.resblocks.append(ResBlock(out, rk, tuple(resblock_dilations)))
            ch = out
        self.post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)
        self.ups.apply(init_conv_weights)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """x [B, C, T], g [B, G, 1] -> wav [B, 1, T * hop] in (-1, 1)."""
        x = self.pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            # average of parallel resblocks with different kernels (multi-receptive-field fusion)
            acc = self.resblocks[i * self.n_kernels](x)
            for j in range(1, self.n_kernels):
                acc = acc + self.resblocks[i * self.n_kernels + j](x)
            x = acc / self.n_kernels
        return torch.tanh(self.post(F.leaky_relu(x)))
