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

from voicelab.config import TrainConfig, list_presets, load_config
from voicelab.errors import VoicelabError
from voicelab.training import runfiles
from voicelab.ui import jobs
from voicelab.ui.common import fmt_duration, friendly, quiet, stamp, voice_or_error
from voicelab.ui.plots import CACHE, curve_figure, curves
from voicelab.workspace import Voice

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
    Setting("train", "sovits_steps", "Stage 1 steps (SoVITS)", "acoustic model; ~2000 for a minute or two of speech"),
    Setting("train", "gpt_steps", "Stage 2 steps (GPT)", "the model of rhythm and pronunciation; about half of stage 1"),
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
    return repr(v)  # ints, and floats in a form TOML reads back exactly (2e-4 -> 0.0002)


def overrides(preset: str, values: list[Any]) -> list[str]:
    """`section.key=value` for each setting that differs from the preset (validated here)."""
    base = preset_values(preset)
    out = []
    for s, v, b in zip(SETTINGS, values, base, strict=True):
        if v is None:
            raise VoicelabError(f"{s.label} is empty: type a value or pick the preset again")
        if _HINTS.get(s.key) is int and isinstance(v, float):
            if not v.is_integer():
                raise VoicelabError(f"{s.label} must be a whole number, got {v}")
            v = int(v)
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
        "(the `small` preset takes hours; `tiny` only checks that everything runs)."
    )


def new_run_name(voice: Voice) -> str:
    return f"run-{stamp()}"


def start(voice_name: str, run: str, preset: str, values: list[Any], resume: bool = False,
          prefix: list[str] | None = None) -> str:
    """Start (or resume) training of `run` in a separate process. Returns a status line."""
    v = voice_or_error(voice_name)
    if not run:
        raise VoicelabError("type a run name (or keep the suggested one)")
    if not v.dataset_list.is_file():
        raise VoicelabError("there are no slices yet: slice the audio in the Slice tab first")
    if resume and not checkpoint_rows(v.run_dir(run)):
        raise VoicelabError(f"run {run!r} has no checkpoint yet: press Start to begin it")
    ov = overrides(preset, values)
    proc = jobs.start_training(v, run, preset, ov, resume=resume, prefix=prefix)
    verb = "resuming" if resume else "started"
    return f"{verb} run `{run}` (process {proc.pid}) with preset `{preset}`" + (
        f", changed: {', '.join(ov)}" if ov else ""
    )


def control(voice_name: str, run: str, action: Literal["pause", "stop"]) -> str:
    v = voice_or_error(voice_name)
    jobs.request(v.run_dir(run), action)
    return f"{action} requested: the trainer saves a checkpoint at the end of this step"


# ---------------------------------------------------------------------------- polling


def checkpoint_rows(run_dir: Path) -> list[list[Any]]:
    """[step, stage, file, saved, losses, note] per checkpoint, newest first."""
    from voicelab.training import checkpoint

    rows = []
    for c in reversed(checkpoint.list_checkpoints(run_dir, verify=False)):
        note = "damaged: " + c.problem if c.problem else ", ".join(
            n for n, f in (("latest", c.is_latest), ("best", c.is_best)) if f
        )
        losses = ", ".join(f"{k} {v:.3g}" for k, v in sorted(c.losses.items())[:3])
        saved = time.strftime("%H:%M:%S", time.localtime(c.time)) if c.time else ""
        rows.append([c.step, c.stage or "", c.path.name, saved, losses, note])
    return rows


def resume_label(rows: list[list[Any]]) -> str:
    good = [r for r in rows if not str(r[5]).startswith("damaged")]
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
    }
    text = f"Run `{view.run}`: {words.get(view.state, view.state)}"
    error = view.error.strip()
    if view.message and view.message not in error:
        text += f"\n\n{view.message}"
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


def poll(voice_name: str | None, run: str | None, last: dict | None) -> tuple:
    """Everything the Train tab shows about `run`; unchanged outputs are `gr.skip()`ped.

    Returns (state_md, progress_html, sample, checkpoints_df, log, resume_md, 4 buttons, new
    `last`). The plots have their own, slower refresh (`poll_plots`): drawing them is the one
    costly part, and the status must stay quick while a trainer has the CPU.
    """
    last = dict(last or {})
    try:
        v = voice_or_error(voice_name)
        run_dir = v.run_dir(run or "")
    except VoicelabError:
        # no voice yet, or a run name still being typed: the timer must not toast every 2 s
        return (*([gr.skip()] * 10), last)
    view = jobs.run_view(run_dir)
    ckpt_key = sorted(
        (p.name, p.stat().st_mtime) for p in (run_dir / runfiles.CHECKPOINTS).glob("step-*.pt")
    ) if (run_dir / runfiles.CHECKPOINTS).is_dir() else []
    fresh: dict[str, Any] = {
        "run": str(run_dir),
        "state": state_markdown(view),
        "progress": progress_html(view),
        "sample": latest_sample(run_dir),
        "ckpts": repr(ckpt_key),
        "log": jobs.log_tail(run_dir, 30),
        "alive": view.alive,
    }
    changed = {k for k, val in fresh.items() if last.get(k) != val or last.get("run") != fresh["run"]}

    def out(key: str, make):  # build an output only when its input changed
        return make() if key in changed else gr.skip()

    rows_box: dict[str, list] = {}

    def rows() -> list:
        if "r" not in rows_box:
            rows_box["r"] = checkpoint_rows(run_dir)
        return rows_box["r"]

    busy = view.alive
    result = (
        out("state", lambda: fresh["state"]),
        out("progress", lambda: fresh["progress"]),
        out("sample", lambda: fresh["sample"]),
        out("ckpts", lambda: pd.DataFrame(rows(), columns=CKPT_HEADERS)),
        out("log", lambda: fresh["log"]),
        out("ckpts", lambda: resume_label(rows())),
        out("alive", lambda: gr.Button(interactive=not busy)),  # start
        out("alive", lambda: gr.Button(interactive=busy)),  # pause
        out("alive", lambda: gr.Button(interactive=not busy)),  # resume
        out("alive", lambda: gr.Button(interactive=busy)),  # stop
    )
    return (*result, fresh)


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


def build(voice_dd: gr.Dropdown) -> None:
    presets = list_presets()
    default = "small" if "small" in presets else presets[0]
    gr.Markdown(device_info(), elem_id="train-device")
    with gr.Row():
        preset = gr.Dropdown(presets, value=default, label="Preset", elem_id="train-preset",
                             info="tiny: smoke test; small: CPU/laptop; base: GPU")
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

    preset.change(quiet(preset_values, len(inputs)), [preset], inputs)

    def on_start(name, r, p, *values):
        return start(name, r, p, list(values), resume=False), {}

    def on_resume(name, r, p, *values):
        return start(name, r, p, list(values), resume=True), {}

    poll_outs = [state_md, prog, sample, ckpts, log, resume_md,
                 start_btn, pause_btn, resume_btn, stop_btn, last]
    start_btn.click(friendly(on_start), [voice_dd, run, preset, *inputs], [message, last])
    resume_btn.click(friendly(on_resume), [voice_dd, run, preset, *inputs], [message, last])
    pause_btn.click(friendly(lambda n, r: control(n, r, "pause")), [voice_dd, run], [message])
    stop_btn.click(friendly(lambda n, r: control(n, r, "stop")), [voice_dd, run], [message])
    # show_progress="hidden": the poll must not flash a spinner over the plots every 2 s
    timer.tick(quiet(poll, len(poll_outs)), [voice_dd, run, last], poll_outs, show_progress="hidden",
               api_name="train_poll")
    plot_timer.tick(quiet(poll_plots, 3), [voice_dd, run, seen], [loss_plot, lr_plot, seen],
                    show_progress="hidden", api_name="train_plots")
    voice_dd.change(quiet(attach, 1), [voice_dd], [run]).then(lambda: ({}, {}), None, [last, seen])
    run.change(lambda: ({}, {}), None, [last, seen])
