"""The optional SSL content path: a tiny randomly initialised HuBERT saved to a temp folder."""

from __future__ import annotations

import pytest
import torch

from voicelab.config import load_config
from voicelab.errors import VoicelabError
from voicelab.models.build import build_sovits
from voicelab.models.losses import kl_balanced

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory) -> str:
    cfg = transformers.HubertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16, 16, 16, 16, 16, 16), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hubert")
    transformers.HubertModel(cfg).save_pretrained(path)
    return str(path)


def make_batch(cfg, lens=(24, 17)):
    from voicelab.data.batch import Batch

    b, t = len(lens), max(lens)
    sl = torch.tensor(lens)
    wm = (torch.arange(t * 640)[None] < (sl * 640)[:, None]).float()
    # a voiced-ish signal: harmonics with a slow pitch glide, so the SSL model sees structure
    n = torch.arange(t * 640) / 32000
    wav = (0.3 * torch.sin(2 * torch.pi * (120 + 40 * n) * n * torch.arange(1, 4)[:, None]).sum(0))
    return Batch(
        phone_ids=torch.randint(1, 60, (b, 7)), phone_lens=torch.tensor([7, 5]),
        lang_ids=torch.zeros(b, 7, dtype=torch.long),
        spec=torch.rand(b, cfg.features.n_fft // 2 + 1, t), mel=torch.randn(b, 80, t), spec_lens=sl,
        wav=(wav[None] * wm)[:, None], ref_mel=torch.randn(b, 80, 20), ref_lens=torch.tensor([20, 15]),
    )


def test_ssl_features_feed_the_content_encoder(tiny_hubert):
    cfg = load_config("tiny", [f'model.ssl_model_path="{tiny_hubert}"'])
    torch.manual_seed(0)
    model = build_sovits(cfg, 60, 2)
    # the SSL model is a frozen extractor, not part of the trainable / saved model
    assert not any("ssl" in k or "hubert" in k.lower() for k in model.state_dict())
    assert model.content_encoder.pre.in_channels == 16  # HuBERT hidden size, not spectrogram bins
    batch = make_batch(cfg)
    out = model(batch)
    assert out.wav_hat.shape == (2, 1, cfg.model.segment_frames * 640)
    kl_balanced(out.kl_terms, 0.5).backward()
    assert model.content_encoder.pre.weight.grad.abs().sum() > 0  # gradient flows from the prior
    model.eval()
    with pytest.raises(VoicelabError, match="waveform"):
        model.extract_tokens(batch.spec, batch.spec_lens)
    t1, l1 = model.extract_tokens(batch.spec, batch.spec_lens, wav=batch.wav)
    t2, _ = model.extract_tokens(batch.spec, batch.spec_lens, wav=batch.wav)
    assert torch.equal(t1, t2) and t1.shape == (2, 12) and l1.tolist() == [12, 8]
    # the spectrogram is not what the tokens come from on this path
    t3, _ = model.extract_tokens(torch.zeros_like(batch.spec), batch.spec_lens, wav=batch.wav)
    assert torch.equal(t1, t3)


def test_a_bad_ssl_path_says_what_to_do(tmp_path):
    cfg = load_config("tiny", [f'model.ssl_model_path="{tmp_path / "nope"}"'])
    with pytest.raises(VoicelabError, match="ssl_model_path"):
        build_sovits(cfg, 60, 2)


def test_resampling_for_the_ssl_model_keeps_speech_band_and_removes_aliases():
    from voicelab.models.layers import lowpass_resample

    t = torch.arange(32000) / 32000
    low = torch.sin(2 * torch.pi * 1000 * t)[None]
    high = torch.sin(2 * torch.pi * 12000 * t)[None]  # above the new 8 kHz Nyquist
    out_low, out_high = lowpass_resample(low, 32000, 16000), lowpass_resample(high, 32000, 16000)
    assert out_low.shape == (1, 16000)
    spectrum = torch.fft.rfft(out_low[0, 1000:-1000]).abs()
    peak_hz = int(spectrum.argmax()) * 16000 / (16000 - 2000)
    assert abs(peak_hz - 1000) < 5
    assert out_low[0, 1000:-1000].std() > 0.6  # passband kept (a sine has std 0.707)
    assert out_high[0, 1000:-1000].std() < 0.02  # would alias to 4 kHz without the low-pass
