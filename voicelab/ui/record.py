"""Record & Clean tab: record prompt sentences or upload files, then clean them.

Takes are saved in raw/ exactly as recorded (never modified afterwards); raw/takes.list holds
each take's prompt text in GPT-SoVITS format (`path|voice|lang|text`), so the Slice tab can use
the sentence the person read as the transcript. Redoing a prompt saves a new take and points
takes.list at it; the earlier file stays in raw/ untouched.

Cleaning calls `voicelab.audio.pipeline.prepare_files`, which writes clean/<stem>.wav and
clean/<stem>.report.json; this tab shows before/after players, waveform + spectrogram images and
the quality report with its plain-language warnings.

This module holds the layout and the event wiring (`build`); the handlers live in
record_takes.py (prompts, takes, uploads, removing) and record_clean.py (cleaning, its view).
"""

from __future__ import annotations

import gradio as gr

from voicelab.config import AudioConfig
from voicelab.errors import VoicelabError
from voicelab.ui.common import AUDIO_EXTENSIONS, friendly, quiet, voice_or_error
from voicelab.ui.progress import CancelFlag, bridge
from voicelab.ui.record_clean import (
    clean_files,
    clean_view,
    cleaned_stems,
    cleaning_config,
    raw_files,
    uncleaned,
)
from voicelab.ui.record_takes import (
    REMOVED,
    add_uploads,
    load_prompts,
    move,
    next_prompt,
    prompt_view,
    remove_recordings,
    save_take,
)

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
