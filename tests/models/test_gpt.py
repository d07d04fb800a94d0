"""SemanticGPT: packing and masks on ragged batches, gradients, KV cache, sampling, freezing."""

from __future__ import annotations

import pytest
import torch

from voicelab.data.batch import Batch
from voicelab.errors import VoicelabError
from voicelab.models.gpt import IGNORE_INDEX, SemanticGPT
from voicelab.models.sampling import (
    apply_repetition_penalty,
    check_sampling_args,
    filter_top_k_top_p,
    sample_next,
)

N_SYMBOLS, N_LANGS = 60, 2


def make_batch(cfg, phone_lens, token_lens, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b = len(phone_lens)
    pl, tl = torch.tensor(phone_lens), torch.tensor(token_lens)
    ph = torch.randint(1, N_SYMBOLS, (b, max(phone_lens)), generator=g)
    tok = torch.randint(0, cfg.model.codebook_size, (b, max(token_lens)), generator=g)
    langs = torch.randint(0, N_LANGS, (b, max(phone_lens)), generator=g)
    for i in range(b):
        ph[i, pl[i] :] = 0
        langs[i, pl[i] :] = 0
        tok[i, tl[i] :] = 0
    z = torch.zeros(b, 1)
    return Batch(
        phone_ids=ph, phone_lens=pl, lang_ids=langs, spec=z, mel=z, spec_lens=tl * 2, wav=z,
        ref_mel=z, ref_lens=tl, tokens=tok, token_lens=tl,
        style=torch.randn(b, cfg.model.style_dim, generator=g),
    )


@pytest.fixture
def gpt(tiny_cfg) -> SemanticGPT:
    torch.manual_seed(0)
    return SemanticGPT(tiny_cfg.model, N_SYMBOLS, N_LANGS).eval()


def test_ragged_batch_shapes_targets_and_padding_isolation(tiny_cfg, gpt):
    batch = make_batch(tiny_cfg, [5, 3, 8], [4, 9, 2])
    out = gpt(batch)
    vocab = tiny_cfg.model.codebook_size + 1
    assert out.logits.shape == (3, 10, vocab)
    # EOS sits right after each example's last token; everything later is ignored
    for i, t in enumerate([4, 9, 2]):
        assert out.targets[i, t] == gpt.eos_id
        assert torch.equal(out.targets[i, :t], batch.tokens[i, :t])
        assert (out.targets[i, t + 1 :] == IGNORE_INDEX).all()
    # every example's logits equal those of the same example run alone, unpadded
    for i, (p, t) in enumerate(zip([5, 3, 8], [4, 9, 2], strict=True)):
        alone = gpt.score(batch.phone_ids[i, :p], batch.lang_ids[i, :p], batch.style[i],
                          batch.tokens[i, :t])
        torch.testing.assert_close(out.logits[i, : t + 1], alone, atol=1e-5, rtol=1e-4)
    assert 0.0 <= float(out.accuracy) <= 1.0


def test_padding_values_do_not_change_the_loss(tiny_cfg, gpt):
    batch = make_batch(tiny_cfg, [5, 3], [4, 7])
    loss = gpt(batch).loss
    batch.tokens[0, 4:] = 17  # garbage in the padding of example 0
    batch.phone_ids[1, 3:] = 9
    torch.testing.assert_close(gpt(batch).loss, loss)


def test_gradients_reach_every_trainable_parameter(tiny_cfg, gpt):
    gpt.train()
    gpt(make_batch(tiny_cfg, [5, 3], [4, 6])).loss.backward()
    missing = [n for n, p in gpt.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_freeze_all_but_last(tiny_cfg, gpt):
    total = sum(p.numel() for p in gpt.parameters())
    n = gpt.freeze_all_but_last(1)
    trainable = {name for name, p in gpt.named_parameters() if p.requires_grad}
    assert 0 < n < total
    assert all(name.startswith(("transformer.h.1.", "transformer.ln_f", "head")) for name in trainable)
    assert any(name.startswith("transformer.h.1.") for name in trainable)
    gpt.train()
    gpt(make_batch(tiny_cfg, [4], [5])).loss.backward()
    assert gpt.phone_emb.weight.grad is None and gpt.transformer.h[0].attn.c_attn.weight.grad is None
    assert gpt.freeze_all_but_last(0) == total
    with pytest.raises(VoicelabError, match="gpt_unfreeze_last"):
        gpt.freeze_all_but_last(5)


def test_tiny_gpt_overfits_one_utterance(tiny_cfg):
    torch.manual_seed(0)
    gpt = SemanticGPT(tiny_cfg.model, N_SYMBOLS, N_LANGS)
    batch = make_batch(tiny_cfg, [12], [25])
    opt = torch.optim.AdamW(gpt.parameters(), lr=5e-3)
    first = None
    for _ in range(60):
        out = gpt(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < 0.25 * first
    assert float(out.accuracy) > 0.9


def test_cached_generation_matches_uncached_logits(tiny_cfg, gpt):
    batch = make_batch(tiny_cfg, [6], [5])
    ph, lang, style, prompt = batch.phone_ids[0], batch.lang_ids[0], batch.style[0], batch.tokens[0]
    g = torch.Generator().manual_seed(3)
    res = gpt.generate(ph, lang, style, prompt, max_new_tokens=30, generator=g,
                       repetition_penalty=1.0, return_logits=True)
    assert res.tokens.numel() >= 1
    full = gpt.score(ph, lang, style, torch.cat([prompt, res.tokens]))
    steps = res.step_logits.shape[0]
    torch.testing.assert_close(res.step_logits, full[5 : 5 + steps], atol=1e-4, rtol=1e-4)


def test_same_generator_seed_same_tokens(tiny_cfg, gpt):
    batch = make_batch(tiny_cfg, [6], [3])
    args = (batch.phone_ids[0], batch.lang_ids[0], batch.style[0], batch.tokens[0])

    def run(seed):
        return gpt.generate(*args, max_new_tokens=40, top_k=20,
                            generator=torch.Generator().manual_seed(seed)).tokens

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_generation_ends_at_eos_or_cap(tiny_cfg, gpt):
    batch = make_batch(tiny_cfg, [6], [3])
    args = (batch.phone_ids[0], batch.lang_ids[0], batch.style[0], None)
    with torch.no_grad():
        gpt.head.bias[gpt.eos_id] = 100.0  # EOS always wins once it is allowed
    res = gpt.generate(*args, max_new_tokens=50, min_new_tokens=2, generator=torch.Generator())
    assert res.tokens.numel() == 2 and not res.hit_cap
    with torch.no_grad():
        gpt.head.bias[gpt.eos_id] = -100.0  # EOS never: the cap must end it
    res = gpt.generate(*args, max_new_tokens=13, generator=torch.Generator())
    assert res.tokens.numel() == 13 and res.hit_cap
    assert int(res.tokens.max()) < gpt.eos_id
    res = gpt.generate(*args, max_new_tokens=0, generator=torch.Generator())  # no room at all
    assert res.tokens.numel() == 0 and res.tokens.dtype == torch.long and res.hit_cap


def test_too_long_input_is_refused_with_advice(tiny_cfg, gpt):
    n = tiny_cfg.model.gpt_max_positions
    batch = make_batch(tiny_cfg, [n], [4])
    with pytest.raises(VoicelabError, match="gpt_max_positions"):
        gpt(batch)
    with pytest.raises(VoicelabError, match="gpt_max_positions"):
        gpt.generate(batch.phone_ids[0], batch.lang_ids[0], batch.style[0], None)


# ------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------


def test_top_k_one_is_greedy():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9]])
    for seed in range(5):
        tok = sample_next(logits, top_k=1, top_p=1.0, temperature=1.0,
                          generator=torch.Generator().manual_seed(seed))
        assert int(tok) == 1


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_top_k_top_p(probs.log(), top_k=4, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_top_k_top_p(probs.log(), top_k=4, top_p=0.01))
    assert kept.tolist() == [[True, False, False, False]]  # the top token always survives
    kept = torch.isfinite(filter_top_k_top_p(probs.log(), top_k=3, top_p=1.0))
    assert kept.tolist() == [[True, True, True, False]]


def test_repetition_penalty_lowers_seen_tokens_of_either_sign():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]
    assert apply_repetition_penalty(logits, None, 2.0) is logits


def test_bad_sampling_settings_are_named():
    with pytest.raises(VoicelabError, match="top_k=0.*temperature=0"):
        check_sampling_args(0, 0.9, 0.0, 1.0)
