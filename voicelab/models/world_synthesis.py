"""Synthesis on the world path: text -> ARPAbet phones -> one prosody token per phone (GPT)
-> WORLD parameters (acoustic model) -> WORLD -> the product's sample rate.

`voicelab.synth.Synthesizer` calls these functions when its model is a world model (the rest:
sentence splitting, pauses, seeds, loudness, warnings, timing, is shared), and the trainer's audio
samples go through the same `sentence` / `speak_tokens`, so a sample sounds like synthesis will.

The reference clip gives the voice: its resemblyzer d-vector (timbre, through the speaker
conditioning) and its log-F0 mean and spread (register: the model predicts speaker-normalised
intonation). With the reference's text, the clip is also forced-aligned and its prosody tokens
prompt the GPT (GPT-SoVITS's prompt); without it, or when it cannot be aligned, the GPT starts
fresh and the clip still gives the timbre and register.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from voicelab.audio import io, world
from voicelab.data.world_data import lf0_mean_std
from voicelab.errors import VoicelabError
from voicelab.text import arpabet
from voicelab.text.align import AlignmentError, align


@dataclass
class WorldReference:
    """An encoded reference clip for the world path."""

    dvector: Tensor  # [1, 256]
    lf0_stats: Tensor  # [1, 2] mean and std of log F0 over voiced frames
    style: Tensor  # [1, style_dim]
    seconds: float
    prompt_phones: list[int] = field(default_factory=list)
    prompt_word_pos: list[int] = field(default_factory=list)
    prompt_stress: list[int] = field(default_factory=list)
    prompt_tokens: Tensor | None = None  # [P_pr] long
    warnings: list[str] = field(default_factory=list)


def lf0_stats(feats: world.WorldFeatures) -> Tensor:
    """[2] mean and std of log F0 over a clip's voiced frames (a typical voice if < 10)."""
    return lf0_mean_std(torch.from_numpy(feats.lf0[feats.vuv > 0.5]))


def set_prompt(ref: WorldReference, phone_ids: list[int], word_pos: list[int], stress: list[int],
               tokens: Tensor) -> WorldReference:
    """Give `ref` an aligned clip's phones and their prosody tokens [P] as the GPT's prompt,
    leaving out a closing pause (it would start every sentence with a long silence)."""
    keep = len(phone_ids) - (1 if phone_ids and phone_ids[-1] == arpabet.SIL_ID else 0)
    ref.prompt_tokens = tokens[:keep]
    ref.prompt_phones = list(phone_ids[:keep])
    ref.prompt_word_pos = list(word_pos[:keep])
    ref.prompt_stress = list(stress[:keep])
    return ref


def prepare_reference(synth: Any, audio: np.ndarray, sr: int, seconds: float,
                      reference_text: str | None, reference_lang: str,
                      warnings: list[str]) -> WorldReference:
    """audio [T] float32 at sr (normalised, 3-10 s) -> WorldReference."""
    from voicelab.audio import dvector as dv

    dev = synth.device
    model = synth.sovits
    feats = world.analyze(audio, sr, synth.cfg.world)
    dvec = torch.from_numpy(dv.embed(audio, sr)).to(dev)[None]
    stats = lf0_stats(feats).to(dev)[None]
    ref = WorldReference(dvector=dvec, lf0_stats=stats, style=model.style(dvec), seconds=seconds,
                         warnings=list(warnings))
    if reference_text and reference_text.strip():
        if reference_lang != "en":
            ref.warnings.append("the reference text is not English: used for timbre only")
            return ref
        try:
            n = len(feats)
            al = align(audio, sr, reference_text, n_frames=n)
        except AlignmentError as e:
            ref.warnings.append(
                f"the reference text does not match the clip ({e}); the clip gives the voice only"
            )
            return ref
        from voicelab.data.batch import Batch

        acoustic = torch.from_numpy(feats.to_array())[None].to(dev)
        ids = torch.tensor([al.ids], device=dev)
        z = torch.zeros(1, dtype=torch.long, device=dev)
        empty = torch.zeros(1, 1, 0, device=dev)
        b = Batch(phone_ids=ids, phone_lens=torch.tensor([len(al.ids)], device=dev),
                  lang_ids=torch.zeros_like(ids), spec=empty, mel=empty, spec_lens=z, wav=empty,
                  ref_mel=empty, ref_lens=z, word_pos=torch.tensor([al.word_pos], device=dev),
                  stress=torch.tensor([al.stress], device=dev),
                  durations=torch.from_numpy(np.asarray(al.durations, dtype=np.int64))[None].to(dev),
                  acoustic=acoustic, acoustic_lens=torch.tensor([n], device=dev),
                  lf0_stats=stats, dvector=dvec)  # fmt: skip
        toks, lens = model.extract_tokens(b)
        set_prompt(ref, list(al.ids), list(al.word_pos), list(al.stress), toks[0])
    return ref


def sentence(synth: Any, text: str, lang: str, ref: WorldReference, gen: torch.Generator,
             opts: dict[str, Any], speed: float, warnings: list[str]) -> tuple[np.ndarray, dict]:
    """One sentence -> (waveform [T] float32 at synth.sample_rate, info fields)."""
    if lang not in ("en", "auto"):
        raise VoicelabError(
            f"this voice was trained on the CPU (world) path, which speaks English only; "
            f"language {lang!r} needs a voice trained with the GPU preset `base`"
        )
    seq = arpabet.text_to_phones(text)  # VoicelabError when nothing is speakable
    warnings.extend(w for w in seq.warnings if w not in warnings)
    dev = synth.device
    ids = torch.tensor(ref.prompt_phones + seq.ids, device=dev)
    pos = torch.tensor(ref.prompt_word_pos + seq.word_pos, device=dev)
    stress = torch.tensor(ref.prompt_stress + seq.stress, device=dev)
    sampling = {k: v for k, v in opts.items() if k in ("top_k", "top_p", "temperature")}
    res = synth.gpt.generate(ids, pos, stress, ref.style[0], ref.prompt_tokens,
                             repetition_penalty=1.0, generator=gen, **sampling)
    audio = speak_tokens(synth, seq.ids, seq.word_pos, seq.stress, res.tokens, ref, speed)
    return audio, {"phones": len(seq.ids), "tokens": int(res.tokens.numel()), "hit_cap": False,
                   "seconds": len(audio) / synth.sample_rate}


def speak_tokens(synth: Any, phone_ids: list[int], word_pos: list[int], stress: list[int],
                 tokens: Tensor, ref: WorldReference, speed: float = 1.0) -> np.ndarray:
    """Phones + their prosody tokens [P] -> waveform [T] float32 at synth.sample_rate."""
    dev = synth.device
    ids_t, pos_t = torch.tensor([phone_ids], device=dev), torch.tensor([word_pos], device=dev)
    feats, _ = synth.sovits.infer(ids_t, pos_t, torch.tensor([stress], device=dev),
                                  tokens.to(dev)[None], ref.dvector, ref.lf0_stats, speed=speed)
    wcfg = synth.cfg.world
    audio = world.synthesize(world.WorldFeatures.from_array(feats.cpu().numpy(), wcfg), wcfg)
    if wcfg.sample_rate != synth.sample_rate:
        audio = io.resample(audio, wcfg.sample_rate, synth.sample_rate)
    return np.clip(np.nan_to_num(audio), -1.0, 1.0).astype(np.float32)
