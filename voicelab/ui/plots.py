"""Data for the Train tab's live plots and the Slice tab's length histogram.

The loss and learning-rate plots are matplotlib figures shown with `gr.Plot`, redrawn only when
metrics.jsonl gained lines (the Train tab's poll skips unchanged outputs); each poll reads only
the new bytes of metrics.jsonl. (Gradio 6's `gr.LinePlot` keeps the colour domain of the first
table it is given, so the series of stage 2, which appear later, were never drawn.)

metrics.jsonl records look like {"step": 10, "stage": "sovits", "loss/mel": 1.2, "lr/g": 2e-4,
"time": ..., "wall_s": ...}: every numeric key starting with "loss" is a loss curve (except the
weighted total), every key starting with "lr" a learning-rate curve (except `.no_decay` twins).
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from voicelab.training import runfiles

MAX_POINTS = 1500  # per series: more is invisible at plot width and slows the browser
COLUMNS = ["step", "value", "series"]


TAIL = 64  # bytes before the read position compared on each change: a rewritten file differs


@dataclass
class _Cached:
    offset: int = 0  # bytes of complete lines already parsed
    records: list[dict] = field(default_factory=list)
    ident: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the file read
    seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) at the last poll: unchanged = no read
    tail: bytes = b""  # the last TAIL bytes parsed (ending at `offset`)


class MetricsCache:
    """Incremental reader of metrics.jsonl files: each poll parses only the bytes added since.

    Only complete lines are consumed, so a line the trainer is half-way through writing is read
    on the next poll; a damaged line is skipped (as runfiles.read_metrics does).
    A file rewritten since the last poll (another inode, shorter, or other bytes before the read
    position: a resume from an older checkpoint rewrites it without the abandoned records) is
    read again from the start.
    """

    def __init__(self) -> None:
        self._files: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    def records(self, run_dir: Path) -> list[dict]:
        path = Path(run_dir) / runfiles.METRICS
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return []
        size, ident = st.st_size, (st.st_dev, st.st_ino)
        with self._lock:
            c = self._files.get(path)
            if c is not None and c.ident == ident and c.seen == (size, st.st_mtime_ns):
                return list(c.records)  # unchanged since the last poll
            with open(path, "rb") as f:
                # the file may have been rewritten shorter (a resume from an older checkpoint
                # drops the abandoned timeline's records: runfiles.truncate_metrics) and then
                # grown again: a new file, a smaller size or other bytes before the read
                # position all mean "read it from the start", never from a stale offset
                if c is None or c.ident != ident or size < c.offset or not _same_tail(f, c):
                    c = self._files[path] = _Cached(ident=ident)
                if size > c.offset:
                    f.seek(c.offset)
                    data = f.read(size - c.offset)
                    done = data.rfind(b"\n") + 1
                    for line in data[:done].splitlines():
                        try:
                            rec = json.loads(line)
                        except (json.JSONDecodeError, UnicodeDecodeError):
                            continue
                        if isinstance(rec, dict):
                            c.records.append(rec)
                    c.offset += done
                    c.tail = (c.tail + data[:done])[-TAIL:]
            c.seen = (size, st.st_mtime_ns)
            return list(c.records)


def _same_tail(f: Any, c: _Cached) -> bool:
    """Whether the bytes just before c.offset in the open file `f` are still those parsed."""
    if not c.offset:
        return True
    f.seek(c.offset - len(c.tail))
    return f.read(len(c.tail)) == c.tail


CACHE = MetricsCache()


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def curves(records: list[dict], kind: str) -> pd.DataFrame:
    """Long table (step, value, series) of the loss (`kind="loss"`) or LR (`"lr"`) curves.

    A two-stage run names its series by stage ("sovits loss/mel", "gpt loss/token") so a curve
    does not jump when the next stage begins.
    """
    assert kind in ("loss", "lr"), kind
    rows: list[tuple[float, float, str]] = []
    for rec in records:
        step = rec.get("step")
        if not _is_number(step):
            continue
        stage = str(rec.get("stage") or "")
        for key, v in rec.items():
            if not _is_number(v):
                continue
            if kind == "loss":
                # the weighted total repeats its parts at a much larger scale: leave it out
                hit = key.startswith("loss") and not key.endswith("total")
            else:
                # parameter groups without weight decay share their group's LR: no new curve
                hit = key.startswith("lr") and not key.endswith("no_decay")
            if hit:
                rows.append((float(step), float(v), f"{stage} {key}".strip()))
    # explicit dtypes: the plot fixes its axis types from the first table it gets, and an empty
    # table would otherwise be all "object" (a categorical axis, one tick per value)
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"step": "float64", "value": "float64"})
    if len(df) > MAX_POINTS:
        df = _thin(df)
    return df


def _thin(df: pd.DataFrame) -> pd.DataFrame:
    """Keep every k-th point of each series (always the last) so each has <= MAX_POINTS."""
    parts = []
    for _, g in df.groupby("series", sort=False):
        k = max(1, math.ceil(len(g) / MAX_POINTS))
        keep = g.iloc[::k]
        if keep.index[-1] != g.index[-1]:
            keep = pd.concat([keep, g.iloc[[-1]]])
        parts.append(keep)
    return pd.concat(parts).sort_index()


LOSS_LINTHRESH = 0.01  # symlog: logarithmic above this, linear through 0 (a loss may be <= 0)


def _stage_of(series: str) -> str:
    """"sovits loss/mel" -> "sovits"; a series without a stage prefix -> ""."""
    return series.split(" ", 1)[0] if " " in series else ""


def curve_figure(df: pd.DataFrame, kind: str):  # -> matplotlib.figure.Figure
    """Loss or LR curves, one line per series.

    Losses get one panel per stage (SoVITS, GPT), each on the same symmetric-log scale whatever
    the values: the scale never switches as points arrive, and one stage's spike (the GPT
    stage's KL, say) cannot flatten the other stage's curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # panels in training order: the order stages first appear in metrics.jsonl
    stages = list(dict.fromkeys(df["series"].map(_stage_of))) if len(df) and kind == "loss" else [""]
    fig = Figure(figsize=(6, 3.2 if len(stages) == 1 else 2.4 * len(stages)), dpi=80)
    # fixed margins: tight_layout would measure every text box again on each redraw
    fig.subplots_adjust(left=0.15, right=0.98, top=0.92, bottom=0.12, hspace=0.45)
    for i, stage in enumerate(stages):
        ax = fig.add_subplot(len(stages), 1, i + 1)
        part = df[df["series"].map(_stage_of) == stage] if stage else df
        for name, g in part.groupby("series", sort=True):
            if len(g) > 400:  # a 6-inch plot cannot show more; fewer points draw faster
                g = g.iloc[:: -(-len(g) // 400)]
            # markers while there are few points, so the very first steps are visible
            label = str(name)[len(stage):].strip() if stage else str(name)
            ax.plot(g["step"], g["value"], label=label, linewidth=1.2,
                    marker="o" if len(g) <= 30 else None, markersize=3)
        if kind == "loss":
            ax.set_yscale("symlog", linthresh=LOSS_LINTHRESH)
        ax.set_xlabel("step")
        title = "Loss" if kind == "loss" else "Learning rate"
        ax.set_title(f"{title}: {stage}" if stage else title, fontsize=10)
        ax.grid(alpha=0.3)
        if len(part):
            ax.legend(fontsize=7, ncol=2, loc="best")
        else:
            ax.text(0.5, 0.5, "no points yet", ha="center", va="center", transform=ax.transAxes)
    return fig


def length_histogram(durations: list[float]):  # -> matplotlib.figure.Figure
    """Histogram of slice lengths in seconds (matplotlib Figure for gr.Plot)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; never open a window
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.6), dpi=100)
    ax = fig.add_subplot()
    if durations:
        ax.hist(durations, bins=min(20, max(5, len(durations) // 2)), color="#4a7bd0")
    ax.set_xlabel("slice length (s)")
    ax.set_ylabel("slices")
    ax.set_title(f"{len(durations)} slices")
    fig.tight_layout()
    return fig
