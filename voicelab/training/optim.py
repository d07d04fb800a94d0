"""Optimisers: AdamW parameter groups with per-module LR multipliers, freezing, GPT fine-tuning.

- Generator (SoVITS) and discriminator get separate AdamW optimisers (their own LRs, as VITS).
- Text modules learn at `train.text_lr_mult` times the generator LR (GPT-SoVITS uses 0.4): the
  text encoder sees the same few sentences again and again and overfits first.
- Biases and normalisation weights (1-D tensors) get no weight decay (standard AdamW practice).
- GPT fine-tuning: with `train.gpt_unfreeze_last = N > 0` only the last N transformer blocks (plus
  the voicelab-specific embeddings and heads around them) are trained; earlier blocks are frozen
  for good (requires_grad=False, so no memory for their gradients or optimiser state).
- `train.freeze` + `train.unfreeze_after`: a *time-limited* freeze (e.g. keep the quantizer fixed
  while fine-tuning from a base). Frozen modules are put in eval mode (so a VQ codebook stops its
  EMA / dead-code updates) and their gradients are dropped before the step. requires_grad is not
  touched, which keeps DDP's gradient hooks valid when the freeze lifts.

Every group carries `name`, `base_lr` and `lr_mult`; schedules.set_lr scales `base_lr`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from voicelab.errors import VoicelabError

# Name fragments of SoVITS's text-side modules (phoneme encoder and its embeddings). Matched on
# dotted parameter-name components so "text_encoder.*" and "enc_p.*" both count.
TEXT_MODULE_KEYS = ("text", "phone", "enc_p", "lang_emb")


def is_text_param(name: str, keys: Iterable[str] = TEXT_MODULE_KEYS) -> bool:
    """True when a parameter name belongs to a text module (its first component matches a key)."""
    head = name.split(".", 1)[0]
    return any(k in head for k in keys)


def _no_decay(name: str, p: torch.Tensor) -> bool:
    return p.ndim <= 1 or name.endswith(".bias")


def param_groups(
    module: nn.Module,
    base_lr: float,
    weight_decay: float,
    multipliers: dict[str, float] | None = None,
    prefix: str = "",
) -> list[dict[str, Any]]:
    """Split `module`'s trainable parameters into AdamW groups.

    multipliers: {group key: LR multiplier}; a parameter goes to the first key for which
    `is_text_param(name, (key,))` holds, else to "" (multiplier 1). Each key is split again into
    decay / no-decay. Empty groups are dropped; the order is deterministic (sorted keys), which
    checkpoints need to restore optimiser state group by group.
    """
    multipliers = dict(multipliers or {})
    buckets: dict[tuple[str, bool], list[torch.Tensor]] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        key = next((k for k in sorted(multipliers) if is_text_param(name, (k,))), "")
        buckets.setdefault((key, _no_decay(name, p)), []).append(p)
    groups = []
    for (key, nd), params in sorted(buckets.items()):
        mult = multipliers.get(key, 1.0)
        label = (prefix + (key or "main") + (".no_decay" if nd else "")).strip(".")
        groups.append(
            {
                "params": params,
                "name": label,
                "lr_mult": mult,
                "base_lr": base_lr * mult,
                "lr": base_lr * mult,
                "weight_decay": 0.0 if nd else weight_decay,
            }
        )
    if not groups:
        raise VoicelabError(
            f"{type(module).__name__} has no trainable parameters: check train.freeze and "
            "train.gpt_unfreeze_last"
        )
    return groups


def _adamw(groups: list[dict[str, Any]], train_cfg: Any) -> torch.optim.AdamW:
    b1, b2 = (float(b) for b in train_cfg.betas)
    # foreach=True: one fused kernel launch per group instead of per tensor (CPU and CUDA).
    return torch.optim.AdamW(groups, betas=(b1, b2), eps=1e-9, foreach=True)


def text_multipliers(train_cfg: Any) -> dict[str, float]:
    """{text key: text_lr_mult} for every TEXT_MODULE_KEYS fragment."""
    return {k: float(train_cfg.text_lr_mult) for k in TEXT_MODULE_KEYS}


def build_gan_optimizers(
    sovits: nn.Module, disc: nn.Module, train_cfg: Any
) -> tuple[torch.optim.AdamW, torch.optim.AdamW]:
    """(generator optimiser, discriminator optimiser) for stage 1."""
    g = param_groups(
        sovits, train_cfg.lr_g, train_cfg.weight_decay, text_multipliers(train_cfg), "g."
    )
    d = param_groups(disc, train_cfg.lr_d, train_cfg.weight_decay, None, "d.")
    return _adamw(g, train_cfg), _adamw(d, train_cfg)


def build_acoustic_optimizers(
    model: nn.Module, disc: nn.Module | None, train_cfg: Any
) -> dict[str, torch.optim.AdamW]:
    """Stage 1: {"g": generator, "d": discriminator}, or {"g"} for a model without a discriminator."""
    if disc is not None:
        g, d = build_gan_optimizers(model, disc, train_cfg)
        return {"g": g, "d": d}
    groups = param_groups(model, train_cfg.lr_g, train_cfg.weight_decay,
                          text_multipliers(train_cfg), "g.")  # fmt: skip
    return {"g": _adamw(groups, train_cfg)}


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer block list of a GPT (GPT2Model's `.h`, or `.blocks` / `.layers`).

    Picks the longest ModuleList whose name ends in one of those words, so it works for both
    transformers' GPT2Model and hand-written models.
    """
    best: nn.ModuleList | None = None
    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("h", "blocks", "layers"):
            if best is None or len(m) > len(best):
                best = m
    if best is None:
        raise VoicelabError(
            f"cannot find the transformer blocks of {type(model).__name__} to freeze: "
            "set train.gpt_unfreeze_last = 0 to train every block"
        )
    return best


def freeze_gpt_blocks(gpt: nn.Module, unfreeze_last: int) -> int:
    """Freeze all but the last `unfreeze_last` blocks (0 = train all). Returns blocks frozen."""
    if unfreeze_last <= 0:
        return 0
    blocks = find_blocks(gpt)
    n_frozen = max(0, len(blocks) - unfreeze_last)
    for block in list(blocks)[:n_frozen]:
        for p in block.parameters():
            p.requires_grad_(False)
    return n_frozen


def build_gpt_optimizer(gpt: nn.Module, train_cfg: Any) -> torch.optim.AdamW:
    """Stage-2 optimiser; freezes early blocks first when `gpt_unfreeze_last` > 0.

    A model with its own `freeze_all_but_last(n)` (voicelab.models.gpt.SemanticGPT: keeps the
    last n blocks, the final norm and the head) decides what "the last n blocks" means; other
    modules fall back to `freeze_gpt_blocks`.
    """
    n = int(train_cfg.gpt_unfreeze_last)
    if n > 0 and hasattr(gpt, "freeze_all_but_last"):
        gpt.freeze_all_but_last(n)
    else:
        freeze_gpt_blocks(gpt, n)
    groups = param_groups(gpt, train_cfg.lr_gpt, train_cfg.weight_decay, None, "gpt.")
    return _adamw(groups, train_cfg)


@dataclass
class FreezeSchedule:
    """Keep the named submodules fixed until stage step `unfreeze_after` (0 = for the whole stage).

    names are dotted module paths relative to the model ("quantizer", "enc_p.emb"). Unknown names
    raise a VoicelabError listing the top-level modules, so a typo is never silently ignored.
    """

    names: tuple[str, ...]
    unfreeze_after: int = 0

    def modules(self, model: nn.Module) -> list[nn.Module]:
        found = dict(model.named_modules())
        missing = [n for n in self.names if n not in found]
        if missing:
            tops = ", ".join(n for n, _ in model.named_children())
            raise VoicelabError(
                f"train.freeze names {missing} that {type(model).__name__} does not have "
                f"(its modules: {tops})"
            )
        return [found[n] for n in self.names]

    def active(self, step: int) -> bool:
        return bool(self.names) and (self.unfreeze_after <= 0 or step < self.unfreeze_after)

    def before_forward(self, model: nn.Module, step: int) -> None:
        """Call after model.train(): frozen modules go to eval mode (no VQ/BN statistic updates)."""
        if self.active(step):
            for m in self.modules(model):
                m.eval()

    def before_step(self, model: nn.Module, step: int) -> None:
        """Drop the gradients of frozen modules so AdamW leaves them (and their decay) alone."""
        if self.active(step):
            for m in self.modules(model):
                for p in m.parameters():
                    p.grad = None


def current_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """{group name: lr} for metrics.jsonl."""
    return {str(g.get("name", i)): float(g["lr"]) for i, g in enumerate(optimizer.param_groups)}
