"""SoVITS: shapes and masks on ragged batches, gradients, tokens, synthesis, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models import losses as L
from voicelab.models.build import build_models, build_sovits, parameter_counts
from voicelab.models.discriminators import MultiDiscriminator
from voicelab.models.sovits import SoVITS, rand_slice, upsample_tokens

N_SYMBOLS, N_LANGS = 60, 2


def make_batch(cfg, spec_lens=(23, 17), phone_lens=(9, 6), ref_lens=(30, 19), seed=0) -> Batch:
    """A ragged batch of random features with zero padding, as the dataset pads."""
    g = torch.Generator().manual_seed(seed)
    b, t, tp, tr = len(spec_lens), max(spec_lens), max(phone_lens), max(ref_lens)
    hop, f = cfg.features.hop_length, cfg.features.n_fft // 2 + 1
    sl, pl, rl = (torch.tensor(x) for x in (spec_lens, phone_lens, ref_lens))
    fm = (torch.arange(t)[None] < sl[:, None]).float()
    pm = torch.arange(tp)[None] < pl[:, None]
    rm = (torch.arange(tr)[None] < rl[:, None]).float()
    wm = (torch.arange(t * hop)[None] < (sl * hop)[:, None]).float()
    return Batch(
        phone_ids=torch.randint(1, N_SYMBOLS, (b, tp), generator=g) * pm,
        phone_lens=pl,
        lang_ids=torch.zeros(b, tp, dtype=torch.long),
        spec=torch.rand(b, f, t, generator=g) * fm[:, None],
        mel=torch.randn(b, cfg.features.n_mels, t, generator=g) * fm[:, None],
        spec_lens=sl,
        wav=(torch.randn(b, t * hop, generator=g) * 0.1 * wm)[:, None],
        ref_mel=torch.randn(b, cfg.features.n_mels, tr, generator=g) * rm[:, None],
        ref_lens=rl,
    )


@pytest.fixture
def model(tiny_cfg) -> SoVITS:
    torch.manual_seed(0)
    return build_sovits(tiny_cfg, N_SYMBOLS, N_LANGS)


def test_forward_shapes_on_a_ragged_batch(tiny_cfg, model):
    # 6 < segment_frames (8): that window is padded
    batch = make_batch(tiny_cfg, spec_lens=(23, 17, 6), phone_lens=(9, 6, 4), ref_lens=(30, 19, 7))
    out = model(batch)
    seg, hop, h = tiny_cfg.model.segment_frames, 640, tiny_cfg.model.hidden
    assert out.wav_hat.shape == out.wav_real.shape == (3, 1, seg * hop)
    assert out.tokens.shape == (3, 11) and out.tokens.dtype == torch.long
    assert out.token_lens.tolist() == [11, 8, 3]  # T_t = T_s // 2, odd lengths rounded down
    assert len(out.kl_terms) == 2 and all(k.dim() == 0 and torch.isfinite(k) for k in out.kl_terms)
    assert out.m_p.shape == out.z_p.shape == out.logs_q.shape == (3, h, 23)
    # everything past each example's length is exactly zero
    for b, n in enumerate([23, 17, 6]):
        assert out.spec_mask[b, 0, :n].eq(1).all() and out.spec_mask[b, 0, n:].eq(0).all()
        for t in (out.m_p, out.logs_p, out.z_p, out.m_q):
            assert t[b, :, n:].abs().sum() == 0
    assert torch.isfinite(out.commit_loss) and out.style.shape == (3, tiny_cfg.model.style_dim)
    # the real window is the matching slice of batch.wav
    for b in range(3):
        s = int(out.slice_starts[b]) * hop
        ref = torch.nn.functional.pad(batch.wav[b, 0], (0, seg * hop))[s : s + seg * hop]
        assert torch.equal(out.wav_real[b, 0], ref)
        assert 0 <= int(out.slice_starts[b]) <= max(0, [23, 17, 6][b] - seg)


def test_padding_does_not_change_an_example(tiny_cfg, model):
    """Example 1 alone or padded inside a batch gives the same prior and tokens (masks work)."""
    model.eval()
    batch = make_batch(tiny_cfg, spec_lens=(23, 17), phone_lens=(9, 6), ref_lens=(30, 19))
    alone = Batch(
        phone_ids=batch.phone_ids[1:, :6], phone_lens=batch.phone_lens[1:], lang_ids=batch.lang_ids[1:, :6],
        spec=batch.spec[1:, :, :17], mel=batch.mel[1:, :, :17], spec_lens=batch.spec_lens[1:],
        wav=batch.wav[1:, :, : 17 * 640], ref_mel=batch.ref_mel[1:, :, :19], ref_lens=batch.ref_lens[1:],
    )
    torch.manual_seed(1)
    both = model(batch)
    torch.manual_seed(1)
    one = model(alone)
    assert torch.allclose(both.m_p[1, :, :17], one.m_p[0], atol=1e-5)
    assert torch.allclose(both.logs_p[1, :, :17], one.logs_p[0], atol=1e-5)
    assert torch.allclose(both.style[1], one.style[0], atol=1e-5)
    tb, lb = model.extract_tokens(batch.spec, batch.spec_lens)
    ta, la = model.extract_tokens(alone.spec, alone.spec_lens)
    assert torch.equal(tb[1, : int(lb[1])], ta[0]) and tb[1, int(lb[1]) :].eq(0).all()


def test_gradients_reach_every_generator_and_discriminator_parameter(tiny_cfg):
    torch.manual_seed(0)
    g, d = build_sovits(tiny_cfg, N_SYMBOLS, N_LANGS), MultiDiscriminator(tiny_cfg.model)
    batch = make_batch(tiny_cfg)
    # quantizer dropout picks 1..n quantizers at random: keep all so both priors are built
    g.quantizer.rvq.quantize_dropout = False
    seed = 0
    out = g(batch)
    assert out.n_quantizers_used == tiny_cfg.model.n_quantizers == 2

    def generator_loss(out):
        real, fake, fr, ff = d(out.wav_real, out.wav_hat)
        return (
            L.mel_l1(out.wav_hat, out.wav_real, tiny_cfg.features, 32000) + out.commit_loss
            + L.kl_balanced(out.kl_terms, 0.5) + L.feature_matching(fr, ff) + L.generator_adversarial(fake)
        )

    # the flow's couplings start as the identity (zero-initialised output conv), so their inner
    # layers get gradient only from the second step on: take one step first
    generator_loss(out).backward()
    torch.optim.SGD(g.parameters(), lr=1e-2).step()
    g.zero_grad()
    torch.manual_seed(seed)
    out = g(batch)
    generator_loss(out).backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    real, fake, _, _ = d(out.wav_real, out.wav_hat.detach())
    L.discriminator_adversarial(real, fake).backward()
    missing = [n for n, p in d.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_tokens_are_deterministic_and_leave_the_codebooks_alone(tiny_cfg, model):
    batch = make_batch(tiny_cfg)
    model.train()  # extract_tokens must switch the quantizer to eval itself
    before = {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    t1, l1 = model.extract_tokens(batch.spec, batch.spec_lens)
    t2, l2 = model.extract_tokens(batch.spec, batch.spec_lens)
    assert torch.equal(t1, t2) and torch.equal(l1, l2)
    assert l1.tolist() == [11, 8] and t1.shape == (2, 11)
    assert int(t1.max()) < tiny_cfg.model.codebook_size and int(t1.min()) >= 0
    after = model.quantizer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and model.quantizer.training  # modes restored


def test_infer_lengths_seed_and_speed(tiny_cfg, model):
    model.eval()
    batch = make_batch(tiny_cfg)
    tokens, token_lens = model.extract_tokens(batch.spec, batch.spec_lens)
    args = (tokens, token_lens, batch.phone_ids, batch.phone_lens, batch.lang_ids, batch.ref_mel, batch.ref_lens)
    w1 = model.infer(*args, generator=torch.Generator().manual_seed(3))
    w2 = model.infer(*args, generator=torch.Generator().manual_seed(3))
    w3 = model.infer(*args, generator=torch.Generator().manual_seed(4))
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)
    lens = model.output_lengths(token_lens)
    assert lens.tolist() == [22 * 640, 16 * 640] and w1.shape == (2, 1, 22 * 640)
    assert w1[1, 0, 16 * 640 :].eq(0).all() and w1[1, 0, : 16 * 640].abs().sum() > 0
    assert w1.abs().max() <= 1.0
    fast = model.infer(*args, speed=2.0)
    slow = model.infer(*args, speed=0.5)
    assert fast.shape[-1] == 11 * 640 and slow.shape[-1] == 44 * 640


def test_upsample_tokens_handles_odd_lengths_and_speed():
    x = torch.arange(1, 4, dtype=torch.float32).view(1, 1, 3).repeat(2, 1, 1)  # tokens 1, 2, 3
    out = upsample_tokens(x, torch.tensor([3, 2]), torch.tensor([7, 4]))
    assert out[0, 0].tolist() == [1, 1, 2, 2, 3, 3, 3]  # odd count repeats the last token
    assert out[1, 0].tolist() == [1, 1, 2, 2, 0, 0, 0]  # padding zeroed
    fast = upsample_tokens(x[:1], torch.tensor([3]), torch.tensor([3]), speed=2.0)
    assert fast[0, 0].tolist() == [1, 2, 3]


def test_rand_slice_stays_inside_real_frames():
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 20).repeat(3, 1, 1)
    for seed in range(10):
        out, starts = rand_slice(x, torch.tensor([20, 9, 3]), 8, torch.Generator().manual_seed(seed))
        assert out.shape == (3, 1, 8)
        assert int(starts[0]) <= 12 and int(starts[1]) <= 1 and int(starts[2]) == 0
        assert torch.equal(out[0, 0], x[0, 0, int(starts[0]) : int(starts[0]) + 8])


def test_clear_errors_for_bad_input(tiny_cfg, model):
    model.eval()
    batch = make_batch(tiny_cfg)
    tokens, token_lens = model.extract_tokens(batch.spec, batch.spec_lens)
    args = [tokens, token_lens, batch.phone_ids, batch.phone_lens, batch.lang_ids, batch.ref_mel, batch.ref_lens]
    with pytest.raises(VoicelabError, match="token ids"):
        model.infer(tokens + tiny_cfg.model.codebook_size, *args[1:])
    with pytest.raises(VoicelabError, match="no semantic tokens"):
        model.infer(tokens, torch.tensor([0, 3]), *args[2:])
    with pytest.raises(VoicelabError, match="no phonemes"):
        model.infer(*args[:3], torch.tensor([0, 3]), *args[4:])
    with pytest.raises(VoicelabError, match="speed"):
        model.infer(*args, speed=10.0)
    with pytest.raises(VoicelabError, match="shorter than 2 frames"):
        model.extract_tokens(batch.spec, torch.tensor([1, 17]))


def test_dvector_is_required_when_configured(tiny_cfg):
    from voicelab.config import load_config

    cfg = load_config("tiny", ["model.use_dvector=true"])
    model = build_sovits(cfg, N_SYMBOLS, N_LANGS)
    batch = make_batch(cfg)
    with pytest.raises(VoicelabError, match="d-vector"):
        model(batch)
    batch.dvector = torch.nn.functional.normalize(torch.randn(2, 256), dim=-1)
    a = model.style(batch.ref_mel, batch.ref_lens, batch.dvector)
    b = model.style(batch.ref_mel, batch.ref_lens, -batch.dvector)
    assert a.shape == (2, cfg.model.style_dim) and not torch.allclose(a, b)
    assert model(batch).wav_hat.shape[0] == 2


def test_stochastic_depth_and_dropout_only_in_training(tiny_cfg):
    from voicelab.config import load_config

    cfg = load_config("tiny", ["model.stochastic_depth=0.5", "model.dropout=0.2"])
    model = build_sovits(cfg, N_SYMBOLS, N_LANGS)
    batch = make_batch(cfg)
    model.eval()
    s1 = model.style(batch.ref_mel, batch.ref_lens)
    assert torch.equal(s1, model.style(batch.ref_mel, batch.ref_lens))
    model.train()
    outs = [model.style(batch.ref_mel, batch.ref_lens) for _ in range(4)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


def test_parameter_counts_add_up(tiny_cfg):
    models = build_models(tiny_cfg, N_SYMBOLS, N_LANGS)
    counts = parameter_counts(models)
    for name in ("sovits", "disc"):
        per = counts[name]
        assert per["total"] == sum(v for k, v in per.items() if k != "total") > 0
    assert set(counts["sovits"]) >= {"decoder", "flow", "posterior", "prior", "text_encoder", "style_encoder"}


def test_hop_is_the_product_of_upsample_rates(tiny_cfg, model):
    assert model.hop == math.prod(tiny_cfg.model.upsample_rates) == tiny_cfg.features.hop_length
    z = torch.randn(1, tiny_cfg.model.hidden, 5)
    assert model.decoder(z, torch.zeros(1, tiny_cfg.model.style_dim, 1)).shape == (1, 1, 5 * 640)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_and_infer_match_shapes(tiny_cfg, model):
    model = model.cuda()
    batch = make_batch(tiny_cfg).to("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(batch)
    assert out.wav_hat.is_cuda and torch.isfinite(out.wav_hat).all()
    model.eval()
    tokens, lens = model.extract_tokens(batch.spec, batch.spec_lens)
    wav = model.infer(tokens, lens, batch.phone_ids, batch.phone_lens, batch.lang_ids, batch.ref_mel,
                      batch.ref_lens, generator=torch.Generator("cuda").manual_seed(0))
    assert wav.shape == (2, 1, 22 * 640)


def test_bad_model_sizes_are_all_reported_at_once():
    from voicelab.config import load_config
    from voicelab.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config("tiny", ["model.hidden=33", "model.kernel_size=4", "model.flow_layers=0",
                             "model.mpd_periods=[]"])
    text = str(e.value)
    for key in ("model.hidden", "model.kernel_size", "model.flow_layers", "model.mpd_periods"):
        assert key in text


def test_self_attention_sees_order_and_ignores_padding():
    from voicelab.models.layers import MultiHeadAttention

    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2, rel_window=2)
    with torch.no_grad():
        attn.rel_bias.normal_()
    x = torch.randn(1, 8, 6)
    mask = torch.ones(1, 1, 6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    y, yp = attn(x, x, mask), attn(x[..., perm], x[..., perm], mask)
    assert not torch.allclose(y[..., perm], yp, atol=1e-4)  # not permutation-equivariant
    # keys in the padding never matter
    xp = torch.cat([x, torch.randn(1, 8, 3) * 100], dim=-1)
    mp = torch.cat([mask, torch.zeros(1, 1, 3)], dim=-1)
    assert torch.allclose(attn(xp, xp, mp)[..., :6], y, atol=1e-5)


def test_spec_augment_reaches_the_posterior_but_not_the_tokens(tiny_cfg, model):
    """batch.posterior_spec (SpecAugment's masked copy) feeds the posterior encoder only: the
    semantic tokens still come from the clean spectrogram."""
    from dataclasses import replace

    model.eval()
    batch = make_batch(tiny_cfg)
    masked = batch.spec.clone()
    masked[:, 10:40, :] = 0.0
    g = torch.Generator().manual_seed(3)
    clean = model(batch, generator=g)
    g = torch.Generator().manual_seed(3)
    aug = model(replace(batch, posterior_spec=masked), generator=g)
    assert torch.equal(clean.tokens, aug.tokens)
    assert not torch.allclose(clean.m_q, aug.m_q)
