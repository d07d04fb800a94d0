"""Voice tab: create or pick a voice, and see where its files live.

The picked voice (a `gr.Dropdown`) is the first input of every handler in the other tabs.
"""

from __future__ import annotations

import gradio as gr

from voicelab.errors import VoicelabError
from voicelab.ui.common import AUDIO_EXTENSIONS, fmt_duration, friendly, quiet, voice_or_error
from voicelab.ui.jobs import active_run
from voicelab.workspace import get_voice, home, list_voices


def create_voice(name: str) -> tuple[str, list[str]]:
    """Create a voice folder (validated name). Returns (the name, all voice names)."""
    name = (name or "").strip()
    if not name:
        raise VoicelabError("type a name for the new voice first (for example 'my-voice')")
    voice = get_voice(name)
    if voice.exists():
        raise VoicelabError(f"voice {name!r} already exists: pick it from the list instead")
    voice.create()
    return name, list_voices()


def describe_voice(name: str | None) -> str:
    """Markdown: the voice's folders and how far it has come (takes, slices, runs, exports)."""
    if not name:
        return (
            f"No voice picked. Voices live in `{home()}` (set `VOICELAB_HOME` to move them). "
            "Create one to start."
        )
    voice = voice_or_error(name)
    # recordings only: raw/takes.list (the prompt texts of the takes) is not one
    n_raw = sum(1 for p in voice.raw.glob("*") if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS) if voice.raw.is_dir() else 0
    n_clean = len(list(voice.clean.glob("*.wav"))) if voice.clean.is_dir() else 0
    n_slices = len(list(voice.slices.glob("*.wav"))) if voice.slices.is_dir() else 0
    exports = sorted(p.stem for p in voice.exports.glob("*.json")) if voice.exports.is_dir() else []
    runs = voice.list_runs()
    busy = active_run(voice)
    clean_s = 0.0
    for p in voice.clean.glob("*.wav") if voice.clean.is_dir() else []:
        try:
            import soundfile as sf

            clean_s += sf.info(str(p)).duration
        except RuntimeError:
            continue
    lines = [
        f"### {voice.name}",
        f"Folder: `{voice.root}`",
        "",
        "| step | where | now |",
        "|---|---|---|",
        f"| originals (never changed) | `raw/` | {n_raw} recordings |",
        f"| cleaned audio | `clean/` | {n_clean} files, {fmt_duration(clean_s)} |",
        f"| slices + texts | `slices/dataset.list` | {n_slices} slices |",
        f"| training runs | `runs/` | {', '.join(runs) or 'none'} |",
        f"| exported models | `exports/` | {', '.join(exports) or 'none'} |",
    ]
    if busy:
        lines += ["", f"**Training now:** run `{busy}` (see the Train tab)."]
    return "\n".join(lines)


def last_worked_on(voice) -> float:  # voice: workspace.Voice
    """When anything in the voice last changed: the newest mtime among its folders and their
    files (a voice folder's own mtime only moves when a direct child is created)."""
    newest = voice.root.stat().st_mtime
    for sub in (voice.raw, voice.clean, voice.slices, voice.runs, voice.exports,
                voice.root / "spoken"):
        if sub.is_dir():
            newest = max(newest, sub.stat().st_mtime,
                         *(p.stat().st_mtime for p in sub.iterdir()))
    return newest


def default_voice(names: list[str], remembered: str | None = None) -> str | None:
    """The voice a fresh page opens on: one that is training (re-attach), else the one this
    browser worked on last (`remembered`), else the one changed most recently."""
    voices = [get_voice(n) for n in names]
    for v in voices:
        if active_run(v):
            return v.name
    if remembered in names:
        return remembered
    if not voices:
        return None
    return max(voices, key=last_worked_on).name


def refresh_voices(current: str | None, remembered: str | None = None) -> gr.Dropdown:
    names = list_voices()
    return gr.Dropdown(choices=names,
                       value=current if current in names else default_voice(names, remembered))


def build() -> tuple[gr.Dropdown, gr.BrowserState]:
    """Lay out the Voice tab; returns the voice picker the other tabs read, and the browser's
    memory of the voice it worked on (read by the page's load event)."""
    gr.Markdown(
        "Each voice is a folder with its recordings, slices, training runs and models. "
        "Create one for a new speaker, or pick one to continue."
    )
    with gr.Row():
        # empty at first: the page's load event picks the voice, and that change fills every tab
        voice = gr.Dropdown(
            choices=[],
            value=None,
            # names are checked by the handlers (validate_name, must exist); without this the
            # API (and a session older than a voice) would refuse voices created after startup
            allow_custom_value=True,
            label="Voice",
            info="the voice every other tab works on",
            elem_id="voice-pick",
            scale=2,
        )
        refresh = gr.Button("Refresh list", scale=0)
    with gr.Row():
        new_name = gr.Textbox(
            label="New voice name",
            placeholder="my-voice",
            info="letters, digits, - and _; up to 64 characters",
            elem_id="voice-new-name",
            scale=2,
        )
        create = gr.Button("Create voice", variant="primary", elem_id="voice-create", scale=0)
    info = gr.Markdown(describe_voice(voice.value), elem_id="voice-info")

    def _create(name: str):
        new, names = create_voice(name)
        return gr.Dropdown(choices=names, value=new), ""

    # the voice this browser works on, kept in its localStorage across reloads
    remembered = gr.BrowserState(None, storage_key="voicelab-voice")
    voice.change(lambda name: name, [voice], [remembered])
    create.click(friendly(_create, 2), [new_name], [voice, new_name])
    refresh.click(refresh_voices, [voice], [voice])
    voice.change(quiet(describe_voice, 1), [voice], [info], api_name="describe_voice")
    return voice, remembered
