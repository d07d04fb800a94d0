"""Train tab, where a new run starts: the shipped pretrained base that matches the preset, or
scratch, as the person chooses ("Start from").

    p = plan(preset, choice)                     # StartPlan: the base (or None and why)
    values = start_values(preset, choice)        # what the settings boxes show for a new run
    md = start_line(preset, choice, values)      # the sentence the tab shows about it

From the base a new run is a fine-tune: the trainer gets `--from <the base>` and builds its
config with load_config(preset, overrides, finetune=True) (commands/train.py), so the boxes show
the preset's [finetune.train] schedule and the overrides are counted from it
(train_settings.overrides(..., finetune=True)). From scratch it gets `--from none` and the plain
preset. Plain functions of the preset and the base folder (no Gradio).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voicelab import base
from voicelab.config import load_config
from voicelab.errors import VoicelabError
from voicelab.ui.train_settings import (
    BENCH_TRAIN,
    SETTINGS,
    estimate_time,
    preset_values,
    typed_values,
)

BENCH_BASE = BENCH_TRAIN.with_name("base.json")  # bench_base.py: whole default fine-tunes
FROM_BASE, FROM_SCRATCH = "base", "scratch"
START_CHOICES = [("pretrained base (fine-tune)", FROM_BASE), ("from scratch", FROM_SCRATCH)]
LANGUAGES = {"en": "English", "zh": "Mandarin"}  # a base's config text.default_lang

SCRATCH = (
    "It learns what speech sounds like only from this voice's own slices: from one minute, "
    "recognisably the voice but clearly less intelligible than a fine-tune of the pretrained "
    "base (README, \"What quality to expect\"); worth it only with much more speech."
)

_bases_cache: dict[tuple, list] = {}


def bases() -> list:  # -> list[base.BaseInfo], the default name first
    """The shipped bases, read again only when the folder's files change (hashing is costly)."""
    folder = base.base_dir()
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    key = (str(folder), *((p.name, p.stat().st_size, p.stat().st_mtime) for p in files))
    if key not in _bases_cache:
        _bases_cache.clear()
        _bases_cache[key] = base.find_bases(folder)
    return sorted(_bases_cache[key], key=lambda b: (b.name != base.DEFAULT_NAME, b.name))


@dataclass(frozen=True)
class StartPlan:
    """What a new run with `preset` starts from."""

    preset: str
    base: Any  # base.BaseInfo: the matching base it fine-tunes, or None (scratch)
    why: str  # why from scratch ("" from the base)

    @property
    def finetune(self) -> bool:
        return self.base is not None

    @property
    def from_value(self) -> str:
        """`train --from` for the trainer: the base's file, or "none"."""
        return str(self.base.path) if self.base is not None else base.FROM_NONE


def plan(preset: str, choice: str = FROM_BASE) -> StartPlan:
    """The base (same as base.default_from picks: the default name first) whose architecture
    matches the preset when `choice` is FROM_BASE and there is one, else scratch and why."""
    if choice not in (FROM_BASE, FROM_SCRATCH):
        raise VoicelabError(f"Start from: {choice!r}: choose the pretrained base or from scratch")
    cfg = load_config(preset)  # the architecture is the same with or without [finetune]
    found = bases()
    match = next((b for b in found if not b.mismatch(cfg)), None)
    if choice == FROM_SCRATCH:
        fits = f"; the pretrained base `{match.name}` fits this preset" if match else ""
        return StartPlan(preset, None, f"as chosen under Start from{fits}")
    if match is not None:
        return StartPlan(preset, match, "")
    if found:
        made = found[0].meta.get("preset")
        why = (f"the base `{found[0].name}` was made with preset `{made}`, not `{preset}`: "
               "pick that preset to start from it")  # fmt: skip
    else:
        why = f"there is no pretrained base in `{base.base_dir()}`"
    return StartPlan(preset, None, why)


def start_values(preset: str, choice: str = FROM_BASE) -> list[Any]:
    """The settings boxes of a new run: the preset's fine-tune schedule when it starts from a
    base, its own values when from scratch."""
    return preset_values(preset, plan(preset, choice).finetune)


def describe_base(b: Any) -> str:
    """"the pretrained English base `base` (10 speakers, 1.9 h, SoVITS 40000 + GPT 8000 steps)",
    from the base's JSON (corpus, steps, config)."""
    meta = b.meta
    lang = LANGUAGES.get(((meta.get("config") or {}).get("text") or {}).get("default_lang"))
    corpus, steps = meta.get("corpus") or {}, meta.get("steps") or {}
    facts = []
    if corpus.get("speakers"):
        facts.append(f"{len(corpus['speakers'])} speakers")
    if isinstance(corpus.get("hours"), (int, float)):
        facts.append(f"{corpus['hours']:.1f} h")
    if isinstance(steps.get("sovits"), int):
        facts.append(f"SoVITS {steps['sovits']}"
                     + (f" + GPT {steps['gpt']}" if isinstance(steps.get("gpt"), int) else "")
                     + " steps")  # fmt: skip
    return (f"the pretrained {lang + ' ' if lang else ''}base `{b.name}`"
            + (f" ({', '.join(facts)})" if facts else ""))  # fmt: skip


def _steps_and_time(preset: str, values: list[Any]) -> str:
    """"**500 + 150 steps**, about 12 min (measured on a quiet 2-core ...)"."""
    try:
        v = dict(zip((s.key for s in SETTINGS), typed_values(values), strict=True))
        sov, gpt = int(v["sovits_steps"]), int(v["gpt_steps"])
    except (VoicelabError, TypeError, ValueError):
        return "the steps set below"
    e = estimate_time(preset, values)
    took = f", about {e.duration} (measured on a quiet {e.where})" if e is not None else ""
    return f"**{sov} + {gpt} steps**{took}"


def measured_finetune_minutes(preset: str) -> tuple[float, float] | None:
    """(shortest, longest) wall-clock minutes of the default fine-tunes in the base benchmark
    (benchmarks/results/base.json, `train` of a one-minute voice from the shipped base), when
    it measured this preset; None otherwise."""
    try:
        bench = json.loads(BENCH_BASE.read_text(encoding="utf-8"))
        runs = [v["runs"]["default"] for v in bench["voices"].values()
                if isinstance(v, dict) and "default" in v.get("runs", {})]  # fmt: skip
        minutes = [float(r["train_min"]) for r in runs
                   if r.get("preset") == preset and r.get("finetuned") and "train_min" in r]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (min(minutes), max(minutes)) if minutes else None


def start_line(preset: str, choice: str = FROM_BASE, values: list[Any] | None = None) -> str:
    """Markdown: what a new run with `preset` and the box `values` (default: the plan's own)
    starts from, how many steps it trains and about how long that takes, and what to expect."""
    p = plan(preset, choice)
    own = preset_values(preset, p.finetune)
    values = own if values is None else list(values)
    try:
        typed = typed_values(values)
    except VoicelabError:
        typed = None  # a box holds something unreadable: Start will say what
    if p.finetune:
        t = load_config(preset, finetune=True).train
        try:
            acoustic = int(dict(zip((s.key for s in SETTINGS), typed, strict=True))["sovits_steps"])
        except (TypeError, ValueError, KeyError):
            acoustic = 1
        if acoustic == 0:
            how = ("The acoustic model stays as pretrained and only the phrasing adapts: the "
                   "clearest speech, but in the base voice nearest yours (from a speaker "
                   "embedding of your slices) rather than yours.")
        else:
            if t.blend_margin > 0:
                back = (", then blends its acoustic model back towards the base's for clarity, "
                        "as far as it still sounds like you rather than like a base speaker "
                        "(checked with a speaker encoder on new sentences)")
            elif t.weight_blend < 1:
                back = (f", then blends its acoustic model {1 - t.weight_blend:.0%} back towards "
                        "the base's for clarity")
            else:
                back = ""
            how = ("It already speaks; the fine-tune learns your voice on top at lower "
                   "learning rates" + (f" with {', '.join(t.freeze)} frozen" if t.freeze else "")
                   + back
                   + ", so a minute or two of speech is enough. Noise in the recording makes "
                   "the result less clear: record somewhere quiet.")  # fmt: skip
        text = (f"Starts from **{describe_base(p.base)}**: fine-tunes "
                f"{_steps_and_time(preset, values)}. {how}")
        whole = measured_finetune_minutes(preset)
        if whole is not None and typed is not None and typed == typed_values(own):
            lo, hi = whole
            span = f"{lo:.1f}" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}-{hi:.1f}"
            text += (f" All of it (features, checks, saves and choosing the blend) took {span} "
                     "min for a one-minute voice on the measured machine "
                     "(benchmarks/results/base.md).")  # fmt: skip
    else:
        text = f"Starts **from scratch** ({p.why}): trains {_steps_and_time(preset, values)}. {SCRATCH}"
    try:
        stale = typed is not None and typed == preset_values(preset, not p.finetune) != own
    except VoicelabError:
        stale = False
    if stale:  # e.g. a base shipped while the page was open: the boxes still hold the other one
        this = "fine-tune" if p.finetune else "from-scratch"
        text += (f" The settings below hold the other schedule, and Start uses them: switch Start "
                 f"from over and back to load the {this} schedule.")  # fmt: skip
    return text
