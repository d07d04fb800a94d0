"""Train tab: pick a preset and key settings, start / pause / resume / stop, watch it learn.

Training runs in its own process (voicelab/ui/jobs.py). A `gr.Timer` polls the run folder every
two seconds: status.json for progress and ETA, metrics.jsonl (read incrementally) for the loss
and learning-rate plots, samples/ for the newest audio sample, checkpoints/ for the list, and
train.log for the tail. Outputs that did not change are skipped (`gr.skip()`), so an open tab
costs little and a sample being listened to is not reset.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import gradio as gr
import pandas as pd

from voicelab.config import (
    DEFAULT_PRESET,
    Config,
    TrainConfig,
    config_to_dict,
    list_presets,
    load_config,
    load_config_json,
)
from voicelab.errors import ConfigError, VoicelabError
from voicelab.training import runfiles
from voicelab.ui import jobs
from voicelab.ui.common import fmt_duration, friendly, quiet, stamp, ui_advice, voice_or_error
from voicelab.ui.plots import CACHE, curve_figure, curves
from voicelab.workspace import RunDir, Voice

POLL_S = 2.0  # status, progress, log
PLOT_S = 4.0  # loss / LR figures (drawing them costs ~0.2 s of CPU)


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
_HINTS = get_type_hints(TrainConfig)


def preset_values(preset: str) -> list[Any]:
    """The preset's value of every SETTINGS entry, in order."""
    cfg = load_config(preset)
    return [getattr(getattr(cfg, s.section), s.key) for s in SETTINGS]


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
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


@dataclass(frozen=True)
class RunConfig:
    """A run's own settings, read from runs/<run>/config.json (written by the trainer).

    `preset` + `overrides` rebuild `cfg` exactly through `load_config`, also when the preset
    file changed since the run began (every difference is an override), so a resume never
    depends on what the Preset picker or the settings boxes happen to show.
    """

    cfg: Config
    preset: str  # the preset it was started with, or default_preset() when that file is gone
    overrides: list[str]  # `section.key=value` for every setting that differs from `preset`

    @property
    def values(self) -> list[Any]:
        """The run's value of every SETTINGS entry, in order (what the boxes show)."""
        return [getattr(getattr(self.cfg, s.section), s.key) for s in SETTINGS]

    @property
    def preset_gone(self) -> bool:
        return self.cfg.preset != self.preset


def run_config(run_dir: Path) -> RunConfig | None:
    """The saved config of a run (None when the run has none yet: a new or never-started run)."""
    path = Path(run_dir) / runfiles.CONFIG
    if not path.is_file():
        return None
    try:
        cfg = load_config_json(path)
    except (ConfigError, ValueError, OSError) as e:  # ValueError: bad JSON or bad UTF-8
        raise VoicelabError(
            f"the settings of run {Path(run_dir).name!r} (config.json) cannot be read ({e}): "
            "start a new run"
        ) from None
    preset = cfg.preset if cfg.preset in list_presets() else default_preset()
    base, own = config_to_dict(load_config(preset)), config_to_dict(cfg)
    out = []
    for section, values in own.items():
        if not isinstance(values, dict):
            continue  # the "preset" name itself
        for key, v in values.items():
            if base.get(section, {}).get(key) != v:
                out.append(f"{section}.{key}={_toml(v)}")
    return RunConfig(cfg, preset, out)


def overrides(preset: str, values: list[Any]) -> list[str]:
    """`section.key=value` for each setting that differs from the preset (validated here)."""
    base = preset_values(preset)
    out = []
    for s, v, b in zip(SETTINGS, _typed(values), base, strict=True):
        if v != b:
            out.append(f"{s.section}.{s.key}={_toml(v)}")
    load_config(preset, out)  # every problem reported at once, before anything starts
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


def estimate(preset: str, values: list[Any]) -> str:
    """Markdown: how long training with these settings takes, from the measured seconds per
    step of benchmarks/results/train.json (scaled by batch size), or nothing when not measured."""
    try:
        bench = json.loads(BENCH_TRAIN.read_text(encoding="utf-8"))
        measured = bench["results"][preset]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    try:
        v = dict(zip((s.key for s in SETTINGS), _typed(values), strict=True))
    except VoicelabError:
        return ""
    total, parts = 0.0, []
    for stage, key, label in (("sovits", "sovits_steps", "stage 1"), ("gpt", "gpt_steps", "stage 2")):
        m = measured.get(stage) or {}
        if not isinstance(m.get("s_per_step"), (int, float)):
            return ""
        per = m["s_per_step"] * max(1, int(v["batch_size"])) / max(1, int(measured.get("batch_size") or 1))
        total += per * int(v[key])
        parts.append(f"{per:.2g} s per {label} step")
    mach = bench.get("machine") or {}
    where = f"{mach.get('cores', '?')}-core {mach.get('cpu', 'CPU')}" if not mach.get("gpu") else str(mach["gpu"])
    return (f"Estimated time: **about {fmt_duration(total)}** for {int(v['sovits_steps'])} + "
            f"{int(v['gpt_steps'])} steps ({', '.join(parts)}, measured on a quiet {where}; a "
            "busy machine takes longer, and the progress bar shows the real pace once it runs).")


def new_run_name(voice: Voice) -> str:
    return f"run-{stamp()}"


def start(voice_name: str, run: str, preset: str, values: list[Any], resume: bool = False,
          prefix: list[str] | None = None) -> str:
    """Start (or resume) training of `run` in a separate process. Returns a status line.

    A new run takes the Preset picker and the settings boxes. A resume takes the run's own
    config.json (see `resume_plan`): only deliberate changes in the boxes are applied on top.
    """
    v = voice_or_error(voice_name)
    if not run:
        raise VoicelabError("type a run name (or keep the suggested one)")
    if not v.dataset_list.is_file():
        raise VoicelabError("there are no slices yet: slice the audio in the Slice tab first")
    run_dir = v.run_dir(run)
    if resume:
        newest = newest_checkpoint(run_dir)
        if newest is None and RunDir(run_dir).has_checkpoints():
            raise VoicelabError(f"every checkpoint of run {run!r} is damaged (the checkpoint table "
                                "says why): type a new run name and press Start")  # fmt: skip
        if newest is None:
            raise VoicelabError(f"run {run!r} has no checkpoint yet: press Start to begin it")
        rc = run_config(run_dir)
        if rc is not None:
            ov, notes = resume_plan(rc, preset, values, newest)
            proc = jobs.start_training(v, run, rc.preset, ov, resume=True, prefix=prefix)
            return f"resuming run `{run}` (process {proc.pid}) from {newest.path.name}. " + " ".join(notes)
    ov = overrides(preset, values)
    proc = jobs.start_training(v, run, preset, ov, resume=resume, prefix=prefix)
    verb = "resuming" if resume else "started"
    return f"{verb} run `{run}` (process {proc.pid}) with preset `{preset}`" + (
        f", changed: {', '.join(ov)}" if ov else ""
    )


STAGE_NAMES = {"sovits": "stage 1 (SoVITS)", "gpt": "stage 2 (GPT)"}


def newest_checkpoint(run_dir: Path):  # -> checkpoint.CheckpointInfo | None
    """The newest intact checkpoint (what the trainer's `--resume auto` picks first)."""
    from voicelab.training import checkpoint

    good = [c for c in checkpoint.list_checkpoints(run_dir, verify=False) if c.problem is None]
    return good[-1] if good else None


def resume_plan(rc: RunConfig, preset_shown: str, values: list[Any], newest) -> tuple[list[str], list[str]]:
    """(overrides for the trainer, sentences saying what the resume will train).

    The run's own settings are the base. A box that differs from the run's saved value is a
    change the person made on purpose and is applied, except where it cannot take effect: steps
    of a stage already finished are dropped, and a resume that would train nothing is refused
    (never silently ignored). With another preset in the picker the boxes show that preset's
    values, not changes to this run, so they are left out.
    """
    notes = [f"It keeps its own preset `{rc.cfg.preset}` and settings."]
    if rc.preset_gone:
        notes.append(f"(Preset `{rc.cfg.preset}` no longer exists; its saved values are used.)")
    changes: dict[str, Any] = {}
    if preset_shown in (rc.preset, rc.cfg.preset):
        asked = _typed(values)
        for s, new, old in zip(SETTINGS, asked, rc.values, strict=True):
            if new != old:
                changes[s.key] = new
    else:
        notes.append(f"The Preset picker ({preset_shown}) and the boxes are for new runs; "
                     "pick the run again to see and change its own settings.")
    t = rc.cfg.train
    sov, gpt = int(changes.get("sovits_steps", t.sovits_steps)), int(changes.get("gpt_steps", t.gpt_steps))
    stage, done = newest.stage or "sovits", int(newest.stage_step or newest.step)
    if stage == "gpt":
        if "sovits_steps" in changes:
            changes.pop("sovits_steps")
            notes.append(f"Stage 1 is already finished ({t.sovits_steps} steps), so its new step "
                         f"count ({sov}) does not apply: start a new run to train stage 1 longer.")
        if gpt <= done:
            raise VoicelabError(
                f"run {newest.path.parent.parent.name!r} has already trained {done} steps of stage 2 "
                f"and stage 2 is set to {gpt}: nothing is left to train. Raise 'Stage 2 steps' "
                f"above {done} to train more, or export it in the Speak tab"
            )
        plan = f"It trains {STAGE_NAMES['gpt']} steps {done + 1} to {gpt}."
    else:
        if sov <= done:
            if "sovits_steps" in changes:
                notes.append(f"Stage 1 already has {done} steps, more than the {sov} asked: "
                             "it ends here.")
            left = f"Stage 1 is done ({done} steps); it trains {STAGE_NAMES['gpt']}: {gpt} steps."
            if gpt <= 0:
                raise VoicelabError(
                    f"stage 1 already has {done} steps and stage 2 is set to 0 steps: nothing is "
                    f"left to train. Raise 'Stage 2 steps', or 'Stage 1 steps' above {done}"
                )
        else:
            left = (f"It trains {STAGE_NAMES['sovits']} steps {done + 1} to {sov}, then "
                    f"{STAGE_NAMES['gpt']}: {gpt} steps." if gpt > 0 else
                    f"It trains {STAGE_NAMES['sovits']} steps {done + 1} to {sov} (stage 2 is off).")
        plan = left
    notes.append(plan)
    extra = []
    for s in SETTINGS:
        if s.key in changes:
            extra.append(f"{s.section}.{s.key}={_toml(changes[s.key])}")
    if extra:
        notes.append("Changed for the rest of this run: " + ", ".join(
            x.split(".", 1)[1].replace("=", " = ") for x in extra) + ".")
    ov = rc.overrides + extra
    load_config(rc.preset, ov)  # every problem reported at once, before anything starts
    return ov, notes


def _typed(values: list[Any]) -> list[Any]:
    """Box values as the config types them (gr.Number hands back floats for whole numbers)."""
    out = []
    for s, v in zip(SETTINGS, values, strict=True):
        if v is None:
            raise VoicelabError(f"{s.label} is empty: type a value or pick the run again")
        if _HINTS.get(s.key) is int and isinstance(v, float):
            if not v.is_integer():
                raise VoicelabError(f"{s.label} must be a whole number, got {v}")
            v = int(v)
        out.append(v)
    return out


_bases_cache: dict[tuple, list] = {}


def _bases() -> list:  # -> list[base.BaseInfo]
    """The shipped bases, read again only when the folder's files change (hashing is costly)."""
    from voicelab import base

    folder = base.base_dir()
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    key = (str(folder), *((p.name, p.stat().st_size, p.stat().st_mtime) for p in files))
    if key not in _bases_cache:
        _bases_cache.clear()
        _bases_cache[key] = base.find_bases(folder)
    return _bases_cache[key]


SCRATCH = (
    "It learns what speech sounds like only from this voice's own slices, so expect mumbling "
    "and noise for a long time and a rough voice at best; a pretrained base "
    "(docs/pretraining.md) gives a clear voice from a minute or two of speech."
)


def start_point(cfg: Config) -> str:
    """Markdown: what a new run with `cfg` starts from (the matching shipped base, or scratch)."""
    from voicelab import base

    bases = sorted(_bases(), key=lambda b: (b.name != base.DEFAULT_NAME, b.name))
    match = next((b for b in bases if not b.mismatch(cfg)), None)
    if match is not None:
        c = match.meta.get("corpus") or {}
        made = f"{c.get('hours', 0):.1f} h of {len(c.get('speakers') or {})} speakers" if c else ""
        return (f"A new run starts from the pretrained base **{match.name}**"
                f"{' (' + made + ')' if made else ''}: it already knows how speech sounds, and "
                "learns your voice on top.")
    if bases:
        why = (f"the base {bases[0].name} was made with preset `{bases[0].meta.get('preset')}`, "
               f"not `{cfg.preset}`: pick that preset to start from it")
    else:
        why = f"there is no pretrained base in `{base.base_dir()}`"
    return f"A new run starts **from scratch** ({why}). {SCRATCH}"


def run_start_point(run_dir: Path) -> str | None:
    """What an existing run started from, read from its train.log (None before it logged)."""
    log = Path(run_dir) / runfiles.LOG
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            head = f.read(64_000)  # the start line comes early; logs grow for days
    except FileNotFoundError:
        return None
    for line in head.splitlines():
        if "initial weights from " in line:
            src = line.split("initial weights from ", 1)[1].split(" (", 1)[0]
            return f"It started from **{Path(src).name}**."
    return f"It started **from scratch**. {SCRATCH}"


def run_info(voice_name: str | None, run: str | None, preset: str) -> str:
    """Markdown about the picked run: its preset and start point, or what a new run would be."""
    try:
        v = voice_or_error(voice_name)
        run_dir = v.run_dir(run or "")
    except VoicelabError:
        return ""
    rc = run_config(run_dir)
    if rc is None:
        try:
            cfg = load_config(preset)
        except ConfigError:
            return ""
        return f"New run `{run}`: it starts with the preset and settings shown here. " + start_point(cfg)
    gone = " (that preset file is gone: the values are the run's own)" if rc.preset_gone else ""
    return (f"Run `{run}` was started with preset **{rc.cfg.preset}**{gone}; the settings below "
            "are its own. Resume keeps them; change the step counts to train longer. "
            + (run_start_point(run_dir) or ""))


def show_run(voice_name: str | None, run: str | None) -> tuple:
    """(preset, *setting values) for the picked run: its own saved settings (`run_info` says so).

    A run without config.json (a new name, or never started) leaves the picker and boxes as
    they are.
    """
    n = 1 + len(SETTINGS)
    try:
        v = voice_or_error(voice_name)
        run_dir = v.run_dir(run or "")
    except VoicelabError:
        return tuple([gr.skip()] * n)
    rc = run_config(run_dir)
    if rc is None:
        return tuple([gr.skip()] * n)
    return (rc.preset, *rc.values)


def control(voice_name: str, run: str, action: Literal["pause", "stop"]) -> str:
    v = voice_or_error(voice_name)
    jobs.request(v.run_dir(run), action)
    return f"{action} requested: the trainer saves a checkpoint at the end of this step"


# ---------------------------------------------------------------------------- polling


# Terms that keep the GAN and the quantiser in balance: they hover around a constant and say
# little about the voice, so the checkpoint table leaves them out (the plot still shows them).
BOOKKEEPING_LOSSES = ("adv", "d", "fm", "g_total", "total", "commit")


def watched_losses(losses: dict[str, float], val_loss: float | None = None, n: int = 3) -> str:
    """'val 0.91, mel 1.23, kl 2.1': the validation loss, then the first `n` losses a person
    watches (reconstruction, KL, the GPT's token loss ...), in the trainer's own order."""
    shown = [f"val {val_loss:.3g}"] if isinstance(val_loss, (int, float)) else []
    for key, v in losses.items():
        name = key.split("/", 1)[-1]
        if name in BOOKKEEPING_LOSSES or not isinstance(v, (int, float)):
            continue
        if len(shown) >= n + (1 if val_loss is not None else 0):
            break
        shown.append(f"{name} {v:.3g}")
    return ", ".join(shown)


def checkpoint_rows(run_dir: Path) -> list[list[Any]]:
    """[step, stage, file, saved, losses, note] per checkpoint, newest first."""
    from voicelab.training import checkpoint

    rows = []
    for c in reversed(checkpoint.list_checkpoints(run_dir, verify=False)):
        note = "damaged: " + c.problem if c.problem else ", ".join(
            n for n, f in (("latest", c.is_latest), ("best", c.is_best)) if f
        )
        losses = watched_losses(c.losses, c.val_loss)
        saved = time.strftime("%H:%M:%S", time.localtime(c.time)) if c.time else ""
        rows.append([c.step, c.stage or "", c.path.name, saved, losses, note])
    return rows


def resume_label(rows: list[list[Any]]) -> str:
    good = [r for r in rows if not str(r[5]).startswith("damaged")]
    if not good and rows:
        return "Every checkpoint of this run is damaged (see the notes): start a new run."
    if not good:
        return "No checkpoint yet: Resume becomes available after the first save or a Pause."
    step, stage, name = good[0][:3]
    return f"Resume from newest checkpoint: **{name}** (step {step}{', ' + stage if stage else ''})"


def progress_html(view: jobs.RunView) -> str:
    pct = 100 * view.fraction
    eta = f", about {fmt_duration(view.eta_s)} left" if view.alive and view.eta_s else ""
    stage = f" ({html.escape(view.stage)})" if view.stage else ""
    return (
        f'<div id="train-progress"><div style="background:#ddd;border-radius:4px;height:14px">'
        f'<div style="width:{pct:.1f}%;background:#3b7ddd;height:14px;border-radius:4px"></div>'
        f"</div><div>step {view.step} / {view.total_steps or '?'}{stage}: {pct:.0f}%{eta}</div></div>"
    )


def state_markdown(view: jobs.RunView) -> str:
    words = {
        "not started": "Not started.",
        "starting": "Starting (loading data and models)...",
        "running": "Training.",
        "saving": "Saving a checkpoint...",
        "paused": "Paused: press Resume to continue exactly where it stopped.",
        "stopped": "Stopped. Resume continues from the newest checkpoint.",
        "finished": "Finished: export the model in the Speak tab.",
        "failed": "**Training failed.**",
        "crashed": "**The trainer stopped unexpectedly.**",
        # runfiles.load_status found status.json unreadable: the cause below says how
        "damaged": "**Its status file is damaged**, so its progress cannot be shown; the "
                   "checkpoints are not affected.",
    }
    text = f"Run `{view.run}`: {words.get(view.state, view.state)}"
    if view.alive and view.state in ("paused", "stopped", "finished"):
        # the checkpoint is saved; the process takes a few seconds more to exit, and only then
        # are Resume and Start enabled
        text += " (The trainer is closing: Resume is available in a few seconds.)"
    error = ui_advice(view.error.strip())
    message = ui_advice(view.message)
    if message and message not in error:
        text += f"\n\n{message}"
    if error:
        # a quoted block, not inline code: the cause itself may contain backticks
        text += "\n\n**Cause:**\n\n" + "\n".join(f"> {line}" for line in error[:1500].splitlines())
    return text


def latest_sample(run_dir: Path) -> str | None:
    folder = run_dir / runfiles.SAMPLES
    if not folder.is_dir():
        return None
    wavs = sorted(folder.glob("*.wav"))
    return str(wavs[-1]) if wavs else None


@dataclass(frozen=True)
class PollView:
    """What one poll of the Train tab updates, by name (each a value or `gr.skip()`).

    `updates(components)` maps the names to the tab's components, so nothing depends on the
    order of an output list.
    """

    state: Any
    progress: Any
    sample: Any
    checkpoints: Any
    log: Any
    resume_info: Any
    start: Any
    pause: Any
    resume: Any
    stop: Any
    message: Any  # cleared when the run moved on (a "pause requested" line is stale then)
    last: dict  # what was shown, for the next poll's comparison

    def updates(self, components: dict[str, Any]) -> dict[Any, Any]:
        return {c: getattr(self, name) for name, c in components.items()}


POLL_FIELDS = tuple(f for f in PollView.__dataclass_fields__)


def _skipped(last: dict) -> PollView:
    return PollView(**{f: gr.skip() for f in POLL_FIELDS if f != "last"}, last=last)


def poll(voice_name: str | None, run: str | None, last: dict | None,
         shown_message: str | None = None) -> PollView:
    """Everything the Train tab shows about `run`; unchanged outputs are `gr.skip()`ped.

    The plots have their own, slower refresh (`poll_plots`): drawing them is the one costly
    part, and the status must stay quick while a trainer has the CPU.
    """
    last = dict(last or {})
    try:
        v = voice_or_error(voice_name)
        run_dir = v.run_dir(run or "")
    except VoicelabError:
        # no voice yet, or a run name still being typed: the timer must not toast every 2 s
        return _skipped(last)
    view = jobs.run_view(run_dir)
    ckpt_key = [(p.name, p.stat().st_mtime) for p in RunDir(run_dir).checkpoint_files()]
    fresh: dict[str, Any] = {
        "run": str(run_dir),
        "state": state_markdown(view),
        "state_name": view.state,
        "progress": progress_html(view),
        "sample": latest_sample(run_dir),
        "ckpts": repr(ckpt_key),
        "log": jobs.log_tail(run_dir, 30),
        "alive": view.alive,
    }
    same_run = last.get("run") == fresh["run"]
    changed = {k for k, val in fresh.items() if last.get(k) != val or not same_run}

    def out(key: str, make):  # build an output only when its input changed
        return make() if key in changed else gr.skip()

    rows_box: dict[str, list] = {}

    def rows() -> list:
        if "r" not in rows_box:
            rows_box["r"] = checkpoint_rows(run_dir)
        return rows_box["r"]

    busy = view.alive
    # the run moved on (paused, stopped, finished, failed): a "pause requested" or "started"
    # line above is stale; the state line says what happened
    moved_on = (same_run and "state_name" in last and last["state_name"] != view.state
                and view.state not in jobs.LIVE_STATES)
    # a "pause requested" line whose answer arrived before the line did (a busy page delivers
    # the click's reply after the poll that saw the pause) is cleared by what it says
    stale_request = bool(shown_message) and view.state not in jobs.LIVE_STATES and any(
        str(shown_message).startswith(f"{a} requested") for a in ("pause", "stop"))
    moved_on = moved_on or stale_request
    return PollView(
        state=out("state", lambda: fresh["state"]),
        progress=out("progress", lambda: fresh["progress"]),
        sample=out("sample", lambda: fresh["sample"]),
        checkpoints=out("ckpts", lambda: pd.DataFrame(rows(), columns=CKPT_HEADERS)),
        log=out("log", lambda: fresh["log"]),
        resume_info=out("ckpts", lambda: resume_label(rows())),
        start=out("alive", lambda: gr.Button(interactive=not busy)),
        pause=out("alive", lambda: gr.Button(interactive=busy)),
        resume=out("alive", lambda: gr.Button(interactive=not busy)),
        stop=out("alive", lambda: gr.Button(interactive=busy)),
        message="" if moved_on else gr.skip(),
        last=fresh,
    )


CKPT_HEADERS = ["step", "stage", "file", "saved", "losses", "note"]


def poll_plots(voice_name: str | None, run: str | None, seen: dict | None) -> tuple:
    """(loss figure, LR figure, new `seen`): redrawn only when metrics.jsonl gained records."""
    seen = dict(seen or {})
    try:
        run_dir = voice_or_error(voice_name).run_dir(run or "")
    except VoicelabError:
        return gr.skip(), gr.skip(), seen
    records = CACHE.records(run_dir)
    key = (str(run_dir), len(records))
    if seen.get("key") == list(key):
        return gr.skip(), gr.skip(), seen
    seen["key"] = list(key)
    if not records:  # no figure before the first point: an empty plot reads as "nothing yet"
        return None, None, seen
    return curve_figure(curves(records, "loss"), "loss"), curve_figure(curves(records, "lr"), "lr"), seen


def attach(voice_name: str | None) -> gr.Dropdown:
    """Runs of the voice; the one with a live trainer (re-attach) or else the newest selected."""
    if not voice_name:
        return gr.Dropdown(choices=[], value=None)
    v = voice_or_error(voice_name)
    runs = v.list_runs()
    live = jobs.active_run(v)
    value = live or (runs[-1] if runs else new_run_name(v))
    return gr.Dropdown(choices=list(reversed(runs)), value=value)


# ---------------------------------------------------------------------------- layout


# The log box must show its newest line. Gradio's autoscroll misses the first value and a value
# that arrives while the tab is hidden (a hidden textarea has no height to scroll), so the page
# scrolls it after each change and whenever the tab is opened.
SCROLL_LOG_JS = """
() => { requestAnimationFrame(() => {
  const t = document.querySelector('#train-log textarea');
  if (t) { t.scrollTop = t.scrollHeight; }
}); }
"""


def build(voice_dd: gr.Dropdown, tab: gr.Tab | None = None) -> None:
    presets = list_presets()
    default = default_preset()
    gr.Markdown(device_info(), elem_id="train-device")
    with gr.Row():
        preset = gr.Dropdown([(preset_label(n), n) for n in presets], value=default,
                             label="Preset", elem_id="train-preset",
                             info="the size of the model; each preset says what it is for")
        run = gr.Dropdown(label="Run", allow_custom_value=True, elem_id="train-run",
                          info="pick a run to watch or resume, or type a new name")
    inputs = []
    with gr.Accordion("Key settings", open=False, elem_id="train-settings"):
        vals = preset_values(default)
        for i in range(0, len(SETTINGS), 4):
            with gr.Row():
                for s, v in zip(SETTINGS[i:i + 4], vals[i:i + 4], strict=False):
                    tp = _HINTS[s.key]
                    eid = f"set-{s.key}"
                    if tp is bool:
                        c = gr.Checkbox(v, label=s.label, info=s.help, elem_id=eid)
                    elif getattr(tp, "__origin__", None) is Literal:
                        c = gr.Dropdown(list(get_args(tp)), value=v, label=s.label, info=s.help,
                                        elem_id=eid)
                    elif s.key == "device":
                        c = gr.Dropdown(["auto", "cpu", "cuda"], value=v, label=s.label,
                                        info=s.help, allow_custom_value=True, elem_id=eid)
                    else:
                        c = gr.Number(v, label=s.label, info=s.help, elem_id=eid,
                                      precision=0 if tp is int else None)
                    inputs.append(c)
    with gr.Row():
        start_btn = gr.Button("Start", variant="primary", elem_id="train-start")
        pause_btn = gr.Button("Pause", elem_id="train-pause", interactive=False)
        resume_btn = gr.Button("Resume from newest checkpoint", elem_id="train-resume")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="train-stop", interactive=False)
    run_info_md = gr.Markdown(elem_id="train-run-info")
    estimate_md = gr.Markdown(estimate(default, preset_values(default)), elem_id="train-estimate")
    resume_md = gr.Markdown(elem_id="train-resume-info")
    message = gr.Markdown(elem_id="train-message")
    state_md = gr.Markdown(elem_id="train-state")
    prog = gr.HTML(elem_id="train-progress-box")
    with gr.Row():
        loss_plot = gr.Plot(label="Loss", elem_id="loss-plot", format="png")
        lr_plot = gr.Plot(label="Learning rate", elem_id="lr-plot", format="png")
    sample = gr.Audio(label="Latest training sample", interactive=False, elem_id="train-sample")
    ckpts = gr.Dataframe(headers=CKPT_HEADERS, interactive=False, label="Checkpoints",
                         elem_id="train-ckpts")
    log = gr.Textbox(label="Log (last lines)", lines=10, max_lines=10, interactive=False,
                     autoscroll=True, elem_id="train-log")
    last = gr.State({})
    seen = gr.State({})
    timer = gr.Timer(POLL_S)
    plot_timer = gr.Timer(PLOT_S)

    # .input, not .change: picking a run sets the picker to the run's own preset, and that must
    # not reset the boxes to the preset's defaults over the run's own values
    preset.input(quiet(preset_values, len(inputs)), [preset], inputs, show_progress="hidden")
    preset.change(quiet(run_info, 1), [voice_dd, run, preset], [run_info_md],
                  show_progress="hidden")
    keys = [s.key for s in SETTINGS]
    for box in [preset] + [inputs[keys.index(k)] for k in ("sovits_steps", "gpt_steps", "batch_size")]:
        box.change(lambda p, *vals: estimate(p, list(vals)), [preset, *inputs], [estimate_md],
                   show_progress="hidden")

    def on_start(name, r, p, *values):
        return start(name, r, p, list(values), resume=False), {}

    def on_resume(name, r, p, *values):
        return start(name, r, p, list(values), resume=True), {}

    poll_outs = dict(state=state_md, progress=prog, sample=sample, checkpoints=ckpts, log=log,
                     resume_info=resume_md, start=start_btn, pause=pause_btn, resume=resume_btn,
                     stop=stop_btn, message=message, last=last)
    assert set(poll_outs) == set(POLL_FIELDS), "every PollView field has its component"
    start_btn.click(friendly(on_start, 2), [voice_dd, run, preset, *inputs], [message, last])
    resume_btn.click(friendly(on_resume, 2), [voice_dd, run, preset, *inputs], [message, last])
    pause_btn.click(friendly(lambda n, r: control(n, r, "pause"), 1), [voice_dd, run], [message])
    stop_btn.click(friendly(lambda n, r: control(n, r, "stop"), 1), [voice_dd, run], [message])
    # show_progress="hidden": the poll must not flash a spinner over the plots every 2 s
    def on_poll(name, r, seen, shown):
        return poll(name, r, seen, shown).updates(poll_outs)

    timer.tick(quiet(on_poll, len(poll_outs)), [voice_dd, run, last, message],
               list(poll_outs.values()),
               show_progress="hidden",
               api_name="train_poll")
    plot_timer.tick(quiet(poll_plots, 3), [voice_dd, run, seen], [loss_plot, lr_plot, seen],
                    show_progress="hidden", api_name="train_plots")
    voice_dd.change(quiet(attach, 1), [voice_dd], [run]).then(lambda: ({}, {}), None, [last, seen])
    run.change(lambda: ({}, {}), None, [last, seen])
    log.change(None, None, None, js=SCROLL_LOG_JS)
    if tab is not None:
        tab.select(None, None, None, js=SCROLL_LOG_JS)
    # hidden progress: a spinner over the picker and the boxes would block them for a moment
    run.change(quiet(show_run, len(inputs) + 1), [voice_dd, run], [preset, *inputs],
               show_progress="hidden")
    run.change(quiet(run_info, 1), [voice_dd, run, preset], [run_info_md], show_progress="hidden")
