"""Write an evaluation as JSON + a markdown table + plots (PNG, matplotlib's Agg backend).

    paths = write_report(result, out_dir)    # eval.json, eval.md, similarity.png, sentences.png

The JSON holds everything (per sentence, summary, machine, model); the markdown is what goes in
a README or a pull request; the plots are what a person looks at first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from voicelab.eval.machine import machine_line
from voicelab.eval.results import EvalResult
from voicelab.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    markdown: Path
    plots: list[Path]


def fmt(v: float | None, digits: int = 2, pct: bool = False) -> str:
    """A table cell: '-' for missing, percentages for rates."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.{digits}f}"


def summary_rows(s: dict) -> list[tuple[str, str, str, str]]:
    """(metric, synthesised, real voice / reference, note) rows of the summary table."""
    others = s.get("sim_others") or {}
    closest = s.get("closest_other")
    rows = [
        ("WER (pocketsphinx)", fmt(s.get("wer"), pct=True), fmt(s.get("real_wer"), pct=True),
         "real voice on the same sentences is the baseline"),
        ("WER gap (points)", fmt(None if s.get("wer_gap") is None else 100 * s["wer_gap"], 1), "",
         "synthesised minus real; issue 9 asks <= 15"),
        ("Similarity to target", fmt(s.get("sim_target"), 3), fmt(s.get("sim_ceiling"), 3),
         f"ceiling: {s.get('sim_ceiling_kind') or 'n/a'}"),
    ]
    if others:
        rows.append(("Similarity to closest other voice", fmt(others.get(closest), 3), "",
                     f"{closest} (of {len(others)} other voices)"))  # fmt: skip
    rows += [
        ("MCD-DTW (dB)", fmt(s.get("mcd_db")), "0", "against the real recording"),
        ("F0 RMSE (Hz / cents)", f"{fmt(s.get('f0_rmse_hz'), 1)} / {fmt(s.get('f0_rmse_cents'), 0)}",
         "0", f"voicing decision error {fmt(s.get('vde'), pct=True)}"),
        ("Real-time factor", fmt(s.get("rtf"), 3), "", "compute seconds per audio second"),
        ("Time to first audio (s)", fmt(s.get("first_audio_s")), "", "mean per sentence"),
    ]
    return rows


def to_markdown(result: EvalResult) -> str:
    s, meta = result.summary, result.meta
    lines = [f"# Evaluation: {meta.get('voice', '?')} with {meta.get('model', '?')}", ""]
    if meta.get("machine"):
        lines += [f"Machine: {machine_line(meta['machine'])}", ""]
    lines += [f"{s['sentences']} held-out sentences, {s['audio_s']:.1f} s of synthesised audio, "
              f"seed {meta.get('seed', '-')}, device {meta.get('device', '-')}.", ""]  # fmt: skip
    lines += ["| metric | synthesised | real voice / ceiling | note |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(s)]
    if s.get("checks"):
        lines += ["", "Acceptance (issue 9): " + ", ".join(
            f"{k.replace('_', ' ')}: {'PASS' if v else 'FAIL'}" for k, v in s["checks"].items())]
    if s.get("sim_others"):
        lines += ["", "| other voice | similarity |", "|---|---|"]
        lines += [f"| {n} | {fmt(v, 3)} |" for n, v in sorted(s["sim_others"].items())]
    lines += ["", "| # | sentence | WER | real WER | sim | MCD | F0 RMSE Hz | RTF |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for it in result.items:
        text = it.text if len(it.text) <= 60 else it.text[:57] + "..."
        lines.append(f"| {it.index} | {text} | {fmt(it.wer, pct=True)} | {fmt(it.real_wer, pct=True)} | "
                     f"{fmt(it.sim_target, 3)} | {fmt(it.mcd_db)} | {fmt(it.f0_rmse_hz, 1)} | "
                     f"{fmt(it.rtf, 3)} |")  # fmt: skip
    if result.excluded:
        lines += ["", f"Skipped {len(result.excluded)} sentence(s) found in the training data: "
                  + "; ".join(result.excluded[:5]) + (" ..." if len(result.excluded) > 5 else "")]
    if s.get("failed"):
        lines += ["", f"Could not synthesise {len(s['failed'])} sentence(s):",
                  *[f"- {f}" for f in s["failed"][:10]]]  # fmt: skip
    warns = [f"{it.index}: {w}" for it in result.items for w in it.warnings]
    if warns:
        lines += ["", "Warnings:", *[f"- {w}" for w in warns[:20]]]
    return "\n".join(lines) + "\n"


def _save(fig, out: Path) -> Path:
    """PNG bytes written atomically (a half-written plot never replaces a good one)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes_atomic(out, buf.getvalue())


def plot_similarity(result: EvalResult, out: Path) -> Path:
    """Bars: synthesised-to-target, the ceiling, and synthesised-to-each-other-voice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    names, vals, colors = [], [], []
    for name, val, c in (("to target", s.get("sim_target"), "tab:green"),
                         ("ceiling (real)", s.get("sim_ceiling"), "tab:gray")):  # fmt: skip
        if val is not None:
            names.append(name), vals.append(val), colors.append(c)
    for n, v in sorted((s.get("sim_others") or {}).items(), key=lambda kv: -(kv[1] or -2)):
        if v is not None:
            names.append(f"to {n}"), vals.append(v), colors.append("tab:red")
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 3.5), layout="constrained")
    ax.bar(range(len(vals)), vals, color=colors)
    ax.set_xticks(range(len(vals)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("resemblyzer cosine")
    ax.set_ylim(min([0.0, *vals]), 1.0)
    ax.set_title("Speaker similarity of the synthesised audio")
    return _save(fig, out)


def plot_sentences(result: EvalResult, out: Path) -> Path:
    """Per sentence: WER synthesised vs real (top), MCD (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    idx = np.arange(len(result.items))
    nan = float("nan")
    wer = [nan if i.wer is None else 100 * i.wer for i in result.items]
    rwer = [nan if i.real_wer is None else 100 * i.real_wer for i in result.items]
    mcd = [nan if i.mcd_db is None else i.mcd_db for i in result.items]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(5, 0.4 * len(idx) + 2), 5), sharex=True,
                                 layout="constrained")  # fmt: skip
    a1.bar(idx - 0.2, wer, 0.4, label="synthesised")
    a1.bar(idx + 0.2, rwer, 0.4, label="real voice")
    a1.set_ylabel("WER %")
    a1.legend(fontsize=8)
    a2.bar(idx, mcd, 0.6, color="tab:purple")
    a2.set_ylabel("MCD-DTW dB")
    a2.set_xlabel("sentence")
    a2.set_xticks(idx)
    a1.set_title("Per-sentence intelligibility and spectral distance")
    return _save(fig, out)


def write_report(result: EvalResult, out_dir: Path | str) -> ReportPaths:
    """eval.json + eval.md + similarity.png + sentences.png in `out_dir` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    j = write_json_atomic(out_dir / "eval.json", result.to_dict())
    plots = [plot_similarity(result, out_dir / "similarity.png"),
             plot_sentences(result, out_dir / "sentences.png")]  # fmt: skip
    md = write_text_atomic(out_dir / "eval.md", to_markdown(result)
                           + "\n![similarity](similarity.png)\n![sentences](sentences.png)\n")
    return ReportPaths(json=j, markdown=md, plots=plots)
