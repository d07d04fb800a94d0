"""Losses: the KL balancing math, the KL estimate, LSGAN, feature matching, mel L1."""

from __future__ import annotations

import math

import pytest
import torch

from voicelab.models import losses as L


def test_kl_balanced_weights_follow_alpha_powers():
    terms = [torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)]
    # alpha = 1: the plain mean
    assert L.kl_balanced(terms, 1.0).item() == pytest.approx(7.0 / 3.0)
    # alpha = 0.5: weights 0.25, 0.5, 1 (the last term weighs most), normalised
    expect = (0.25 * 1 + 0.5 * 2 + 1.0 * 4) / (0.25 + 0.5 + 1.0)
    assert L.kl_balanced(terms, 0.5).item() == pytest.approx(expect)
    # alpha = 2: the first term weighs most
    expect = (4 * 1 + 2 * 2 + 1 * 4) / 7
    assert L.kl_balanced(terms, 2.0).item() == pytest.approx(expect)
    assert L.kl_balanced([torch.tensor(3.0)], 0.1).item() == pytest.approx(3.0)


def test_kl_balanced_gradient_shares_and_bad_input():
    terms = [torch.tensor(1.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)]
    L.kl_balanced(terms, 0.25).backward()
    assert terms[0].grad.item() == pytest.approx(0.25 / 1.25)
    assert terms[1].grad.item() == pytest.approx(1.0 / 1.25)
    with pytest.raises(ValueError):
        L.kl_balanced([], 0.5)
    with pytest.raises(ValueError):
        L.kl_balanced(terms, 0.0)


def test_kl_loss_is_zero_for_matching_gaussians_and_counts_only_real_frames():
    torch.manual_seed(0)
    m = torch.randn(2, 4, 6)
    logs = torch.randn(2, 4, 6) * 0.1
    mask = torch.ones(2, 1, 6)
    # z_p at the prior mean with equal std: KL estimate = -0.5 per element (VITS's estimator
    # drops the constant of the sampled posterior term), i.e. logs_p - logs_q - 0.5
    kl = L.kl_loss(m, logs, m, logs, mask)
    assert kl.item() == pytest.approx(-0.5 * 4 * 12 / 12)
    # padded frames (mask 0) do not change the value even when filled with garbage
    m2, logs2 = m.clone(), logs.clone()
    m2[:, :, 4:] = 100.0
    mask2 = mask.clone()
    mask2[:, :, 4:] = 0
    a = L.kl_loss(m, logs, m, logs, mask2)
    b = L.kl_loss(m, logs, m2, logs2, mask2)
    assert a.item() == pytest.approx(b.item())


def test_kl_loss_matches_the_closed_form_in_expectation():
    """E_q[log q - log p] for 1-D Gaussians equals the closed form (Monte Carlo check)."""
    torch.manual_seed(0)
    n = 200_000
    m_q, s_q, m_p, s_p = 0.3, 0.5, -0.2, 0.8
    z = m_q + s_q * torch.randn(1, 1, n)
    full = lambda t: torch.full((1, 1, n), t)  # noqa: E731
    est = L.kl_loss(z, full(math.log(s_q)), full(m_p), full(math.log(s_p)), torch.ones(1, 1, n))
    # VITS's estimator omits E_q[-0.5 eps^2] = -0.5 and adds the constant -0.5 instead; both are
    # the same in expectation, so it matches the closed-form KL
    closed = math.log(s_p / s_q) + (s_q**2 + (m_q - m_p) ** 2) / (2 * s_p**2) - 0.5
    assert est.item() == pytest.approx(closed, abs=5e-3)


def test_lsgan_losses():
    real = [torch.ones(2, 5), torch.ones(2, 3)]
    fake = [torch.zeros(2, 5), torch.zeros(2, 3)]
    assert L.discriminator_adversarial(real, fake).item() == 0.0  # a perfect discriminator
    assert L.generator_adversarial(fake).item() == pytest.approx(2.0)  # fooled nobody
    assert L.generator_adversarial(real).item() == 0.0
    half = [torch.full((2, 5), 0.5)]
    assert L.discriminator_adversarial(half, half).item() == pytest.approx(0.25 + 0.25)


def test_feature_matching_detaches_real_side():
    r = [[torch.ones(2, 3, requires_grad=True), torch.zeros(2, 4, requires_grad=True)]]
    g = [[torch.zeros(2, 3, requires_grad=True), torch.zeros(2, 4, requires_grad=True)]]
    loss = L.feature_matching(r, g)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert r[0][0].grad is None and g[0][0].grad is not None


def test_token_cross_entropy_ignores_padding():
    logits = torch.zeros(2, 3, 5)
    logits[:, :, 1] = 10.0
    targets = torch.tensor([[1, 1, 1], [1, 4, 4]])
    lens = torch.tensor([3, 1])
    # every real target is token 1, which the logits favour strongly: near-zero loss
    assert L.token_cross_entropy(logits, targets, lens).item() < 1e-3
    logits[1, 0, 1] = 0.0
    assert L.token_cross_entropy(logits, targets, lens).item() > 0.1


def test_mel_l1(tiny_cfg):
    pytest.importorskip("voicelab.audio.features")
    torch.manual_seed(0)
    y = torch.randn(2, 1, 8 * 640) * 0.1
    assert L.mel_l1(y, y, tiny_cfg.features, 32000).item() == 0.0
    y_hat = (y * 0.5).requires_grad_(True)
    loss = L.mel_l1(y_hat, y, tiny_cfg.features, 32000)
    assert loss.item() > 0.1  # log-mel of half the amplitude differs by ~log(0.25)
    loss.backward()
    assert y_hat.grad is not None and y_hat.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        L.mel_l1(y[:, :, :640], y, tiny_cfg.features, 32000)
