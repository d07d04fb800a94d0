"""The two-stage training loop: stage 1 (acoustic model) -> token hand-over -> stage 2 (GPT).

An explicit loop, no framework, split like torchtune's recipes:

    trainer = Trainer(voice, cfg, TrainOptions(run="r1", resume="auto"))
    code = trainer.run()          # setup() -> train() -> cleanup(); returns an EXIT_* code

This file is the loop only: the stage plan, the step boundary (optimiser step -> EMA -> counters
-> log -> eval -> save -> stop check) and the NaN rollback. Each concern it calls has its room:

    steps.py            one optimiser step of each stage; the loss weights (`loss_weights`)
    schedules.py        the LR as a pure function of the step; plateau reducer
    state.py            what a checkpoint holds; `restore` = where resume puts each part back
    validation.py       validation loss, plateau / early-stop decision (StageState), samples
    setup.py            options, the run, the data and models by model kind, the stage plan
    handover.py         tokens.pt between the stages
    initial_weights.py  `--from`
    rng.py, optim.py, ema.py, checkpoint.py, metrics.py, runfiles.py, interrupt.py, distributed.py

Exact resume (CPU: N steps + resume + N steps == 2N steps, bit for bit): data order is a pure
function of (seed, epoch, rank) and the checkpoint stores (epoch, batches consumed);
augmentation draws from a generator seeded by (seed, global step, rank); every state is saved
(state.py); evaluation, samples, token extraction and saving run under fork_rng. Only rank 0
writes files; decisions all ranks must share (stop, NaN rollback) are all-reduced.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch

from voicelab import base
from voicelab.config import Config, save_config_json
from voicelab.errors import EXIT_OK, VoicelabError
from voicelab.training import blend, metrics, runfiles, steps
from voicelab.training import checkpoint as ck
from voicelab.training import distributed as dd
from voicelab.training import setup as run_setup
from voicelab.training import state as train_state
from voicelab.training import validation as val
from voicelab.training.ema import EMA
from voicelab.training.feed import BatchFeed
from voicelab.training.handover import extract_for, write_tokens
from voicelab.training.interrupt import RunLock, StopSignals
from voicelab.training.optim import current_lrs
from voicelab.training.rng import fork_rng, seed_everything
from voicelab.training.schedules import Schedule, set_lr
from voicelab.training.setup import STAGES, TrainOptions, default_run_name  # (importable here)
from voicelab.training.state import Progress, TrainParts
from voicelab.training.state import progress_field as _progress_field
from voicelab.training.steps import StageModules, StepEnv, build_stage, step_for
from voicelab.training.validation import StageState
from voicelab.workspace import RunDir, Voice

TOKENS_FILE = RunDir.TOKENS


class Trainer:
    stage = _progress_field("stage")
    global_step = _progress_field("global_step")
    stage_step = _progress_field("stage_step")
    epoch = _progress_field("epoch")
    epoch_pos = _progress_field("epoch_pos")
    lr_scale = _progress_field("lr_scale")
    rollbacks = _progress_field("rollbacks")
    skipped_steps = _progress_field("skipped_steps")

    def __init__(self, voice: Voice, cfg: Config, opts: TrainOptions | None = None) -> None:
        self.voice, self.cfg, self.opts = voice, cfg, opts or TrainOptions()
        run_setup.check_options(self.opts)
        self.progress = Progress()
        self.bad_in_a_row = 0
        self.last_metrics: dict[str, float] = {}
        self.notice = ""  # the last event worth showing (rollback, early stop): kept in status
        self.rep: metrics.RunReporter | None = None
        self.stages: dict[str, StageState] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.modules: StageModules | None = None
        self.clock: metrics.ThroughputClock | None = None
        self._lock: RunLock | None = None
        self._last_save_time = time.time()
        self._last_status_time = 0.0
        self._saved_step = -1
        self._started = False  # train() began: from here a failure is the run's own
        self._status_before: dict | None = None

    # --- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.info = dd.env_dist_info()
        self.device = dd.resolve_device(t.device, self.info)
        self.info = dd.init_distributed(self.device)
        self.is_main = self.info.is_main
        run = run_setup.choose_run(self.voice, self.opts) or default_run_name()
        self.run_name = dd.broadcast_object(run)
        self.run_dir = self.voice.run(self.run_name)
        if self.is_main:
            self.voice.runs.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(self.run_dir).acquire()
        dd.barrier()
        run_setup.refuse_fresh_start(self.run_dir, self.run_name, self.opts)  # before any write
        self._status_before = runfiles.read_status(self.run_dir)  # put back if refused
        self.rep = metrics.RunReporter(self.run_dir, enabled=self.is_main, tensorboard=self.opts.tensorboard)
        self.rep.status("starting", stage=None, step=0, total_steps=0, message="loading data")

        seed_everything(t.seed)
        self.data = run_setup.load_data(self.voice, cfg, self.rep.warn)
        self.feed = BatchFeed(self.data, t, self.info.rank, self.info.world_size, self.device,
                              self.progress)  # fmt: skip
        self.rep.log(
            f"voice {self.voice.name}: {len(self.data.train)} training and {len(self.data.val)} "
            f"validation slices; device {self.device}, {self.info.world_size} process(es)"
        )
        models = run_setup.build_on_device(cfg, self.data, self.device)
        self.sovits, self.disc, self.gpt = models.sovits, models.disc, models.gpt
        self.amp_dtype, self.scaler = run_setup.precision(cfg, self.device, self.rep.warn)
        self.emas = {"sovits": EMA(self.sovits, t.ema_decay), "gpt": EMA(self.gpt, t.ema_decay)}
        self.ema_sovits, self.ema_gpt = self.emas["sovits"], self.emas["gpt"]
        self.stages, self.plan = run_setup.stage_plan(t, self.opts.stage)

        resume_state, notes = train_state.resume_state(self.opts.resume, self.run_dir)
        for note in notes:  # (a run with checkpoints but no --resume was refused above)
            (self.rep.warn if note.startswith("skipped") else self.rep.log)(note)
        if resume_state is not None:
            self._restore(resume_state)
            self._abandon_after(self.global_step)
        elif self.opts.from_path is not None:
            self.rep.log(run_setup.start_from_weights(self.opts.from_path, cfg, self._models(),
                                                      self.emas))  # fmt: skip
            self.progress.start_weights = str(Path(self.opts.from_path).resolve())
        if self.is_main:
            save_config_json(cfg, self.run_dir.config)

    # --- what a checkpoint holds (state.py) --------------------------------------------------

    def _models(self) -> dict[str, torch.nn.Module]:
        """The raw modules by checkpoint name; no "disc" for a model kind without one."""
        models = {"sovits": self.sovits, "disc": self.disc, "gpt": self.gpt}
        return {k: dd.unwrap(m) for k, m in models.items() if m is not None}

    def _parts(self) -> TrainParts:
        return TrainParts(self._models(), self.emas, self.optimizers, self.scaler, self.progress,
                          self.stages, dict(self.last_metrics))  # fmt: skip

    def checkpoint_state(self, val_loss: float | None = None) -> dict[str, Any]:
        """The checkpoint dict of the run as it is now (state.capture; save it at once)."""
        return train_state.capture(self._parts(), self.cfg, self.data.dataset_hash, self.run_name,
                                   val_loss)  # fmt: skip

    def _abandon_after(self, step: int) -> None:
        """Continuing from `step`: move the abandoned timeline aside (state.abandon_after)."""
        if self.is_main and (note := train_state.abandon_after(self.run_dir, step)):
            self.rep.log(note)

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue a run from `state` (state.restore says where each part goes)."""
        parts = self._parts()
        for warning in train_state.restore(state, parts, self.cfg, self.data.dataset_hash,
                                           self._build_stage):  # fmt: skip
            self.rep.warn(warning)
        self.last_metrics = parts.last_metrics

    # --- data and stages ---------------------------------------------------------------------

    def _build_stage(self, stage: str) -> dict[str, torch.optim.Optimizer]:
        """Optimisers, freeze schedule, DDP wrappers and LR schedule of one stage."""
        self.modules = build_stage(stage, self.cfg, self.sovits, self.disc, self.gpt,
                                   lambda m: dd.wrap_ddp(m, self.device, self.info))  # fmt: skip
        self.optimizers = self.modules.optimizers
        self.step_fn = step_for(self.cfg, stage)
        self.schedule = Schedule.from_config(self.cfg.train, self.stages[stage].total)
        return self.optimizers

    def _enter_stage(self, stage: str) -> None:
        if self.stage != stage:
            self.stage, self.stage_step, self.epoch, self.epoch_pos = stage, 0, 0, 0
            self.feed.reset()
        self._build_stage(stage)

    def _prepare_gpt_stage(self) -> None:
        """Extract tokens + styles with the stage-1 EMA weights, then switch to stage 2."""
        tokens, styles = extract_for(self.sovits, self.ema_sovits, self.data, self.cfg, self.device)
        self.data.set_tokens(tokens, styles)
        if self.is_main:
            n = write_tokens(self.run_dir.tokens, tokens, styles)
            self.rep.log(f"extracted semantic tokens of {n} slices -> {TOKENS_FILE}")
        if self.stage != "gpt":  # (stage 1's optimisers and DDP wrappers are replaced here)
            self._enter_stage("gpt")
        elif "gpt" not in self.optimizers:
            self._build_stage("gpt")

    # --- the loop ----------------------------------------------------------------------------

    def train(self) -> int:
        """Run the planned stages. Returns EXIT_OK, or the stop reason's exit code."""
        self._started = True
        with StopSignals(self.run_dir if self.is_main else None) as stop:
            self.stop = stop
            for stage in self.plan:
                if STAGES.index(stage) < STAGES.index(self.stage):
                    # a resumed run is already past this stage: say so, since a step count
                    # given for it (--sovits-steps) changes nothing now
                    self.rep.log(f"stage {stage} is already finished in this run: skipped")
                    continue
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

    def _run_stage(self, stage: str) -> int | None:
        """Train one stage to its total. Returns an exit code when stopped, else None."""
        st = self.stages[stage]
        if st.stopped_early or self.stage_step >= st.total:
            if self.stage_step:
                why = "stopped early" if st.stopped_early else f"has {st.total} steps"
                self.rep.log(f"stage {stage}: nothing to train (at step {self.stage_step}; the "
                             f"stage {why})")
            return None
        self.rep.log(f"stage {stage}: steps {self.stage_step + 1}..{st.total}")
        self.meter, self.clock = metrics.Meter(), metrics.ThroughputClock()
        self._saved_step = -1
        while self.stage_step < st.total:
            factor = self.schedule(self.stage_step) * st.plateau.scale * self.lr_scale
            for opt in self.optimizers.values():
                set_lr(opt, factor)
            env = StepEnv(self.cfg, self.device, self.scaler, self.amp_dtype, self.stage_step,
                          lambda k: self.feed.augmented(k, with_tokens=stage == "gpt"))  # fmt: skip
            saved = steps.snapshot(self.modules)
            scale = self.scaler.get_scale() if self.scaler.is_enabled() else 0.0
            result = self.step_fn(env, self.modules)
            bad = dd.any_rank(result.bad, self.device)
            if bad or self.scaler.get_scale() < scale:  # fp16 overflow: the scaler skipped it
                steps.restore(self.modules, saved)  # a skipped step leaves no trace
            # non-finite weights (whatever the losses said) are never saved nor trained on
            poisoned = dd.any_rank(not steps.weights_finite(self.modules), self.device)
            if bad:
                self.skipped_steps += 1
                self.bad_in_a_row += 1
            elif not poisoned:
                self.bad_in_a_row = 0
                self.meter.add(result.values)
                self.emas[stage].update(self.modules.model)
            self.stage_step += 1
            self.global_step += 1
            self.clock.tick(result.samples * self.info.world_size)
            if poisoned or self.bad_in_a_row >= self.cfg.train.nan_patience:
                self._rollback("the weights became non-finite" if poisoned else
                               f"{self.bad_in_a_row} non-finite steps in a row")  # fmt: skip
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
        if t.keep_best and (end or st.stopped_early):
            self._back_to_best(stage, st)  # before the stage's last checkpoint, which holds it
        if (end or st.stopped_early) and self._blends_after(stage):
            self._blend_with_start()
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
            msg = f"{reason}: checkpoint saved at step {self.global_step}; resume with --resume auto"
            self.rep.log(msg)
            self._status("paused" if reason == "pause" else "stopped", message=msg)
            return self.stop.exit_code
        return None

    def _rollback(self, why: str) -> None:
        """Divergence (`why`): back to the last good checkpoint with half the LR."""
        t = self.cfg.train
        self.rollbacks += 1
        train_state.check_rollbacks(why, self.rollbacks, t.max_rollbacks)
        dd.barrier()  # rank 0 may still be writing the checkpoint others are about to read
        point = train_state.last_good(self.run_dir, why, self.global_step)
        # run-level counters survive the rollback; everything else comes from the checkpoint
        scale, rollbacks, skipped = self.lr_scale * 0.5, self.rollbacks, self.skipped_steps
        self._restore(point.state)
        self.lr_scale, self.rollbacks, self.bad_in_a_row = scale, rollbacks, 0
        self.skipped_steps = skipped
        self.feed.reset()
        self._abandon_after(self.global_step)
        msg = (
            f"{why}: rolled back to {point.path.name} (step "
            f"{self.global_step}) with the learning rate x{self.lr_scale:g} "
            f"(rollback {self.rollbacks} of at most {t.max_rollbacks})"
        )
        self.rep.warn(msg)
        self.notice = msg
        self._status("running")
        self.meter.reset()

    # --- reporting, evaluation, saving -------------------------------------------------------

    def _status_fields(self) -> dict[str, Any]:
        totals = {n: st.total for n, st in self.stages.items()}
        return metrics.status_fields(self.progress, self.plan, totals, STAGES, self.run_name, self.clock)

    def _status(self, state: str, message: str = "") -> None:
        """status.json; without a message, the last notice stays visible to the UI."""
        self._last_status_time = time.time()
        self.rep.status(state, **self._status_fields(), message=message or self.notice)

    def _log(self, stage: str, st: StageState) -> None:
        means = dd.all_reduce_mean(self.meter.means(), self.device)
        self.meter.reset()
        lrs = {f"lr/{k}": v for o in self.optimizers.values() for k, v in current_lrs(o).items()}
        record = metrics.log_record(stage, self.progress, means, lrs, self.clock.rates())
        self.last_metrics = {k: v for k, v in record.items() if isinstance(v, int | float)}
        self.rep.metrics(record)
        self.rep.log(metrics.log_line(stage, self.stage_step, st.total, record))
        self._status("running")

    def _evaluate(self, stage: str, st: StageState) -> None:
        model = self.sovits if stage == "sovits" else self.gpt
        loss = val.validation_loss(stage, model, self.emas[stage], self.data, self.cfg,
                                   self.device, self.amp_dtype)  # fmt: skip
        if loss is not None:
            self.notice = val.report(loss, st, self.progress, self.rep) or self.notice

    def _back_to_best(self, stage: str, st: StageState) -> None:
        """The stage ends: its model and EMA go back to the stage's best validated checkpoint
        when that is earlier than now (train.keep_best). The stage's last checkpoint is written
        right after, so a resume continues from the same weights."""
        dd.barrier()  # best.json is written by rank 0 at its saves
        best = ck.read_best(self.run_dir.checkpoints)
        if best is None or best.get("stage") != stage or best["step"] >= self.global_step:
            return
        if st.last_val is not None and st.last_val <= best["val_loss"]:
            return  # this step's evaluation (not saved yet) is the best
        path = self.run_dir.checkpoints / best["file"]
        try:
            state = ck.load_checkpoint(path)
        except ck.CheckpointError as e:  # kept as it is: the last weights are still a model
            self.rep.warn(f"[{stage}] could not go back to the best checkpoint {path.name}: {e}")
            return
        self._models()[stage].load_state_dict(state[ck.K_MODELS][stage])
        train_state.load_ema(state, stage, self.emas[stage])
        self.rep.log(f"[{stage}] back to the weights of step {best['step']} (best validation "
                     f"loss {best['val_loss']:.4f}) for the rest of the run")  # fmt: skip

    def _blends_after(self, stage: str) -> bool:
        """Whether the end of `stage` is where the acoustic model is blended back towards the
        start (train.weight_blend < 1 or train.blend_margin > 0): the end of the run's last stage
        with steps, after stage 2, so the GPT the choice listens with is the adapted one (with the
        base's GPT the likeness margin was off by up to 0.04 against `eval`'s; with the adapted
        one within 0.015), and only when stage 1 trained at all."""
        t = self.cfg.train
        if (t.weight_blend >= 1.0 and t.blend_margin <= 0) or self.stages["sovits"].total <= 0:
            return False
        later = STAGES[STAGES.index(stage) + 1:]
        return not any(self.stages[s].total > 0 for s in later)

    def _blend_with_start(self) -> None:
        """train.weight_blend = w < 1 (or train.blend_margin > 0) on a run that started from
        weights: the acoustic model and its EMA become (1 - w) * the initial weights + w * their
        own at the end of the run, just before its last checkpoint (so a resume and an export see
        the blend). With blend_margin, w is chosen by ear (training/blend.py)."""
        t = self.cfg.train
        path, w = self.progress.start_weights, float(t.weight_blend)
        if not path:
            return  # from scratch: nothing to go back towards
        if self.progress.blended:  # a resumed run given more steps after its end: once only
            self.rep.log(f"[blend] the acoustic model was blended already (share "
                         f"{self.progress.blended:.2f}): kept as it is")  # fmt: skip
            return
        model = self._models()["sovits"]
        try:
            initial = blend.start_weights(path, self.cfg, model)
        except VoicelabError as e:  # the file moved since the start: keep the trained weights
            self.rep.warn(f"[blend] skipped: {e}")
            return
        if t.blend_margin > 0:
            w = self._choose_share(initial, Path(path), w)
        if w >= 1.0:
            return
        blend.blend_into(model, self.emas["sovits"], initial, w)
        self.progress.blended = w
        self.rep.log(f"[blend] acoustic model blended with the initial weights: {1.0 - w:.2f} x {Path(path).name}"
                     f" + {w:.2f} x trained")  # fmt: skip

    def _choose_share(self, initial: dict[str, torch.Tensor], path: Path, fallback: float) -> float:
        """train.blend_margin: the smallest of train.blend_shares whose new sentences stay at
        least that much closer to the voice than to every speaker of the base (rank 0 listens,
        every rank gets its choice); `fallback` (train.weight_blend) when the start file lists
        no speakers or a measure fails."""
        t = self.cfg.train
        others = base.speaker_dvectors(path)
        if not others:
            self.rep.log(f"[blend] {path.name} lists no speaker d-vectors: share "
                         f"{fallback:.2f} (train.weight_blend)")  # fmt: skip
            return fallback
        model, ema = self._models()["sovits"], self.emas["sovits"]
        probe = copy.deepcopy(model)
        trained = ema.weights(model)  # (the model's own when EMA is off)

        def measure(w: float, gpt: torch.nn.Module) -> blend.Likeness:
            self._status("running", message=f"listening to the blend at share {w:.2f} "
                         "(does it still sound like the voice?)")  # fmt: skip
            probe.load_state_dict(blend.blended(initial, trained, w))
            return blend.likeness(probe, gpt, self.data, self.cfg, self.device, others)

        def report(w: float, sound: blend.Likeness) -> None:
            name, near = sound.closest
            self.rep.log(f"[blend] share {w:.2f}: new sentences {sound.target:.3f} like the "
                         f"voice, {near:.3f} to {name} (margin {sound.margin:+.3f})")
            self.rep.metrics({"step": self.global_step, "stage": self.stage, "blend/share": w,
                              "blend/target": sound.target, "blend/closest": near})  # fmt: skip

        w, note = fallback, ""
        if self.is_main:
            try:
                with fork_rng(self.device), self.ema_gpt.applied(self.gpt) as gpt:
                    w, measured = blend.choose_share(lambda share: measure(share, gpt),
                                                     t.blend_shares, t.blend_margin, report)
                note = (f"the smallest that keeps the voice {t.blend_margin:.3f} closer to itself "
                        "than to the base's speakers" if dict(measured)[w].margin >= t.blend_margin
                        else f"no share reached the margin {t.blend_margin:.3f}; this one sounds "
                        "most like the voice")  # fmt: skip
            except Exception as e:  # noqa: BLE001 - a measure must not end a finished run
                self.rep.warn(f"[blend] could not measure the likeness ({e}): share {fallback:.2f}")
        w = dd.broadcast_object(w)
        if note:
            self.rep.log(f"[blend] share {w:.2f} chosen: {note}")
        return w

    def _save(self, val_loss: float | None) -> None:
        """Checkpoint (rank 0), then an audio sample with the EMA weights."""
        self._saved_step = self.global_step
        self._last_save_time = time.time()
        if not self.is_main:
            return
        self._status("saving")
        path = ck.save_checkpoint(self.run_dir, self.checkpoint_state(val_loss),
                                  keep_last=self.cfg.train.keep_last)  # fmt: skip
        self.rep.log(f"saved {path.name}")
        error = val.write_sample(
            self.run_dir.sample(self.global_step),
            lambda: val.make_sample(self.stage, self.sovits, self.ema_sovits, self.gpt,
                                    self.ema_gpt, self.data, self.cfg, self.device),
            self.cfg.audio.sample_rate, self.device,
        )  # fmt: skip
        if error:
            self.rep.warn(f"could not make the audio sample at step {self.global_step}: {error}")
        self._status("running")

    # --- cleanup and entry point -------------------------------------------------------------

    def cleanup(self) -> None:
        if self.rep is not None:
            self.rep.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        dd.cleanup()

    def run(self) -> int:
        """setup -> train -> cleanup. A failure is written to status.json before it propagates."""
        try:
            self.setup()
            run_setup.refuse_gpt_without_sovits(self.plan, self.progress, self.opts)
            return self.train()
        except KeyboardInterrupt:
            self._final_status("stopped", "interrupted by a second Ctrl-C (the last checkpoint is intact)")
            raise
        except Exception as e:
            self._final_status("failed", str(e))
            raise
        finally:
            self.cleanup()

    def _final_status(self, state: str, message: str) -> None:
        if self.rep is None:
            return
        self.rep.log(f"{state}: {message}")
        if not self._started and self._status_before is not None and self.is_main:
            # refused before training started (e.g. a resume with another architecture): the
            # run is as it was, and so is what the UI shows about it
            runfiles.put_status_back(self.run_dir, self._status_before)
            return
        fields = self._status_fields() if self.stages else {}
        self.rep.status(state, **fields, message=message)


def train_voice(voice: Voice, cfg: Config, opts: TrainOptions | None = None) -> int:
    """Train a voice (both stages by default). Returns an EXIT_* code (0 = finished)."""
    return Trainer(voice, cfg, opts).run()
