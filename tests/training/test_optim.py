"""Optimiser groups: LR multipliers for text modules, no decay on biases, freezing, GPT blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from voicelab.config import load_config
from voicelab.errors import VoicelabError
from voicelab.training.optim import (
    FreezeSchedule,
    build_gan_optimizers,
    build_gpt_optimizer,
    current_lrs,
    is_text_param,
    param_groups,
)
from voicelab.training.schedules import set_lr


class ToyGen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.text_encoder = nn.Linear(4, 4)
        self.quantizer = nn.Linear(4, 4)
        self.decoder = nn.Linear(4, 4)

    def forward(self, x):
        return self.decoder(self.quantizer(self.text_encoder(x)))


class ToyGPT(nn.Module):
    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.emb = nn.Linear(4, 4)
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(n))
        self.head = nn.Linear(4, 4)


def test_text_modules_get_the_multiplier():
    cfg = load_config("tiny", ["train.text_lr_mult=0.4", "train.lr_g=1e-3", "train.lr_d=5e-4"])
    opt_g, opt_d = build_gan_optimizers(ToyGen(), nn.Linear(2, 2), cfg.train)
    lrs = current_lrs(opt_g)
    assert lrs["g.text"] == pytest.approx(4e-4) and lrs["g.text.no_decay"] == pytest.approx(4e-4)
    assert lrs["g.main"] == pytest.approx(1e-3)
    assert all(v == pytest.approx(5e-4) for v in current_lrs(opt_d).values())
    wd = {g["name"]: g["weight_decay"] for g in opt_g.param_groups}
    assert wd["g.main.no_decay"] == 0.0 and wd["g.main"] == cfg.train.weight_decay
    set_lr(opt_g, 0.5)  # the schedule scales each group's own base
    assert current_lrs(opt_g)["g.text"] == pytest.approx(2e-4)
    n = sum(p.numel() for g in opt_g.param_groups for p in g["params"])
    assert n == sum(p.numel() for p in ToyGen().parameters())


def test_is_text_param():
    assert is_text_param("text_encoder.w") and is_text_param("enc_p.emb.weight")
    assert not is_text_param("dec.text_like")  # only the top-level module name counts


def test_gpt_only_last_blocks_train():
    cfg = load_config("tiny", ["train.gpt_unfreeze_last=1"])
    gpt = ToyGPT()
    opt = build_gpt_optimizer(gpt, cfg.train)
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) not in trained for b in gpt.blocks[:3] for p in b.parameters())
    assert all(id(p) in trained for p in gpt.blocks[3].parameters())
    assert all(id(p) in trained for p in gpt.head.parameters())


def test_freeze_schedule_drops_grads_then_lifts():
    m = ToyGen()
    fs = FreezeSchedule(("quantizer",), unfreeze_after=2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for step in range(3):
        m.train()
        fs.before_forward(m, step)
        assert m.quantizer.training == (step >= 2)
        before = m.quantizer.weight.detach().clone()
        opt.zero_grad()
        m(torch.randn(2, 4)).sum().backward()
        fs.before_step(m, step)
        opt.step()
        moved = not torch.equal(before, m.quantizer.weight)
        assert moved == (step >= 2)


def test_freeze_unknown_name_is_an_error():
    with pytest.raises(VoicelabError, match="quantiser"):
        FreezeSchedule(("quantiser",)).modules(ToyGen())


def test_nothing_trainable_is_an_error():
    m = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(VoicelabError, match="no trainable"):
        param_groups(m, 1e-3, 0.0)


def test_semantic_gpt_unfreezes_its_last_blocks():
    from voicelab.models.gpt import SemanticGPT

    cfg = load_config("tiny", ["train.gpt_unfreeze_last=1"])
    gpt = SemanticGPT(cfg.model, n_symbols=20, n_langs=2)
    opt = build_gpt_optimizer(gpt, cfg.train)
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    blocks = gpt.transformer.h
    assert all(id(p) not in trained for p in blocks[0].parameters())
    assert all(id(p) in trained for p in blocks[-1].parameters())
    assert all(id(p) in trained for p in gpt.head.parameters())
