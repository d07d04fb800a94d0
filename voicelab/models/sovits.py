"""SoVITS: the acoustic model (a VITS-style conditional VAE over semantic tokens + phonemes).

Training (`forward`):
    spec ──content_encoder──> 25 Hz ──quantizer (RVQ)──> tokens ──2x upsample──┐
    phones ──text_encoder──────────────────────────────────────────────────────┤ prior (MRTE-like
    ref_mel ──style_encoder──> g ───────────────────────────────────────────────┘ cross-attention)
    spec ──posterior──> z ──flow──> z_p   KL(z_p || prior)          ──> m_p, logs_p
    z (random window of segment_frames) ──decoder (HiFi-GAN)──> wav_hat

Synthesis (`infer`): first-quantizer tokens (from the GPT) + phonemes + reference mel -> prior
-> sample -> inverse flow -> decoder. Top-level submodule names matter: the trainer gives
parameters whose first name component contains "text" the lower text learning rate.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.config import ModelConfig
from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models.content import ContentEncoder, SSLFeatures
from voicelab.models.flow import Flow, PosteriorEncoder
from voicelab.models.hifigan import Generator
from voicelab.models.layers import TransformerEncoder, sequence_mask
from voicelab.models.losses import kl_loss
from voicelab.models.quantize import SemanticQuantizer
from voicelab.models.style import StyleEncoder


@dataclass
class SoVITSOutput:
    """Everything the trainer's losses need from one training forward."""

    wav_hat: Tensor  # [B, 1, seg * hop] generated audio of the random window
    wav_real: Tensor  # [B, 1, seg * hop] the real audio of the same window
    kl_terms: list[Tensor]  # scalars: [KL vs prior from the kept quantizers, KL vs first-quantizer
    #                         prior] (one term when n_quantizers == 1); balance with kl_balanced
    commit_loss: Tensor  # scalar RVQ commitment loss (weighted by model.vq_commitment_weight)
    tokens: Tensor  # [B, T_t] long first-quantizer codes of this batch
    token_lens: Tensor  # [B] long
    n_quantizers_used: int  # quantizers kept by quantizer dropout in this step
    spec_mask: Tensor  # [B, 1, T_s] float
    z_p: Tensor  # [B, C, T_s] flowed posterior sample
    m_p: Tensor  # [B, C, T_s] prior mean (from the kept quantizers)
    logs_p: Tensor  # [B, C, T_s] prior log-std
    m_q: Tensor  # [B, C, T_s] posterior mean
    logs_q: Tensor  # [B, C, T_s] posterior log-std
    slice_starts: Tensor  # [B] long start frame of each decoded window
    style: Tensor  # [B, style_dim] timbre vectors


class TextEncoder(nn.Module):
    """Phoneme + language embeddings -> transformer. phone_ids [B, T_p] -> ([B, H, T_p], mask)."""

    def __init__(self, cfg: ModelConfig, n_symbols: int, n_langs: int):
        super().__init__()
        self.phone_emb = nn.Embedding(n_symbols, cfg.hidden)
        self.lang_emb = nn.Embedding(n_langs, cfg.hidden)
        nn.init.normal_(self.phone_emb.weight, 0.0, cfg.hidden**-0.5)
        nn.init.normal_(self.lang_emb.weight, 0.0, cfg.hidden**-0.5)
        self.enc = TransformerEncoder(
            cfg.hidden, cfg.filter_channels, cfg.n_heads, cfg.n_layers_text, cfg.kernel_size,
            cfg.dropout, cfg.stochastic_depth,
        )

    def forward(self, phone_ids: Tensor, lang_ids: Tensor, phone_lens: Tensor) -> tuple[Tensor, Tensor]:
        mask = sequence_mask(phone_lens, phone_ids.shape[1])[:, None].float()
        x = (self.phone_emb(phone_ids) + self.lang_emb(lang_ids)).transpose(1, 2) * math.sqrt(
            self.phone_emb.embedding_dim
        )
        return self.enc(x * mask, mask), mask


class PriorEncoder(nn.Module):
    """Token features (50 Hz) attend to phonemes, plus the timbre vector -> (m_p, logs_p).

    The MRTE idea of GPT-SoVITS: the frame-rate content sequence is the query, the phoneme
    sequence the keys/values of a cross-attention, and the style vector is added on top, so the
    prior knows what is said (phonemes), how it unfolds in time (tokens) and who says it.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre = nn.Conv1d(cfg.hidden, cfg.hidden, 1)
        self.style_proj = nn.Linear(cfg.style_dim, cfg.hidden)
        self.enc = TransformerEncoder(
            cfg.hidden, cfg.filter_channels, cfg.n_heads, cfg.n_layers_text, cfg.kernel_size,
            cfg.dropout, cfg.stochastic_depth, cross=True,
        )
        self.proj = nn.Conv1d(cfg.hidden, 2 * cfg.hidden, 1)

    def forward(
        self, tok: Tensor, mask: Tensor, phones: Tensor, phone_mask: Tensor, g: Tensor
    ) -> tuple[Tensor, Tensor]:
        """tok [B, H, T], mask [B, 1, T], phones [B, H, T_p], phone_mask [B, 1, T_p], g [B, S]."""
        x = (self.pre(tok) + self.style_proj(g)[..., None]) * mask
        x = self.enc(x, mask, phones, phone_mask)
        m, logs = self.proj(x).chunk(2, dim=1)
        return m * mask, logs * mask


def upsample_tokens(x: Tensor, token_lens: Tensor, frame_lens: Tensor, speed: float = 1.0) -> Tensor:
    """25 Hz [B, C, T_t] -> 50 Hz [B, C, max(frame_lens)] by nearest-neighbour index.

    Frame f of example b takes token min(floor(f * speed / 2), token_lens[b] - 1): an odd frame
    count repeats the last token, and speed != 1 stretches or squeezes time (as GPT-SoVITS does by
    interpolating its 25 Hz features). Frames past frame_lens[b] are zeroed.
    """
    n = int(frame_lens.max().item())
    f = torch.arange(n, device=x.device, dtype=torch.float64)
    idx = torch.floor(f * speed / 2.0).long()[None, :]  # [1, n]
    idx = torch.minimum(idx, (token_lens[:, None] - 1).clamp_min(0))  # [B, n]
    out = torch.gather(x, 2, idx[:, None, :].expand(-1, x.shape[1], -1))
    return out * sequence_mask(frame_lens, n)[:, None].to(out.dtype)


def rand_slice(
    x: Tensor, lens: Tensor, seg: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random window of `seg` frames per example: x [B, C, T] -> ([B, C, seg], starts [B]).

    Windows stay inside the real frames where an example is long enough; shorter ones start at
    0 and include padding (zeros).
    """
    if x.shape[-1] < seg:
        x = F.pad(x, (0, seg - x.shape[-1]))
    max_start = (lens - seg + 1).clamp_min(1)
    r = torch.rand(lens.shape, device=lens.device, generator=generator)
    starts = (r * max_start).long().clamp(max=max_start - 1)
    idx = starts[:, None] + torch.arange(seg, device=x.device)[None, :]
    return torch.gather(x, 2, idx[:, None, :].expand(-1, x.shape[1], -1)), starts


class SoVITS(nn.Module):
    """See the module docstring. Sizes come from `cfg`; the front-end sizes are explicit."""

    def __init__(
        self,
        cfg: ModelConfig,
        n_symbols: int,
        n_langs: int,
        spec_channels: int,
        n_mels: int,
        sample_rate: int = 32000,
    ):
        super().__init__()
        self.cfg = cfg
        self.hop = math.prod(cfg.upsample_rates)
        self.segment_frames = cfg.segment_frames
        self.sample_rate = sample_rate
        h, s = cfg.hidden, cfg.style_dim
        # the SSL model is a frozen extractor held outside the module tree (see content.py)
        self._ssl = SSLFeatures(cfg.ssl_model_path, sample_rate, cfg.ssl_sample_rate) if cfg.ssl_model_path else None
        content_in = self._ssl.dim if self._ssl else spec_channels
        self.style_encoder = StyleEncoder(
            n_mels, h, s, dropout=cfg.dropout, stochastic_depth=cfg.stochastic_depth, use_dvector=cfg.use_dvector
        )
        self.content_encoder = ContentEncoder(
            content_in, h, cfg.content_layers, cfg.kernel_size, cfg.dropout, cfg.stochastic_depth,
            log_input=self._ssl is None,
        )
        self.quantizer = SemanticQuantizer(cfg, h)
        self.token_encoder = nn.Conv1d(h, h, 1)
        self.text_encoder = TextEncoder(cfg, n_symbols, n_langs)
        self.prior = PriorEncoder(cfg)
        self.posterior = PosteriorEncoder(
            spec_channels, h, h, 5, cfg.n_layers_posterior, s, cfg.dropout, cfg.stochastic_depth
        )
        self.flow = Flow(h, h, 5, cfg.flow_wn_layers, cfg.flow_layers, s)
        self.decoder = Generator(
            h, cfg.upsample_initial_channel, cfg.upsample_rates, cfg.upsample_kernel_sizes,
            cfg.resblock_kernel_sizes, cfg.resblock_dilations, s,
        )

    # ---------------------------------------------------------------------------------------
    # pieces shared by training and synthesis

    def style(self, ref_mel: Tensor, ref_lens: Tensor, dvector: Tensor | None = None) -> Tensor:
        """ref_mel [B, n_mels, T_r], ref_lens [B] (+ dvector [B, 256]) -> [B, style_dim]."""
        return self.style_encoder(ref_mel, ref_lens, dvector)

    def _content(self, spec: Tensor, spec_lens: Tensor, wav: Tensor | None) -> tuple[Tensor, Tensor]:
        """-> 25 Hz content vectors [B, H, T_s // 2] and token_lens [B]."""
        if bool((spec_lens < 2).any()):
            raise VoicelabError("a slice is shorter than 2 frames (40 ms): remove it from the dataset")
        if self._ssl is not None:
            if wav is None:
                raise VoicelabError(
                    "this model reads content from an SSL model (model.ssl_model_path), so token "
                    "extraction needs the waveform: pass wav=[B, 1, T_s * hop]"
                )
            x = self._ssl(wav, spec.shape[-1]).to(spec.dtype)
        else:
            x = spec
        return self.content_encoder(x, spec_lens)

    def _prior(
        self, q: Tensor, token_lens: Tensor, frame_lens: Tensor, phones: Tensor, phone_mask: Tensor,
        g: Tensor, speed: float = 1.0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Quantized 25 Hz vectors -> (m_p, logs_p, frame mask [B, 1, T]) at 50 Hz / speed."""
        tok = upsample_tokens(self.token_encoder(q), token_lens, frame_lens, speed)
        mask = sequence_mask(frame_lens, tok.shape[-1])[:, None].to(tok.dtype)
        m, logs = self.prior(tok, mask, phones, phone_mask, g)
        return m, logs, mask

    @staticmethod
    def _check_phones(phone_lens: Tensor) -> None:
        if bool((phone_lens < 1).any()):
            raise VoicelabError("an utterance has no phonemes: check its transcript is not empty")

    # ---------------------------------------------------------------------------------------
    # training

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> SoVITSOutput:
        """One training forward. The random window comes from torch's RNG (or `generator`)."""
        self._check_phones(batch.phone_lens)
        spec, spec_lens = batch.spec, batch.spec_lens
        t_s = spec.shape[-1]
        g = self.style(batch.ref_mel, batch.ref_lens, batch.dvector)
        h, token_lens = self._content(spec, spec_lens, batch.wav)
        qr = self.quantizer(h, token_lens)
        phones, phone_mask = self.text_encoder(batch.phone_ids, batch.lang_ids, batch.phone_lens)
        frame_lens = spec_lens
        m_p, logs_p, mask = self._prior(qr.quantized, token_lens, frame_lens, phones, phone_mask, g)
        mask = F.pad(mask, (0, t_s - mask.shape[-1]))  # the longest example may be shorter than T_s
        m_p, logs_p = F.pad(m_p, (0, t_s - m_p.shape[-1])), F.pad(logs_p, (0, t_s - logs_p.shape[-1]))

        g3 = g[..., None]
        # SpecAugment masks only the posterior's input (batch.posterior_spec); tokens come from
        # the clean spectrogram above so that augmentation never changes what the GPT learns.
        post_in = batch.posterior_spec if batch.posterior_spec is not None else spec
        z, m_q, logs_q = self.posterior(post_in, mask, g3, generator)
        z_p = self.flow(z, mask, g3)
        kl_terms = [kl_loss(z_p, logs_q, m_p, logs_p, mask)]
        if self.cfg.n_quantizers > 1:
            # the inference path (first quantizer only), trained on every batch; last in the list
            # so kl_balanced with alpha < 1 leans on it
            if qr.n_used == 1:
                kl_terms.append(kl_terms[0])
            else:
                m1, logs1, _ = self._prior(qr.quantized_first, token_lens, frame_lens, phones, phone_mask, g)
                m1, logs1 = F.pad(m1, (0, t_s - m1.shape[-1])), F.pad(logs1, (0, t_s - logs1.shape[-1]))
                kl_terms.append(kl_loss(z_p, logs_q, m1, logs1, mask))

        seg = self.segment_frames
        z_slice, starts = rand_slice(z, spec_lens, seg, generator)
        wav = batch.wav
        need = max(t_s, seg) * self.hop
        if wav.shape[-1] < need:
            wav = F.pad(wav, (0, need - wav.shape[-1]))
        wav_idx = starts[:, None] * self.hop + torch.arange(seg * self.hop, device=wav.device)[None, :]
        wav_real = torch.gather(wav, 2, wav_idx[:, None, :])
        wav_hat = self.decoder(z_slice, g3)
        return SoVITSOutput(
            wav_hat=wav_hat,
            wav_real=wav_real,
            kl_terms=kl_terms,
            commit_loss=qr.commit_loss,
            tokens=qr.codes[..., 0].clamp_min(0),
            token_lens=token_lens,
            n_quantizers_used=qr.n_used,
            spec_mask=mask,
            z_p=z_p,
            m_p=m_p,
            logs_p=logs_p,
            m_q=m_q,
            logs_q=logs_q,
            slice_starts=starts,
            style=g,
        )

    # ---------------------------------------------------------------------------------------
    # tokens and synthesis

    @contextmanager
    def _eval(self, *modules: nn.Module) -> Iterator[None]:
        """Temporarily put modules in eval mode: no dropout, no quantizer dropout, no EMA."""
        was = [m.training for m in modules]
        try:
            for m in modules:
                m.eval()
            yield
        finally:
            for m, w in zip(modules, was):
                m.train(w)

    @torch.no_grad()
    def extract_tokens(self, spec: Tensor, spec_lens: Tensor, wav: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """spec [B, F, T_s], spec_lens [B] -> (tokens [B, T_s // 2] long, token_lens [B]).

        First-quantizer codes (what the GPT learns), deterministic: the content encoder and the
        quantizer run in eval mode whatever the model's mode, so codebooks are never updated
        here. `wav` [B, 1, T_s * hop] is required only with model.ssl_model_path.
        """
        if not self.quantizer.initialised:
            # an eval forward would k-means-initialise the codebooks from this one batch
            raise VoicelabError(
                "the semantic codebooks are not initialised yet: train stage 1 (SoVITS) before "
                "extracting tokens, or load a trained checkpoint"
            )
        with self._eval(self.content_encoder, self.quantizer):
            h, token_lens = self._content(spec, spec_lens, wav)
            codes = self.quantizer(h, token_lens).codes[..., 0]
        mask = sequence_mask(token_lens, codes.shape[1])
        return codes.masked_fill(~mask, 0), token_lens

    @staticmethod
    def frame_lengths(token_lens: Tensor, speed: float = 1.0) -> Tensor:
        """50 Hz frames that `infer` makes from token_lens [B] at a speed: round(2 T_t / speed)."""
        return torch.clamp(torch.round(token_lens.double() * 2.0 / speed), min=1).long()

    def output_lengths(self, token_lens: Tensor, speed: float = 1.0) -> Tensor:
        """Samples of real audio per example in `infer`'s output: frames * hop."""
        return self.frame_lengths(token_lens, speed) * self.hop

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lens: Tensor,
        phone_ids: Tensor,
        phone_lens: Tensor,
        lang_ids: Tensor,
        ref_mel: Tensor,
        ref_lens: Tensor,
        noise_scale: float = 0.5,
        speed: float = 1.0,
        dvector: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """First-quantizer tokens [B, T_t] + phonemes [B, T_p] + reference mel -> wav [B, 1, T].

        T = max(frame_lengths) * hop; samples past `output_lengths(token_lens, speed)[b]` are 0.
        Call `.eval()` first (dropout would otherwise make the output random). `generator`
        seeds the prior sample, so the same seed gives the same audio.
        """
        if not 0.25 <= speed <= 4.0:
            raise VoicelabError(f"speed={speed} is out of range: use a value between 0.25 and 4")
        if bool((token_lens < 1).any()):
            raise VoicelabError("no semantic tokens to synthesise: the GPT produced an empty sequence")
        if int(tokens.max().item()) >= self.cfg.codebook_size or int(tokens.min().item()) < 0:
            raise VoicelabError(
                f"token ids must be in [0, {self.cfg.codebook_size}): the GPT and SoVITS come from "
                "different models; export both from the same run"
            )
        self._check_phones(phone_lens)
        g = self.style(ref_mel, ref_lens, dvector)
        phones, phone_mask = self.text_encoder(phone_ids, lang_ids, phone_lens)
        q = self.quantizer.decode_first(tokens.long()).to(phones.dtype)
        frame_lens = self.frame_lengths(token_lens, speed)
        m_p, logs_p, mask = self._prior(q, token_lens, frame_lens, phones, phone_mask, g, speed)
        noise = torch.randn(m_p.shape, device=m_p.device, dtype=m_p.dtype, generator=generator)
        z_p = (m_p + noise * torch.exp(logs_p) * noise_scale) * mask
        g3 = g[..., None]
        z = self.flow(z_p, mask, g3, reverse=True)
        wav = self.decoder(z * mask, g3)
        sample_mask = sequence_mask(frame_lens * self.hop, wav.shape[-1])[:, None]
        return wav * sample_mask.to(wav.dtype)
