"""Weight-space blending of a fine-tune with the weights it started from (WiSE-FT), and choosing
the share by ear.

    initial = start_weights(path, cfg, model)            # {name: tensor} the run started from
    blend_into(model, ema, initial, w)                    # model, EMA <- (1 - w) * initial + w * own
    sound = likeness(sovits, gpt, data, cfg, device, others)   # Likeness: cosine to voice / others
    share = pick_share([(w, sound), ...], margin)         # pure: the choice, tested without a model
    share, measured = choose_share(lambda w: ..., shares, margin)   # smallest first, stop at a pass

Why a share is chosen per voice: on a noisy one-minute take the adapted acoustic model learns the
take's channel with its voice, and every step of adaptation costs intelligibility (flite slt's
shares 1.0 / 0.7 / 0.5 / 0.0 of the trained weights: pocketsphinx WER 38.2 / 31.1 / 24.9 / 18.5%,
real recordings 18.3%), while going back towards the base makes it sound like the base speaker
nearest to it (similarity to the voice .875 / .874 / .865 / .816 against .785 / .819 / .836 / .849
to that speaker). Where the two cross differs by voice (flite rms already sounds more like a base
speaker than like itself at 0.5), so no fixed share suits every voice: the smallest share whose
speech is still measurably closer to the voice than to every base speaker keeps the most clarity
that the likeness allows. The measure is the same resemblyzer cosine that `eval` reports, on new
sentences spoken as synthesis speaks them: the run's adapted GPT (so the choice is made at the
end of the run, after stage 2), greedy, prompted by the voice's first 3-10 s slice. What made it
agree with `eval` (margin to the closest base speaker; eval's own centroids are of 4 clips, the
base's of 8, which puts eval's figure 0.002-0.05 higher):

    probe                                        slt 0.3    rms 0.6    Pico 0.4
    the voice's slices re-spoken, own tokens       +0.026     +0.047      +0.083
    new sentences, base GPT, 8 prompting slices    +0.050     +0.042      +0.073
    new sentences, base GPT, the reference slice   -0.016     +0.046      +0.076
    new sentences, adapted GPT, the reference      -0.006     +0.012      +0.063
    eval's audio against the base's centroids      -0.008     -0.002      +0.061
    eval (its 4-clip centroids)                    +0.000     +0.005      +0.107
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from voicelab.config import Config
from voicelab.training.ema import EMA
from voicelab.training.initial_weights import load_initial_weights

PROBE_SLICES = 8  # slices whose d-vectors make "the voice" (eval takes 8 too)


@dataclass
class Likeness:
    """Mean resemblyzer cosine of re-spoken slices to the voice and to each other speaker."""

    target: float
    others: dict[str, float] = field(default_factory=dict)

    @property
    def closest(self) -> tuple[str, float]:
        """(name, cosine) of the other speaker the speech is closest to."""
        return max(self.others.items(), key=lambda kv: kv[1], default=("", -1.0))

    @property
    def margin(self) -> float:
        """Cosine to the voice minus cosine to its closest other speaker (> 0: sounds like it)."""
        return self.target - self.closest[1]


def pick_share(measured: Sequence[tuple[float, Likeness]], margin: float) -> float:
    """The smallest share whose likeness margin is at least `margin`; when none is, the share
    with the largest margin (the voice is as distinct as this base can make it)."""
    if not measured:
        raise ValueError("pick_share: nothing measured")
    ok = [w for w, s in measured if s.margin >= margin]
    if ok:
        return min(ok)
    return max(measured, key=lambda ws: (ws[1].margin, ws[0]))[0]


def choose_share(
    measure: Callable[[float], Likeness], shares: Sequence[float], margin: float,
    on_measure: Callable[[float, Likeness], None] | None = None,
) -> tuple[float, list[tuple[float, Likeness]]]:
    """Measure `shares` from the smallest up, stopping at the first whose margin reaches `margin`
    (larger shares only sound more like the voice and less clear); then pick_share. Returns
    (the share, what was measured). `measure(w)` is the likeness of the model blended at w."""
    measured: list[tuple[float, Likeness]] = []
    for w in sorted(set(shares)):
        sound = measure(w)
        measured.append((w, sound))
        if on_measure:
            on_measure(w, sound)
        if sound.margin >= margin:
            break
    return pick_share(measured, margin), measured


def start_weights(path: Path | str, cfg: Config, model: nn.Module, name: str = "sovits") -> dict[str, torch.Tensor]:
    """The `name` model's weights in the file a run started from (raises VoicelabError when the
    file is gone or no longer fits)."""
    start = copy.deepcopy(model)
    load_initial_weights(Path(path), cfg, {name: start})
    return start.state_dict()


def blended(initial: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], w: float) -> dict[str, torch.Tensor]:
    """(1 - w) * initial + w * weights for float tensors; others (counters, ids) as trained."""
    return {k: (1.0 - w) * initial[k].to(v) + w * v if v.is_floating_point() else v
            for k, v in weights.items()}  # fmt: skip


@torch.no_grad()
def blend_into(model: nn.Module, ema: EMA, initial: dict[str, torch.Tensor], w: float) -> None:
    """Model and EMA become (1 - w) * initial + w * their own weights."""
    if ema.enabled:  # (its weights first: `weights(model)` falls back to the model's)
        ema.load_weights(blended(initial, ema.weights(model), w), ema.num_updates)
    model.load_state_dict(blended(initial, model.state_dict(), w))


REF_S = (3.0, 10.0)  # the reference synthesis picks by default: the first slice this long


def _voice_items(data: Any, k: int) -> tuple[list[int], int]:
    """(the first k slices of the voice's most frequent speaker, in the list's order: the clips
    `eval` takes as "the voice"; the reference: the first of them 3-10 s long, as synthesis
    picks by default)."""
    speakers = [it.speaker for it in data.items]
    if not speakers:
        raise ValueError("likeness: the voice has no slices")
    main = max(set(speakers), key=speakers.count)
    own = [i for i, it in enumerate(data.items) if it.speaker == main]
    ref = next((i for i in own if REF_S[0] <= data.items[i].frames / 100.0 <= REF_S[1]), own[0])
    return own[:k], ref


# Sentences the probe speaks: new text (as `eval` and a person's typing are), in no corpus, the
# fixtures or the eval lists (tests/training/test_blend_choice.py checks), so no held-out
# measurement is tuned on. Twenty (~50 s of speech, ~5 s of CPU per share): with six, the
# margin's sentence-to-sentence spread alone was about +-0.012.
PROBE_SENTENCES = (
    "The garden gate creaked open in the cold morning air.",
    "Please send the letters before the office closes today.",
    "A young fox watched the farmer from behind the hedge.",
    "We carried the heavy table up three flights of stairs.",
    "Her brother fixed the kettle with a piece of wire.",
    "The children counted the stars until they fell asleep.",
    "My uncle keeps his tools in a wooden chest by the door.",
    "The baker's van stopped twice on the narrow lane.",
    "Nobody noticed the clock had stopped at half past four.",
    "Fresh snow covered the roofs of the little village.",
    "She wrote the address on the back of an old envelope.",
    "The teacher asked us to read the first two chapters.",
    "A flock of geese flew low over the frozen pond.",
    "He found his keys under a pile of newspapers.",
    "The market opens early on the first Saturday of the month.",
    "Our cat sleeps all afternoon in the warm window.",
    "They rowed the small boat across the lake at dawn.",
    "The doctor said the cough would clear in a week.",
    "We shared a plate of cheese and crackers after the game.",
    "The lights of the harbour shone through the thick fog.",
)


@torch.no_grad()
def likeness(sovits: nn.Module, gpt: nn.Module, data: Any, cfg: Config, device: torch.device,
             others: dict[str, np.ndarray], sentences: Sequence[str] | None = None,
             k: int = PROBE_SLICES) -> Likeness:  # fmt: skip
    """Speak `sentences` as synthesis does by default (the GPT's greedy prosody tokens, prompted
    by the voice's first 3-10 s slice, which also gives the d-vector and the F0 statistics) and
    compare each with the voice's centroid d-vector (of its first k slices, as `eval`) and with
    `others` ({name: [256]}): mean cosines. Raises ValueError without slices (and whatever
    synthesis raises)."""
    from types import SimpleNamespace

    from voicelab.audio import dvector
    from voicelab.data.world_data import lf0_mean_std
    from voicelab.models import world_synthesis as synth_world

    sentences = PROBE_SENTENCES if sentences is None else sentences
    idx, r = _voice_items(data, k)
    voice = torch.stack([data.items[i].dvector.float() for i in idx]).mean(0).numpy()
    item = data.items[r]
    was = (sovits.training, gpt.training)
    sovits.eval()
    gpt.eval()
    synth = SimpleNamespace(cfg=cfg, device=device, sovits=sovits, gpt=gpt,
                            sample_rate=cfg.audio.sample_rate)
    opts = {"top_k": 1, "top_p": 1.0, "temperature": 1.0}  # greedy: the same tokens every time
    target, near = [], {n: [] for n in others}
    try:
        # the reference as synthesis encodes it: its own d-vector, its own F0 statistics, its
        # prosody tokens as the GPT's prompt
        dvec = item.dvector[None].to(device)
        voiced = item.acoustic[:, data.vuv_index] > 0.5
        stats = lf0_mean_std(item.acoustic[voiced, data.lf0_index])[None].to(device)
        toks, _ = sovits.extract_tokens(data.collate([r]).to(device))
        ref = synth_world.set_prompt(
            synth_world.WorldReference(dvector=dvec, lf0_stats=stats, style=sovits.style(dvec),
                                       seconds=item.frames / 100.0),
            item.phone_ids.tolist(), item.word_pos.tolist(), item.stress.tolist(), toks[0])
        for text in sentences:
            gen = torch.Generator(device=device).manual_seed(cfg.train.seed)
            wav, _ = synth_world.sentence(synth, text, "en", ref, gen, opts, 1.0, [])
            emb = dvector.embed(wav, cfg.audio.sample_rate)
            target.append(dvector.cosine(emb, voice))
            for n, e in others.items():
                near[n].append(dvector.cosine(emb, e))
    finally:
        sovits.train(was[0])
        gpt.train(was[1])
    return Likeness(float(np.mean(target)), {n: float(np.mean(v)) for n, v in near.items()})
