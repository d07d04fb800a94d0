"""Content encoder: 50 Hz frames -> 25 Hz vectors that the residual VQ turns into semantic tokens.

Input is either the log linear spectrogram of the slice (default) or, when `model.ssl_model_path`
names a transformers SSL model on disk (HuBERT, wav2vec2 ...), that model's last hidden state.
The SSL model is frozen and deliberately kept *out* of the module tree (no parameters in the
optimiser, nothing in checkpoints or exports): it is a fixed feature extractor the person already
has on disk, as GPT-SoVITS treats its HuBERT.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.errors import VoicelabError
from voicelab.models.layers import LayerNorm, drop_path, lowpass_resample

LOG_CLAMP = 1e-5


class ContentEncoder(nn.Module):
    """Frames [B, C_in, T_s] (50 Hz) -> [B, hidden, T_s // 2] (25 Hz), masked.

    A 1x1 projection, `n_layers` residual conv blocks at 50 Hz, then a stride-2 conv (kernel 2)
    so token t sees exactly frames 2t and 2t+1: T_t = T_s // 2, the Batch contract.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        n_layers: int,
        kernel_size: int,
        dropout: float,
        stochastic_depth: float,
        log_input: bool,
    ):
        super().__init__()
        self.log_input = log_input
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2) for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))
        self.p = [stochastic_depth * i / max(1, n_layers - 1) for i in range(n_layers)]
        self.drop = nn.Dropout(dropout)
        self.down = nn.Conv1d(hidden, hidden, 2, stride=2)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, C_in, T_s], lens [B] -> (h [B, hidden, T_s // 2], token_lens [B] = lens // 2)."""
        if self.log_input:  # linear magnitudes span ~100 dB: compress as the mel features are
            x = torch.log(torch.clamp(x, min=LOG_CLAMP))
        t = x.shape[-1]
        mask = (torch.arange(t, device=x.device)[None, :] < lens[:, None]).unsqueeze(1).to(x.dtype)
        h = self.pre(x) * mask
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = h + drop_path(self.drop(F.gelu(conv(norm(h)))), self.p[i], self.training)
            h = h * mask
        t2 = t // 2
        h = self.down(h[..., : 2 * t2])
        token_lens = lens // 2
        tmask = (torch.arange(t2, device=x.device)[None, :] < token_lens[:, None]).unsqueeze(1)
        return h * tmask.to(h.dtype), token_lens


class SSLFeatures:
    """A frozen transformers SSL model as a 50 Hz feature extractor (not an nn.Module on purpose).

    `__call__(wav [B, T] at sample_rate, frames) -> [B, hidden_size, frames]`: the hidden states
    are resampled (nearest) to exactly the spectrogram frame count, so tokens from SSL features
    line up with the spectrogram frames the posterior encoder sees.
    """

    def __init__(self, path: str, sample_rate: int, ssl_sample_rate: int):
        p = Path(path).expanduser()
        if not p.is_dir() or not (p / "config.json").is_file():
            raise VoicelabError(
                f"model.ssl_model_path={path!r} is not a transformers model folder (it needs a "
                "config.json and weights). Point it at a HuBERT / wav2vec2 folder on disk, or set "
                "model.ssl_model_path=\"\" to use spectrogram content features."
            )
        from transformers import AutoModel  # imported lazily: only this path needs it

        try:
            self.model = AutoModel.from_pretrained(str(p))
        except (OSError, ValueError) as e:
            raise VoicelabError(f"could not load the SSL model at {p}: {e}") from e
        self.model.eval().requires_grad_(False)
        self.sample_rate = sample_rate
        self.ssl_sample_rate = ssl_sample_rate
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, wav: Tensor, frames: int) -> Tensor:
        if wav.dim() == 3:
            wav = wav[:, 0]
        if next(self.model.parameters()).device != wav.device:
            self.model.to(wav.device)
        x = lowpass_resample(wav.float(), self.sample_rate, self.ssl_sample_rate)
        # HuBERT-style models want zero-mean unit-variance input per utterance
        x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5)
        min_len = 400  # the conv front end's receptive field at 16 kHz
        if x.shape[-1] < min_len:
            x = F.pad(x, (0, min_len - x.shape[-1]))
        h = self.model(input_values=x).last_hidden_state.transpose(1, 2)  # [B, D, T_ssl]
        return F.interpolate(h, size=frames, mode="nearest")
