"""Residual VQ of the 25 Hz content vectors: the semantic tokens the GPT learns to predict.

Why quantizer dropout: the GPT predicts only the FIRST quantizer's codes, so at synthesis the
decoder side sees first-layer codes alone. ResidualVQ's `quantize_dropout` keeps a random number
of quantizers (1..n, always >= 1) per training batch, which orders the codebooks coarse-to-fine
and makes the first one a usable summary on its own. On top of that, SoVITS computes a second
prior from the first quantizer alone on *every* batch (its last KL term), so the exact inference
path is trained each step, not only when the dropout happens to keep one quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from vector_quantize_pytorch import ResidualVQ

from voicelab.config import ModelConfig


@dataclass
class QuantizedResult:
    """What `SemanticQuantizer.forward` returns (EnCodec's QuantizedResult spirit)."""

    quantized: Tensor  # [B, C, T_t] sum of the kept quantizers (straight-through to the encoder)
    quantized_first: Tensor  # [B, C, T_t] first quantizer only (what synthesis from tokens sees)
    codes: Tensor  # [B, T_t, n_q] long; -1 where quantizer dropout skipped a layer
    commit_loss: Tensor  # scalar, commitment (already weighted by vq_commitment_weight)
    n_used: int  # quantizers kept in this forward


class SemanticQuantizer(nn.Module):
    """`vector_quantize_pytorch.ResidualVQ` over channels-first content vectors."""

    def __init__(self, cfg: ModelConfig, dim: int):
        super().__init__()
        self.n_q = cfg.n_quantizers
        self.rvq = ResidualVQ(
            dim=dim,
            num_quantizers=cfg.n_quantizers,
            codebook_size=cfg.codebook_size,
            kmeans_init=cfg.vq_kmeans_init,
            kmeans_iters=10,
            threshold_ema_dead_code=cfg.vq_dead_code_threshold,
            commitment_weight=cfg.vq_commitment_weight,
            decay=0.99,
            # random number of quantizers per training batch, never fewer than one
            quantize_dropout=cfg.n_quantizers > 1,
            quantize_dropout_cutoff_index=0,
        )

    def forward(self, x: Tensor, token_lens: Tensor) -> QuantizedResult:
        """x [B, C, T_t], token_lens [B] -> QuantizedResult. Padding is excluded from k-means,
        EMA updates, dead-code statistics and the commitment loss (via ResidualVQ's mask)."""
        t = x.shape[-1]
        mask = torch.arange(t, device=x.device)[None, :] < token_lens[:, None]  # [B, T_t]
        xt = x.transpose(1, 2).float()
        # fp32 even under autocast: nearest-codeword distances and the EMA / k-means updates of
        # the codebooks drift or pick wrong codes in half precision
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, codes, losses = self.rvq(xt, mask=mask)
            used = int((codes[0, 0] >= 0).sum().item()) if codes.numel() else self.n_q
            # Decoded after the forward, i.e. from the codebook as this step's EMA update /
            # dead-code replacement left it: the same lookup synthesis from tokens does.
            first = self.decode(codes[..., :1].clamp_min(0))
        # straight-through for the first-layer path too, so its prior's gradient reaches the
        # content encoder (the codebooks themselves learn by EMA, not by gradient)
        first = xt + (first.transpose(1, 2) - xt).detach()
        m = mask[..., None].to(q.dtype)
        return QuantizedResult(
            quantized=(q * m).transpose(1, 2).to(x.dtype),
            quantized_first=(first * m).transpose(1, 2).to(x.dtype),
            codes=codes,
            commit_loss=losses.sum(),
            n_used=used,
        )

    @property
    def initialised(self) -> bool:
        """False while k-means init is on and has not run yet (no training forward so far)."""
        return all(bool(layer._codebook.initted) for layer in self.rvq.layers)

    def decode(self, codes: Tensor) -> Tensor:
        """codes [B, T_t, k] long (k <= n_q, leading quantizers) -> vectors [B, C, T_t]."""
        if codes.shape[-1] < self.n_q:
            # ResidualVQ refuses short code stacks unless quantize_dropout is on; pad with -1
            # ("skipped") ourselves so this also works for a model with one quantizer
            pad = codes.new_full((*codes.shape[:-1], self.n_q - codes.shape[-1]), -1)
            codes = torch.cat([codes, pad], dim=-1)
        with torch.autocast(device_type=codes.device.type, enabled=False):
            out = self.rvq.get_output_from_indices(codes)  # [B, T_t, C]
        return out.transpose(1, 2)

    def decode_first(self, tokens: Tensor) -> Tensor:
        """tokens [B, T_t] long (first-quantizer codes, e.g. from the GPT) -> [B, C, T_t]."""
        return self.decode(tokens[..., None])
