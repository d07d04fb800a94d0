"""UI handlers without a browser: each tab's plain functions against a temporary workspace."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from voicelab.errors import ConfigError, VoicelabError, WorkspaceError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.training import runfiles
from voicelab.ui import (
    jobs,
    plots,
    record_clean,
    record_takes,
    speak,
    train_runs,
    train_settings,
    train_status,
)
from voicelab.ui import slice as slice_tab
from voicelab.ui import voice as voice_tab
from voicelab.ui.common import check_upload, fmt_duration
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent.parent / "assets"
FAKE = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


def _voice_with_slices(name: str = "v"):
    """A voice whose slices/ holds the three real utterances of tests/assets with their texts."""
    v = get_voice(name).create()
    src = read_list(DATA / "mini.list")
    entries = []
    for i, e in enumerate(src):
        dest = v.slices / f"slice_{i:04d}.wav"
        shutil.copy(e.path, dest)
        entries.append(Entry(dest, name, "en", e.text if i else ""))  # first one without text
    write_list(v.dataset_list, entries)
    return v


# ------------------------------------------------------------------------------------ voice


def test_create_and_describe_voice(tmp_home):
    name, names = voice_tab.create_voice(" anna ")
    assert name == "anna" and names == ["anna"]
    assert (tmp_home / "anna" / "raw").is_dir()
    md = voice_tab.describe_voice("anna")
    assert str(tmp_home / "anna") in md and "0 files" in md
    with pytest.raises(VoicelabError, match="already exists"):
        voice_tab.create_voice("anna")
    with pytest.raises(WorkspaceError, match="not allowed"):
        voice_tab.create_voice("../etc")
    with pytest.raises(VoicelabError, match="type a name"):
        voice_tab.create_voice("  ")
    assert "Create one" in voice_tab.describe_voice(None)


# ------------------------------------------------------------------------------------ record


def test_prompts_progress_and_takes(tmp_home, tmp_path):
    prompts_file = tmp_path / "en.txt"
    prompts_file.write_text("# comment\nFirst sentence.\n\nSecond sentence.\n")
    prompts = record_takes.load_prompts(prompts_file)
    assert prompts == ["First sentence.", "Second sentence."]
    assert record_takes.prompt_view(0, prompts) == ("1 / 2", "First sentence.")
    assert record_takes.prompt_view(2, prompts)[0] == "2 / 2"
    assert record_takes.load_prompts(tmp_path / "missing.txt") == []
    assert "No prompt list" in record_takes.prompt_view(0, [])[1]

    v = get_voice("rec").create()
    take = str(DATA / "slt_000.wav")
    first = record_takes.save_take(v, take, 0, prompts)
    assert first.parent == v.raw and first.read_bytes() == Path(take).read_bytes()
    redo = record_takes.save_take(v, str(DATA / "slt_001.wav"), 0, prompts)  # redo of prompt 1
    assert redo != first and first.is_file(), "raw/ is never overwritten"
    takes = record_takes.read_takes(v)
    assert [(e.path.name, e.text) for e in takes] == [(redo.name, "First sentence.")]
    assert record_clean.raw_files(v) == [redo.name], "the superseded take is not cleaned again"
    assert record_takes.next_prompt(v, prompts) == 1, "a reopened voice continues after prompt 1"
    assert record_clean.uncleaned(v) == [redo.name]
    with pytest.raises(VoicelabError, match="nothing recorded"):
        record_takes.save_take(v, None, 1, prompts)


def test_uploads_checked_for_type_and_size(tmp_home, tmp_path, monkeypatch):
    v = get_voice("up").create()
    bad = tmp_path / "notes.exe"
    bad.write_bytes(b"MZ")
    with pytest.raises(VoicelabError, match="not accepted"):
        record_takes.add_uploads(v, [str(DATA / "slt_000.wav"), str(bad)])
    assert not any(v.raw.iterdir()), "all or nothing: the good file was not copied either"
    monkeypatch.setattr("voicelab.ui.common.MAX_UPLOAD_MB", 0.01)
    with pytest.raises(VoicelabError, match="above the"):
        check_upload(DATA / "slt_000.wav")
    monkeypatch.undo()
    saved = record_takes.add_uploads(v, [str(DATA / "slt_000.wav"), str(DATA / "slt_000.wav")])
    assert [p.name for p in saved] == ["slt_000.wav", "slt_000.wav"], "same content, one copy"
    other = tmp_path / "slt_000.wav"
    shutil.copy(DATA / "slt_001.wav", other)
    assert record_takes.add_uploads(v, [str(other)])[0].name == "slt_000-2.wav", "a clash gets a new stem"
    with pytest.raises(VoicelabError, match="choose one"):
        record_takes.add_uploads(v, [])


def test_cleaning_settings_and_report():
    cfg = record_clean.cleaning_config(False, 0.3, 80, -18)
    assert (cfg.audio.denoise, cfg.audio.highpass_hz, cfg.audio.target_lufs) == (False, 80.0, -18.0)
    with pytest.raises(ConfigError, match="target_lufs"):
        record_clean.cleaning_config(True, 0.5, 60, -2)
    md = record_clean.report_markdown({"duration_s": 12.3456, "warnings": ["Too quiet: move closer."]})
    assert "Too quiet: move closer." in md and "12.35" in md
    assert "No problems" in record_clean.report_markdown({"duration_s": 3.0, "warnings": []})


def test_clean_refuses_without_files(tmp_home):
    v = get_voice("c").create()
    with pytest.raises(VoicelabError, match="no recordings"):
        record_clean.clean_files(v, [], record_clean.cleaning_config(True, 0.5, 60, -20))
    with pytest.raises(VoicelabError, match="nothing to slice"):
        slice_tab.do_slice(v, slice_tab.slicing_config(-34, 4000, 300, 10, 500, 12))


def test_clean_view_slice_and_features_on_real_speech(tmp_home):
    v = get_voice("real").create()
    record_takes.add_uploads(v, [str(DATA / "slt_000.wav"), str(DATA / "rms_000.wav")])
    assert record_clean.uncleaned(v) == ["rms_000.wav", "slt_000.wav"]
    seen = []
    stems, msg = record_clean.clean_files(v, record_clean.uncleaned(v), record_clean.cleaning_config(True, 0.5, 60, -20),
                                    progress=lambda d, t, m="": seen.append((d, t)))
    assert sorted(stems) == ["rms_000", "slt_000"] and "Cleaned 2 of 2" in msg
    assert seen[-1] == (2, 2) and record_clean.uncleaned(v) == []
    view = record_clean.clean_view(v, "slt_000")
    assert view.before.endswith("raw/slt_000.wav") and view.after.endswith("clean/slt_000.wav")
    assert Path(view.before_png).stat().st_size > 1000 and Path(view.after_png).is_file()
    assert "| " in view.report_md
    n = slice_tab.do_slice(v, slice_tab.slicing_config(-34, 1000, 300, 10, 500, 12))
    assert n >= 2 and len(slice_tab.table(v)) == n
    msg = slice_tab.features(v, slice_tab.slicing_config(-34, 1000, 300, 10, 500, 12))
    assert f"Features ready for {n} slices" in msg


def test_recorded_take_gives_its_prompt_to_its_slice(tmp_home):
    v = get_voice("takes").create()
    prompts = ["She painted the old fence a bright shade of yellow."]
    record_takes.save_take(v, str(DATA / "slt_001.wav"), 0, prompts)
    record_clean.clean_files(v, record_clean.uncleaned(v), record_clean.cleaning_config(True, 0.5, 60, -20))
    slice_tab.do_slice(v, slice_tab.slicing_config(-34, 1000, 300, 10, 500, 12))
    df = slice_tab.table(v)
    assert len(df) == 1 and df.loc[0, "text"] == prompts[0] and df.loc[0, "checked"] == "yes"


def test_failed_file_is_reported_and_others_cleaned(tmp_home, tmp_path):
    v = get_voice("bad").create()
    broken = v.raw / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    shutil.copy(DATA / "slt_001.wav", v.raw / "ok.wav")
    stems, msg = record_clean.clean_files(v, ["broken.wav", "ok.wav"], record_clean.cleaning_config(True, 0.5, 60, -20))
    assert stems == ["ok"] and "broken.wav failed" in msg
    with pytest.raises(VoicelabError, match="broken.wav"):
        record_clean.clean_files(v, ["broken.wav"], record_clean.cleaning_config(True, 0.5, 60, -20))


# ------------------------------------------------------------------------------------ slice


def test_slice_table_edit_and_summary(tmp_home):
    v = _voice_with_slices()
    df = slice_tab.table(v)
    assert list(df.columns) == slice_tab.HEADERS and len(df) == 3
    assert df["seconds"].between(1, 10).all()
    md, fig = slice_tab.summary(v)
    assert "3 slices" in md and "1 slice(s) have no text" in md
    assert fig.axes[0].patches, "the histogram has bars"
    df.loc[0, "text"] = "The morning train left the station a few minutes early."
    assert slice_tab.save_texts(v, df) >= 1
    assert read_list(v.dataset_list)[0].text.startswith("The morning train")
    assert slice_tab.table(v).loc[0, "checked"] == "yes"
    assert slice_tab.slice_audio(v, df, 1) == str(v.slices / "slice_0001.wav")
    with pytest.raises(WorkspaceError):
        slice_tab.slice_audio(v, pd.DataFrame([[1, "../../x.wav", 1.0, "no", ""]],
                                               columns=slice_tab.HEADERS), 0)
    with pytest.raises(ConfigError, match="min_length_ms"):
        slice_tab.slicing_config(-34, 200, 300, 10, 500, 12)


def test_auto_transcribe_fills_the_empty_text(tmp_home):
    v = _voice_with_slices()
    msg = slice_tab.transcribe(v)
    assert "filled 1" in msg
    text = read_list(v.dataset_list)[0].text.lower()
    assert "train" in text or "station" in text, text
    assert slice_tab.table(v).loc[0, "checked"] == "no", "ASR text waits for proofreading"


# ------------------------------------------------------------------------------------ train


def test_settings_become_overrides_only_where_changed():
    base = train_settings.preset_values("tiny")
    assert train_settings.overrides("tiny", base) == []
    vals = list(base)
    i = [s.key for s in train_settings.SETTINGS].index("sovits_steps")
    j = [s.key for s in train_settings.SETTINGS].index("lr_g")
    vals[i], vals[j] = 12.0, 3e-4  # gr.Number hands floats back
    assert train_settings.overrides("tiny", vals) == ["train.sovits_steps=12", "train.lr_g=0.0003"]
    vals[j] = 5.0
    with pytest.raises(ConfigError, match="lr_g"):
        train_settings.overrides("tiny", vals)
    vals[j], vals[i] = 3e-4, 2.5
    with pytest.raises(VoicelabError, match="whole number"):
        train_settings.overrides("tiny", vals)


def test_device_info_names_the_device():
    import torch

    info = train_settings.device_info()
    assert ("CPU" in info and "slow" in info) if not torch.cuda.is_available() else "GiB" in info


def _until(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_train_tab_start_poll_pause_resume(tmp_home):
    v = _voice_with_slices("t")
    vals = train_settings.preset_values("tiny")
    i = [s.key for s in train_settings.SETTINGS].index("device")
    vals[i] = "cpu"
    msg = train_runs.start("t", "r1", "tiny", vals, prefix=FAKE + ["--set", "delay=0.05"])
    assert "started run `r1`" in msg and "train.device" in msg
    run_dir = v.run_dir("r1")
    assert _until(lambda: len(runfiles.read_metrics(run_dir)) >= 3)
    out = train_status.poll("t", "r1", {})
    state_md, prog, last = out.state, out.progress, out.last
    assert "Training" in state_md or "Starting" in state_md
    loss_fig, lr_fig, seen = train_status.poll_plots("t", "r1", {})
    n_seen = seen["key"][1]
    skip = train_status.poll_plots("t", "r1", seen) if len(runfiles.read_metrics(run_dir)) == n_seen else None
    assert skip is None or skip[0] is not None  # unchanged metrics: no redraw (a gr.skip update)
    (line,) = loss_fig.axes[0].get_lines()
    assert len(line.get_xdata()) >= 3 and line.get_label() == "loss/mel"
    assert loss_fig.axes[0].get_title() == "Loss: sovits"
    assert [ln.get_label() for ln in lr_fig.axes[0].get_lines()] == ["sovits lr/g"]
    assert "step" in prog
    # a second poll with nothing new skips the unchanged outputs
    again = train_status.poll("t", "r1", last)
    assert again.last["run"] == last["run"]
    with pytest.raises(VoicelabError, match="no checkpoint yet"):
        train_runs.start("t", "r2", "tiny", vals, resume=True, prefix=FAKE)
    live = train_status.poll("t", "r1", {}).last
    assert "pause requested" in train_runs.control("t", "r1", "pause")
    assert jobs.wait(run_dir, 30) == 3
    paused = train_status.poll("t", "r1", live)
    assert paused.message == "", "the 'pause requested' line is cleared once the run paused"
    assert "Paused" in paused.state
    # the click's reply shown after the poll that saw the pause: cleared by the next poll
    late = train_status.poll("t", "r1", paused.last, "pause requested: the trainer saves a checkpoint")
    assert late.message == ""
    assert train_status.poll("t", "r1", paused.last, "started run `r1`").message == gr.skip()
    rows = train_status.checkpoint_rows(run_dir)
    assert rows and rows[0][2].startswith("step-") and "latest" in rows[0][5]
    label = train_status.resume_label(rows)
    assert rows[0][2] in label and f"step {rows[0][0]}" in label
    assert "Paused" in train_status.poll("t", "r1", last).state
    msg = train_runs.start("t", "r1", "tiny", vals, resume=True, prefix=FAKE + ["--set", "delay=0.05"])
    assert "resuming" in msg
    assert _until(lambda: jobs.run_view(run_dir).step > rows[0][0])
    train_runs.control("t", "r1", "stop")
    assert jobs.wait(run_dir, 30) == 3


def test_poll_is_quiet_while_a_run_name_is_typed(tmp_home):
    _voice_with_slices("q")
    out = train_status.poll("q", "bad name!", {})
    assert out.state == gr.skip() and out.message == gr.skip() and out.last == {}
    assert train_status.poll(None, None, None).last == {}
    comps = {f: object() for f in train_status.POLL_FIELDS}
    assert set(out.updates(comps)) == set(comps.values()), "every field reaches its component"


def test_start_needs_slices(tmp_home):
    get_voice("empty").create()
    with pytest.raises(VoicelabError, match="no slices"):
        train_runs.start("empty", "r1", "tiny", train_settings.preset_values("tiny"))
    with pytest.raises(VoicelabError, match="pick or create"):
        train_runs.start("", "r1", "tiny", train_settings.preset_values("tiny"))


# ------------------------------------------------------------------------------------ plots


def test_metrics_cache_reads_only_complete_lines(tmp_path):
    (tmp_path / runfiles.METRICS).write_text(
        json.dumps({"step": 1, "loss/mel": 2.0, "lr": 1e-4}) + "\n" + '{"step": 2, "loss/m'
    )
    cache = plots.MetricsCache()
    assert [r["step"] for r in cache.records(tmp_path)] == [1]
    with open(tmp_path / runfiles.METRICS, "a") as f:
        f.write('el": 1.0}\nnot json\n' + json.dumps({"step": 3, "loss/mel": 0.5}) + "\n")
    assert [r["step"] for r in cache.records(tmp_path)] == [1, 2, 3]
    df = plots.curves(cache.records(tmp_path), "loss")
    assert df["value"].tolist() == [2.0, 1.0, 0.5]
    assert plots.curves(cache.records(tmp_path), "lr")["series"].tolist() == ["lr"]


def test_empty_curves_keep_numeric_axes():
    df = plots.curves([], "loss")
    assert df.empty and str(df["step"].dtype) == "float64" and str(df["value"].dtype) == "float64"


def test_long_curves_are_thinned_keeping_the_last_point():
    recs = [{"step": s, "loss/a": float(s)} for s in range(1, 5001)]
    df = plots.curves(recs, "loss")
    assert len(df) <= plots.MAX_POINTS + 1 and df["step"].iloc[-1] == 5000


# ------------------------------------------------------------------------------------ speak


def test_speak_lists_and_refusals(tmp_home):
    v = _voice_with_slices("s")
    refs = speak.reference_choices(v)
    assert len(refs) == 3 and refs[1][1] == "slices/slice_0001.wav"
    assert speak.reference_text(v, refs[1][1]).startswith("She painted")
    assert speak.model_choices(v) == []
    args = dict(text="hello", lang="en", ref_slice=refs[1][1], ref_upload=None, ref_text="",
                top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35, speed=1.0, seed=0)
    with pytest.raises(VoicelabError, match="pick a model"):
        speak.speak(v, None, **args)
    with pytest.raises(WorkspaceError):
        speak.speak(v, "../../etc/passwd", **args)
    with pytest.raises(VoicelabError, match="pick the run"):
        speak.export(v, None)


def test_fmt_duration():
    assert fmt_duration(4.24) == "4.2 s" and fmt_duration(75) == "1 min 15 s"
    assert fmt_duration(3725) == "1 h 02 min" and fmt_duration(None) == "unknown"


def test_loss_plot_one_panel_per_stage_on_one_scale():
    """Issue 15.6: the GPT stage's KL spike must not flatten the SoVITS curves, and the scale
    must not switch between log and linear as points (or a value <= 0) arrive."""
    recs = [{"step": s, "stage": "sovits", "loss/mel": 5.0 / s, "loss/kl": 2.0} for s in range(1, 20)]
    recs += [{"step": s, "stage": "gpt", "loss/token": 3.0, "loss/kl": 500.0 if s == 25 else -0.5}
             for s in range(20, 30)]
    fig = plots.curve_figure(plots.curves(recs, "loss"), "loss")
    assert [ax.get_title() for ax in fig.axes] == ["Loss: sovits", "Loss: gpt"]
    sovits = fig.axes[0]
    assert max(max(line.get_ydata()) for line in sovits.get_lines()) < 10, "no GPT spike here"
    early = plots.curve_figure(plots.curves(recs[:3], "loss"), "loss")
    assert {ax.get_yscale() for ax in fig.axes + early.axes} == {"symlog"}
