"""EMA of weights: update rule, swapping in and out, state_dict round trip, off switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from voicelab.training.ema import EMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))


def test_update_follows_the_rule():
    m = _model()
    ema = EMA(m, decay=0.9)
    before = ema.shadow["0.weight"].clone()
    with torch.no_grad():
        m[0].weight.add_(1.0)
    ema.update(m)
    d = min(0.9, 1 / 10)  # warm-up decay on the first update
    assert torch.allclose(ema.shadow["0.weight"], d * before + (1 - d) * m[0].weight)
    assert ema.shadow["1.num_batches_tracked"].dtype == torch.long


def test_applied_swaps_and_restores():
    m = _model()
    ema = EMA(m, decay=0.5)
    orig = m[0].weight.detach().clone()
    with torch.no_grad():
        m[0].weight.mul_(3)
    trained = m[0].weight.detach().clone()
    with ema.applied(m) as inner:
        assert torch.equal(inner[0].weight, orig)  # never updated: shadow is the init
    assert torch.equal(m[0].weight, trained)


def test_state_dict_roundtrip():
    m = _model()
    ema = EMA(m, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            m[0].weight.add_(0.1)
        ema.update(m)
    other = EMA(_model(), decay=0.99)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 3
    for k in ema.shadow:
        assert torch.equal(other.shadow[k], ema.shadow[k])


def test_disabled_is_the_model():
    m = _model()
    ema = EMA(m, decay=0.0)
    assert not ema.enabled and ema.shadow == {}
    with torch.no_grad():
        m[0].weight.add_(1)
    ema.update(m)
    assert torch.equal(ema.weights(m)["0.weight"], m[0].weight)


def test_bad_decay():
    with pytest.raises(ValueError):
        EMA(_model(), decay=1.0)
