"""Train tab, the status: what one poll of a run folder shows (state line, progress bar,
checkpoint table, log tail, newest sample, button states) as a `PollView`, and the loss / LR
figures (`poll_plots`).

Outputs whose inputs did not change are `gr.skip()`ped, so an open tab costs little and a
sample being listened to is not reset.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from voicelab.errors import VoicelabError
from voicelab.training import runfiles
from voicelab.ui import jobs
from voicelab.ui.common import fmt_duration, ui_advice, voice_or_error
from voicelab.ui.plots import CACHE, curve_figure, curves
from voicelab.workspace import RunDir

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
