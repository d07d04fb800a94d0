"""MultiDiscriminator: MPD + MSD structure, shapes, odd lengths, gradients."""

from __future__ import annotations

import pytest
import torch

from voicelab.config import load_config
from voicelab.models import losses as L
from voicelab.models.discriminators import MultiDiscriminator


@pytest.fixture
def disc(tiny_cfg) -> MultiDiscriminator:
    torch.manual_seed(0)
    return MultiDiscriminator(tiny_cfg.model)


def test_one_output_per_sub_discriminator(tiny_cfg, disc):
    y, y_hat = torch.randn(2, 1, 5120) * 0.1, torch.randn(2, 1, 5120) * 0.1
    real, fake, rf, ff = disc(y, y_hat)
    n = len(tiny_cfg.model.mpd_periods) + tiny_cfg.model.msd_scales
    assert len(real) == len(fake) == len(rf) == len(ff) == n
    for r, f, a, b in zip(real, fake, rf, ff):
        assert r.shape == f.shape and r.shape[0] == 2 and r.dim() == 2
        assert len(a) == len(b) >= 5 and all(x.shape == z.shape for x, z in zip(a, b))


def test_real_and_fake_are_scored_independently(disc):
    """Batching real and fake together must not mix them: the real scores ignore y_hat."""
    y = torch.randn(2, 1, 4000) * 0.1
    r1, _, _, _ = disc(y, torch.zeros_like(y))
    r2, _, _, _ = disc(y, torch.randn_like(y))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(r1, r2))


def test_any_length_and_default_sizes():
    cfg = load_config("base").model  # periods 2, 3, 5, 7, 11 + three scales
    d = MultiDiscriminator(cfg)
    y = torch.randn(1, 1, 3331) * 0.1  # not a multiple of any period
    real, fake, _, _ = d(y, y)
    assert len(real) == 8 and all(torch.equal(a, b) for a, b in zip(real, fake))
    with pytest.raises(ValueError):
        d(y, y[..., :-1])


def test_gradients_reach_every_parameter_and_adversarial_training_separates(disc):
    torch.manual_seed(0)
    y = torch.sin(torch.linspace(0, 400, 5120)).view(1, 1, -1).repeat(2, 1, 1) * 0.5
    y_hat = torch.randn(2, 1, 5120) * 0.5
    opt = torch.optim.Adam(disc.parameters(), 1e-3)
    first = None
    for step in range(30):
        real, fake, _, _ = disc(y, y_hat)
        loss = L.discriminator_adversarial(real, fake)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            first = loss.item()
            missing = [n for n, p in disc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert missing == []
        opt.step()
    assert loss.item() < 0.5 * first  # it learns to tell a sine from noise
