"""The semantic quantizer (ResidualVQ): determinism, quantizer dropout, masks, k-means, dead codes."""

from __future__ import annotations

import pytest
import torch

from voicelab.config import load_config
from voicelab.models.quantize import SemanticQuantizer

DIM = 8


def make(overrides=()) -> SemanticQuantizer:
    torch.manual_seed(0)
    return SemanticQuantizer(load_config("tiny", list(overrides)).model, DIM)


def test_eval_tokens_are_deterministic_and_decode_back():
    q = make().eval()
    x, lens = torch.randn(2, DIM, 10), torch.tensor([10, 7])
    a, b = q(x, lens), q(x, lens)
    assert torch.equal(a.codes, b.codes) and a.n_used == 2
    assert a.codes.shape == (2, 10, 2)
    real = a.codes[0]
    assert real.min() >= 0 and real.max() < 32
    # the codes decode to the quantized vectors (all quantizers) and to the first-layer path
    dec = q.decode(a.codes.clamp_min(0))
    assert torch.allclose(dec[0], a.quantized[0], atol=1e-5)
    assert torch.allclose(dec[1, :, :7], a.quantized[1, :, :7], atol=1e-5)
    first = q.decode_first(a.codes[..., 0].clamp_min(0))
    assert torch.allclose(first[0], a.quantized_first[0], atol=1e-5)
    # padding is zero in every output
    assert a.quantized[1, :, 7:].abs().sum() == 0 and a.quantized_first[1, :, 7:].abs().sum() == 0


def test_first_quantizer_code_is_the_nearest_codeword():
    q = make().eval()
    x, lens = torch.randn(1, DIM, 6), torch.tensor([6])
    codes = q(x, lens).codes[0, :, 0]
    book = q.rvq.layers[0]._codebook.embed[0]  # [codebook, DIM]
    nearest = torch.cdist(x[0].T, book).argmin(-1)
    assert torch.equal(codes, nearest)


def test_quantizer_dropout_keeps_at_least_one_layer_in_training_only():
    q = make().train()
    x, lens = torch.randn(2, DIM, 10), torch.tensor([10, 10])
    used = set()
    for seed in range(30):
        torch.manual_seed(seed)
        r = q(x, lens)
        used.add(r.n_used)
        if r.n_used == 1:
            assert (r.codes[..., 1] == -1).all() and (r.codes[..., 0] >= 0).all()
            # the first-layer path decodes the codes through the codebook as it stands after
            # this step's EMA update: exactly what synthesis from tokens will look up
            assert torch.allclose(r.quantized_first, q.decode_first(r.codes[..., 0]), atol=1e-5)
    assert used == {1, 2}
    q.eval()
    assert all(q(x, lens).n_used == 2 for _ in range(3))


def test_padding_does_not_reach_the_commitment_loss():
    q = make().eval()
    x, lens = torch.randn(1, DIM, 10), torch.tensor([6])
    y = x.clone()
    y[..., 6:] = 1e3  # garbage in the padding
    a, b = q(x, lens), q(y, lens)
    assert a.commit_loss.item() == pytest.approx(b.commit_loss.item(), rel=1e-5)
    assert torch.equal(a.codes[:, :6], b.codes[:, :6])


def test_straight_through_gradient_reaches_the_encoder_from_both_paths():
    q = make().train()
    x = torch.randn(1, DIM, 8, requires_grad=True)
    r = q(x, torch.tensor([8]))
    r.quantized_first.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, torch.ones_like(x))


def test_kmeans_init_comes_from_the_data():
    q = make(["model.vq_kmeans_init=true"]).train()
    x = torch.randn(4, DIM, 40) + 5.0  # data far from a random init around 0
    q(x, torch.tensor([40, 40, 40, 40]))
    book = q.rvq.layers[0]._codebook.embed[0]
    assert bool(q.rvq.layers[0]._codebook.initted)
    assert (book.mean() - 5.0).abs() < 1.0  # k-means centroids sit in the data


def test_dead_codes_are_replaced_by_data_vectors():
    q = make(["model.vq_dead_code_threshold=2"]).train()
    q.rvq.quantize_dropout = False
    with torch.no_grad():
        q.rvq.layers[0]._codebook.embed[0, 5] = 1e4  # a code nothing will ever pick
    x = torch.randn(4, DIM, 40)
    for _ in range(3):
        q(x, torch.tensor([40, 40, 40, 40]))
    assert q.rvq.layers[0]._codebook.embed[0, 5].abs().max() < 100  # replaced from the batch


def test_token_extraction_refuses_an_untrained_kmeans_codebook():
    from voicelab.errors import VoicelabError
    from voicelab.models.build import build_sovits

    cfg = load_config("tiny", ["model.vq_kmeans_init=true"])
    model = build_sovits(cfg, 60, 2)
    assert not model.quantizer.initialised
    spec, lens = torch.rand(1, cfg.features.n_fft // 2 + 1, 12), torch.tensor([12])
    with pytest.raises(VoicelabError, match="train stage 1"):
        model.extract_tokens(spec, lens)
    model.quantizer.train()(torch.randn(2, cfg.model.hidden, 20), torch.tensor([20, 20]))
    assert model.quantizer.initialised
    tokens, token_lens = model.extract_tokens(spec, lens)
    assert tokens.shape == (1, 6) and token_lens.tolist() == [6]
