"""Timbre: a style encoder over a reference log-mel, optionally joined by a resemblyzer d-vector.

The reference clip is another utterance of the same speaker (3-10 s at synthesis), so the vector
must capture *who* speaks, not *what* is said: convolutions with a wide receptive field, then
masked attentive statistics pooling (mean and std weighted by learned attention) over time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.errors import VoicelabError
from voicelab.models.layers import LayerNorm, drop_path

DVECTOR_DIM = 256  # resemblyzer's embedding size


class StyleEncoder(nn.Module):
    """ref_mel [B, n_mels, T_r], ref_lens [B] (+ dvector [B, 256]) -> style [B, style_dim]."""

    def __init__(
        self,
        n_mels: int,
        hidden: int,
        style_dim: int,
        n_layers: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.0,
        stochastic_depth: float = 0.0,
        use_dvector: bool = False,
    ):
        super().__init__()
        self.use_dvector = use_dvector
        self.pre = nn.Conv1d(n_mels, hidden, 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2) for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))
        self.p = [stochastic_depth * i / max(1, n_layers - 1) for i in range(n_layers)]
        self.drop = nn.Dropout(dropout)
        self.attn = nn.Conv1d(hidden, 1, 1)
        in_dim = 2 * hidden + (DVECTOR_DIM if use_dvector else 0)
        self.out = nn.Linear(in_dim, style_dim)

    def forward(self, ref_mel: Tensor, ref_lens: Tensor, dvector: Tensor | None = None) -> Tensor:
        if self.use_dvector and dvector is None:
            raise VoicelabError(
                "model.use_dvector is on but no d-vector was given: compute the features again "
                "(they add a resemblyzer d-vector per slice), or set model.use_dvector=false"
            )
        if bool((ref_lens < 1).any()):
            raise VoicelabError("a reference clip has no frames: use a clip of at least 3 seconds")
        t = ref_mel.shape[-1]
        mask = (torch.arange(t, device=ref_mel.device)[None, :] < ref_lens[:, None]).unsqueeze(1)
        maskf = mask.to(ref_mel.dtype)
        h = self.pre(ref_mel) * maskf
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = h + drop_path(self.drop(F.gelu(conv(norm(h)))), self.p[i], self.training)
            h = h * maskf
        # attentive statistics pooling over real frames only
        logits = self.attn(h).masked_fill(~mask, float("-inf"))
        w = torch.softmax(logits, dim=-1)  # [B, 1, T_r]
        mean = (h * w).sum(-1)
        var = ((h - mean[..., None]) ** 2 * w).sum(-1)
        stats = torch.cat([mean, torch.sqrt(var + 1e-5)], dim=-1)  # [B, 2*hidden]
        if self.use_dvector:
            assert dvector is not None
            # resemblyzer vectors are L2-normalised; keep them so whatever the caller passed
            stats = torch.cat([stats, F.normalize(dvector.to(stats.dtype), dim=-1)], dim=-1)
        return self.out(stats)
