"""Building blocks shared by the acoustic models (channels-first: [B, C, T] throughout).

Masks are float [B, 1, T] (1 = real frame, 0 = padding) unless a docstring says otherwise, so
they broadcast over channels. Regularisation lives here: `dropout` on activations and stochastic
depth (`drop_path`: skip a whole residual branch per example while training, Huang et al. 2016).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sequence_mask(lens: Tensor, max_len: int | None = None) -> Tensor:
    """lens [B] -> bool [B, max_len], True on the first lens[b] positions."""
    max_len = int(lens.max().item()) if max_len is None else int(max_len)
    return torch.arange(max_len, device=lens.device)[None, :] < lens[:, None]


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'same' padding for an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


def init_conv_weights(m: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN's initialisation: small normal weights keep the first steps stable."""
    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
        m.weight.data.normal_(0.0, std)


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero a residual branch for whole examples with probability p.

    x [B, ...]. Survivors are scaled by 1/(1-p) so the expected value is unchanged and nothing
    needs rescaling at inference.
    """
    if p <= 0.0 or not training:
        return x
    keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
    keep.bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T]."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class MultiHeadAttention(nn.Module):
    """Attention over [B, C, T] sequences with key padding masks (self- or cross-attention)."""

    def __init__(
        self,
        channels: int,
        n_heads: int,
        dropout: float = 0.0,
        kv_channels: int | None = None,
        rel_window: int = 0,
    ):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels={channels} not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.q = nn.Conv1d(channels, channels, 1)
        self.kv = nn.Conv1d(kv_channels or channels, 2 * channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)
        self.dropout = dropout
        # Self-attention alone is blind to order. A learned per-head bias for each relative
        # offset in [-W, W] (offsets beyond W share the edge value) gives it VITS's windowed
        # relative positions at the cost of (2W + 1) * heads numbers. Only for self-attention:
        # offsets between sequences at different rates (frames vs phonemes) mean nothing.
        self.rel_window = rel_window
        self.rel_bias = nn.Parameter(torch.zeros(n_heads, 2 * rel_window + 1)) if rel_window > 0 else None

    def forward(self, x: Tensor, context: Tensor, key_mask: Tensor) -> Tensor:
        """x [B, C, Tq], context [B, Ck, Tk], key_mask [B, 1, Tk] -> [B, C, Tq].

        Every row must have at least one real key (callers guarantee lengths >= 1), otherwise
        the softmax would be over nothing.
        """
        b, c, tq = x.shape
        h = self.n_heads
        q = self.q(x).view(b, h, c // h, tq).transpose(2, 3)  # [B, h, Tq, d]
        k, v = self.kv(context).chunk(2, dim=1)
        tk = k.shape[-1]
        k = k.reshape(b, h, c // h, tk).transpose(2, 3)
        v = v.reshape(b, h, c // h, tk).transpose(2, 3)
        attn_mask: Tensor = key_mask.bool()[:, None, :, :]  # [B, 1, 1, Tk]: heads, queries
        if self.rel_bias is not None:
            w = self.rel_window
            offsets = torch.arange(tk, device=x.device)[None, :] - torch.arange(tq, device=x.device)[:, None]
            bias = self.rel_bias[:, (offsets.clamp(-w, w) + w)]  # [h, Tq, Tk]
            attn_mask = bias.to(q.dtype)[None].masked_fill(~attn_mask, float("-inf"))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(2, 3).reshape(b, c, tq))


class ConvFFN(nn.Module):
    """Position-wise feed-forward with a temporal kernel (VITS's FFN), masked."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, dropout: float):
        super().__init__()
        self.c1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.c2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.drop(F.gelu(self.c1(x * mask)))
        return self.c2(x * mask) * mask


REL_WINDOW = 4  # relative-position window of self-attention (VITS's window_size)


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention, FFN; each branch droppable."""

    def __init__(
        self,
        channels: int,
        filter_channels: int,
        n_heads: int,
        kernel_size: int,
        dropout: float,
        drop_path: float,
        cross: bool = False,
    ):
        super().__init__()
        self.n1 = LayerNorm(channels)
        self.attn = MultiHeadAttention(channels, n_heads, dropout, rel_window=REL_WINDOW)
        self.cross = None
        if cross:
            self.nc = LayerNorm(channels)
            self.cross = MultiHeadAttention(channels, n_heads, dropout)
        self.n2 = LayerNorm(channels)
        self.ffn = ConvFFN(channels, filter_channels, kernel_size, dropout)
        self.drop = nn.Dropout(dropout)
        self.p = drop_path

    def forward(
        self, x: Tensor, mask: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> Tensor:
        h = self.n1(x)
        x = x + drop_path(self.drop(self.attn(h, h, mask)), self.p, self.training)
        if self.cross is not None:
            assert context is not None and context_mask is not None
            h = self.nc(x)
            x = x + drop_path(self.drop(self.cross(h, context, context_mask)), self.p, self.training)
        x = x + drop_path(self.drop(self.ffn(self.n2(x), mask)), self.p, self.training)
        return x * mask


class TransformerEncoder(nn.Module):
    """A stack of TransformerBlocks with a final norm. x [B, C, T], mask [B, 1, T] -> [B, C, T].

    Stochastic depth rises linearly with depth (0 for the first block, `stochastic_depth` for the
    last), the schedule of the original paper: early blocks carry the most shared structure.
    """

    def __init__(
        self,
        channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 3,
        dropout: float = 0.0,
        stochastic_depth: float = 0.0,
        cross: bool = False,
    ):
        super().__init__()
        rates = [stochastic_depth * i / max(1, n_layers - 1) for i in range(n_layers)]
        self.blocks = nn.ModuleList(
            TransformerBlock(channels, filter_channels, n_heads, kernel_size, dropout, r, cross)
            for r in rates
        )
        self.norm = LayerNorm(channels)

    def forward(
        self, x: Tensor, mask: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> Tensor:
        for block in self.blocks:
            x = block(x, mask, context, context_mask)
        return self.norm(x) * mask


class WaveNet(nn.Module):
    """Non-causal WaveNet (VITS's WN): gated dilated convs, global conditioning g [B, G, 1].

    x [B, C, T], mask [B, 1, T] -> [B, C, T] (sum of skip outputs). Stochastic depth drops a
    layer's residual *and* skip contribution together.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        dropout: float = 0.0,
        stochastic_depth: float = 0.0,
    ):
        super().__init__()
        self.channels = channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip = nn.ModuleList()
        self.drop = nn.Dropout(dropout)
        self.p = [stochastic_depth * i / max(1, n_layers - 1) for i in range(n_layers)]
        self.cond = nn.Conv1d(gin_channels, 2 * channels * n_layers, 1) if gin_channels else None
        for i in range(n_layers):
            d = dilation_rate**i
            self.in_layers.append(
                nn.Conv1d(channels, 2 * channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))
            )
            # the last layer has no residual path, only a skip output
            out = 2 * channels if i < n_layers - 1 else channels
            self.res_skip.append(nn.Conv1d(channels, out, 1))

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None) -> Tensor:
        out = torch.zeros_like(x)
        cond = self.cond(g) if (g is not None and self.cond is not None) else None
        c2 = 2 * self.channels
        for i, (lin, lrs) in enumerate(zip(self.in_layers, self.res_skip)):
            h = lin(x)
            if cond is not None:
                h = h + cond[:, i * c2 : (i + 1) * c2]
            a, b = h.chunk(2, dim=1)
            acts = self.drop(torch.tanh(a) * torch.sigmoid(b))
            rs = drop_path(lrs(acts), self.p[i], self.training)
            if i < self.n_layers - 1:
                x = (x + rs[:, : self.channels]) * mask
                out = out + rs[:, self.channels :]
            else:
                out = out + rs
        return out * mask


def lowpass_resample(wav: Tensor, sr_in: int, sr_out: int) -> Tensor:
    """Resample [B, T] by a windowed-sinc low-pass then linear interpolation.

    Good enough to feed an SSL model (which only needs the band below the new Nyquist); not a
    studio resampler. Pure torch, so it runs on the model's device with no extra dependency.
    """
    if sr_in == sr_out:
        return wav
    if sr_out < sr_in:
        cutoff = 0.95 * sr_out / sr_in / 2  # cycles per input sample, just below new Nyquist
        half = 32
        n = torch.arange(-half, half + 1, device=wav.device, dtype=wav.dtype)
        kernel = 2 * cutoff * torch.sinc(2 * cutoff * n) * torch.hann_window(2 * half + 1, periodic=False, device=wav.device, dtype=wav.dtype)
        kernel = kernel / kernel.sum()
        wav = F.conv1d(F.pad(wav[:, None], (half, half)), kernel.view(1, 1, -1))[:, 0]
    n_out = max(1, int(math.floor(wav.shape[-1] * sr_out / sr_in)))
    return F.interpolate(wav[:, None], size=n_out, mode="linear", align_corners=False)[:, 0]
