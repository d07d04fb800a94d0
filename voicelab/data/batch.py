"""The batch that flows from the dataset into the models (shapes in the field comments).

T_p: phonemes, T_s: spectrogram frames (50 Hz), T_r: reference-mel frames, T_t: semantic tokens
(25 Hz, T_t = T_s // 2; on the world path one per phone, T_t = T_p), T_f: WORLD frames (100 Hz),
hop: samples per frame (640 at 32 kHz). Padded positions are zero; the
`*_lens` tensors give the true lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    phone_ids: Tensor  # [B, T_p] long, PAD_ID padded
    phone_lens: Tensor  # [B] long
    lang_ids: Tensor  # [B, T_p] long, one language id per phoneme
    spec: Tensor  # [B, n_fft // 2 + 1, T_s] linear magnitude
    mel: Tensor  # [B, n_mels, T_s] log mel
    spec_lens: Tensor  # [B] long (frames; shared by spec and mel)
    wav: Tensor  # [B, 1, T_s * hop] float waveform in [-1, 1]
    ref_mel: Tensor  # [B, n_mels, T_r] log mel of a reference clip of the same speaker
    ref_lens: Tensor  # [B] long
    tokens: Tensor | None = None  # [B, T_t] long semantic tokens (stage 2), 0 padded
    token_lens: Tensor | None = None  # [B] long
    style: Tensor | None = None  # [B, style_dim] timbre vectors precomputed for stage 2
    dvector: Tensor | None = None  # [B, 256] resemblyzer d-vector, when model.use_dvector
    speaker_ids: Tensor | None = None  # [B] long, multi-speaker corpora
    # SpecAugment's masked copy of `spec`, read by the posterior encoder only: the content
    # encoder (which makes the semantic tokens) must keep seeing the clean spectrogram.
    posterior_spec: Tensor | None = None  # [B, n_fft // 2 + 1, T_s]
    # the world path (model.acoustic = "world"): ARPAbet phone_ids, and instead of spec / mel /
    # wav (left empty) the WORLD parameters at 10 ms frames with the forced alignment
    word_pos: Tensor | None = None  # [B, T_p] long, position of each phone in its word
    stress: Tensor | None = None  # [B, T_p] long, lexical stress in context (arpabet.STRESS)
    durations: Tensor | None = None  # [B, T_p] long frames per phone (sum = acoustic_lens)
    acoustic: Tensor | None = None  # [B, T_f, D] raw WORLD features [mgc | lf0 | vuv | bap]
    acoustic_lens: Tensor | None = None  # [B] long
    lf0_stats: Tensor | None = None  # [B, 2] the speaker's mean and std of log F0 (voiced)
    texts: tuple[str, ...] = ()

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                moved[f.name] = v.to(device, non_blocking=non_blocking)
        return replace(self, **moved)

    @property
    def size(self) -> int:
        return int(self.phone_ids.shape[0])
