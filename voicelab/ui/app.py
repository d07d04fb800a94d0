"""build_app(): the studio's gr.Blocks, one tab per step (each built by its own module)."""

from __future__ import annotations

import gradio as gr

from voicelab import __version__
from voicelab.ui import record, slice, speak, train, voice

# Messages the launcher learned after the Blocks were built (e.g. "no share link"); shown in a
# banner to every browser that loads the page afterwards.
NOTICES: list[str] = []
CACHE_MAX_AGE_S = 6 * 3600


def notices_markdown() -> gr.Markdown:
    text = "\n\n".join(f"**Note:** {n}" for n in NOTICES)
    return gr.Markdown(text, visible=bool(NOTICES))


def build_app() -> gr.Blocks:
    """The whole studio. Launching is app.py's job (voicelab.ui.launch)."""
    # delete_cache: a studio left open for days drops served files (uploads, synthesized audio)
    # older than CACHE_MAX_AGE_S, checked hourly; launch removes the whole cache when it closes
    with gr.Blocks(title="voicelab", analytics_enabled=False,
                   delete_cache=(3600, CACHE_MAX_AGE_S)) as demo:  # fmt: skip
        gr.Markdown(
            f"# voicelab {__version__}\n"
            "Clone a voice from a minute of speech: **Voice** -> **Record & Clean** -> "
            "**Slice** -> **Train** -> **Speak**. Training runs in the background: you can "
            "close this page and come back."
        )
        banner = gr.Markdown(visible=False, elem_id="notices")
        with gr.Tab("Voice", id="voice"):
            voice_dd, remembered = voice.build()
        with gr.Tab("Record & Clean", id="record"):
            record.build(voice_dd)
        with gr.Tab("Slice", id="slice") as slice_tab:
            slice.build(voice_dd, slice_tab)
        with gr.Tab("Train", id="train") as train_tab:
            train.build(voice_dd, train_tab)
        with gr.Tab("Speak", id="speak") as speak_tab:
            speak.build(voice_dd, speak_tab)
        # a browser refresh starts from the page's defaults: restore the voice list and the
        # banner, and (through voice_dd.change) re-attach to a trainer that is still running
        demo.load(voice.refresh_voices, [voice_dd, remembered], [voice_dd])
        demo.load(notices_markdown, None, [banner])
    return demo
