"""The VAE side of SoVITS (as VITS): posterior encoder over the linear spectrogram, and the
residual-coupling normalising flow that maps posterior samples to the prior's space.

The coupling layers are mean-only (volume preserving, log-determinant 0), which is why the KL
estimate in `losses.kl_loss` needs no log-det term.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from voicelab.models.layers import WaveNet


class PosteriorEncoder(nn.Module):
    """spec [B, F, T_s], mask [B, 1, T_s], g [B, G, 1] -> (z, m_q, logs_q), each [B, C, T_s]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        kernel_size: int,
        n_layers: int,
        gin_channels: int,
        dropout: float = 0.0,
        stochastic_depth: float = 0.0,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, 1, n_layers, gin_channels, dropout, stochastic_depth)
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self, spec: Tensor, mask: Tensor, g: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        h = self.enc(self.pre(spec) * mask, mask, g)
        m, logs = self.proj(h).chunk(2, dim=1)
        noise = torch.randn(m.shape, device=m.device, dtype=m.dtype, generator=generator)
        z = (m + noise * torch.exp(logs)) * mask
        return z, m * mask, logs * mask


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: x1 += WN(x0). Invertible exactly, log-det 0."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, n_layers: int, gin_channels: int):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, 1, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden, channels - self.half, 1)
        # zero init: every coupling starts as the identity, so early training sees z_p == z
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: Tensor, mask: Tensor, g: Tensor, reverse: bool = False) -> Tensor:
        x0, x1 = x[:, : self.half], x[:, self.half :]
        shift = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        x1 = (x1 - shift) if reverse else (x1 + shift)
        return torch.cat([x0, x1 * mask], dim=1)


class Flow(nn.Module):
    """A stack of coupling layers with channel flips between them (VITS's ResidualCouplingBlock).

    forward(z [B, C, T], mask [B, 1, T], g [B, G, 1], reverse=False) -> [B, C, T]:
    posterior -> prior space when reverse is False, prior -> posterior space when True.
    """

    def __init__(
        self, channels: int, hidden: int, kernel_size: int, n_wn_layers: int, n_flows: int, gin_channels: int
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            CouplingLayer(channels, hidden, kernel_size, n_wn_layers, gin_channels) for _ in range(n_flows)
        )

    def forward(self, x: Tensor, mask: Tensor, g: Tensor, reverse: bool = False) -> Tensor:
        if not reverse:
            for layer in self.layers:
                x = torch.flip(layer(x, mask, g), dims=[1])
        else:
            for layer in reversed(self.layers):
                x = layer(torch.flip(x, dims=[1]), mask, g, reverse=True)
        return x
