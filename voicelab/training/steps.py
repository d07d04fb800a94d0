"""One optimiser step of each stage, as a free function of explicit state -> a metrics dict.

    result = step_for(cfg, stage)(env, modules)   # StepResult(values, samples, bad)

`env` (StepEnv) carries what every step needs besides the models: the config, device, GradScaler,
precision, the stage step (freeze schedules) and `batch(k)`, micro-batch k of this step. `modules`
(StageModules) is the trainable side of the stage: the raw model, the module the forward runs
through (its DDP wrapper or itself), the stage's optimisers, the freeze schedule, and the
discriminator when the stage has one.

Loss weights are one table keyed by the logged names (`loss_weights`), so the weighting and the
log cannot drift apart: loss/g_total = sum(weight[name] * term[name]).

Stage-1 steps are chosen by the acoustic model kind (`ACOUSTIC_STEPS`, keyed by model.acoustic):
a new kind is one step function and one entry there (plus its model builder), e.g. a regression
model without a discriminator gets `modules.disc = None` and optimisers {"g"} only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from voicelab.config import Config, TrainConfig
from voicelab.data.batch import Batch
from voicelab.training.optim import FreezeSchedule, build_acoustic_optimizers, build_gpt_optimizer
from voicelab.training.precision import autocast


def loss_weights(t: TrainConfig) -> dict[str, float]:
    """The stage-1 generator loss: weight of each logged term (HiFi-GAN/VITS: mel x45, adv x1)."""
    return {
        "loss/mel": t.c_mel,
        "loss/kl": t.c_kl,
        "loss/fm": t.c_fm,
        "loss/adv": 1.0,
        "loss/commit": t.c_commit,
    }


def world_loss_weights(t: TrainConfig) -> dict[str, float]:
    """The stage-1 loss of the world path (model.acoustic = "world"): weight of each logged term.

    All terms are on z-scored features, so 1.0 means "as important as the envelope". The
    envelope (mgc) carries what is said and who says it, so it leads; F0 and voicing carry
    intonation, which matters less for intelligibility; aperiodicity least. The delta term
    (frame-to-frame change of the envelope) counters the over-smoothing that regression gives
    and that costs intelligibility; the energy (c0) gets its own term because a smoothed energy
    contour cost the most intelligibility in the vocoder round trip (world.md); durations come
    from the token, so their loss is small.
    """
    return {
        "loss/mgc": 1.0,
        "loss/energy": 0.5,
        "loss/lf0": 0.5,
        "loss/vuv": t.c_vuv,
        "loss/bap": t.c_bap,
        "loss/delta": 0.5,
        "loss/dur": 1.0,
        "loss/commit": t.c_commit,
    }


@dataclass
class StepEnv:
    """What every step function gets besides the models."""

    cfg: Config
    device: torch.device
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # None = fp32
    stage_step: int  # steps already done in this stage (freeze schedules)
    batch: Callable[[int], Batch]  # micro-batch k of this optimiser step (augmented, on device)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp_dtype)


@dataclass
class StageModules:
    """The trainable side of one stage."""

    model: nn.Module  # raw: what the optimiser, the freeze schedule and the EMA see
    train: nn.Module  # what the forward runs through: the DDP wrapper, or the model itself
    optimizers: dict[str, torch.optim.Optimizer]
    freeze: FreezeSchedule
    disc: nn.Module | None = None  # raw discriminator; None: no adversarial training
    disc_train: nn.Module | None = None


@dataclass
class StepResult:
    values: dict[str, float]  # logged means over the micro-batches: loss/*, acc/*, grad_norm/*
    samples: int  # examples seen by this rank
    bad: bool  # non-finite: skip this step (the trainer counts it and may roll back)


StepFn = Callable[[StepEnv, StageModules], StepResult]


def build_stage(
    stage: str, cfg: Config, sovits: nn.Module, disc: nn.Module | None, gpt: nn.Module,
    wrap: Callable[[nn.Module], nn.Module],
) -> StageModules:
    """The trainable side of `stage`: optimisers, freeze schedule, `wrap`ped (DDP) modules.

    Stage 1 trains `sovits` (the acoustic model of any kind) with optimisers {"g", "d"}, or {"g"}
    alone when `disc` is None; stage 2 trains the GPT ({"gpt"}). train.freeze names
    "gpt.<module>" for the GPT and anything else for stage 1's model.
    """
    t = cfg.train
    if stage == "gpt":
        model, disc = gpt, None
        names = tuple(n[4:] for n in t.freeze if n.startswith("gpt."))
        optimizers = {"gpt": build_gpt_optimizer(model, t)}
    else:
        model = sovits
        names = tuple(n.removeprefix("sovits.") for n in t.freeze if not n.startswith("gpt."))
        optimizers = build_acoustic_optimizers(model, disc, t)
    model.train()
    if disc is not None:
        disc.train()
    freeze = FreezeSchedule(names, t.unfreeze_after)
    freeze.modules(model)  # unknown names fail now, not mid-run
    return StageModules(model, wrap(model), optimizers, freeze, disc,
                        wrap(disc) if disc is not None else None)  # fmt: skip


def buffers_of(m: StageModules) -> list[Tensor]:
    """The buffers of the stage's modules: state a forward may update (VQ codebooks)."""
    return [b for mod in (m.model, m.disc) if mod is not None for b in mod.buffers()]


def snapshot(m: StageModules) -> list[Tensor]:
    """Copies of buffers_of(m), to put back when the step turns out bad (restore)."""
    return [b.detach().clone() for b in buffers_of(m)]


@torch.no_grad()
def restore(m: StageModules, saved: list[Tensor]) -> None:
    """Undo what a skipped step's forward wrote into buffers: a NaN batch must leave no trace."""
    for b, s in zip(buffers_of(m), saved, strict=True):
        b.copy_(s)


@torch.no_grad()
def weights_finite(m: StageModules) -> bool:
    """Whether every floating parameter and buffer of the stage's modules is finite."""
    ts = [t for mod in (m.model, m.disc) if mod is not None
          for t in (*mod.parameters(), *mod.buffers()) if t.is_floating_point()]  # fmt: skip
    # one fused norm per tensor (NaN and Inf propagate into it), one sync: ~6x cheaper than an
    # isfinite().all() per tensor; a finite weight so large its norm overflows is divergence too
    return not ts or bool(torch.stack(torch._foreach_norm(ts)).isfinite().all())


def no_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """DDP's no_sync() for all but the last micro-batch of an accumulation."""
    if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def clip_and_step(
    env: StepEnv, opt: torch.optim.Optimizer, model: nn.Module, freeze: FreezeSchedule | None
) -> Tensor:
    """unscale_ -> drop frozen grads -> clip (norm returned) -> step (skipped if non-finite)."""
    env.scaler.unscale_(opt)
    if freeze is not None:
        freeze.before_step(model, env.stage_step)
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if not params:
        return torch.zeros((), device=env.device)
    clip = env.cfg.train.grad_clip if env.cfg.train.grad_clip > 0 else math.inf
    norm = torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
    if env.scaler.is_enabled():
        env.scaler.step(opt)  # skips by itself when fp16 gradients overflowed
    elif bool(torch.isfinite(norm)):
        opt.step()
    return norm


def is_bad(losses: list[float], norms: list[float], scaler_enabled: bool) -> bool:
    """A step to skip: a non-finite loss, or non-finite gradients without a GradScaler
    (with fp16 the scaler already skips overflowing steps; that is routine, not a failure)."""
    if not all(math.isfinite(v) for v in losses):
        return True
    return not scaler_enabled and not all(math.isfinite(v) for v in norms)


def hifigan_step(env: StepEnv, m: StageModules) -> StepResult:
    """Stage 1, model.acoustic = "hifigan": SoVITS against the discriminators (VITS's recipe).

    Per micro-batch: the SoVITS forward; the discriminator loss on the detached fake (backward),
    and on the last micro-batch the D step; then the generator loss through the updated D with
    the weights of `loss_weights`. Clipping after `unscale_`, norms logged.
    """
    from voicelab.models import losses as L  # looked up per call: tests replace losses.mel_l1

    t, accum = env.cfg.train, env.cfg.train.grad_accum
    assert m.disc is not None and m.disc_train is not None, "the hifigan step needs a discriminator"
    opt_g, opt_d = m.optimizers["g"], m.optimizers["d"]
    weights = loss_weights(t)
    m.model.train()
    m.freeze.before_forward(m.model, env.stage_step)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    stats, samples, gn_d = [], 0, torch.zeros((), device=env.device)
    for k in range(accum):
        last = k == accum - 1
        batch = env.batch(k)
        samples += batch.size
        with env.autocast(), no_sync(m.train, last):
            out = m.train(batch)
        y, y_hat = out.wav_real, out.wav_hat  # [B, 1, segment * hop]
        # discriminator: real vs detached fake
        with env.autocast(), no_sync(m.disc_train, last):
            real, fake, _, _ = m.disc_train(y, y_hat.detach())
            loss_d = L.discriminator_adversarial(real, fake)
        env.scaler.scale(loss_d / accum).backward()
        if last:  # D steps first, so the generator is judged by the updated D (as VITS)
            gn_d = clip_and_step(env, opt_d, m.disc, None)
        # generator: through the raw discriminator with its weights frozen, so D gets no
        # gradient and DDP's D hooks are not involved
        m.disc.requires_grad_(False)
        try:
            with env.autocast():
                _, fake_g, fmap_r, fmap_g = m.disc(y, y_hat)
                adv = L.generator_adversarial(fake_g)
                fm = L.feature_matching(fmap_r, fmap_g)
            terms = {
                "loss/mel": L.mel_l1(y_hat, y, env.cfg.features, env.cfg.audio.sample_rate),
                "loss/kl": L.kl_balanced(out.kl_terms, t.kl_balance_alpha),
                "loss/fm": fm,
                "loss/adv": adv,
                "loss/commit": out.commit_loss.float(),
            }
            loss_g = sum(weights[name] * terms[name] for name in weights)
            env.scaler.scale(loss_g / accum).backward()
        finally:
            m.disc.requires_grad_(True)
        stats.append(torch.stack([x.detach().float() for x in (loss_g, *terms.values(), loss_d)]))
    gn_g = clip_and_step(env, opt_g, m.model, m.freeze)
    env.scaler.update()
    vals = torch.cat(
        [torch.stack(stats).mean(0), gn_g.view(1).float(), gn_d.view(1).float()]
    ).tolist()
    names = ("loss/g_total", *terms, "loss/d", "grad_norm/g", "grad_norm/d")
    values = dict(zip(names, vals, strict=True))
    n_losses = len(terms) + 2
    bad = is_bad(vals[:n_losses], vals[n_losses:], env.scaler.is_enabled())
    return StepResult(values, samples, bad)


def single_optimizer_step(
    env: StepEnv, m: StageModules, opt_name: str, grad_name: str,
    logged_of: Callable[[Any], dict[str, Tensor]],
) -> StepResult:
    """One optimiser step over grad_accum micro-batches of a stage with one optimiser (the GPT;
    the world path's stage 1). `logged_of(out)` gives the logged values of one forward, the
    loss to minimise first; every "loss/*" value counts in the non-finite check."""
    accum = env.cfg.train.grad_accum
    opt = m.optimizers[opt_name]
    m.model.train()
    m.freeze.before_forward(m.model, env.stage_step)
    opt.zero_grad(set_to_none=True)
    stats, samples, names = [], 0, ()
    for k in range(accum):
        last = k == accum - 1
        batch = env.batch(k)
        samples += batch.size
        with env.autocast(), no_sync(m.train, last):
            out = m.train(batch)
        logged = logged_of(out)
        names = tuple(logged)
        env.scaler.scale(logged[names[0]] / accum).backward()
        stats.append(torch.stack([v.detach().float() for v in logged.values()]))
    gn = clip_and_step(env, opt, m.model, m.freeze)
    env.scaler.update()
    vals = torch.cat([torch.stack(stats).mean(0), gn.view(1).float()]).tolist()
    values = dict(zip((*names, f"grad_norm/{grad_name}"), vals, strict=True))
    losses = [v for name, v in values.items() if name.startswith("loss/")]
    return StepResult(values, samples, is_bad(losses, vals[-1:], env.scaler.is_enabled()))


def gpt_step(env: StepEnv, m: StageModules) -> StepResult:
    """Stage 2: teacher-forced token cross-entropy on the GPT."""
    return single_optimizer_step(
        env, m, "gpt", "gpt", lambda out: {"loss/gpt": out.loss, "acc/gpt": out.accuracy}
    )


def world_step(env: StepEnv, m: StageModules) -> StepResult:
    """Stage 1, model.acoustic = "world": WorldAcoustic regresses WORLD parameters from the
    aligned phones and prosody tokens (teacher forcing); no discriminator. The loss is
    `world_loss_weights` over `models.world_acoustic.world_losses`."""
    from voicelab.models.world_acoustic import world_losses

    weights = world_loss_weights(env.cfg.train)

    def logged_of(out: Any) -> dict[str, Tensor]:
        terms = world_losses(out, m.model.layout)
        return {"loss/g_total": sum(weights[name] * terms[name] for name in weights), **terms}

    return single_optimizer_step(env, m, "g", "g", logged_of)


# stage 1 by model.acoustic; stage 2 is the token prior of the model (SemanticGPT / AlignedGPT),
# whose forward gives the same GPTOutput, so one step serves both
ACOUSTIC_STEPS: dict[str, StepFn] = {"hifigan": hifigan_step, "world": world_step}


def acoustic_kind(cfg: Config) -> str:
    """model.acoustic, "hifigan" for configs from before that setting existed."""
    return str(getattr(cfg.model, "acoustic", "hifigan"))


def step_for(cfg: Config, stage: str) -> StepFn:
    """The step function of `stage` ("sovits" = stage 1, "gpt" = stage 2) for cfg's model."""
    if stage == "gpt":
        return gpt_step
    kind = acoustic_kind(cfg)
    if kind not in ACOUSTIC_STEPS:
        from voicelab.errors import VoicelabError

        raise VoicelabError(
            f"model.acoustic={kind!r} has no training step yet (known: {', '.join(ACOUSTIC_STEPS)})"
        )
    return ACOUSTIC_STEPS[kind]
