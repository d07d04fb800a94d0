"""The model card of a base model: every voice and corpus that went in, with its licence.

`write_model_card(path, manifest)` fills the data part from corpus.json; the training part
(steps, hours, hardware, metrics) is left as marked fields for `pretrain` / the person who trains
the base to fill in, since the corpus tool cannot know them yet.
"""

from __future__ import annotations

from pathlib import Path

from voicelab.fileio import write_text_atomic

TO_FILL = "_(fill in after training)_"


def render(m: dict) -> str:
    lines = [
        "# voicelab base model: model card",
        "",
        f"Corpus built {m['created']} with voicelab {m['voicelab']}: {m['clips']} clips, "
        f"{m['hours']:.2f} hours, {len(m['speakers'])} speakers, {m['sample_rate']} Hz.",
        "",
        "## Data",
        "",
        "| source | licence | may ship | speakers | clips | hours | licence check |",
        "|---|---|---|---|---|---|---|",
    ]
    for _name, s in sorted(m["sources"].items()):
        lic = s["licence"]
        lines.append(
            f"| {lic['name']} | {lic['licence']} | {'yes' if lic['shippable'] else '**no**'} | "
            f"{len(s['speakers'])} | {s['clips']} | {s['hours']:.3f} | "
            f"{lic.get('installed_check', 'see ' + (lic.get('url') or 'the corpus README'))} |"
        )
    lines += ["", "Voices and speakers:", ""]
    for name, s in sorted(m["sources"].items()):
        lines.append(f"- **{name}**: {', '.join(s['speakers'])}")
    lines += _speaker_table(m)
    notes = [f"- {s['licence']['name']}: {s['licence']['note']}" for s in m["sources"].values()
             if s["licence"].get("note")]  # fmt: skip
    if notes:
        lines += ["", "Licence notes:", "", *notes]
    if not m.get("shippable", False):
        lines += ["", "**Not shippable as is**: at least one source above may not go into a "
                  "shipped model. Rebuild the corpus without it before training a base for "
                  "assets/base/."]  # fmt: skip
    kept = m["kept_out_by_rule"]
    lines += [
        "",
        "## Kept out on purpose",
        "",
        f"The development voices ({', '.join(kept['voices'])}), the held-out evaluation voices "
        f"({', '.join(kept.get('heldout_voices', []))}) and {kept['heldout_sentences']} "
        "held-out sentences (those of ../shared/fixtures and of `voicelab eval`) are excluded by "
        "voicelab/corpus/exclude.py, so evaluation on them measures unseen voices and text.",
    ]
    if m.get("notes"):
        lines += ["", "Notes from the build:", "", *[f"- {n}" for n in m["notes"]]]
    if m.get("excluded"):
        lines += ["", "Clips left out while building: " + ", ".join(
            f"{n} {why}" for why, n in sorted(m["excluded"].items()))]
    lines += [
        "",
        "## Training",
        "",
        f"- Preset and command: {TO_FILL}",
        f"- Steps (SoVITS / GPT): {TO_FILL}",
        f"- Hardware and wall-clock hours: {TO_FILL}",
        f"- voicelab commit: {TO_FILL}",
        "",
        "## Evaluation (`python -m voicelab eval`, unseen voices)",
        "",
        f"{TO_FILL}: per voice, WER beside the real voice's WER, similarity to the target and to "
        "the closest base voice.",
        "",
        "## Licence of the model",
        "",
        f"{TO_FILL}: no more permissive than the most restrictive source above (attribution for "
        "CC BY sources).",
    ]
    return "\n".join(lines) + "\n"


def _speaker_table(m: dict) -> list[str]:
    """Per speaker: clips, minutes, measured WER, and what a pseudo-speaker is made from."""
    wer = m.get("wer") or {}
    lines = ["", "| speaker | source | clips | minutes | WER (pocketsphinx) | made from |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in sorted(m["speakers"].items()):
        w = s.get("wer")
        ps = s.get("pseudo")
        made = f"WORLD pseudo-speaker of {ps['of']} (F0 x{ps['f0']:g}, envelope warp x{ps['warp']:g})" if ps else (
            s.get("voice") or "recordings")  # fmt: skip
        lines.append(f"| {name} | {s['source']} | {s['clips']} | {s['seconds'] / 60:.1f} | "
                     f"{'-' if w is None else f'{w:.1f}%'} | {made} |")  # fmt: skip
    if wer.get("method"):
        lines += ["", f"WER: {wer['method']}. Pseudo-speakers: {m.get('pseudo_rule', '')}."]
    rejected = {n: r for n, r in (m.get("pseudo_speakers") or {}).items() if not r.get("admitted")}
    if rejected:
        lines += ["", "Pseudo-speakers tried and not admitted: " + "; ".join(
            f"{n} ({r.get('why', 'not measured')})" for n, r in sorted(rejected.items()))]
    return lines


def write_model_card(path: Path | str, manifest: dict) -> Path:
    return write_text_atomic(path, render(manifest))
