"""Slice tab: cut the cleaned audio into utterances, proofread their texts, extract features.

Slicing calls `voicelab.audio.pipeline.slice_voice` (writes slices/*.wav + slices/dataset.list);
the table is slices/dataset.list itself (read and written with voicelab.listfile), with the
text column editable; "transcribe automatically" fills texts with the offline English recogniser
(voicelab.text.asr); features come from `pipeline.extract_features`.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from voicelab.config import DEFAULT_PRESET, Config, load_config
from voicelab.errors import VoicelabError
from voicelab.ui.common import (
    audio_duration,
    fmt_duration,
    friendly,
    in_voice,
    quiet,
    speech_seconds,
    voice_or_error,
)
from voicelab.ui.plots import length_histogram
from voicelab.ui.progress import CancelFlag, bridge
from voicelab.workspace import Voice

HEADERS = ["#", "file", "seconds", "checked", "text"]
# the text is what a person reads and corrects: the widest column; the others fit their values
# (without widths the table gave the text the least room and wrapped the headers letter by letter)
COLUMN_WIDTHS = ["5%", "22%", "9%", "9%", "55%"]
_cancel = CancelFlag()


def slicing_config(
    threshold_db: float, min_length_ms: int, min_interval_ms: int, hop_ms: int,
    max_sil_kept_ms: int, max_length_s: float,
) -> Config:
    """The preset's config with the slicer settings from the tab (validated all at once)."""
    return load_config(DEFAULT_PRESET, [
        f"slice.threshold_db={float(threshold_db)}",
        f"slice.min_length_ms={int(min_length_ms)}",
        f"slice.min_interval_ms={int(min_interval_ms)}",
        f"slice.hop_ms={int(hop_ms)}",
        f"slice.max_sil_kept_ms={int(max_sil_kept_ms)}",
        f"slice.max_length_s={float(max_length_s)}",
    ])  # fmt: skip


def table(voice: Voice) -> pd.DataFrame:
    """One row per slice: number, file (relative to slices/), seconds, checked, text."""
    if not voice.dataset_list.is_file():  # not sliced yet: an empty table, not an error
        return pd.DataFrame([], columns=HEADERS)
    from voicelab.data import transcripts
    rows = []
    for i, r in enumerate(transcripts.load_table(voice), 1):
        try:
            secs = round(audio_duration(r.path), 2)
        except VoicelabError:
            secs = float("nan")  # a missing slice shows as NaN; the summary says so
        rows.append([i, r.file, secs, "yes" if r.verified else "no", r.text])
    return pd.DataFrame(rows, columns=HEADERS)


def do_slice(voice: Voice, cfg: Config, progress: Any = None, force: bool = False) -> int:
    """Slice every cleaned file; returns the number of slices.

    The library refuses (changing nothing) when re-slicing would drop typed texts, unless
    `force` (it then keeps the old list as a .bak file).
    """
    if not voice.clean.is_dir() or not any(voice.clean.glob("*.wav")):
        raise VoicelabError("nothing to slice yet: clean some recordings in Record & Clean first")
    from voicelab.audio import pipeline
    n = len(pipeline.slice_voice(voice, cfg, progress=progress, force=force))
    texts_from_takes(voice)
    return n


def texts_from_takes(voice: Voice) -> int:
    """Give each recorded take's prompt sentence to its slice, where the take is one slice.

    Slices are named `<clean stem>_<start ms>_<end ms>.wav` by the pipeline. A take the slicer
    cut in two keeps empty texts: which words fall in which half is not known. Only empty texts
    are filled; returns how many.
    """
    from voicelab.ui.record_takes import read_takes

    takes = {e.path.stem: e.text for e in read_takes(voice) if e.text}
    if not takes or not voice.dataset_list.is_file():
        return 0
    from voicelab.data import transcripts
    by_take: dict[str, list] = {}
    for r in transcripts.load_table(voice):
        stem = Path(r.file).stem.rsplit("_", 2)[0]
        by_take.setdefault(stem, []).append(r)
    texts = {rows[0].file: takes[stem] for stem, rows in by_take.items()
             if stem in takes and len(rows) == 1 and not rows[0].text}
    return transcripts.save_texts(voice, texts) if texts else 0


def save_texts(voice: Voice, df: pd.DataFrame) -> int:
    """Save the texts of the edited table (they become 'checked'). Returns how many changed."""
    if df is None or df.empty:
        raise VoicelabError("there are no slices yet: press Slice first")
    from voicelab.data import transcripts
    texts = {str(r["file"]): "" if pd.isna(r["text"]) else str(r["text"]) for _, r in df.iterrows()}
    return transcripts.save_texts(voice, texts)


def transcribe(voice: Voice, overwrite: bool = False, progress: Any = None) -> str:
    """Fill empty English texts with offline ASR (`overwrite`: redo unchecked ASR texts too)."""
    if not voice.dataset_list.is_file():
        raise VoicelabError("there are no slices yet: press Slice first")
    from voicelab.data import transcripts
    return transcripts.transcribe_voice(voice, progress, redo_unverified=overwrite).message()


def summary(voice: Voice):
    """(markdown summary, histogram figure) of the dataset."""
    df = table(voice)
    if df.empty:
        return "No slices yet.", length_histogram([])
    secs = [float(s) for s in df["seconds"] if pd.notna(s)]
    missing = int(df["seconds"].isna().sum())
    empty = int((df["text"].fillna("").astype(str).str.strip() == "").sum())
    unchecked = int((df["checked"] == "no").sum()) - empty
    speech = speech_seconds(voice)
    amount = (f"{fmt_duration(speech)} of speech** in {fmt_duration(sum(secs))} of audio"
              if speech is not None else f"{fmt_duration(sum(secs))} of audio**")
    lines = [
        f"**{len(df)} slices, {amount} "
        f"(shortest {min(secs):.1f} s, median {statistics.median(secs):.1f} s, "
        f"longest {max(secs):.1f} s)" if secs else f"**{len(df)} slices**",
    ]
    if (speech if speech is not None else sum(secs)) < 30:
        lines.append("- Less than 30 s of speech: the voice will be rough. A minute or more helps.")
    if empty:
        lines.append(f"- {empty} slice(s) have no text: type it, or transcribe automatically.")
    if unchecked > 0:
        lines.append(f"- {unchecked} text(s) not checked yet (from speech recognition): "
                     "listen, correct, and press Save texts.")
    if missing:
        lines.append(f"- {missing} slice file(s) are missing: slice again.")
    return "\n".join(lines), length_histogram(secs)


def slice_audio(voice: Voice, df: pd.DataFrame, row: int) -> str | None:
    """The audio file of table row `row`, resolved inside the voice folder."""
    if df is None or row is None or row >= len(df):
        return None
    return str(in_voice(voice, voice.slices / str(df.iloc[row]["file"])))


def features(voice: Voice, cfg: Config, progress: Any = None) -> str:
    if not voice.dataset_list.is_file():
        raise VoicelabError("there are no slices yet: press Slice first")
    from voicelab.audio import pipeline
    r = pipeline.extract_features(voice, cfg, progress=progress)
    return (f"Features ready for {r.total} slices ({r.audio_seconds:.0f} s of audio; "
            f"{r.computed} computed, {r.cached} already cached, {r.elapsed_s:.1f} s on {r.device}). "
            "Next: the Train tab.")


def build(voice_dd: gr.Dropdown, tab: gr.Tab | None = None) -> None:
    with gr.Accordion("Slicer settings (GPT-SoVITS defaults)", open=False):
        with gr.Row():
            thr = gr.Slider(-60, -20, -34, step=1, label="Silence threshold (dB)",
                            info="quieter than this counts as silence")
            min_len = gr.Slider(1000, 10000, 4000, step=100, label="Min length (ms)",
                                info="slices shorter than this are joined with the next")
            min_int = gr.Slider(100, 1000, 300, step=10, label="Min silence (ms)",
                                info="shorter pauses do not cut")
        with gr.Row():
            hop = gr.Slider(5, 50, 10, step=1, label="Hop (ms)", info="analysis step")
            kept = gr.Slider(100, 2000, 500, step=50, label="Max silence kept (ms)",
                             info="silence left around each slice")
            max_len = gr.Slider(5, 30, 12, step=0.5, label="Max length (s)",
                                info="longer slices are cut: too long to train on")
    with gr.Row():
        slice_btn = gr.Button("Slice", variant="primary", elem_id="slice-run")
        asr_btn = gr.Button("Transcribe English automatically", elem_id="slice-asr")
        overwrite = gr.Checkbox(False, label="also redo unchecked automatic texts")
        force = gr.Checkbox(False, label="re-slice even if typed texts are lost (kept in a .bak)")
        cancel_btn = gr.Button("Cancel", variant="stop")
    status = gr.Markdown(elem_id="slice-status")
    grid = gr.Dataframe(headers=HEADERS, interactive=True, static_columns=[0, 1, 2, 3],
                        column_widths=COLUMN_WIDTHS,
                        label="Slices: click a row to listen, edit the text to correct it",
                        wrap=True, elem_id="slice-table")
    player = gr.Audio(label="Selected slice", interactive=False, elem_id="slice-player")
    save_btn = gr.Button("Save texts", elem_id="slice-save")
    with gr.Row():
        info = gr.Markdown(elem_id="slice-summary")
        hist = gr.Plot(label="Slice lengths")
    feat_btn = gr.Button("Extract features", variant="primary", elem_id="features-run")
    feat_status = gr.Markdown(elem_id="features-status")

    def refresh(name):
        if not name:
            return None, "", None
        v = voice_or_error(name)
        md, fig = summary(v)
        return table(v), md, fig

    def on_slice(name, frc, *settings, progress=gr.Progress()):
        v = voice_or_error(name)
        _cancel.clear()
        n = do_slice(v, slicing_config(*settings), bridge(progress, "slicing", _cancel), frc)
        return f"{n} slices", *refresh(name)

    def on_asr(name, over, progress=gr.Progress()):
        v = voice_or_error(name)
        _cancel.clear()
        msg = transcribe(v, over, bridge(progress, "transcribing", _cancel))
        return msg, *refresh(name)

    def on_save(name, df):
        n = save_texts(voice_or_error(name), df)
        return f"saved ({n} text(s) changed)", *refresh(name)

    def on_select(name, df, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return slice_audio(voice_or_error(name), df, row)

    def on_features(name, *settings, progress=gr.Progress()):
        v = voice_or_error(name)
        _cancel.clear()
        return features(v, slicing_config(*settings), bridge(progress, "features", _cancel))

    settings = [thr, min_len, min_int, hop, kept, max_len]
    outs = [status, grid, info, hist]
    slice_btn.click(friendly(on_slice, len(outs)), [voice_dd, force, *settings], outs)
    asr_btn.click(friendly(on_asr, len(outs)), [voice_dd, overwrite], outs)
    save_btn.click(friendly(on_save, len(outs)), [voice_dd, grid], outs)
    grid.select(friendly(on_select, 1), [voice_dd, grid], [player])
    feat_btn.click(friendly(on_features, 1), [voice_dd, *settings], [feat_status])
    cancel_btn.click(_cancel.set, None, [status])
    voice_dd.change(quiet(refresh, 3), [voice_dd], [grid, info, hist], api_name="slice_table")
    if tab is not None:  # cleaning happens in another tab: show the current slices on entry
        tab.select(quiet(refresh, 3), [voice_dd], [grid, info, hist])
