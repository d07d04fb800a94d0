"""Record & Clean tab: record prompt sentences or upload files, then clean them.

Takes are saved in raw/ exactly as recorded (never modified afterwards); raw/takes.list holds
each take's prompt text in GPT-SoVITS format (`path|voice|lang|text`), so the Slice tab can use
the sentence the person read as the transcript. Redoing a prompt saves a new take and points
takes.list at it; the earlier file stays in raw/ untouched.

Cleaning calls `voicelab.audio.pipeline.prepare_files`, which writes clean/<stem>.wav and
clean/<stem>.report.json; this tab shows before/after players, waveform + spectrogram images and
the quality report with its plain-language warnings.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from voicelab.config import (
    DEFAULT_PRESET,  # cleaning and slicing are the same in every preset
    AudioConfig,
    Config,
    load_config,
)
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.ui.common import (
    AUDIO_EXTENSIONS,
    check_audio,
    copy_into,
    fmt_duration,
    friendly,
    quiet,
    speech_seconds,
    voice_or_error,
)
from voicelab.ui.progress import CancelFlag, bridge
from voicelab.workspace import Voice

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PROMPTS = REPO_ROOT / "assets" / "prompts" / "en.txt"
TAKES_LIST = "takes.list"
TARGET_TAKES = 40  # about two to three minutes of speech: plenty for few-shot cloning

_cancel = CancelFlag()

# Runs in the browser (the server cannot see the person's microphone): which of "no device",
# "permission denied", "page not secure" it is, and what to do. Gradio's own picker only shows a
# truncated "No microphone fou..." and Record then does nothing visible.
MIC_CHECK_JS = """
async () => {
  const upload = " Meanwhile you can upload recordings below.";
  if (!window.isSecureContext) {
    return "**The browser blocks the microphone on this address** (it allows it only on https:// "
      + "or http://localhost): open the studio as http://localhost:PORT on this computer, or "
      + "start it with --share for an https link." + upload;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return "**This browser gives the page no microphone access**: try a current Chrome, Firefox "
      + "or Safari." + upload;
  }
  let state = "";
  try { state = (await navigator.permissions.query({name: "microphone"})).state; } catch (e) {}
  if (state === "denied") {
    return "**Microphone permission is denied for this page**: allow it in the browser's site "
      + "settings (the icon left of the address), reload the page, then press Check microphone."
      + upload;
  }
  let devices = [];
  try { devices = await navigator.mediaDevices.enumerateDevices(); } catch (e) {}
  if (!devices.some(d => d.kind === "audioinput")) {
    return "**No microphone found**: plug one in or switch it on in the system's sound settings, "
      + "then press Check microphone." + upload;
  }
  return state === "granted" ? "Microphone ready: press Record, read the sentence, press Stop."
    : "Microphone found: the browser asks for permission the first time you press Record.";
}
"""


# ---------------------------------------------------------------------------- prompts and takes


def load_prompts(path: Path = PROMPTS) -> list[str]:
    """Prompt sentences, one a line ('#' comments and blank lines skipped)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")][:TARGET_TAKES]


def prompt_view(index: int, prompts: list[str]) -> tuple[str, str]:
    """(progress like '12 / 40', the sentence to read) for prompt number `index` (0-based)."""
    if not prompts:
        return "no prompts", (
            f"No prompt list at {PROMPTS}: read any text you like (about a minute in total), "
            "and type what you said in the Slice tab."
        )
    if index >= len(prompts):
        return f"{len(prompts)} / {len(prompts)}", "All prompts done: press Clean below."
    return f"{index + 1} / {len(prompts)}", prompts[index]


def move(index: int, delta: int, prompts: list[str]) -> tuple[int, str, str, None, str]:
    """Skip (+1) or Redo previous (-1): (new index, progress, sentence, cleared take, feedback)."""
    i = max(0, min(len(prompts), index + delta))
    if delta < 0 and i == index:
        feedback = "This is the first sentence: there is no previous one to redo."
    elif delta < 0:
        feedback = (f"Redo sentence {i + 1}: record it again and press Save take and next. The "
                    "new take replaces the old one for slicing; the old file stays in raw/.")
    elif i == index:
        feedback = "All sentences are done: press Clean below."
    else:
        feedback = f"Skipped sentence {index + 1}."
    return i, *prompt_view(i, prompts), None, feedback


def read_takes(voice: Voice) -> list[Entry]:
    path = voice.raw / TAKES_LIST
    return read_list(path) if path.is_file() else []


def save_take(voice: Voice, recording: str | None, index: int, prompts: list[str]) -> Path:
    """Save a microphone take for prompt `index` into raw/ and record its text in takes.list."""
    if not recording:
        raise VoicelabError("nothing recorded yet: press the microphone button, read, then stop")
    src = check_audio(recording)
    if not prompts or index >= len(prompts):
        text = ""
        stem = "take"
    else:
        text = prompts[index]
        stem = f"take-{index + 1:03d}"
    dest = copy_into(voice.raw, src, stem)
    takes = [e for e in read_takes(voice) if not (text and e.text == text)]  # redo replaces
    takes.append(Entry(dest.resolve(), voice.name, "en", text))
    write_list(voice.raw / TAKES_LIST, takes)
    return dest


def next_prompt(voice: Voice, prompts: list[str]) -> int:
    """Where to continue: after the furthest prompt this voice already has a take for."""
    done = {e.text for e in read_takes(voice)}
    return max((i + 1 for i, p in enumerate(prompts) if p in done), default=0)


def add_uploads(voice: Voice, files: list[str] | None) -> list[Path]:
    """Copy uploaded audio files into raw/ (each decoded and checked first: all or none)."""
    if not files:
        raise VoicelabError("choose one or more audio files to upload first")
    checked = [check_audio(f) for f in files]
    from voicelab.audio import pipeline  # torch: imported when used, not at app start
    # store_raw keeps one copy per content and gives every file its own stem (clean/<stem>.wav)
    return [pipeline.store_raw(voice, p) for p in checked]


REMOVED = "removed"  # <voice>/removed/: where a recording removed in the UI goes (recoverable)


def remove_recordings(voice: Voice, names: list[str]) -> list[str]:
    """Move raw/<name> (and its cleaned file and report) to <voice>/removed/, on request only.

    raw/ is never changed otherwise; a removed file can be moved back by hand. Takes lose their
    line in takes.list. Returns the names moved.
    """
    if not names:
        raise VoicelabError("pick the recordings to remove first")
    files = []
    for n in names:
        p = voice.raw / Path(n).name  # names come from our own list: no folders
        if not p.is_file() or p.suffix.lower() not in AUDIO_EXTENSIONS:
            raise VoicelabError(f"{n} is not a recording in {voice.raw}: refresh the list")
        files.append(p)
    bin_ = voice.root / REMOVED
    bin_.mkdir(exist_ok=True)
    stamp_ = time.strftime("%Y%m%d-%H%M%S")
    for p in files:
        derived = [voice.clean / f"{p.stem}.wav", voice.clean / f"{p.stem}.report.json"]
        for f in [p, *derived]:
            if not f.is_file():
                continue
            # a new name per removal: an earlier removed file is never replaced
            dest, n = bin_ / f"{stamp_}-{f.parent.name}-{f.name}", 2
            while dest.exists():
                dest, n = bin_ / f"{stamp_}-{n}-{f.parent.name}-{f.name}", n + 1
            os.replace(f, dest)
    gone = {p.resolve() for p in files}
    takes = read_takes(voice)
    if any(e.path.resolve() in gone for e in takes):
        write_list(voice.raw / TAKES_LIST, [e for e in takes if e.path.resolve() not in gone])
    return [p.name for p in files]


# ---------------------------------------------------------------------------- cleaning


def raw_files(voice: Voice) -> list[str]:
    """Audio files in raw/, minus takes superseded by a redo."""
    if not voice.raw.is_dir():
        return []
    current = {e.path.name for e in read_takes(voice)}
    out = []
    for p in sorted(voice.raw.iterdir()):
        if p.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if p.name.startswith("take-") and p.name not in current:
            continue
        out.append(p.name)
    return out


def uncleaned(voice: Voice) -> list[str]:
    return [n for n in raw_files(voice) if not (voice.clean / f"{Path(n).stem}.wav").is_file()]


def cleaning_config(denoise: bool, strength: float, highpass: float, lufs: float) -> Config:
    return load_config(
        DEFAULT_PRESET,
        [
            f"audio.denoise={'true' if denoise else 'false'}",
            f"audio.denoise_strength={float(strength)}",
            f"audio.highpass_hz={float(highpass)}",
            f"audio.target_lufs={float(lufs)}",
        ],
    )


def clean_files(
    voice: Voice, names: list[str], cfg: Config, progress: Any = None
) -> tuple[list[str], str]:
    """Run the library's prepare step on raw/<name> files.

    Returns (the stems cleaned, a markdown summary with each failure and warning in plain words).
    One bad file does not stop the others (prepare_files keeps going and reports it).
    """
    if not names:
        raise VoicelabError("no recordings to clean: record or upload something first")
    from voicelab.audio import pipeline
    files = []
    for n in names:
        p = voice.raw / Path(n).name  # names come from our own list: no folders
        if not p.is_file():
            raise VoicelabError(f"{n} is not in {voice.raw} any more: refresh the list")
        files.append(p)
    results = pipeline.prepare_files(voice, files, cfg, progress=progress)
    done = [r.clean.stem for r in results if r.ok and r.clean is not None]
    lines = [f"Cleaned {len(done)} of {len(results)} file(s)."]
    for r in results:
        if not r.ok:
            lines.append(f"- **{r.source.name} failed:** {r.error}")
        elif r.report is not None and r.report.warnings:
            lines += [f"- {r.source.name}: {w}" for w in r.report.warnings]
    if not done:
        raise VoicelabError(" ".join(lines[1:]).replace("**", "") or "nothing was cleaned")
    lines.append(f"\nSpeech in this voice so far: **{fmt_duration(speech_seconds(voice) or 0)}** "
                 "(the Slice tab counts the same way).")
    return done, "\n".join(lines)


@dataclass(frozen=True)
class CleanView:
    before: str | None
    after: str | None
    before_png: str | None
    after_png: str | None
    report_md: str


def report_markdown(report: dict) -> str:
    """The quality report as a short table, warnings first in plain words."""
    warnings = report.get("warnings") or []
    lines = []
    if warnings:
        lines += ["**Warnings**", *[f"- {w}" for w in warnings], ""]
    else:
        lines += ["**No problems found.**", ""]
    lines += ["| measure | value |", "|---|---|"]
    for k, v in report.items():
        if k == "warnings" or isinstance(v, (dict, list)):
            continue
        if isinstance(v, float):
            v = f"{v:.2f}"
        lines.append(f"| {k.replace('_', ' ')} | {v} |")
    return "\n".join(lines)


def _plot(audio_path: Path, title: str, cfg: Config) -> str | None:
    from voicelab.audio import io, plots
    audio, sr = io.load_audio(audio_path)
    out = Path(tempfile.mkdtemp(prefix="voicelab-plot-")) / f"{audio_path.stem}.png"
    plots.plot_wave_and_mel(audio, sr, out, title=title)
    return str(out)


def clean_view(voice: Voice, stem: str, cfg: Config | None = None) -> CleanView:
    """Players, images and report for one cleaned file (by stem)."""
    cfg = cfg or load_config(DEFAULT_PRESET)
    clean = voice.clean / f"{stem}.wav"
    if not clean.is_file():
        raise VoicelabError(f"{stem} has not been cleaned yet: press Clean")
    raw = next((p for p in sorted(voice.raw.glob(f"{stem}.*")) if p.suffix.lower() in AUDIO_EXTENSIONS), None)
    report_path = voice.clean / f"{stem}.report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return CleanView(
        before=str(raw) if raw else None,
        after=str(clean),
        before_png=_plot(raw, f"before: {raw.name}", cfg) if raw else None,
        after_png=_plot(clean, f"after: {clean.name}", cfg),
        report_md=report_markdown(report) if report else "(no quality report was written)",
    )


def cleaned_stems(voice: Voice) -> list[str]:
    return sorted(p.stem for p in voice.clean.glob("*.wav")) if voice.clean.is_dir() else []


# ---------------------------------------------------------------------------- layout


def build(voice_dd: gr.Dropdown) -> None:
    prompts = load_prompts()
    idx = gr.State(0)
    gr.Markdown(
        "Read each sentence aloud, in a quiet room, about a hand's width from the microphone. "
        "About 40 sentences (2-3 minutes) is plenty. You can also upload recordings you have."
    )
    with gr.Row():
        count = gr.Textbox(prompt_view(0, prompts)[0], label="Prompt", interactive=False,
                           scale=0, min_width=110, elem_id="prompt-count")
        sentence = gr.Textbox(prompt_view(0, prompts)[1], label="Read this", interactive=False,
                              scale=4, elem_id="prompt-text")
    mic = gr.Audio(sources=["microphone"], type="filepath", label="Your take", elem_id="mic")
    with gr.Row():
        mic_help = gr.Markdown(elem_id="mic-help")
        mic_check = gr.Button("Check microphone", scale=0, elem_id="mic-check")
    with gr.Row():
        save_btn = gr.Button("Save take and next", variant="primary", elem_id="take-save")
        redo_btn = gr.Button("Redo previous", elem_id="take-redo")
        skip_btn = gr.Button("Skip", elem_id="take-skip")
    with gr.Accordion("Upload recordings instead", open=True):
        uploads = gr.File(file_count="multiple", file_types=list(AUDIO_EXTENSIONS),
                          label="Audio files (wav, flac, mp3, ogg, m4a ...)", elem_id="upload")
        upload_btn = gr.Button("Add to this voice", elem_id="upload-add")
    status = gr.Markdown(elem_id="record-status")

    with gr.Accordion("Cleanup settings", open=False):
        d = AudioConfig()  # the sliders start at the library's (measured) defaults
        denoise = gr.Checkbox(d.denoise, label="Reduce background noise")
        strength = gr.Slider(0, 1, d.denoise_strength, step=0.05, label="Noise reduction strength",
                             info="higher removes more hiss but can sound watery")
        highpass = gr.Slider(0, 200, d.highpass_hz, step=5, label="High-pass (Hz)",
                             info="removes rumble and mains hum below this")
        lufs = gr.Slider(-30, -12, d.target_lufs, step=1, label="Loudness target (LUFS)",
                         info="every file is brought to the same loudness")
    todo = gr.Dropdown(multiselect=True, label="Files to clean", elem_id="clean-files",
                       info="new recordings are selected automatically")
    with gr.Row():
        clean_btn = gr.Button("Clean", variant="primary", elem_id="clean-run")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="clean-cancel")
    with gr.Accordion("Remove recordings", open=False) as remove_box:
        remove_pick = gr.Dropdown(multiselect=True, label="Recordings to remove",
                                  elem_id="remove-files",
                                  info="moved to the voice's removed/ folder, with their cleaned "
                                  "copies; nothing is deleted")
        remove_btn = gr.Button("Remove from this voice", variant="stop", elem_id="remove-run")
        armed = gr.State([])
    pick = gr.Dropdown(label="Show cleaned file", elem_id="clean-pick")
    with gr.Row():
        before = gr.Audio(label="Before", interactive=False, elem_id="clean-before")
        after = gr.Audio(label="After", interactive=False, elem_id="clean-after")
    with gr.Row():
        before_img = gr.Image(label="Before: waveform + spectrogram", type="filepath",
                              interactive=False)
        after_img = gr.Image(label="After: waveform + spectrogram", type="filepath",
                             interactive=False)
    report = gr.Markdown(elem_id="clean-report")

    def lists(name: str | None):
        if not name:
            return gr.Dropdown(choices=[], value=[]), gr.Dropdown(choices=[], value=None)
        v = voice_or_error(name)
        stems = cleaned_stems(v)
        return (gr.Dropdown(choices=raw_files(v), value=uncleaned(v)),
                gr.Dropdown(choices=stems, value=stems[-1] if stems else None))

    def on_save(name, rec, i):
        v = voice_or_error(name)
        dest = save_take(v, rec, i, prompts)
        c, s = prompt_view(i + 1, prompts)
        return i + 1, c, s, None, f"saved {dest.name}", *lists(name)

    def on_move(i, delta):
        return move(i, delta, prompts)

    def on_upload(name, files):
        v = voice_or_error(name)
        saved = add_uploads(v, files)
        return f"added {', '.join(p.name for p in saved)}", *lists(name)

    def on_clean(name, names, dn, st, hp, lu, progress=gr.Progress()):
        v = voice_or_error(name)
        _cancel.clear()
        cfg = cleaning_config(dn, st, hp, lu)
        stems, msg = clean_files(v, names, cfg, bridge(progress, "cleaning", _cancel))
        todo_u, pick_u = lists(name)
        return msg, todo_u, gr.Dropdown(choices=cleaned_stems(v), value=stems[-1])

    def on_pick(name, stem):
        if not name or not stem:
            return None, None, None, None, ""
        view = clean_view(voice_or_error(name), stem)
        return view.before, view.after, view.before_png, view.after_png, view.report_md

    def remove_choices(name):
        return gr.Dropdown(choices=raw_files(voice_or_error(name)) if name else [], value=[])

    def on_remove(name, names, armed_names):
        """Two presses: the first says what will move, the second (same files) moves them."""
        v = voice_or_error(name)
        if not names:
            raise VoicelabError("pick the recordings to remove first")
        if sorted(names) != sorted(armed_names or []):
            return (sorted(names), f"Press **Remove from this voice** again to move "
                    f"{', '.join(names)} (and their cleaned copies) to `{REMOVED}/`.",
                    gr.skip(), gr.skip(), gr.skip())
        moved = remove_recordings(v, names)
        return ([], f"moved {', '.join(moved)} to `{REMOVED}/` (move a file back into raw/ to "
                "use it again)", *lists(name), remove_choices(name))

    remove_box.expand(quiet(remove_choices, 1), [voice_dd], [remove_pick])
    remove_btn.click(friendly(on_remove, 5), [voice_dd, remove_pick, armed],
                     [armed, status, todo, pick, remove_pick])
    take_out = [idx, count, sentence, mic, status, todo, pick]
    save_btn.click(friendly(on_save, len(take_out)), [voice_dd, mic, idx], take_out)
    skip_btn.click(lambda i: on_move(i, +1), [idx], [idx, count, sentence, mic, status])
    redo_btn.click(lambda i: on_move(i, -1), [idx], [idx, count, sentence, mic, status])
    upload_btn.click(friendly(on_upload, 3), [voice_dd, uploads], [status, todo, pick])
    clean_btn.click(friendly(on_clean, 3), [voice_dd, todo, denoise, strength, highpass, lufs],
                    [status, todo, pick])
    cancel_btn.click(_cancel.set, None, [status])
    pick.change(quiet(on_pick, 5), [voice_dd, pick],
                [before, after, before_img, after_img, report])
    def on_voice(name):
        i = next_prompt(voice_or_error(name), prompts) if name else 0
        return i, *prompt_view(i, prompts), *lists(name)

    voice_dd.change(quiet(on_voice, 5), [voice_dd], [idx, count, sentence, todo, pick])
    voice_dd.change(quiet(remove_choices, 1), [voice_dd], [remove_pick])
    # in the browser only: says which microphone problem there is (also once the page opens)
    mic_check.click(None, None, [mic_help], js=MIC_CHECK_JS)
    voice_dd.change(None, None, [mic_help], js=MIC_CHECK_JS)
