"""The tiny SoVITS overfits one short real utterance: its losses fall clearly in ~150 CPU steps.

A small explicit loop (generator only: mel L1 + KL + commitment, as the trainer weights them) on
the first ~1.3 s of tests/assets/slt_000.wav. The check decodes the whole clip from the posterior
with fixed noise before and after, so it measures learning, not the luck of a random window.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import soxr
import torch

from voicelab.data.batch import Batch
from voicelab.models import losses as L
from voicelab.models.build import build_sovits

FRAMES = 64  # 1.28 s at 50 frames per second
STEPS = 150


def load_clip(cfg) -> Batch:
    features = pytest.importorskip("voicelab.audio.features")
    phonemes = pytest.importorskip("voicelab.text.phonemes")
    path = Path(__file__).resolve().parents[1] / "assets" / "slt_000.wav"
    x, sr = sf.read(path, dtype="float32")
    x = soxr.resample(x, sr, cfg.audio.sample_rate)[: FRAMES * cfg.features.hop_length]
    wav = torch.from_numpy(x).view(1, 1, -1)
    spec = features.linear_spectrogram(wav[:, 0], cfg.features)
    mel = features.mel_spectrogram(wav[:, 0], cfg.features, cfg.audio.sample_rate)
    assert spec.shape[-1] == mel.shape[-1] == FRAMES
    ph = phonemes.phonemize("The morning train left", "en")  # the words inside the clip
    lens = torch.tensor([FRAMES])
    return Batch(
        phone_ids=torch.tensor([ph.ids]), phone_lens=torch.tensor([len(ph.ids)]),
        lang_ids=torch.tensor([ph.lang_ids]), spec=spec, mel=mel, spec_lens=lens, wav=wav,
        ref_mel=mel, ref_lens=lens,
    )


def reconstruction_mel_l1(model, batch: Batch, cfg) -> float:
    """Decode the whole clip from the posterior mean (eval mode): mel L1 against the real clip."""
    model.eval()
    with torch.no_grad():
        g = model.style(batch.ref_mel, batch.ref_lens)[..., None]
        mask = torch.ones(1, 1, FRAMES)
        _, m_q, _ = model.posterior(batch.spec, mask, g)
        wav = model.decoder(m_q, g)
        loss = L.mel_l1(wav, batch.wav, cfg.features, cfg.audio.sample_rate).item()
    model.train()
    return loss


def test_tiny_sovits_overfits_one_utterance(tiny_cfg):
    torch.manual_seed(0)
    batch = load_clip(tiny_cfg)
    model = build_sovits(tiny_cfg)
    opt = torch.optim.AdamW(model.parameters(), 2e-3, betas=(0.8, 0.99))
    before = reconstruction_mel_l1(model, batch, tiny_cfg)
    mels, kls = [], []
    for _ in range(STEPS):
        out = model(batch)
        mel = L.mel_l1(out.wav_hat, out.wav_real, tiny_cfg.features, tiny_cfg.audio.sample_rate)
        kl = L.kl_balanced(out.kl_terms, 0.5)
        loss = tiny_cfg.train.c_mel * mel + kl + out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        mels.append(mel.item())
        kls.append(kl.item())
    after = reconstruction_mel_l1(model, batch, tiny_cfg)
    first, last = sum(mels[:10]) / 10, sum(mels[-10:]) / 10
    print(f"mel L1 {before:.3f} -> {after:.3f}; window {first:.3f} -> {last:.3f}; KL {kls[0]:.2f} -> {max(kls[-10:]):.2f}")
    assert all(torch.isfinite(torch.tensor(mels + kls)))
    assert after < 0.45 * before, (before, after)  # the decoder learned this voice's spectrum
    assert last < 0.5 * first, (first, last)
    assert max(kls[-10:]) < 0.25 * kls[0], (kls[0], kls[-10:])  # the prior learned to match
