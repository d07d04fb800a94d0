"""Train tab, the settings: which training settings the tab shows, their preset values, the
overrides a new run gets, the device line and the time estimate.

Plain functions of the config (no Gradio), shared by the run logic (train_runs.py) and the
layout (train.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

from voicelab.config import DEFAULT_PRESET, TrainConfig, list_presets, load_config
from voicelab.errors import VoicelabError
from voicelab.ui.common import fmt_duration


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    label: str
    help: str


# The settings a person may want to touch; everything else comes from the preset.
SETTINGS = (
    Setting("train", "sovits_steps", "Stage 1 steps (SoVITS)", "the acoustic model; the preset's value suits a minute or two of speech"),
    Setting("train", "gpt_steps", "Stage 2 steps (GPT)", "the model of rhythm and pronunciation"),
    Setting("train", "batch_size", "Batch size", "slices per step: lower it if memory runs out"),
    Setting("train", "lr_g", "Learning rate, SoVITS", "too high makes the loss jump or NaN; 2e-4 is safe"),
    Setting("train", "lr_gpt", "Learning rate, GPT", "1e-4 from scratch, lower when fine-tuning"),
    Setting("train", "warmup_steps", "Warmup steps", "the learning rate rises from 0 over these steps"),
    Setting("train", "schedule", "LR schedule", "how the learning rate falls after warmup"),
    Setting("train", "save_every", "Save every (steps)", "checkpoint interval; Pause always saves first"),
    Setting("train", "keep_last", "Keep last N checkpoints", "older ones are deleted; the best is kept too"),
    Setting("train", "spec_augment", "SpecAugment", "hides bits of the spectrogram: less overfitting"),
    Setting("train", "mixup_alpha", "Mixup (alpha)", "blends reference clips; 0 turns it off"),
    Setting("train", "ema_decay", "EMA decay", "smoothed weights for samples and export; 0 turns it off"),
    Setting("train", "early_stop_patience", "Early stop patience", "evaluations without improvement before stopping; 0 = never"),
    Setting("train", "device", "Device", "auto uses the GPU when there is one"),
)  # fmt: skip
SETTING_TYPES = get_type_hints(TrainConfig)


def preset_values(preset: str, finetune: bool = False) -> list[Any]:
    """The preset's value of every SETTINGS entry, in order; with finetune, its schedule for a
    run that starts from pretrained weights (load_config(finetune=True))."""
    cfg = load_config(preset, finetune=finetune)
    return [getattr(getattr(cfg, s.section), s.key) for s in SETTINGS]


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)  # ints, and floats in a form TOML reads back exactly (2e-4 -> 0.0002)


def preset_label(name: str) -> str:
    """`name: what it is for`, from the first comment line of presets/<name>.toml."""
    from voicelab.config import PRESETS_DIR

    try:
        first = (PRESETS_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return name
    about = first.lstrip("#").strip()
    about = about.split(":", 1)[1].strip() if about.startswith(f"{name}:") else about
    return f"{name}: {about}" if about else name


def default_preset() -> str:
    """The preset a new run starts with: config.DEFAULT_PRESET where there is one, else the first."""
    presets = list_presets()
    return DEFAULT_PRESET if DEFAULT_PRESET in presets else presets[0]


def typed_values(values: list[Any]) -> list[Any]:
    """Box values as the config types them (gr.Number hands back floats for whole numbers)."""
    out = []
    for s, v in zip(SETTINGS, values, strict=True):
        if v is None:
            raise VoicelabError(f"{s.label} is empty: type a value or pick the run again")
        if SETTING_TYPES.get(s.key) is int and isinstance(v, float):
            if not v.is_integer():
                raise VoicelabError(f"{s.label} must be a whole number, got {v}")
            v = int(v)
        out.append(v)
    return out


def overrides(preset: str, values: list[Any], finetune: bool = False) -> list[str]:
    """`section.key=value` for each setting that differs from the preset (its fine-tune schedule
    with finetune, which is what the trainer starts from then), validated here."""
    base = preset_values(preset, finetune)
    out = []
    for s, v, b in zip(SETTINGS, typed_values(values), base, strict=True):
        if v != b:
            out.append(f"{s.section}.{s.key}={toml_value(v)}")
    load_config(preset, out, finetune=finetune)  # every problem at once, before anything starts
    return out


def device_info() -> str:
    """Markdown: the GPU that training will use, or a warning that the CPU is slow."""
    import torch

    if torch.cuda.is_available():
        i = torch.cuda.current_device()
        p = torch.cuda.get_device_properties(i)
        return f"Device: **{p.name}** ({p.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    import os

    return (
        f"Device: **CPU** ({os.cpu_count()} cores). No GPU found: training works but is slow "
        "(see the time estimate below the buttons)."
    )


BENCH_TRAIN = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "results" / "train.json"


@dataclass(frozen=True)
class Estimate:
    """How long the steps in the boxes take, from benchmarks/results/train.json."""

    seconds: float
    steps: tuple[int, int]  # stage 1, stage 2
    per_step: list[str]  # "0.35 s per stage 1 step", ...
    where: str  # the measured machine: "2-core Intel(R) Xeon(R) Processor" or a GPU's name

    @property
    def duration(self) -> str:
        return fmt_duration(self.seconds)


def estimate_time(preset: str, values: list[Any]) -> Estimate | None:
    """The measured seconds per step of benchmarks/results/train.json (scaled by batch size)
    times the steps in `values`, or None when the preset was not measured."""
    try:
        bench = json.loads(BENCH_TRAIN.read_text(encoding="utf-8"))
        measured = bench["results"][preset]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        v = dict(zip((s.key for s in SETTINGS), typed_values(values), strict=True))
    except VoicelabError:
        return None
    total, parts = 0.0, []
    for stage, key, label in (("sovits", "sovits_steps", "stage 1"), ("gpt", "gpt_steps", "stage 2")):
        m = measured.get(stage) or {}
        if not isinstance(m.get("s_per_step"), (int, float)):
            return None
        per = m["s_per_step"] * max(1, int(v["batch_size"])) / max(1, int(measured.get("batch_size") or 1))
        total += per * int(v[key])
        parts.append(f"{per:.2g} s per {label} step")
    mach = bench.get("machine") or {}
    where = f"{mach.get('cores', '?')}-core {mach.get('cpu', 'CPU')}" if not mach.get("gpu") else str(mach["gpu"])
    return Estimate(total, (int(v["sovits_steps"]), int(v["gpt_steps"])), parts, where)


def estimate(preset: str, values: list[Any]) -> str:
    """Markdown: how long training with these settings takes (estimate_time), or nothing when
    not measured."""
    e = estimate_time(preset, values)
    if e is None:
        return ""
    return (f"Estimated time: **about {e.duration}** for {e.steps[0]} + {e.steps[1]} steps "
            f"({', '.join(e.per_step)}, measured on a quiet {e.where}; a busy machine takes "
            "longer, and the progress bar shows the real pace once it runs).")
