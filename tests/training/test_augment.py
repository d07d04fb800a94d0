"""Regularisers: SpecAugment masks only the posterior input, mixup blends references; both off = no-op."""

from __future__ import annotations

import torch

from voicelab.config import load_config
from voicelab.data.augment import augment_batch, spec_augment, step_generator
from voicelab.data.batch import Batch


def _batch(B: int = 3, T: int = 30) -> Batch:
    torch.manual_seed(0)
    return Batch(
        phone_ids=torch.ones(B, 5, dtype=torch.long),
        phone_lens=torch.full((B,), 5),
        lang_ids=torch.zeros(B, 5, dtype=torch.long),
        spec=torch.rand(B, 17, T) + 0.1,
        mel=torch.rand(B, 8, T),
        spec_lens=torch.tensor([T, T - 5, T - 10]),
        wav=torch.rand(B, 1, T * 4),
        ref_mel=torch.rand(B, 8, 20) + 0.1,
        ref_lens=torch.tensor([20, 15, 10]),
        style=torch.rand(B, 6),
    )


def test_spec_augment_masks_spec_only_within_length():
    cfg = load_config(
        "tiny",
        [
            "train.spec_augment=true",
            "train.spec_augment_freq_mask=4",
            "train.spec_augment_time_mask=6",
            "train.mixup_alpha=0",
        ],
    )
    b = _batch()
    out = augment_batch(b, cfg.train, step_generator(1, 0))
    assert (out.posterior_spec == 0).any() and not (b.spec == 0).any()  # input untouched
    # only the posterior's copy is masked: the content encoder's spec, mel, audio stay clean
    assert out.spec is b.spec and out.mel is b.mel and out.wav is b.wav and out.ref_mel is b.ref_mel
    zero = out.posterior_spec == 0
    for i in range(3):  # whole columns / rows masked, never more than the maxima
        cols = zero[i].all(0).sum().item()
        rows = zero[i].all(1).sum().item()
        assert cols <= 6 and rows <= 4


def test_spec_augment_is_a_function_of_seed_and_step():
    b = _batch()
    a1 = spec_augment(b.spec, b.spec_lens, 4, 6, step_generator(7, 3))
    a2 = spec_augment(b.spec, b.spec_lens, 4, 6, step_generator(7, 3))
    a3 = spec_augment(b.spec, b.spec_lens, 4, 6, step_generator(7, 4))
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)


def test_mixup_blends_references_and_styles():
    cfg = load_config("tiny", ["train.spec_augment=false", "train.mixup_alpha=0.4"])
    b = _batch()
    out = augment_batch(b, cfg.train, step_generator(1, 0))
    assert out.spec is b.spec
    assert not torch.equal(out.ref_mel, b.ref_mel) and not torch.equal(out.style, b.style)
    assert (out.ref_lens <= b.ref_lens).all()
    for i in range(3):  # nothing beyond the mixed length
        assert (out.ref_mel[i, :, int(out.ref_lens[i]) :] == 0).all()


def test_all_off_is_identity():
    cfg = load_config("tiny", ["train.spec_augment=false", "train.mixup_alpha=0"])
    b = _batch()
    assert augment_batch(b, cfg.train, step_generator(1, 0)) is b
