"""The world path's models: WorldAcoustic (stage 1) and AlignedGPT (stage 2), on synthetic data."""

from __future__ import annotations

import torch

from voicelab.config import load_config
from voicelab.data.batch import Batch
from voicelab.models.aligned_gpt import AlignedGPT
from voicelab.models.world_acoustic import FeatureLayout, WorldAcoustic, world_losses
from voicelab.models.world_layers import expand_matrix

N_SYM, N_POS, N_STRESS = 20, 5, 4
LAYOUT = FeatureLayout(n_mgc=8, n_bap=1)


def _cfg():
    return load_config("tiny", ["model.acoustic=world", "model.n_quantizers=1",
                                "model.codebook_size=16", "model.decoder_layers=2"])


def _batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([9, 6])
    b, p = 2, 9
    ids = torch.randint(1, N_SYM, (b, p), generator=g)
    dur = torch.randint(1, 6, (b, p), generator=g)
    for i, n in enumerate(lens):
        ids[i, n:] = 0
        dur[i, n:] = 0
    frames = dur.sum(1)
    ac = torch.randn(b, int(frames.max()), LAYOUT.dim, generator=g)
    ac[..., LAYOUT.vuv] = (ac[..., LAYOUT.vuv] > 0).float()
    ac[..., LAYOUT.lf0] += 5.0
    empty = torch.zeros(b, 1, 0)
    z = torch.zeros(b, dtype=torch.long)
    return Batch(phone_ids=ids, phone_lens=lens, lang_ids=torch.zeros_like(ids), spec=empty,
                 mel=empty, spec_lens=z, wav=empty, ref_mel=empty, ref_lens=z,
                 word_pos=torch.randint(0, N_POS, (b, p), generator=g),
                 stress=torch.randint(0, N_STRESS, (b, p), generator=g), durations=dur,
                 acoustic=ac, acoustic_lens=frames, lf0_stats=torch.tensor([[5.0, 0.3]] * b),
                 dvector=torch.nn.functional.normalize(torch.randn(b, 256, generator=g), dim=1))


def test_expand_matrix_assigns_every_frame_to_one_phone_in_order():
    dur = torch.tensor([[2, 1, 3, 0]])
    e = expand_matrix(dur, 7)  # one frame of padding at the end
    assert e.shape == (1, 4, 7)
    assert e[0].sum(0).tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert e[0].argmax(0)[:6].tolist() == [0, 0, 1, 2, 2, 2]


def test_world_acoustic_learns_a_batch_and_infers_whole_phones():
    torch.manual_seed(0)
    cfg = _cfg()
    m = WorldAcoustic(cfg.model, N_SYM, N_POS, N_STRESS, LAYOUT)
    batch = _batch()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        losses = world_losses(m(batch), LAYOUT)
        loss = sum(losses.values())
        assert all(torch.isfinite(v) for v in losses.values())
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.6 * first
    tokens, lens = m.extract_tokens(batch)
    assert tokens.shape == batch.phone_ids.shape and lens.tolist() == [9, 6]
    m.eval()
    n = 6
    feats, dur = m.infer(batch.phone_ids[1:, :n], batch.word_pos[1:, :n], batch.stress[1:, :n],
                         tokens[1:, :n],
                         batch.dvector[1:], batch.lf0_stats[1:])
    assert dur.shape == (n,) and int(dur.min()) >= 1  # every phone is heard
    assert feats.shape == (int(dur.sum()), LAYOUT.dim) and torch.isfinite(feats).all()
    assert set(feats[:, LAYOUT.vuv].unique().tolist()) <= {0.0, 1.0}


def test_token_extraction_never_changes_the_codebook():
    cfg = _cfg()
    m = WorldAcoustic(cfg.model, N_SYM, N_POS, N_STRESS, LAYOUT)
    batch = _batch()
    m(batch)  # initialises the codebook
    before = {k: v.clone() for k, v in m.quantizer.state_dict().items()}
    a, _ = m.extract_tokens(batch)
    b, _ = m.extract_tokens(_batch(seed=1))
    c, _ = m.extract_tokens(batch)
    assert torch.equal(a, c)
    for k, v in m.quantizer.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert m.training  # the mode is restored


def _gpt_batch(m: AlignedGPT) -> Batch:
    b = _batch()
    b.tokens = torch.randint(0, 16, b.phone_ids.shape) * (b.phone_ids > 0)
    b.token_lens = b.phone_lens.clone()
    b.style = torch.randn(2, _cfg().model.style_dim)
    return b


def test_aligned_gpt_trains_and_cached_generation_matches_the_uncached_score():
    torch.manual_seed(0)
    cfg = _cfg()
    gpt = AlignedGPT(cfg.model, N_SYM, N_POS, N_STRESS)
    batch = _gpt_batch(gpt)
    opt = torch.optim.Adam(gpt.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        out = gpt(batch)
        first = float(out.loss.detach()) if first is None else first
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert float(out.loss) < 0.5 * first
    gpt.eval()
    n = int(batch.phone_lens[0])
    res = gpt.generate(batch.phone_ids[0, :n], batch.word_pos[0, :n], batch.stress[0, :n],
                       batch.style[0],
                       top_k=1, return_logits=True)
    assert res.tokens.shape == (n,) and not res.hit_cap
    ref = gpt.score(batch.phone_ids[0, :n], batch.word_pos[0, :n], batch.stress[0, :n],
                    batch.style[0], res.tokens)
    ref[:, gpt.eos_id] = float("-inf")
    assert torch.allclose(res.step_logits, ref, atol=1e-4)
    # greedy decoding of a trained example reproduces its tokens
    assert res.tokens.tolist() == batch.tokens[0, :n].tolist()


def test_aligned_generation_never_skips_or_repeats_a_phone_on_adversarial_logits():
    cfg = _cfg()
    gpt = AlignedGPT(cfg.model, N_SYM, N_POS, N_STRESS).eval()
    batch = _gpt_batch(gpt)
    n = int(batch.phone_lens[0])
    ids, pos, style = batch.phone_ids[0, :n], batch.word_pos[0, :n], batch.style[0]
    st = batch.stress[0, :n]

    def adversary(kind):
        def head(h):
            out = torch.zeros(*h.shape[:-1], gpt.vocab)
            if kind == "eos":
                out[..., gpt.eos_id] = 1e9  # "stop now", at every step
            elif kind == "nan":
                out[:] = float("nan")
            elif kind == "one":
                out[..., 3] = 1e9  # the same code forever
            return out
        return head

    for kind in ("eos", "nan", "one"):
        gpt.head.forward = adversary(kind)
        for temp in (0.1, 1.0, 5.0):
            res = gpt.generate(ids, pos, st, style, temperature=temp, top_k=16,
                               generator=torch.Generator().manual_seed(1))
            # exactly one valid code per phone: nothing skipped, nothing repeated, no EOS
            assert res.tokens.shape == (n,), kind
            assert int(res.tokens.max()) < gpt.eos_id and int(res.tokens.min()) >= 0
    # a prompt is forced, not sampled, and only the rest is generated
    del gpt.head.forward
    prompt = batch.tokens[0, :4]
    res = gpt.generate(ids, pos, st, style, prompt_tokens=prompt)
    assert res.tokens.shape == (n - 4,)
