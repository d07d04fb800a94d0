"""Train tab: pick a preset and key settings, start / pause / resume / stop, watch it learn.

Training runs in its own process (voicelab/ui/jobs.py). A `gr.Timer` polls the run folder every
two seconds: status.json for progress and ETA, metrics.jsonl (read incrementally) for the loss
and learning-rate plots, samples/ for the newest audio sample, checkpoints/ for the list, and
train.log for the tail. Outputs that did not change are skipped (`gr.skip()`), so an open tab
costs little and a sample being listened to is not reset.

This module holds the layout and the event wiring (`build`); the handlers live in
train_settings.py (the settings boxes, overrides, time estimate), train_start.py (what a new run
starts from: the pretrained base or scratch, "Start from"), train_runs.py (picking a run, its
saved config, Start / Resume / Pause / Stop) and train_status.py (the poll and the plots).
"""

from __future__ import annotations

from typing import Literal, get_args

import gradio as gr

from voicelab.config import list_presets
from voicelab.ui.common import friendly, quiet
from voicelab.ui.train_runs import attach, control, new_run_values, run_info, show_run, start
from voicelab.ui.train_settings import (
    SETTING_TYPES,
    SETTINGS,
    default_preset,
    device_info,
    estimate,
    preset_label,
)
from voicelab.ui.train_start import FROM_BASE, START_CHOICES, start_values
from voicelab.ui.train_status import CKPT_HEADERS, POLL_FIELDS, poll, poll_plots

POLL_S = 2.0  # status, progress, log
PLOT_S = 4.0  # loss / LR figures (drawing them costs ~0.2 s of CPU)


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
        start_from = gr.Radio(START_CHOICES, value=FROM_BASE, label="Start from",
                              elem_id="train-start-from",
                              info="a new run: fine-tune the pretrained base that fits the preset "
                                   "(fewer steps; a clear voice from a minute of speech), or "
                                   "train from scratch (the line below says which it will be)")
    inputs = []
    with gr.Accordion("Key settings", open=False, elem_id="train-settings"):
        # built once: what a page opens with (a base shipped later shows after Start from or
        # the preset is chosen again; the line below says so meanwhile)
        vals = start_values(default, FROM_BASE)
        for i in range(0, len(SETTINGS), 4):
            with gr.Row():
                for s, v in zip(SETTINGS[i:i + 4], vals[i:i + 4], strict=False):
                    tp = SETTING_TYPES[s.key]
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
    estimate_md = gr.Markdown(estimate(default, vals), elem_id="train-estimate")
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
    # a new run's boxes follow the preset and Start from (the fine-tune schedule from a base);
    # an existing run's boxes keep its own values (new_run_values skips them)
    preset.input(quiet(start_values, len(inputs)), [preset, start_from], inputs,
                 show_progress="hidden")
    start_from.input(quiet(new_run_values, len(inputs)), [voice_dd, run, preset, start_from],
                     inputs, show_progress="hidden")

    def on_info(name, r, p, c, *values):
        return run_info(name, r, p, c, list(values))

    keys = [s.key for s in SETTINGS]
    steps = [inputs[keys.index(k)] for k in ("sovits_steps", "gpt_steps", "batch_size")]
    for box in [preset, start_from, *steps]:
        box.change(quiet(on_info, 1), [voice_dd, run, preset, start_from, *inputs], [run_info_md],
                   show_progress="hidden")
    for box in [preset, *steps]:
        box.change(lambda p, *vals: estimate(p, list(vals)), [preset, *inputs], [estimate_md],
                   show_progress="hidden")

    def on_start(name, r, p, c, *values):
        return start(name, r, p, list(values), resume=False, start_from=c), {}

    def on_resume(name, r, p, *values):
        return start(name, r, p, list(values), resume=True), {}

    poll_outs = dict(state=state_md, progress=prog, sample=sample, checkpoints=ckpts, log=log,
                     resume_info=resume_md, start=start_btn, pause=pause_btn, resume=resume_btn,
                     stop=stop_btn, message=message, last=last)
    assert set(poll_outs) == set(POLL_FIELDS), "every PollView field has its component"
    start_btn.click(friendly(on_start, 2), [voice_dd, run, preset, start_from, *inputs],
                    [message, last])
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
    run.change(quiet(on_info, 1), [voice_dd, run, preset, start_from, *inputs], [run_info_md],
               show_progress="hidden")
