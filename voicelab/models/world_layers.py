"""The building blocks of the world path's acoustic model (voicelab/models/world_acoustic.py).

Shapes: B batch, P phones, F frames (10 ms), H hidden channels, S style_dim.
- `expand_matrix` / `frame_positions`: durations -> the phone-to-frame assignment and Merlin's
  position-in-phone features (FastSpeech's length regulator as one matrix product);
- `ConditionalLayerNorm` (AdaSpeech): scale and shift from the speaker vector;
- `TextPhoneEncoder`, `DurationPredictor` (FastSpeech 2's `VariancePredictor`), `FrameDecoder`
  (dilated conv blocks, `DecoderBlock`, each with a conditional layer norm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.config import ModelConfig
from voicelab.models.layers import TransformerEncoder, drop_path, sequence_mask


def expand_matrix(durations: Tensor, n_frames: int) -> Tensor:
    """durations [B, P] long -> [B, P, F] one-hot assignment of each frame to its phone.

    Frame t belongs to phone p when cum[p-1] <= t < cum[p]; frames past the total are all-zero
    (padding). Multiplying phone features [B, C, P] by it gives frame features [B, C, F].
    """
    cum = torch.cumsum(durations, dim=1)  # [B, P]
    start = cum - durations
    t = torch.arange(n_frames, device=durations.device)[None, None, :]  # [1, 1, F]
    return ((t >= start[..., None]) & (t < cum[..., None])).float()


def frame_positions(durations: Tensor, expand: Tensor) -> Tensor:
    """[B, 3, F] per-frame position features (Merlin's): the fraction of the phone elapsed at the
    frame's centre, the fraction remaining, and the phone's log duration (scaled)."""
    d = durations.float().clamp(min=1)  # [B, P]
    start = torch.cumsum(durations, 1).float() - d
    t = torch.arange(expand.shape[-1], device=d.device, dtype=torch.float)[None, :]  # [1, F]
    d_f = torch.einsum("bp,bpf->bf", d, expand).clamp(min=1)
    s_f = torch.einsum("bp,bpf->bf", start, expand)
    frac = ((t - s_f + 0.5) / d_f).clamp(0, 1)
    valid = expand.sum(1)  # [B, F] 1 inside the utterance
    return torch.stack([frac, 1 - frac, torch.log(d_f) / 4.0], 1) * valid[:, None]


class ConditionalLayerNorm(nn.Module):
    """AdaSpeech's conditional layer norm over [B, C, T]: scale and shift come from the speaker
    vector. The few-shot fine-tune adapts these small projections (and little else)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)
        self.scale = nn.Linear(cond_dim, channels)
        self.shift = nn.Linear(cond_dim, channels)
        # start as a plain LayerNorm (scale 1, shift 0) whatever the speaker vector
        nn.init.zeros_(self.scale.weight)
        nn.init.ones_(self.scale.bias)
        nn.init.zeros_(self.shift.weight)
        nn.init.zeros_(self.shift.bias)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """x [B, C, T], g [B, S] -> [B, C, T]."""
        y = self.norm(x.transpose(1, 2))  # [B, T, C]
        y = y * self.scale(g)[:, None, :] + self.shift(g)[:, None, :]
        return y.transpose(1, 2)


class DecoderBlock(nn.Module):
    """Pre-norm residual block: CLN(speaker) -> dilated conv -> GELU -> 1x1 conv; droppable."""

    def __init__(self, channels: int, filter_channels: int, kernel: int, dilation: int,
                 cond_dim: int, dropout: float, drop_path_p: float):
        super().__init__()
        self.norm = ConditionalLayerNorm(channels, cond_dim)
        pad = (kernel - 1) * dilation // 2
        self.conv = nn.Conv1d(channels, filter_channels, kernel, dilation=dilation, padding=pad)
        self.proj = nn.Conv1d(filter_channels, channels, 1)
        self.drop = nn.Dropout(dropout)
        self.p = drop_path_p

    def forward(self, x: Tensor, mask: Tensor, g: Tensor) -> Tensor:
        h = self.drop(F.gelu(self.conv(self.norm(x, g) * mask)))
        return x + drop_path(self.proj(h) * mask, self.p, self.training)


class VariancePredictor(nn.Module):
    """FastSpeech 2's predictor: two conv + LayerNorm + dropout layers and a linear head.
    x [B, H, P], mask [B, 1, P] -> [B, P]."""

    def __init__(self, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.c1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.n1 = nn.LayerNorm(channels)
        self.c2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.n2 = nn.LayerNorm(channels)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv1d(channels, 1, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in ((self.c1, self.n1), (self.c2, self.n2)):
            x = F.relu(conv(x * mask))
            x = self.drop(norm(x.transpose(1, 2)).transpose(1, 2))
        return (self.out(x * mask) * mask)[:, 0]


class TextPhoneEncoder(nn.Module):
    """ARPAbet phone + word-position + stress embeddings -> transformer: [B, P] -> [B, H, P]."""

    def __init__(self, cfg: ModelConfig, n_symbols: int, n_word_pos: int, n_stress: int):
        super().__init__()
        self.phone_emb = nn.Embedding(n_symbols, cfg.hidden, padding_idx=0)
        self.wpos_emb = nn.Embedding(n_word_pos, cfg.hidden)
        self.stress_emb = nn.Embedding(n_stress, cfg.hidden)
        for emb in (self.phone_emb, self.wpos_emb, self.stress_emb):
            nn.init.normal_(emb.weight, 0.0, cfg.hidden**-0.5)
        self.enc = TransformerEncoder(
            cfg.hidden, cfg.filter_channels, cfg.n_heads, cfg.n_layers_text, cfg.kernel_size,
            cfg.dropout, cfg.stochastic_depth,
        )

    def forward(self, phone_ids: Tensor, word_pos: Tensor, stress: Tensor, phone_lens: Tensor) -> Tensor:
        mask = sequence_mask(phone_lens, phone_ids.shape[1])[:, None].float()
        x = (self.phone_emb(phone_ids) + self.wpos_emb(word_pos) + self.stress_emb(stress)).transpose(1, 2)
        return self.enc(x * math.sqrt(self.phone_emb.embedding_dim) * mask, mask)


class DurationPredictor(nn.Module):
    """log(frames) per phone from the phone encoding, its prosody token and the speaker
    (speaking rate is personal). [B, H, P] x2, [B, S], [B, P] -> [B, P]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.style_proj = nn.Linear(cfg.style_dim, cfg.hidden)
        self.net = VariancePredictor(cfg.hidden, 3, cfg.dropout)

    def forward(self, text: Tensor, q: Tensor, g: Tensor, phone_mask: Tensor) -> Tensor:
        m = phone_mask[:, None].float()
        # the text encoding is shared with the decoder; durations should not pull it around
        x = (text.detach() + q + self.style_proj(g)[..., None]) * m
        return self.net(x, m) + 2.0 * phone_mask  # log(7 frames) ~ 2: a sane start


class FrameDecoder(nn.Module):
    """Phone features expanded to frames + position-in-phone + speaker -> D channels."""

    def __init__(self, cfg: ModelConfig, out_dim: int):
        super().__init__()
        h = cfg.hidden
        self.pos = nn.Conv1d(3, h, 1)
        self.style_proj = nn.Linear(cfg.style_dim, h)
        dil = (1, 2, 4)
        n = cfg.decoder_layers
        rates = [cfg.stochastic_depth * i / max(1, n - 1) for i in range(n)]
        self.blocks = nn.ModuleList(
            DecoderBlock(h, cfg.filter_channels, cfg.decoder_kernel, dil[i % len(dil)],
                         cfg.style_dim, cfg.dropout, rates[i])
            for i in range(n)
        )
        self.norm = ConditionalLayerNorm(h, cfg.style_dim)
        self.out = nn.Conv1d(h, out_dim, 1)

    def forward(self, phones: Tensor, expand: Tensor, durations: Tensor, g: Tensor,
                frame_mask: Tensor) -> Tensor:
        """phones [B, H, P], expand [B, P, F], durations [B, P], g [B, S], frame_mask [B, 1, F]
        -> [B, D, F] normalised features (vuv as a logit)."""
        x = torch.bmm(phones, expand)  # [B, H, F]
        x = x + self.pos(frame_positions(durations, expand)) + self.style_proj(g)[..., None]
        x = x * frame_mask
        for block in self.blocks:
            x = block(x, frame_mask, g)
        return self.out(self.norm(x, g) * frame_mask) * frame_mask
