"""Train tab, the runs: picking a run, its saved config, what it started from, and what
Start and Resume will train (`start`, `resume_plan`), plus Pause / Stop requests.

A new run starts from the matching pretrained base (a fine-tune, the preset's [finetune]
schedule) or from scratch, as "Start from" says (train_start.py). A resume takes the run's own
config.json, never what the Preset picker or Start from happen to show; the boxes only add
deliberate changes on top (see `resume_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gradio as gr

from voicelab.config import Config, config_to_dict, list_presets, load_config, load_config_json
from voicelab.errors import ConfigError, VoicelabError
from voicelab.training import runfiles
from voicelab.ui import jobs
from voicelab.ui.common import stamp, voice_or_error
from voicelab.ui.train_settings import SETTINGS, default_preset, overrides, toml_value, typed_values
from voicelab.ui.train_start import FROM_BASE, SCRATCH, plan, start_line, start_values
from voicelab.workspace import RunDir, Voice


@dataclass(frozen=True)
class RunConfig:
    """A run's own settings, read from runs/<run>/config.json (written by the trainer).

    `preset` + `overrides` rebuild `cfg` exactly through `load_config` (with finetune=True for
    a run that started from pretrained weights, as the trainer's resume does), also when the
    preset file changed since the run began (every difference is an override), so a resume
    never depends on what the Preset picker or the settings boxes happen to show.
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
    # a fine-tuned run resumes on the preset's fine-tune schedule (commands/train.py): count
    # the differences from that, or a value set back to the plain preset's would be lost
    base = config_to_dict(load_config(preset, finetune=cfg.train.finetuned))
    own = config_to_dict(cfg)
    out = []
    for section, values in own.items():
        if not isinstance(values, dict):
            continue  # the "preset" name itself
        for key, v in values.items():
            if base.get(section, {}).get(key) != v:
                out.append(f"{section}.{key}={toml_value(v)}")
    return RunConfig(cfg, preset, out)


def new_run_name(voice: Voice) -> str:
    return f"run-{stamp()}"


def start(voice_name: str, run: str, preset: str, values: list[Any], resume: bool = False,
          prefix: list[str] | None = None, start_from: str = FROM_BASE) -> str:
    """Start (or resume) training of `run` in a separate process. Returns a status line.

    A new run takes the Preset picker, Start from (`train_start.plan`: the matching base with
    the fine-tune schedule, or scratch) and the settings boxes, counted from that schedule. A
    resume takes the run's own config.json (see `resume_plan`): only deliberate changes in the
    boxes are applied on top.
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
    if resume:  # a checkpoint without config.json: the trainer's own resume decides
        ov = overrides(preset, values)
        proc = jobs.start_training(v, run, preset, ov, resume=True, prefix=prefix)
        return f"resuming run `{run}` (process {proc.pid}) with preset `{preset}`" + (
            f", changed: {', '.join(ov)}" if ov else "")  # fmt: skip
    p = plan(preset, start_from)
    ov = overrides(preset, values, finetune=p.finetune)
    proc = jobs.start_training(v, run, preset, ov, prefix=prefix, from_value=p.from_value)
    where = (f"from the pretrained base `{p.base.name}` (fine-tune schedule)" if p.finetune
             else "from scratch")  # fmt: skip
    return f"started run `{run}` (process {proc.pid}) with preset `{preset}`, {where}" + (
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
        asked = typed_values(values)
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
            extra.append(f"{s.section}.{s.key}={toml_value(changes[s.key])}")
    if extra:
        notes.append("Changed for the rest of this run: " + ", ".join(
            x.split(".", 1)[1].replace("=", " = ") for x in extra) + ".")
    ov = rc.overrides + extra
    load_config(rc.preset, ov)  # every problem reported at once, before anything starts
    return ov, notes


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


def run_info(voice_name: str | None, run: str | None, preset: str, start_from: str = FROM_BASE,
             values: list[Any] | None = None) -> str:
    """Markdown about the picked run: its preset and start point, or what a new run would be
    (train_start.start_line: the base or scratch, the steps of the boxes `values`, the time)."""
    try:
        v = voice_or_error(voice_name)
        run_dir = v.run_dir(run or "")
    except VoicelabError:
        return ""
    rc = run_config(run_dir)
    if rc is None:
        try:
            line = start_line(preset, start_from, values)
        except VoicelabError:  # (a ConfigError too: a preset file that does not load)
            return ""
        return f"New run `{run}`: it starts with the preset and settings shown here. " + line
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


def new_run_values(voice_name: str | None, run: str | None, preset: str, start_from: str) -> tuple:
    """The settings boxes after "Start from" changed: a new run's schedule for it
    (train_start.start_values); a picked run that has its own settings keeps showing them
    (Start from is for new runs, and Resume applies what differs from the run's values)."""
    try:
        saved = (voice_or_error(voice_name).run_dir(run or "") / runfiles.CONFIG).is_file()
    except VoicelabError:
        saved = False
    if saved:
        return tuple([gr.skip()] * len(SETTINGS))
    return tuple(start_values(preset, start_from))


def control(voice_name: str, run: str, action: Literal["pause", "stop"]) -> str:
    v = voice_or_error(voice_name)
    jobs.request(v.run_dir(run), action)
    return f"{action} requested: the trainer saves a checkpoint at the end of this step"


def attach(voice_name: str | None) -> gr.Dropdown:
    """Runs of the voice; the one with a live trainer (re-attach) or else the newest selected."""
    if not voice_name:
        return gr.Dropdown(choices=[], value=None)
    v = voice_or_error(voice_name)
    runs = v.list_runs()
    live = jobs.active_run(v)
    value = live or (runs[-1] if runs else new_run_name(v))
    return gr.Dropdown(choices=list(reversed(runs)), value=value)
