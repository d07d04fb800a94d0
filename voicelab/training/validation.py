"""Validation: the held-out loss, the plateau / early-stop decision, and the audio samples.

    st = StageState("sovits", total=2000, plateau=PlateauReducer(2, 0.5), early_stop_patience=3)
    val = validation_loss("sovits", sovits, ema, data, cfg, device, amp_dtype)
    plateau_note, stop_note = st.observe(val)      # pure bookkeeping: tested without a model
    write_sample(path, make_sample(...), sample_rate)

The loss runs with the EMA weights, seeded and under fork_rng, so evaluations are comparable and
cost no training randomness. Stage 1's loss is the mel L1 of the decoded window (the logged
`loss/mel`, unweighted); stage 2's the token cross-entropy.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from voicelab.config import Config
from voicelab.errors import VoicelabError
from voicelab.models.build import is_world
from voicelab.training.ema import EMA
from voicelab.training.precision import autocast
from voicelab.training.rng import fork_rng
from voicelab.training.schedules import PlateauReducer

log = logging.getLogger(__name__)

MIN_GAIN = 1e-3  # a validation loss counts as better when it is below best * (1 - MIN_GAIN)


@dataclass
class StageState:
    """One stage's length and validation bookkeeping (plain numbers: saved in the checkpoint)."""

    name: str
    total: int
    plateau: PlateauReducer
    early_stop_patience: int = 0  # evaluations without a gain before the stage stops; 0 = off
    best_val: float = math.inf
    evals_without_gain: int = 0
    last_val: float | None = None
    stopped_early: bool = False

    def observe(self, val: float) -> tuple[str | None, str | None]:
        """Record one validation loss. Returns (plateau note, early-stop note), None = no news."""
        self.last_val = val
        plateau_note = stop_note = None
        if self.plateau.observe(val):
            plateau_note = f"[{self.name}] validation plateau: learning rate x{self.plateau.scale:g}"
        if val < self.best_val * (1.0 - MIN_GAIN):
            self.best_val, self.evals_without_gain = val, 0
        else:
            self.evals_without_gain += 1
            patience = self.early_stop_patience
            if patience > 0 and self.evals_without_gain >= patience:
                self.stopped_early = True
                stop_note = (
                    f"[{self.name}] early stop: no validation gain in {patience} evaluations "
                    f"(best {self.best_val:.4f})"
                )
        return plateau_note, stop_note

    def state_dict(self) -> dict[str, Any]:
        """The bookkeeping of extra["stages"][name] (the plateau is saved with the schedulers)."""
        return {
            "best_val": self.best_val,
            "evals_without_gain": self.evals_without_gain,
            "stopped_early": self.stopped_early,
            "last_val": self.last_val,
        }

    def load_state_dict(self, d: dict[str, Any], plateau: dict[str, Any] | None = None) -> None:
        self.best_val = float(d.get("best_val", math.inf))
        self.evals_without_gain = int(d.get("evals_without_gain", 0))
        self.stopped_early = bool(d.get("stopped_early", False))
        self.last_val = d.get("last_val")
        if plateau:
            self.plateau.load_state_dict(plateau)


def report(loss: float, st: StageState, progress: Any, rep: Any) -> str | None:
    """Log one validation loss (metrics.jsonl `val/<stage>`, train.log) and let `st` decide.

    Returns the early-stop note when the stage stops now (the trainer keeps it in status.json).
    """
    rep.metrics({"step": progress.global_step, "stage": st.name,
                 "stage_step": progress.stage_step, f"val/{st.name}": loss})  # fmt: skip
    rep.log(f"[{st.name}] validation loss {loss:.4f} at step {progress.stage_step}")
    plateau_note, stop_note = st.observe(loss)
    for note in (plateau_note, stop_note):
        if note:
            rep.log(note)
    return stop_note


@torch.no_grad()
def validation_loss(
    stage: str, model: nn.Module, ema: EMA, data: Any, cfg: Config, device: torch.device,
    amp_dtype: torch.dtype | None = None,
) -> float | None:
    """Mean loss over the held-out slices with the EMA weights (None without val slices).

    `model` is the stage's raw module (SoVITS in stage 1, the GPT in stage 2), `data` a VoiceData.
    """
    from voicelab.models import losses as L  # looked up per call: tests replace losses.mel_l1

    if not data.val:
        return None
    gpt = stage == "gpt"
    total, count = 0.0, 0
    bs = cfg.train.batch_size
    with fork_rng(device), ema.applied(model) as m:
        torch.manual_seed(cfg.train.seed)
        was = m.training
        m.eval()
        try:
            for i in range(0, len(data.val), bs):
                idx = data.val[i : i + bs]
                batch = data.collate(idx, 0, with_tokens=gpt, audio=not gpt).to(device)
                with autocast(device, amp_dtype):
                    if gpt:
                        loss = m(batch).loss
                    elif is_world(cfg):  # the weighted stage-1 loss of the world path
                        from voicelab.models.world_acoustic import world_losses
                        from voicelab.training.steps import world_loss_weights

                        terms, w = world_losses(m(batch), m.layout), world_loss_weights(cfg.train)
                        loss = sum(w[name] * terms[name] for name in w)
                    else:
                        out = m(batch)
                        loss = L.mel_l1(out.wav_hat, out.wav_real, cfg.features, cfg.audio.sample_rate)
                total += float(loss) * len(idx)
                count += len(idx)
        finally:
            m.train(was)
    return total / max(count, 1)


@torch.no_grad()
def make_sample(
    stage: str, sovits: nn.Module, ema_sovits: EMA, gpt: nn.Module, ema_gpt: EMA, data: Any,
    cfg: Config, device: torch.device,
) -> np.ndarray:
    """The audio sample of a save, float32 [T] in [-1, 1], with the EMA weights.

    Stage 1: re-synthesis of a held-out slice from its own tokens (SoVITS alone cannot read new
    text). Stage 2: cfg.train.sample_text spoken by GPT + SoVITS, prompted by that slice.
    """
    from voicelab.data.dataset import PhonemeCache

    if is_world(cfg):
        return _world_sample(stage, sovits, ema_sovits, gpt, ema_gpt, data, cfg, device)
    dev = device
    i = (data.val or data.train)[0]
    item = data.items[i]
    ref = data.reference(i, 0)[None].to(dev)
    ref_lens = torch.tensor([ref.shape[-1]], device=dev)
    dvectors = getattr(data, "dvectors", None)  # model.use_dvector: the speaker's d-vector
    dvec = dvectors[item.speaker][None].to(dev) if dvectors else None
    gen = torch.Generator(device=dev)
    gen.manual_seed(cfg.train.seed)
    with ema_sovits.applied(sovits) as sv:
        was = sv.training
        sv.eval()
        try:
            spec = item.spec[None].to(dev)
            toks, tlens = sv.extract_tokens(
                spec, torch.tensor([item.frames], device=dev), item.wav[None, None].to(dev)
            )
            phones, langs = item.phone_ids, item.lang_ids
            if stage == "gpt":
                ids, lids = PhonemeCache()(cfg.train.sample_text, cfg.text.default_lang,
                                           "train.sample_text")  # fmt: skip
                phones, langs = torch.tensor(ids), torch.tensor(lids)
                style = sv.style(ref, ref_lens, dvec)[0]
                with ema_gpt.applied(gpt) as g:
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
                langs[None].to(dev), ref, ref_lens, dvector=dvec, generator=gen,
            )  # fmt: skip
        finally:
            sv.train(was)
    return wav[0, 0].float().cpu().clamp(-1, 1).numpy()


def write_sample(path: Path, make: Any, sample_rate: int, device: torch.device) -> str | None:
    """Write make() (a waveform) to `path` under fork_rng. Returns the error text, None if saved.

    A sample must never end a training run: any failure is returned for the log, not raised.
    """
    from voicelab.audio.io import write_wav

    try:
        with fork_rng(device), torch.no_grad():
            wav = make()
        write_wav(path, wav, sample_rate)
    except Exception as e:  # noqa: BLE001 - a sample must never end a training run
        return str(e)
    return None


@torch.no_grad()
def _world_sample(
    stage: str, sovits: nn.Module, ema_sovits: EMA, gpt: nn.Module, ema_gpt: EMA, data: Any,
    cfg: Config, device: torch.device,
) -> np.ndarray:
    """The world path's sample, through synthesis's own sentence function (voicelab/models/world_synthesis.py):
    stage 1 speaks a held-out slice's text with that slice's own prosody tokens (the GPT is not
    trained yet); stage 2 speaks cfg.train.sample_text with GPT-sampled tokens. The voice is the
    slice's speaker (its d-vector and F0 statistics)."""
    from types import SimpleNamespace

    from voicelab.models import world_synthesis as synth_world

    i = (data.val or data.train)[0]
    item = data.items[i]
    dvec = item.dvector[None].to(device)
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed)
    with ema_sovits.applied(sovits) as sv, ema_gpt.applied(gpt) as g:
        was = (sv.training, g.training)
        sv.eval()
        g.eval()
        try:
            ref = synth_world.WorldReference(
                dvector=dvec, lf0_stats=data.lf0_stats[item.speaker][None].to(device),
                style=sv.style(dvec), seconds=item.frames / 100.0)
            text = cfg.train.sample_text
            synth = SimpleNamespace(cfg=cfg, device=device, sovits=sv, gpt=g,
                                    sample_rate=cfg.audio.sample_rate)
            if stage != "gpt":  # the slice's own text and tokens: nothing is sampled
                toks, _ = sv.extract_tokens(data.collate([i]).to(device))
                return synth_world.speak_tokens(synth, item.phone_ids.tolist(),
                                                item.word_pos.tolist(), item.stress.tolist(),
                                                toks[0], ref)
            wav, _ = synth_world.sentence(synth, text, "en", ref, gen,
                                          {"top_k": cfg.synth.top_k, "top_p": cfg.synth.top_p,
                                           "temperature": cfg.synth.temperature}, 1.0, [])
            return wav
        finally:
            sv.train(was[0])
            g.train(was[1])
