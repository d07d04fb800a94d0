"""The two-stage trainer: SoVITS (GAN) -> token extraction -> GPT, with exact resume.

An explicit loop, no framework, split like torchtune's recipes:

    trainer = Trainer(voice, cfg, TrainOptions(run="r1", resume="auto"))
    code = trainer.run()          # setup() -> train() -> cleanup(); returns an EXIT_* code

Per optimiser step (stage 1): `grad_accum` micro-batches; for each, the SoVITS forward, the
discriminator loss on the detached fake (backward), and on the last micro-batch the D step; then
the generator loss through the (updated) discriminator: 45 * mel L1 + KL (balanced) + 2 *
feature matching + LSGAN adversarial + RVQ commitment (weights cfg.train.c_*). Clipping after
`unscale_`, norms logged. Stage 2 is plain teacher-forced token cross-entropy on the GPT.

Exact resume (CPU: N steps + resume + N steps == 2N steps, bit for bit):
- data order is a pure function of (seed, epoch, rank) and the checkpoint stores (epoch,
  batches consumed); augmentation draws from a generator seeded by (seed, global step, rank);
- every state (models, optimisers, schedules as step counts, scaler, EMA, RNGs) is saved;
- evaluation, samples and saving run under `fork_rng`, so they consume no training randomness
  and a save at an odd step (Ctrl-C) changes nothing that follows.

The step-boundary sequence is: optimiser step -> EMA -> counters -> log -> eval -> save ->
stop check. Only rank 0 writes files; decisions that all ranks must share (stop, NaN rollback)
are all-reduced.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from voicelab import __version__
from voicelab.config import Config, config_to_dict, save_config_json
from voicelab.data.augment import augment_batch, step_generator
from voicelab.data.batch import Batch
from voicelab.data.dataset import VoiceData, epoch_batches
from voicelab.errors import EXIT_OK, VoicelabError
from voicelab.fileio import write_atomic
from voicelab.training import checkpoint as ck
from voicelab.training import distributed as dd
from voicelab.training import runfiles
from voicelab.training.ema import EMA
from voicelab.training.interrupt import RunLock, StopSignals
from voicelab.training.metrics import Meter, RunReporter, ThroughputClock
from voicelab.training.optim import (
    FreezeSchedule,
    build_gan_optimizers,
    build_gpt_optimizer,
    current_lrs,
)
from voicelab.training.schedules import PlateauReducer, Schedule, set_lr
from voicelab.workspace import Voice

STAGES = ("sovits", "gpt")
TOKENS_FILE = "tokens.pt"


@dataclass
class TrainOptions:
    """What the `train` command asks for beyond the config."""

    run: str | None = None  # run name; None: a new timestamped run (or the latest with resume)
    stage: str | None = None  # "sovits" | "gpt" | None (both)
    from_path: Path | None = None  # weights only: a checkpoint .pt or an export .safetensors
    resume: str | None = None  # None | "auto" | a checkpoint path
    tensorboard: bool = True


@dataclass
class StageState:
    """Per-stage bookkeeping (plain numbers: saved in the checkpoint's extra)."""

    name: str
    total: int
    plateau: PlateauReducer
    best_val: float = math.inf
    evals_without_gain: int = 0
    last_val: float | None = None
    stopped_early: bool = False


def default_run_name() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S")


def _amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """None = fp32. bf16 where the GPU supports it, else fp16 (with a GradScaler)."""
    p = cfg.train.precision
    if device.type != "cuda" or p == "fp32":
        return None
    if p == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if p == "bf16" else torch.float16


class Trainer:
    def __init__(self, voice: Voice, cfg: Config, opts: TrainOptions | None = None) -> None:
        self.voice, self.cfg, self.opts = voice, cfg, opts or TrainOptions()
        if self.opts.stage not in (None, *STAGES):
            raise VoicelabError(f"--stage {self.opts.stage!r}: use sovits or gpt")
        if self.opts.from_path is not None and self.opts.resume is not None:
            raise VoicelabError(
                "--from starts a new run from weights and --resume continues a run: use one"
            )
        self.global_step = 0
        self.stage = "sovits"
        self.stage_step = 0
        self.epoch = 0
        self.epoch_pos = 0
        self.lr_scale = 1.0  # halved by each NaN rollback
        self.rollbacks = 0
        self.bad_in_a_row = 0
        self.skipped_steps = 0
        self.last_metrics: dict[str, float] = {}
        self.notice = ""  # the last event worth showing (rollback, early stop): kept in status
        self._lock: RunLock | None = None
        self._epoch_cache: tuple[int, list[list[int]]] | None = None
        self._last_save_time = time.time()
        self._last_status_time = 0.0

    # =======================================================================================
    # setup
    # =======================================================================================

    def setup(self) -> None:
        cfg = self.cfg
        self.info = dd.env_dist_info()
        self.device = dd.resolve_device(cfg.train.device, self.info)
        self.info = dd.init_distributed(self.device)
        self.is_main = self.info.is_main
        run = self.opts.run
        if run is None and self.opts.resume == "auto" and self.voice.list_runs():
            run = self.voice.list_runs()[-1]  # the newest run: what "continue" means
        run = dd.broadcast_object(run or default_run_name())
        self.run_name = run
        self.run_dir = self.voice.run_dir(run)
        if self.is_main:
            self.voice.runs.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(self.run_dir).acquire()
        dd.barrier()
        if self.opts.resume is None and ck.list_checkpoints(self.run_dir, verify=False):
            # checked before any file is written: the existing run's status stays as it was
            raise VoicelabError(
                f"run {self.run_name} already has checkpoints: add --resume auto to continue "
                "it, or choose a new --run name (nothing was overwritten)"
            )
        self.rep = RunReporter(
            self.run_dir, enabled=self.is_main, tensorboard=self.opts.tensorboard
        )
        self.rep.status("starting", stage=None, step=0, total_steps=0, message="loading data")

        self._seed_everything(cfg.train.seed)
        self.data = VoiceData.load(self.voice, cfg)
        self.rep.log(
            f"voice {self.voice.name}: {len(self.data.train)} training and {len(self.data.val)} "
            f"validation slices; device {self.device}, {self.info.world_size} process(es)"
        )
        from voicelab.models.build import build_models  # the model engineers' single builder

        models = build_models(cfg)
        self.sovits = models.sovits.to(self.device)
        self.disc = models.disc.to(self.device)
        self.gpt = models.gpt.to(self.device)
        self.amp_dtype = _amp_dtype(cfg, self.device)
        if cfg.train.precision in ("bf16", "fp16") and self.device.type != "cuda":
            self.rep.warn(f"train.precision={cfg.train.precision} needs CUDA; training in fp32")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.ema_sovits = EMA(self.sovits, cfg.train.ema_decay)
        self.ema_gpt = EMA(self.gpt, cfg.train.ema_decay)
        self.stages = {
            "sovits": StageState("sovits", cfg.train.sovits_steps, self._plateau()),
            "gpt": StageState("gpt", cfg.train.gpt_steps, self._plateau()),
        }
        self.plan = [s for s in STAGES if self.opts.stage in (None, s) and self.stages[s].total > 0]
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

        resume_state = self._find_resume_state()
        if resume_state is not None:
            self._restore(resume_state)
        elif self.opts.from_path is not None:
            note = load_initial_weights(self.opts.from_path, cfg, self.sovits, self.disc, self.gpt)
            self.ema_sovits.reset(self.sovits)
            self.ema_gpt.reset(self.gpt)
            self.rep.log(f"initial weights from {self.opts.from_path} ({note}); fresh optimisers")
        if self.is_main:
            save_config_json(cfg, self.run_dir / runfiles.CONFIG)

    def _plateau(self) -> PlateauReducer:
        t = self.cfg.train
        return PlateauReducer(t.plateau_patience, t.plateau_factor)

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _find_resume_state(self) -> dict[str, Any] | None:
        resume = self.opts.resume
        if resume is None:
            return None  # (setup refused a run with checkpoints before writing anything)
        if resume == "auto":
            point = ck.find_resume(self.run_dir)
            if point is None:
                self.rep.log(f"run {self.run_name} has no checkpoint yet: starting fresh")
                return None
            for path, reason in point.skipped:
                self.rep.warn(f"skipped damaged checkpoint {path.name}: {reason}")
            self.rep.log(f"resuming from {point.path.name}")
            return point.state
        self.rep.log(f"resuming from {resume}")
        return ck.load_checkpoint(Path(resume))

    # =======================================================================================
    # checkpoint state
    # =======================================================================================

    def _state(self, val_loss: float | None) -> dict[str, Any]:
        sv, gp = dd.unwrap(self.sovits), dd.unwrap(self.gpt)
        sched = {
            name: {"stage_step": self.stage_step, "plateau": st.plateau.state_dict()}
            for name, st in self.stages.items()
        }
        extra = {
            "ema_updates": {"sovits": self.ema_sovits.num_updates, "gpt": self.ema_gpt.num_updates},
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "skipped_steps": self.skipped_steps,
            "stages": {
                n: {
                    "best_val": st.best_val,
                    "evals_without_gain": st.evals_without_gain,
                    "stopped_early": st.stopped_early,
                    "last_val": st.last_val,
                }
                for n, st in self.stages.items()
            },
            "run": self.run_name,
        }
        return {
            ck.K_FORMAT: ck.FORMAT_VERSION,
            ck.K_STAGE: self.stage,
            ck.K_STEP: self.global_step,
            ck.K_STAGE_STEP: self.stage_step,
            ck.K_EPOCH: self.epoch,
            ck.K_EPOCH_POS: self.epoch_pos,
            ck.K_MODELS: {
                "sovits": sv.state_dict(),
                "disc": dd.unwrap(self.disc).state_dict(),
                "gpt": gp.state_dict(),
            },
            ck.K_OPTIMIZERS: {k: o.state_dict() for k, o in self.optimizers.items()},
            ck.K_SCHEDULERS: sched,
            ck.K_SCALER: self.scaler.state_dict() if self.scaler.is_enabled() else {},
            # EMA weights as plain state dicts (what export reads); the model's own when EMA is off
            ck.K_EMA: {"sovits": self.ema_sovits.weights(sv), "gpt": self.ema_gpt.weights(gp)},
            ck.K_RNG: ck.capture_rng(),
            ck.K_METRICS: dict(self.last_metrics),
            ck.K_CONFIG: config_to_dict(self.cfg),
            ck.K_DATASET_HASH: self.data.dataset_hash,
            ck.K_VERSION: __version__,
            ck.K_VAL_LOSS: val_loss,
            ck.K_TIME: time.time(),
            ck.K_EXTRA: extra,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue a run: restore everything the state holds (stage optimisers built here)."""
        ck.check_compatible(state[ck.K_CONFIG], config_to_dict(self.cfg))
        if state[ck.K_DATASET_HASH] != self.data.dataset_hash:
            self.rep.warn(
                "the voice's slices or transcripts changed since this checkpoint: training "
                "continues on the current data (the resume is not exact)"
            )
        m = state[ck.K_MODELS]
        self.sovits.load_state_dict(m["sovits"])
        self.disc.load_state_dict(m["disc"])
        self.gpt.load_state_dict(m["gpt"])
        extra = state.get(ck.K_EXTRA) or {}
        for name, ema in (("sovits", self.ema_sovits), ("gpt", self.ema_gpt)):
            if ema.enabled:
                ema.shadow = {
                    k: (v.float() if v.is_floating_point() else v).to(self.device).clone()
                    for k, v in state[ck.K_EMA][name].items()
                }
                ema.num_updates = int(extra.get("ema_updates", {}).get(name, 0))
        self.stage = state[ck.K_STAGE]
        self.global_step = state[ck.K_STEP]
        self.stage_step = state[ck.K_STAGE_STEP]
        self.epoch, self.epoch_pos = state[ck.K_EPOCH], state[ck.K_EPOCH_POS]
        self.lr_scale = float(extra.get("lr_scale", 1.0))
        self.rollbacks = max(self.rollbacks, int(extra.get("rollbacks", 0)))
        self.skipped_steps = int(extra.get("skipped_steps", 0))
        for n, st in self.stages.items():
            s = (extra.get("stages") or {}).get(n, {})
            st.best_val = float(s.get("best_val", math.inf))
            st.evals_without_gain = int(s.get("evals_without_gain", 0))
            st.stopped_early = bool(s.get("stopped_early", False))
            st.last_val = s.get("last_val")
            sched = state[ck.K_SCHEDULERS].get(n)
            if sched:
                st.plateau.load_state_dict(sched["plateau"])
        self.last_metrics = dict(state.get(ck.K_METRICS) or {})
        self._build_stage(self.stage)
        for k, sd in state[ck.K_OPTIMIZERS].items():
            if k in self.optimizers:
                self.optimizers[k].load_state_dict(sd)
        if self.scaler.is_enabled() and state[ck.K_SCALER]:
            self.scaler.load_state_dict(state[ck.K_SCALER])
        ck.restore_rng(state[ck.K_RNG])

    # =======================================================================================
    # data
    # =======================================================================================

    def _next_batch(self, with_tokens: bool) -> Batch:
        """The next micro-batch of this rank; crosses epochs. Advances (epoch, epoch_pos)."""
        bs = self.cfg.train.batch_size
        while True:
            if self._epoch_cache is None or self._epoch_cache[0] != self.epoch:
                order = epoch_batches(
                    len(self.data.train), bs, self.cfg.train.seed, self.epoch,
                    self.info.rank, self.info.world_size,
                )  # fmt: skip
                self._epoch_cache = (self.epoch, order)
            order = self._epoch_cache[1]
            if self.epoch_pos < len(order):
                break
            self.epoch += 1
            self.epoch_pos = 0
        idx = [self.data.train[i] for i in order[self.epoch_pos]]
        self.epoch_pos += 1
        # stage 2 (with_tokens) needs no spectrograms or audio: skip copying them
        return self.data.collate(idx, self.epoch, with_tokens=with_tokens, audio=not with_tokens)

    # =======================================================================================
    # stages
    # =======================================================================================

    def _build_stage(self, stage: str) -> None:
        """Optimisers, freeze schedule and DDP wrappers of one stage."""
        t = self.cfg.train
        self.optimizers = {}
        # names of train.freeze: "gpt.<module>" for the GPT, anything else for SoVITS
        gpt_names = tuple(n[4:] for n in t.freeze if n.startswith("gpt."))
        sv_names = tuple(n.removeprefix("sovits.") for n in t.freeze if not n.startswith("gpt."))
        if stage == "sovits":
            self.sovits.train()
            self.disc.train()
            self.optimizers["g"], self.optimizers["d"] = build_gan_optimizers(
                self.sovits, self.disc, t
            )
            self.freeze = FreezeSchedule(sv_names, t.unfreeze_after)
            self.freeze.modules(self.sovits)  # unknown names fail now, not mid-run
            self.g_train = dd.wrap_ddp(self.sovits, self.device, self.info)
            self.d_train = dd.wrap_ddp(self.disc, self.device, self.info)
        else:
            self.gpt.train()
            self.optimizers["gpt"] = build_gpt_optimizer(self.gpt, t)
            self.freeze = FreezeSchedule(gpt_names, t.unfreeze_after)
            self.freeze.modules(self.gpt)
            self.gpt_train = dd.wrap_ddp(self.gpt, self.device, self.info)
        self.schedule = Schedule.from_config(t, self.stages[stage].total)

    def train(self) -> int:
        """Run the planned stages. Returns EXIT_OK, or the stop reason's exit code."""
        with StopSignals(self.run_dir if self.is_main else None) as stop:
            self.stop = stop
            for stage in self.plan:
                if STAGES.index(stage) < STAGES.index(self.stage):
                    continue  # a resumed run is already past this stage
                if stage == "gpt":
                    self._prepare_gpt_stage()
                elif self.stage != stage or not self.optimizers:
                    self._enter_stage(stage)
                code = self._run_stage(stage)
                if code is not None:
                    return code
            self.rep.log("training finished")
            done = "training finished" + (f"; earlier: {self.notice}" if self.notice else "")
            self.rep.status("finished", **self._status_fields(), message=done)
        return EXIT_OK

    def _enter_stage(self, stage: str) -> None:
        if self.stage != stage:
            self.stage, self.stage_step, self.epoch, self.epoch_pos = stage, 0, 0, 0
            self._epoch_cache = None
        self._build_stage(stage)

    def _prepare_gpt_stage(self) -> None:
        """Extract tokens + styles with the SoVITS EMA weights, then switch to stage 2."""
        tokens, styles = self._extract_tokens()
        self.data.set_tokens(tokens, styles)
        if self.is_main:
            keys = sorted(tokens)
            blob = {"keys": keys, "tokens": [tokens[k] for k in keys],
                    "styles": torch.stack([styles[k] for k in keys])}  # fmt: skip
            write_atomic(self.run_dir / TOKENS_FILE, lambda f: torch.save(blob, f))
            self.rep.log(f"extracted semantic tokens of {len(keys)} slices -> {TOKENS_FILE}")
        self.g_train = self.d_train = None  # stage-1 DDP wrappers and optimisers are done
        if self.stage != "gpt":
            self._enter_stage("gpt")
        elif "gpt" not in self.optimizers:
            self._build_stage("gpt")

    @torch.no_grad()
    def _extract_tokens(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """First-quantizer tokens [T_t] and style vectors [style_dim] of every slice (EMA SoVITS).

        Styles come from each slice's own mel. Runs under fork_rng: a resumed run re-extracts
        at the start of stage 2 without consuming any training randomness.
        """
        tokens, styles = {}, {}
        with self._fork_rng(), self.ema_sovits.applied(self.sovits) as sv:
            was = sv.training
            sv.eval()
            for item in self.data.items:
                spec = item.spec[None].to(self.device)
                lens = torch.tensor([item.frames], device=self.device)
                wav = item.wav[None, None].to(self.device)
                toks, tlens = sv.extract_tokens(spec, lens, wav)
                mel = item.mel[None].to(self.device)
                tokens[item.key] = toks[0, : int(tlens[0])].cpu()
                styles[item.key] = sv.style(mel, lens)[0].float().cpu()
            sv.train(was)
        return tokens, styles

    # =======================================================================================
    # the loop
    # =======================================================================================

    def _run_stage(self, stage: str) -> int | None:
        """Train one stage to its total. Returns an exit code when stopped, else None."""
        st = self.stages[stage]
        if st.stopped_early or self.stage_step >= st.total:
            return None
        self.rep.log(f"stage {stage}: steps {self.stage_step + 1}..{st.total}")
        self.meter, self.clock = Meter(), ThroughputClock()
        self._saved_step = -1
        while self.stage_step < st.total:
            factor = self.schedule(self.stage_step) * st.plateau.scale * self.lr_scale
            for opt in self.optimizers.values():
                set_lr(opt, factor)
            values, samples = self._gan_step() if stage == "sovits" else self._gpt_step()
            bad = dd.any_rank(values.pop("_bad") > 0, self.device)
            if bad:
                self.skipped_steps += 1
                self.bad_in_a_row += 1
            else:
                self.bad_in_a_row = 0
                self.meter.add(values)
                (self.ema_sovits if stage == "sovits" else self.ema_gpt).update(
                    self.sovits if stage == "sovits" else self.gpt
                )
            self.stage_step += 1
            self.global_step += 1
            self.clock.tick(samples * self.info.world_size)
            if self.bad_in_a_row >= self.cfg.train.nan_patience:
                self._rollback(stage)
                if self.stage != stage:  # rolled back to the end of stage 1
                    self._prepare_gpt_stage()
                continue
            code = self._step_boundary(stage, st)
            if code is not None:
                return code
            if st.stopped_early:
                break
        if self._saved_step != self.global_step:
            self._save(st.last_val)  # the end of every stage is a checkpoint
        return None

    def _step_boundary(self, stage: str, st: StageState) -> int | None:
        t = self.cfg.train
        end = self.stage_step >= st.total
        if self.stage_step % t.log_every == 0 or end:
            self._log(stage, st)
        if self.stage_step % t.eval_every == 0 or end:
            self._evaluate(stage, st)
        minutes = (time.time() - self._last_save_time) / 60.0
        timed = self.is_main and t.save_every_minutes > 0 and minutes >= t.save_every_minutes
        if self.stage_step % t.save_every == 0 or timed or end or st.stopped_early:
            self._save(st.last_val if self.stage_step % t.eval_every == 0 or end else None)
        elif self.is_main and time.time() - self._last_status_time >= 2.0:
            self._status("running")  # heartbeat between log lines
        local = self.stop.check(self.run_dir if self.is_main else None) is not None
        if dd.any_rank(local, self.device):
            reason = dd.broadcast_object(self.stop.reason) or "sigterm"
            self.stop.request(reason)
            if self._saved_step != self.global_step:
                self._save(None)
            state = "paused" if reason == "pause" else "stopped"
            msg = (
                f"{reason}: checkpoint saved at step {self.global_step}; resume with --resume auto"
            )
            self.rep.log(msg)
            self._status(state, message=msg)
            return self.stop.exit_code
        return None

    # ---------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @staticmethod
    def _no_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
        """DDP's no_sync() for all but the last micro-batch of an accumulation."""
        if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()

    def _fork_rng(self) -> contextlib.AbstractContextManager:
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices)

    def _augmented(self, k: int, with_tokens: bool) -> Batch:
        t = self.cfg.train
        batch = self._next_batch(with_tokens)
        gen = step_generator(t.seed, self.global_step * t.grad_accum + k, self.info.rank)
        return augment_batch(batch, t, gen).to(self.device, non_blocking=True)

    def _clip_and_step(
        self, opt: torch.optim.Optimizer, model: nn.Module, freeze: FreezeSchedule | None
    ) -> Tensor:
        """unscale_ -> drop frozen grads -> clip (norm logged) -> step (skipped if non-finite)."""
        self.scaler.unscale_(opt)
        if freeze is not None:
            freeze.before_step(model, self.stage_step)
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        if self.scaler.is_enabled():
            self.scaler.step(opt)  # skips by itself when fp16 gradients overflowed
        elif bool(torch.isfinite(norm)):
            opt.step()
        return norm

    def _gan_step(self) -> tuple[dict[str, float], int]:
        """One stage-1 optimiser step over grad_accum micro-batches. Returns (values, samples)."""
        from voicelab.models import losses as L

        t, accum = self.cfg.train, self.cfg.train.grad_accum
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        G, D, d_raw = self.g_train, self.d_train, self.disc
        self.sovits.train()
        self.freeze.before_forward(self.sovits, self.stage_step)
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        stats, samples, gn_d = [], 0, torch.zeros((), device=self.device)
        for k in range(accum):
            last = k == accum - 1
            batch = self._augmented(k, with_tokens=False)
            samples += batch.size
            with self._autocast(), self._no_sync(G, last):
                out = G(batch)
            y, y_hat = out.wav_real, out.wav_hat  # [B, 1, segment * hop]
            # discriminator: real vs detached fake
            with self._autocast(), self._no_sync(D, last):
                real, fake, _, _ = D(y, y_hat.detach())
                loss_d = L.discriminator_adversarial(real, fake)
            self.scaler.scale(loss_d / accum).backward()
            if last:  # D steps first, so the generator is judged by the updated D (as VITS)
                gn_d = self._clip_and_step(opt_d, self.disc, None)
            # generator: through the raw discriminator with its weights frozen, so D gets no
            # gradient and DDP's D hooks are not involved
            d_raw.requires_grad_(False)
            try:
                with self._autocast():
                    _, fake_g, fmap_r, fmap_g = d_raw(y, y_hat)
                    adv = L.generator_adversarial(fake_g)
                    fm = L.feature_matching(fmap_r, fmap_g)
                mel = L.mel_l1(y_hat, y, self.cfg.features, self.cfg.audio.sample_rate)
                kl = L.kl_balanced(out.kl_terms, t.kl_balance_alpha)
                commit = out.commit_loss.float()
                loss_g = t.c_mel * mel + t.c_kl * kl + t.c_fm * fm + adv + t.c_commit * commit
                self.scaler.scale(loss_g / accum).backward()
            finally:
                d_raw.requires_grad_(True)
            stats.append(
                torch.stack(
                    [x.detach().float() for x in (loss_g, mel, kl, fm, adv, commit, loss_d)]
                )
            )
        gn_g = self._clip_and_step(opt_g, self.sovits, self.freeze)
        self.scaler.update()
        vals = torch.cat(
            [torch.stack(stats).mean(0), gn_g.view(1).float(), gn_d.view(1).float()]
        ).tolist()
        names = ("loss/g_total", "loss/mel", "loss/kl", "loss/fm", "loss/adv", "loss/commit", "loss/d",
                 "grad_norm/g", "grad_norm/d")  # fmt: skip
        values = dict(zip(names, vals, strict=False))
        values["_bad"] = float(self._is_bad(vals[:7], vals[7:]))
        return values, samples

    def _gpt_step(self) -> tuple[dict[str, float], int]:
        """One stage-2 optimiser step: teacher-forced token cross-entropy."""
        accum = self.cfg.train.grad_accum
        opt = self.optimizers["gpt"]
        self.gpt.train()
        self.freeze.before_forward(self.gpt, self.stage_step)
        opt.zero_grad(set_to_none=True)
        stats, samples = [], 0
        for k in range(accum):
            last = k == accum - 1
            batch = self._augmented(k, with_tokens=True)
            samples += batch.size
            with self._autocast(), self._no_sync(self.gpt_train, last):
                out = self.gpt_train(batch)
            self.scaler.scale(out.loss / accum).backward()
            stats.append(torch.stack([out.loss.detach().float(), out.accuracy.detach().float()]))
        gn = self._clip_and_step(opt, self.gpt, self.freeze)
        self.scaler.update()
        vals = torch.cat([torch.stack(stats).mean(0), gn.view(1).float()]).tolist()
        values = {"loss/gpt": vals[0], "acc/gpt": vals[1], "grad_norm/gpt": vals[2]}
        values["_bad"] = float(self._is_bad(vals[:1], vals[2:]))
        return values, samples

    def _is_bad(self, losses: list[float], norms: list[float]) -> bool:
        """A step to skip: a non-finite loss, or non-finite gradients without a GradScaler
        (with fp16 the scaler already skips overflowing steps; that is routine, not a failure)."""
        if not all(math.isfinite(v) for v in losses):
            return True
        return not self.scaler.is_enabled() and not all(math.isfinite(v) for v in norms)

    def _rollback(self, stage: str) -> None:
        """Repeated non-finite steps: back to the last good checkpoint with half the LR."""
        t = self.cfg.train
        n = self.bad_in_a_row
        self.rollbacks += 1
        if self.rollbacks > t.max_rollbacks:
            raise VoicelabError(
                f"training keeps diverging ({n} non-finite steps in a row after {t.max_rollbacks} "
                "rollbacks, each halving the learning rate): lower train.lr_g / train.lr_d / "
                "train.lr_gpt, set train.precision=fp32, and check the slices for clipped or "
                "silent audio"
            )
        dd.barrier()  # rank 0 may still be writing the checkpoint others are about to read
        point = ck.find_resume(self.run_dir)
        if point is None:
            raise VoicelabError(
                f"training diverged ({n} non-finite steps in a row at step {self.global_step}) "
                "before the first checkpoint: lower the learning rates (train.lr_g, train.lr_d, "
                "train.lr_gpt) or set train.precision=fp32"
            )
        # run-level counters survive the rollback; everything else comes from the checkpoint
        scale, rollbacks, skipped = self.lr_scale * 0.5, self.rollbacks, self.skipped_steps
        self._restore(point.state)
        self.lr_scale, self.rollbacks, self.bad_in_a_row = scale, rollbacks, 0
        self.skipped_steps = skipped
        self._epoch_cache = None
        msg = (
            f"{n} non-finite steps in a row: rolled back to {point.path.name} (step "
            f"{self.global_step}) with the learning rate x{self.lr_scale:g} "
            f"(rollback {self.rollbacks} of at most {t.max_rollbacks})"
        )
        self.rep.warn(msg)
        self.notice = msg
        self._status("running")
        self.meter.reset()

    # =======================================================================================
    # reporting, evaluation, saving
    # =======================================================================================

    def _progress(self) -> tuple[int, int]:
        """(steps done, steps planned) over the stages of this invocation."""
        done = total = 0
        for s in self.plan:
            total += self.stages[s].total
            if STAGES.index(s) < STAGES.index(self.stage):
                done += self.stages[s].total
            elif s == self.stage:
                done += min(self.stage_step, self.stages[s].total)
        return done, total

    def _status_fields(self) -> dict[str, Any]:
        done, total = self._progress()
        return {
            "stage": self.stage,
            "step": done,
            "total_steps": total,
            "stage_step": self.stage_step,
            "stage_total": self.stages[self.stage].total,
            "global_step": self.global_step,
            "epoch": self.epoch,
            "run": self.run_name,
            "skipped_steps": self.skipped_steps,
            "rollbacks": self.rollbacks,
            "eta_s": self.clock.eta(total - done) if hasattr(self, "clock") else None,
        }

    def _status(self, state: str, message: str = "") -> None:
        """status.json; without a message, the last notice stays visible to the UI."""
        self._last_status_time = time.time()
        self.rep.status(state, **self._status_fields(), message=message or self.notice)

    def _log(self, stage: str, st: StageState) -> None:
        means = dd.all_reduce_mean(self.meter.means(), self.device)
        self.meter.reset()
        rates = self.clock.rates()
        lrs = {f"lr/{k}": v for o in self.optimizers.values() for k, v in current_lrs(o).items()}
        record = {
            "step": self.global_step,
            "stage": stage,
            "stage_step": self.stage_step,
            "epoch": self.epoch,
            **means,
            **lrs,
            **rates,
            "skipped_steps": self.skipped_steps,
        }
        self.last_metrics = {k: v for k, v in record.items() if isinstance(v, int | float)}
        self.rep.metrics(record)
        shown = " ".join(
            f"{k.split('/', 1)[1]}={v:.4g}" for k, v in means.items() if k.startswith("loss/")
        )
        self.rep.log(
            f"[{stage}] step {self.stage_step}/{st.total} {shown} "
            f"lr={max(lrs.values(), default=0):.3g} {rates['samples_per_s']:.1f} samples/s"
        )
        self._status("running")

    @torch.no_grad()
    def _validation_loss(self, stage: str) -> float | None:
        """Mean loss over the held-out slices with the EMA weights (None without val slices).

        Stage 1: mel L1 of the decoded window; stage 2: token cross-entropy. Seeded and run
        under fork_rng, so it is comparable between evaluations and costs no training RNG.
        """
        from voicelab.models.losses import mel_l1

        if not self.data.val:
            return None
        model, ema = (
            (self.sovits, self.ema_sovits) if stage == "sovits" else (self.gpt, self.ema_gpt)
        )
        total, count = 0.0, 0
        bs = self.cfg.train.batch_size
        with self._fork_rng(), ema.applied(model) as m:
            torch.manual_seed(self.cfg.train.seed)
            was = m.training
            m.eval()
            try:
                for i in range(0, len(self.data.val), bs):
                    idx = self.data.val[i : i + bs]
                    gpt = stage == "gpt"
                    batch = self.data.collate(idx, 0, with_tokens=gpt, audio=not gpt).to(
                        self.device
                    )
                    with self._autocast():
                        if stage == "sovits":
                            out = m(batch)
                            loss = mel_l1(
                                out.wav_hat,
                                out.wav_real,
                                self.cfg.features,
                                self.cfg.audio.sample_rate,
                            )
                        else:
                            loss = m(batch).loss
                    total += float(loss) * len(idx)
                    count += len(idx)
            finally:
                m.train(was)
        return total / max(count, 1)

    def _evaluate(self, stage: str, st: StageState) -> None:
        val = self._validation_loss(stage)
        if val is None:
            return
        st.last_val = val
        self.rep.metrics({"step": self.global_step, "stage": stage, "stage_step": self.stage_step,
                          f"val/{stage}": val})  # fmt: skip
        self.rep.log(f"[{stage}] validation loss {val:.4f} at step {self.stage_step}")
        if st.plateau.observe(val):
            self.rep.log(f"[{stage}] validation plateau: learning rate x{st.plateau.scale:g}")
        if val < st.best_val * (1.0 - 1e-3):
            st.best_val, st.evals_without_gain = val, 0
        else:
            st.evals_without_gain += 1
            patience = self.cfg.train.early_stop_patience
            if patience > 0 and st.evals_without_gain >= patience:
                st.stopped_early = True
                self.notice = (
                    f"[{stage}] early stop: no validation gain in {patience} evaluations "
                    f"(best {st.best_val:.4f})"
                )
                self.rep.log(self.notice)

    def _save(self, val_loss: float | None) -> None:
        """Checkpoint (rank 0), then an audio sample with the EMA weights."""
        self._saved_step = self.global_step
        self._last_save_time = time.time()
        if not self.is_main:
            return
        self._status("saving")
        path = ck.save_checkpoint(
            self.run_dir, self._state(val_loss), keep_last=self.cfg.train.keep_last
        )
        self.rep.log(f"saved {path.name}")
        self._sample()
        self._status("running")

    def _sample(self) -> None:
        """samples/step-XXXXXXXX.wav; a failure is logged, never fatal."""
        from voicelab.audio.io import write_wav

        out = self.run_dir / runfiles.SAMPLES / f"step-{self.global_step:08d}.wav"
        try:
            with self._fork_rng(), torch.no_grad():
                wav = self._make_sample()
            write_wav(out, wav, self.cfg.audio.sample_rate)
        except Exception as e:  # noqa: BLE001 - a sample must never end a training run
            self.rep.warn(f"could not make the audio sample at step {self.global_step}: {e}")

    def _make_sample(self) -> np.ndarray:
        """Stage 1: re-synthesis of a held-out slice from its tokens (SoVITS alone cannot read
        new text). Stage 2: cfg.train.sample_text spoken by GPT + SoVITS, prompted by that slice."""
        from voicelab.data.dataset import PhonemeCache

        dev, cfg = self.device, self.cfg
        i = (self.data.val or self.data.train)[0]
        item = self.data.items[i]
        ref = self.data.reference(i, 0)[None].to(dev)
        ref_lens = torch.tensor([ref.shape[-1]], device=dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(cfg.train.seed)
        with self.ema_sovits.applied(self.sovits) as sv:
            was = sv.training
            sv.eval()
            try:
                spec = item.spec[None].to(dev)
                toks, tlens = sv.extract_tokens(
                    spec, torch.tensor([item.frames], device=dev), item.wav[None, None].to(dev)
                )
                phones, langs = item.phone_ids, item.lang_ids
                if self.stage == "gpt":
                    lang = cfg.text.default_lang
                    ids, lids = PhonemeCache()(cfg.train.sample_text, lang, "train.sample_text")
                    phones, langs = torch.tensor(ids), torch.tensor(lids)
                    style = sv.style(ref, ref_lens)[0]
                    with self.ema_gpt.applied(self.gpt) as g:
                        gw = g.training
                        g.eval()
                        try:
                            res = g.generate(
                                torch.cat([item.phone_ids, phones]).to(dev),
                                torch.cat([item.lang_ids, langs]).to(dev),
                                style,
                                toks[0, : int(tlens[0])],
                                top_k=cfg.synth.top_k, top_p=cfg.synth.top_p,
                                temperature=cfg.synth.temperature,
                                repetition_penalty=cfg.synth.repetition_penalty,
                                max_new_tokens=max(8, int(cfg.synth.max_tokens_per_phone * len(ids))),
                                generator=gen,
                            )  # fmt: skip
                        finally:
                            g.train(gw)
                    if res.tokens.numel() == 0:
                        raise VoicelabError("the GPT produced no tokens yet")
                    toks, tlens = res.tokens[None], torch.tensor([res.tokens.numel()], device=dev)
                wav = sv.infer(
                    toks, tlens, phones[None].to(dev), torch.tensor([len(phones)], device=dev),
                    langs[None].to(dev), ref, ref_lens, generator=gen,
                )  # fmt: skip
            finally:
                sv.train(was)
        return wav[0, 0].float().cpu().clamp(-1, 1).numpy()

    # =======================================================================================
    # cleanup and entry point
    # =======================================================================================

    def cleanup(self) -> None:
        rep = getattr(self, "rep", None)
        if rep is not None:
            rep.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        dd.cleanup()

    def run(self) -> int:
        """setup -> train -> cleanup. A failure is written to status.json before it propagates."""
        try:
            self.setup()
            if (
                self.plan == ["gpt"]
                and self.stage == "sovits"
                and self.stage_step == 0
                and self.opts.from_path is None
            ):
                raise VoicelabError(
                    "--stage gpt needs a trained SoVITS: pass --from a checkpoint or export, or "
                    "resume a run that finished the sovits stage (--resume auto)"
                )
            return self.train()
        except KeyboardInterrupt:
            self._final_status(
                "stopped", "interrupted by a second Ctrl-C (the last checkpoint is intact)"
            )
            raise
        except Exception as e:
            self._final_status("failed", str(e))
            raise
        finally:
            self.cleanup()

    def _final_status(self, state: str, message: str) -> None:
        if getattr(self, "rep", None) is None:
            return
        self.rep.log(f"{state}: {message}")
        fields = self._status_fields() if hasattr(self, "stages") else {}
        self.rep.status(state, **fields, message=message)


def _load_strict(module: nn.Module, sd: dict[str, Tensor], name: str, path: Path) -> None:
    try:
        module.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "shape mismatch"
        raise VoicelabError(
            f"--from {path}: the {name} weights do not fit the model of this preset ({first}); "
            "train with the preset those weights were made with"
        ) from None


def load_initial_weights(
    path: Path, cfg: Config, sovits: nn.Module, disc: nn.Module, gpt: nn.Module
) -> str:
    """`--from`: weights only (EMA where present) from a checkpoint .pt or an export .safetensors.

    Returns a short description of what was loaded. Raises VoicelabError for a missing file, a
    different architecture, or a file that holds no voicelab weights.
    """
    path = Path(path)
    if not path.is_file():
        raise VoicelabError(
            f"--from {path}: no such file; give a checkpoint (.pt) or an export (.safetensors)"
        )
    if path.suffix == ".pt":
        state = ck.load_checkpoint(path)
        ck.check_compatible(state[ck.K_CONFIG], config_to_dict(cfg))
        ema, models = state.get(ck.K_EMA) or {}, state[ck.K_MODELS]
        for name, module in (("sovits", sovits), ("gpt", gpt)):
            _load_strict(module, ema.get(name) or models[name], name, path)
        if "disc" in models:
            _load_strict(disc, models["disc"], "disc", path)
        return f"checkpoint at step {state[ck.K_STEP]}"
    if path.suffix == ".safetensors":
        import json

        from safetensors.torch import load_file

        meta = path.with_suffix(".json")
        if meta.is_file():
            info = json.loads(meta.read_text(encoding="utf-8"))
            if isinstance(info.get("config"), dict):
                ck.check_compatible(info["config"], config_to_dict(cfg))
        tensors = load_file(str(path))
        loaded = []
        for name, module in (("sovits", sovits), ("gpt", gpt), ("disc", disc)):
            sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
            if sd:
                _load_strict(module, sd, name, path)
                loaded.append(name)
        if not loaded:
            raise VoicelabError(
                f"--from {path}: holds no sovits.* or gpt.* weights (not a voicelab export)"
            )
        return "export: " + ", ".join(loaded)
    raise VoicelabError(f"--from {path}: use a checkpoint (.pt) or an export (.safetensors)")


def train_voice(voice: Voice, cfg: Config, opts: TrainOptions | None = None) -> int:
    """Train a voice (both stages by default). Returns an EXIT_* code (0 = finished)."""
    return Trainer(voice, cfg, opts).run()
