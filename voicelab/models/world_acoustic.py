"""The CPU path's acoustic model (stage 1): aligned phones + prosody tokens -> WORLD parameters.

Why this model and not SoVITS on the CPU: GPT-SoVITS learns its content tokens, its alignment
(by the GPT's attention) and its waveform (by a GAN) from scratch, which needs ~1e18 FLOP of
pretraining; these machines have ~1e14. Here every one of those is given instead of learned:

- alignment: pocketsphinx forced alignment gives each phone its duration in 10 ms frames
  (voicelab/text/align.py), so the model never has to discover it;
- waveform: the model regresses WORLD vocoder parameters (coded spectral envelope, log F0,
  voicing, coded aperiodicity; voicelab/audio/world.py) and WORLD synthesises them, so there is
  no vocoder to train;
- speaker: a pretrained resemblyzer d-vector conditions the decoder through conditional layer
  norms (AdaSpeech), which a one-minute fine-tune adapts.

What is still learned is small: phone encodings in context (FastSpeech 2 / Merlin), a duration
predictor, and one *prosody token* per phone. The prosody token keeps GPT-SoVITS's two-stage
shape: a ResidualVQ quantises a per-phone prosody vector (log duration, speaker-normalised F0,
voicing and energy of the phone's frames: speaker-independent by construction, because F0 is
z-scored per speaker and nothing else about the voice enters it); the stage-2 GPT predicts those
codes from the phonemes, exactly one per phone, so synthesis can never skip or repeat a phone.

Shapes: B batch, P phones, F frames (10 ms), H = cfg.hidden, D = WORLD feature channels with the
layout [mgc (n_mgc) | lf0 | vuv | bap (n_bap)] of voicelab.audio.world.WorldFeatures.to_array.

Normalisation: mgc and bap are z-scored with `feat_mean` / `feat_std` buffers (set once from the
training data of a from-scratch run, inherited by fine-tunes, saved with the weights); lf0 is
z-scored with each utterance's speaker statistics (`lf0_stats` [B, 2] = mean, std of log F0 over
voiced frames), so the model predicts intonation shape and the speaker's own register comes from
their statistics; vuv is predicted as a logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voicelab.config import ModelConfig
from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models.layers import sequence_mask
from voicelab.models.quantize import SemanticQuantizer
from voicelab.models.world_layers import (
    DurationPredictor,
    FrameDecoder,
    TextPhoneEncoder,
    expand_matrix,
)

DVECTOR_DIM = 256  # resemblyzer's GE2E embedding
N_PROSODY_STATS = 4  # per phone: log duration, mean z-lf0 of voiced frames, voiced share, energy
MAX_FRAMES_PER_PHONE = 200  # 2 s: a duration prediction beyond this is a model failure


@dataclass(frozen=True)
class FeatureLayout:
    """Where each WORLD parameter lives in the D channels ([mgc | lf0 | vuv | bap])."""

    n_mgc: int
    n_bap: int

    @property
    def dim(self) -> int:
        return self.n_mgc + 2 + self.n_bap

    @property
    def lf0(self) -> int:
        return self.n_mgc

    @property
    def vuv(self) -> int:
        return self.n_mgc + 1

    @property
    def bap(self) -> slice:
        return slice(self.n_mgc + 2, self.dim)

    @property
    def mgc(self) -> slice:
        return slice(0, self.n_mgc)


@dataclass
class WorldOutput:
    """What `WorldAcoustic.forward` returns (teacher-forced: true durations and tokens)."""

    pred: Tensor  # [B, D, F] normalised prediction (vuv channel: logits)
    target: Tensor  # [B, D, F] normalised target
    frame_mask: Tensor  # [B, 1, F]
    log_dur_pred: Tensor  # [B, P]
    log_dur_target: Tensor  # [B, P]
    phone_mask: Tensor  # [B, P] bool
    commit_loss: Tensor  # []
    tokens: Tensor  # [B, P] first-quantizer codes
    n_quantizers_used: int


class WorldAcoustic(nn.Module):
    """Phones (+ word positions) + prosody tokens + speaker -> WORLD parameters at 10 ms.

    Args:
        cfg: `cfg.model` (hidden, filter_channels, n_heads, n_layers_text, kernel_size, dropout,
            stochastic_depth, style_dim, codebook_size, n_quantizers, decoder_layers,
            decoder_kernel, vq_*).
        n_symbols: size of the ARPAbet table (voicelab.text.arpabet); id 0 is padding.
        n_word_pos, n_stress: sizes of the word-position and stress tables (voicelab.text.arpabet).
        layout: the WORLD channel layout.

    Top-level submodules (names used by train.freeze and the per-module LR rule):
    `text_encoder speaker prosody_encoder quantizer duration_predictor decoder`.
    """

    def __init__(self, cfg: ModelConfig, n_symbols: int, n_word_pos: int, n_stress: int,
                 layout: FeatureLayout):
        super().__init__()
        h = cfg.hidden
        self.layout = layout
        self.text_encoder = TextPhoneEncoder(cfg, n_symbols, n_word_pos, n_stress)
        # the speaker: d-vector -> style vector (shared with the GPT's conditioning)
        self.speaker = nn.Sequential(nn.Linear(DVECTOR_DIM, cfg.style_dim), nn.Tanh())
        self.prosody_encoder = nn.Sequential(
            nn.Conv1d(N_PROSODY_STATS, h, 3, padding=1), nn.GELU(), nn.Conv1d(h, h, 3, padding=1)
        )
        self.quantizer = SemanticQuantizer(cfg, h)
        self.duration_predictor = DurationPredictor(cfg)
        self.decoder = FrameDecoder(cfg, layout.dim)
        self.register_buffer("feat_mean", torch.zeros(layout.dim))
        self.register_buffer("feat_std", torch.ones(layout.dim))

    # ---------------------------------------------------------------------------------------
    # normalisation
    # ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def set_feature_stats(self, mean: Tensor, std: Tensor) -> None:
        """Install the data's per-channel mean/std [D] (mgc and bap channels are used)."""
        self.feat_mean.copy_(mean.to(self.feat_mean))
        self.feat_std.copy_(std.to(self.feat_std).clamp(min=1e-3))

    def normalise(self, feats: Tensor, lf0_stats: Tensor) -> Tensor:
        """Raw WORLD features [B, F, D] -> normalised [B, D, F] (lf0 per speaker, vuv as is)."""
        lay = self.layout
        x = (feats - self.feat_mean) / self.feat_std
        lf0 = (feats[..., lay.lf0] - lf0_stats[:, None, 0]) / lf0_stats[:, None, 1].clamp(min=1e-3)
        x[..., lay.lf0] = lf0
        x[..., lay.vuv] = feats[..., lay.vuv]
        return x.transpose(1, 2)

    def denormalise(self, pred: Tensor, lf0_stats: Tensor) -> Tensor:
        """Normalised prediction [B, D, F] -> raw WORLD features [B, F, D] (vuv in {0, 1})."""
        lay = self.layout
        x = pred.transpose(1, 2)
        out = x * self.feat_std + self.feat_mean
        out[..., lay.lf0] = x[..., lay.lf0] * lf0_stats[:, None, 1] + lf0_stats[:, None, 0]
        out[..., lay.vuv] = (x[..., lay.vuv] > 0).to(x.dtype)
        return out

    # ---------------------------------------------------------------------------------------
    # pieces
    # ---------------------------------------------------------------------------------------

    def style(self, dvector: Tensor) -> Tensor:
        """dvector [B, 256] -> style vector [B, style_dim] (the GPT reads it too)."""
        return self.speaker(dvector.float())

    def prosody_stats(self, target: Tensor, expand: Tensor, durations: Tensor) -> Tensor:
        """Per-phone prosody vector [B, 4, P] from the normalised target [B, D, F]."""
        lay = self.layout
        d = durations.float().clamp(min=1)  # [B, P]
        vuv = target[:, lay.vuv]  # [B, F]
        voiced = torch.einsum("bf,bpf->bp", vuv, expand)  # voiced frames per phone
        lf0 = torch.einsum("bf,bpf->bp", target[:, lay.lf0] * vuv, expand) / voiced.clamp(min=1)
        energy = torch.einsum("bf,bpf->bp", target[:, 0], expand) / d
        log_d = (torch.log(d) - 2.0) / 1.0
        return torch.stack([log_d, lf0, voiced / d, energy], 1)

    def _tokens_from_stats(self, stats: Tensor, phone_mask: Tensor):
        z = self.prosody_encoder(stats) * phone_mask[:, None]  # [B, H, P]
        return self.quantizer(z, phone_mask.sum(1).long())

    # ---------------------------------------------------------------------------------------
    # training
    # ---------------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> WorldOutput:
        """Teacher-forced pass over `batch.phone_ids / word_pos / durations / acoustic /
        acoustic_lens / lf0_stats / dvector` (see voicelab/data/batch.py)."""
        if batch.acoustic is None or batch.durations is None or batch.dvector is None:
            raise ValueError("WorldAcoustic.forward needs batch.acoustic, durations and dvector")
        n_frames = batch.acoustic.shape[1]
        phone_mask = sequence_mask(batch.phone_lens, batch.phone_ids.shape[1])  # [B, P]
        frame_mask = sequence_mask(batch.acoustic_lens, n_frames)[:, None].float()  # [B, 1, F]
        target = self.normalise(batch.acoustic.float(), batch.lf0_stats.float()) * frame_mask
        expand = expand_matrix(batch.durations.long(), n_frames)  # [B, P, F]
        g = self.style(batch.dvector)
        text = self.text_encoder(batch.phone_ids, batch.word_pos, batch.stress, batch.phone_lens)
        q = self._tokens_from_stats(self.prosody_stats(target, expand, batch.durations), phone_mask)
        log_dur = self.duration_predictor(text, q.quantized_first, g, phone_mask)
        pred = self.decoder(text + q.quantized, expand, batch.durations, g, frame_mask)
        return WorldOutput(
            pred=pred,
            target=target,
            frame_mask=frame_mask,
            log_dur_pred=log_dur,
            log_dur_target=torch.log(batch.durations.float().clamp(min=1)),
            phone_mask=phone_mask,
            commit_loss=q.commit_loss,
            tokens=q.codes[..., 0].clamp_min(0),
            n_quantizers_used=q.n_used,
        )

    @torch.no_grad()
    def extract_tokens(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """First-quantizer prosody codes [B, P] (0 where padded) and their lengths [B] (=
        phone_lens) from the true features. Deterministic: the prosody encoder and quantizer
        run in eval mode whatever the model's mode, so the codebooks are never updated here."""
        if not self.quantizer.initialised:
            raise VoicelabError(
                "the prosody codebooks are not initialised yet: train stage 1 before extracting "
                "tokens, or load a trained checkpoint"
            )
        n_frames = batch.acoustic.shape[1]
        phone_mask = sequence_mask(batch.phone_lens, batch.phone_ids.shape[1])
        frame_mask = sequence_mask(batch.acoustic_lens, n_frames)[:, None].float()
        target = self.normalise(batch.acoustic.float(), batch.lf0_stats.float()) * frame_mask
        expand = expand_matrix(batch.durations.long(), n_frames)
        stats = self.prosody_stats(target, expand, batch.durations)
        mods = (self.prosody_encoder, self.quantizer)
        was = [m.training for m in mods]
        try:
            for m in mods:
                m.eval()
            codes = self._tokens_from_stats(stats, phone_mask).codes[..., 0]
        finally:
            for m, w in zip(mods, was):
                m.train(w)
        return codes.clamp_min(0).masked_fill(~phone_mask, 0), batch.phone_lens.long()

    # ---------------------------------------------------------------------------------------
    # inference
    # ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def infer(
        self,
        phone_ids: Tensor,
        word_pos: Tensor,
        stress: Tensor,
        tokens: Tensor,
        dvector: Tensor,
        lf0_stats: Tensor,
        speed: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """One utterance: phone_ids, word_pos, stress, tokens [1, P]; dvector [1, 256]; lf0_stats
        [1, 2] -> (raw WORLD features [F, D] float32, durations [P] long). Call .eval() first."""
        lens = torch.tensor([phone_ids.shape[1]], device=phone_ids.device)
        phone_mask = torch.ones_like(phone_ids, dtype=torch.bool)
        g = self.style(dvector)
        text = self.text_encoder(phone_ids, word_pos, stress, lens)
        q = self.quantizer.decode_first(tokens.long())  # [1, H, P]
        log_dur = self.duration_predictor(text, q, g, phone_mask)
        dur = torch.round(torch.exp(log_dur) / max(speed, 1e-3)).long()
        dur = dur.clamp(1, MAX_FRAMES_PER_PHONE)  # every phone is heard, none runs away
        n_frames = int(dur.sum())
        expand = expand_matrix(dur, n_frames)
        frame_mask = torch.ones(1, 1, n_frames, device=phone_ids.device)
        pred = self.decoder(text + q, expand, dur, g, frame_mask)
        return self.denormalise(pred, lf0_stats.float())[0].float(), dur[0]


def world_losses(out: WorldOutput, layout: FeatureLayout) -> dict[str, Tensor]:
    """The stage-1 losses of the world path, unweighted (the weights are one table in
    voicelab/training/steps.py): L1 on each parameter group, L1 on the frame energy and its
    deltas, BCE on voicing, L1 on the frame deltas of the envelope (counters over-smoothing,
    which costs intelligibility), MSE on log durations, and the VQ commitment."""
    m = out.frame_mask  # [B, 1, F]
    n = m.sum().clamp(min=1)
    pred, tgt = out.pred, out.target

    def l1(sl) -> Tensor:
        d = (pred[:, sl] - tgt[:, sl]).abs() * m
        width = d.shape[1] if d.dim() == 3 else 1
        return d.sum() / (n * width)

    mgc = l1(layout.mgc)
    lf0 = l1(slice(layout.lf0, layout.lf0 + 1))
    bap = l1(layout.bap)
    vuv = (F.binary_cross_entropy_with_logits(pred[:, layout.vuv], tgt[:, layout.vuv],
                                              reduction="none") * m[:, 0]).sum() / n
    dm = m[..., 1:] * m[..., :-1]
    dp = pred[:, layout.mgc, 1:] - pred[:, layout.mgc, :-1]
    dt = tgt[:, layout.mgc, 1:] - tgt[:, layout.mgc, :-1]
    delta = ((dp - dt).abs() * dm).sum() / (dm.sum().clamp(min=1) * layout.n_mgc)
    # the frame energy (c0) and its frame-to-frame change on their own: in the mgc mean c0 is one
    # channel of 40, yet smoothing c0 alone cost ~6 WER points in the vocoder round trip and
    # the 39 others together ~2.5 (benchmarks/results/world.md): word and phone onsets live there
    e_p, e_t = pred[:, 0], tgt[:, 0]
    energy = ((e_p - e_t).abs() * m[:, 0]).sum() / n
    energy = energy + (((e_p[:, 1:] - e_p[:, :-1]) - (e_t[:, 1:] - e_t[:, :-1])).abs()
                       * dm[:, 0]).sum() / dm.sum().clamp(min=1)
    pm = out.phone_mask.float()
    dur = (((out.log_dur_pred - out.log_dur_target) ** 2) * pm).sum() / pm.sum().clamp(min=1)
    return {"loss/mgc": mgc, "loss/energy": energy, "loss/lf0": lf0, "loss/vuv": vuv,
            "loss/bap": bap, "loss/delta": delta, "loss/dur": dur,
            "loss/commit": out.commit_loss.float()}
