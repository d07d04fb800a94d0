"""Speak tab: pick an export or a checkpoint, type text, pick a reference clip, synthesize.

Models load through `voicelab.synth.Synthesizer` (`from_bundle` for exports/<name>.safetensors,
`from_checkpoint` for runs/<run>/checkpoints/step-*.pt); loaded synthesizers are kept (two at
most) so a second sentence does not reload the model. Export writes the EMA weights of a run
with `voicelab.export.export_run`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from voicelab.config import SynthConfig
from voicelab.errors import VoicelabError
from voicelab.listfile import read_list
from voicelab.ui.common import (
    check_audio,
    friendly,
    in_voice,
    quiet,
    stamp,
    ui_advice,
    voice_or_error,
)
from voicelab.ui.progress import CancelFlag, bridge
from voicelab.ui.quality import SILENT_PEAK_DBFS, check_speech
from voicelab.workspace import Voice

_models: OrderedDict[tuple[str, float], Any] = OrderedDict()  # (path, mtime) -> Synthesizer
_models_lock = threading.Lock()
MAX_LOADED = 2
LANGS = ["en", "zh", "auto"]


def model_choices(voice: Voice) -> list[tuple[str, str]]:
    """(label, path relative to the voice folder): exports first (newest first), then checkpoints."""
    out: list[tuple[str, str]] = []
    if voice.exports.is_dir():
        for p in sorted(voice.exports.glob("*.safetensors"), key=lambda p: -p.stat().st_mtime):
            out.append((f"export: {p.stem}", str(p.relative_to(voice.root))))
    from voicelab.training import checkpoint

    for run in reversed(voice.list_runs()):
        # only stage-2 checkpoints can speak (stage 1 has no trained GPT to read the text)
        for c in reversed(checkpoint.list_checkpoints(voice.run_dir(run), verify=False)):
            if c.problem is None and c.stage == "gpt":
                out.append((f"checkpoint: {run} / {c.path.stem}", str(c.path.relative_to(voice.root))))
    return out


def reference_choices(voice: Voice) -> list[tuple[str, str]]:
    """(label with the start of its text, slice path relative to the voice folder)."""
    if not voice.dataset_list.is_file():
        return []
    out = []
    for e in read_list(voice.dataset_list):
        text = e.text if len(e.text) <= 50 else e.text[:47] + "..."
        out.append((f"{e.path.name}: {text}", str(e.path.relative_to(voice.root))
                    if e.path.is_relative_to(voice.root) else str(e.path)))
    return out


def reference_text(voice: Voice, rel: str | None) -> str:
    if not rel or not voice.dataset_list.is_file():
        return ""
    target = in_voice(voice, rel)
    return next((e.text for e in read_list(voice.dataset_list) if e.path == target), "")


def upload_ref_text(voice: Voice | None, upload: str | None, ref_slice: str | None) -> str:
    """'What the reference says' after the upload / record box changed: empty for a new clip
    (the picked slice's sentence would describe other audio), the slice's text when cleared."""
    if upload:
        return ""
    return reference_text(voice, ref_slice) if voice is not None else ""


def load_synth(path: Path) -> Any:
    """The Synthesizer for an export or checkpoint (cached; reloaded when the file changes)."""
    from voicelab import synth as synth_mod  # torch: imported on first use
    key = (str(path), path.stat().st_mtime)
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    if path.suffix == ".pt":
        synth = synth_mod.Synthesizer.from_checkpoint(path)
    else:
        synth = synth_mod.Synthesizer.from_bundle(path)
    with _models_lock:
        _models[key] = synth
        while len(_models) > MAX_LOADED:
            _models.popitem(last=False)
    return synth


@dataclass(frozen=True)
class SpeakResult:
    wav_path: str
    sample_rate: int
    seconds: float
    gen_s: float
    seed: int | None = None
    warnings: tuple[str, ...] = ()  # the synthesizer's own (e.g. a sentence cut at its limit)
    checks: tuple[str, ...] = ()  # quality.check_speech: length, level, noise, in plain words

    @property
    def rtf(self) -> float:
        """Real-time factor: generation time / audio length (below 1 is faster than real time)."""
        return self.gen_s / self.seconds if self.seconds else float("inf")

    def markdown(self) -> str:
        md = (f"{self.seconds:.2f} s of audio in {self.gen_s:.2f} s "
              f"(real-time factor {self.rtf:.2f})")
        if self.seed is not None:
            md += f", seed {self.seed}"
        md += "".join(f"\n- {w}" for w in self.warnings)
        if self.checks:
            md += "\n\n**The result does not sound right yet:**\n" + "".join(
                f"\n- {w}" for w in self.checks)
        return md


def speak(
    voice: Voice, model_rel: str | None, text: str, lang: str, ref_slice: str | None,
    ref_upload: str | None, ref_text: str, top_k: int, top_p: float, temperature: float,
    repetition_penalty: float, speed: float, seed: int,
) -> SpeakResult:
    """Synthesize `text` in the voice; writes a WAV for the player and the download."""
    if not model_rel:
        raise VoicelabError("pick a model first: export a run, or pick a checkpoint")
    if not text or not text.strip():
        raise VoicelabError("type the text to speak")
    model = in_voice(voice, model_rel)
    if not model.is_file():
        raise VoicelabError(f"{model_rel} is gone: refresh the model list")
    if ref_upload:
        ref = check_audio(ref_upload)
    elif ref_slice:
        ref = in_voice(voice, ref_slice)
    else:
        raise VoicelabError("pick a reference clip (a slice), upload one, or record one")
    synth = load_synth(model)
    t0 = time.perf_counter()
    result = synth.synthesize(
        text, lang, str(ref), reference_text=ref_text or None, top_k=int(top_k),
        top_p=float(top_p), temperature=float(temperature),
        repetition_penalty=float(repetition_penalty), speed=float(speed),
        seed=None if seed is None or int(seed) < 0 else int(seed),  # -1: a new random seed
    )  # fmt: skip
    gen = float(getattr(result, "gen_s", time.perf_counter() - t0))
    sr, wav = result
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    check = check_speech(text, wav, int(sr), float(speed))
    if check.peak_dbfs <= SILENT_PEAK_DBFS:  # nothing to listen to: not kept, as the CLI
        raise VoicelabError(
            "the result is silent: the model has not learnt to speak yet. Train longer, or "
            "start from a pretrained base; nothing was saved"
        )
    res = SpeakResult("", int(sr), len(wav) / float(sr), gen, getattr(result, "seed", None),
                      tuple(ui_advice(w) for w in getattr(result, "warnings", ())), check.warnings)
    settings = {"model": model_rel, "lang": lang, "reference": ref.name if ref_upload else ref_slice,
                "reference_text": ref_text or "", "top_k": int(top_k), "top_p": float(top_p),
                "temperature": float(temperature), "repetition_penalty": float(repetition_penalty),
                "speed": float(speed)}
    out = keep_result(voice, wav, int(sr), text, settings, res)
    return dataclasses.replace(res, wav_path=str(out))


SPOKEN = "spoken"  # <voice>/spoken/: every Speak result, with what made it


def keep_result(voice: Voice, wav: np.ndarray, sr: int, text: str, settings: dict,
                res: SpeakResult) -> Path:
    """Save a result as <voice>/spoken/<time>-seed<seed>.wav + .json (text, settings, seed,
    length, checks), so yesterday's take can be found and made again. Never overwrites."""
    from voicelab.audio import io
    from voicelab.fileio import write_json_atomic

    folder = voice.root / SPOKEN
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-seed{res.seed if res.seed is not None else 'x'}"
    out, n = folder / f"{base}.wav", 2
    while out.exists() or out.with_suffix(".json").exists():
        out, n = folder / f"{base}-{n}.wav", n + 1
    io.write_wav(out, wav, sr)
    write_json_atomic(out.with_suffix(".json"), {
        "text": text, "seed": res.seed, "seconds": round(res.seconds, 3), "sample_rate": sr,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), **settings,
        "warnings": list(res.warnings), "checks": list(res.checks),
    })  # fmt: skip
    return out


def spoken_choices(voice: Voice) -> list[tuple[str, str]]:
    """(label "time: start of the text", wav path relative to the voice), newest first."""
    folder = voice.root / SPOKEN
    out = []
    for meta in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        wav = meta.with_suffix(".wav")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            text = str(info.get("text", ""))
        except (OSError, ValueError, AttributeError):
            continue
        if wav.is_file():
            text = text if len(text) <= 50 else text[:47] + "..."
            out.append((f"{meta.stem[:15]}: {text}", str(wav.relative_to(voice.root))))
    return out


def spoken_view(voice: Voice, rel: str | None) -> tuple[str | None, str]:
    """(wav path, markdown of its text and settings) of a kept result."""
    if not rel:
        return None, ""
    wav = in_voice(voice, rel)
    try:
        info = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise VoicelabError(f"{Path(rel).name}: its settings cannot be read ({e})") from None
    keys = ("model", "lang", "reference", "seed", "top_k", "top_p", "temperature",
            "repetition_penalty", "speed")
    rows = " · ".join(f"{k} {info.get(k)}" for k in keys if k in info)
    return str(wav), f"**{info.get('time', '')}**: {info.get('text', '')}\n\n{rows}"


CHECK_SENTENCES = 3  # held-out sentences of "Check quality": about a minute on a laptop CPU
_cancel = CancelFlag()


def check_quality(voice: Voice, model_rel: str | None, progress: Any = None,
                  sentences: Path | None = None) -> str:
    """Run the evaluation (voicelab.eval) on a few held-out sentences; markdown with WER and
    similarity in plain words. The full report is kept in eval/<model>-<time>/ of the voice."""
    from voicelab.eval.evaluate import evaluate_model

    if not model_rel:
        raise VoicelabError("pick a model first: export a run, or pick a checkpoint")
    model = in_voice(voice, model_rel)
    if not model.is_file():
        raise VoicelabError(f"{model_rel} is gone: press Refresh")
    if not voice.dataset_list.is_file():
        raise VoicelabError("the voice has no slices to compare with: slice it in the Slice tab")
    out = voice.root / "eval" / f"{model.stem}-{stamp()}"
    result, _paths = evaluate_model(model, voice.name, out, sentences=sentences,
                                    max_sentences=CHECK_SENTENCES, progress=progress)
    return quality_markdown(result.summary, out.relative_to(voice.root))


def quality_markdown(s: dict, where: Path | str) -> str:
    """The evaluation summary in plain words: how understandable, how close to the voice."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.0f}%"

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    wer, sim, ceil = s.get("wer"), s.get("sim_target"), s.get("sim_ceiling")
    lines = [f"**Quality on {s.get('sentences', 0)} held-out sentences** (sentences the model "
             "never heard in training)", "",
             "| measure | value | what it means |", "|---|---|---|"]
    lines.append(f"| words misheard (WER) | {pct(wer)} | an offline recogniser's mistakes; "
                 "lower is clearer |")
    if s.get("real_wer") is not None:
        lines.append(f"| ...on real recordings | {pct(s['real_wer'])} | the recogniser's own "
                     "error on a real voice: the best to hope for |")
    lines.append(f"| similarity to your voice | {num(sim)} | 1 = same voice |")
    if ceil is not None:
        lines.append(f"| ...your recordings to each other | {num(ceil)} | the best to hope for |")
    if s.get("closest_other"):
        lines.append(f"| closest other voice | {s['closest_other']} "
                     f"{num(s['sim_others'][s['closest_other']])} | should be below yours |")
    verdict = []
    if wer is not None:
        if wer > 0.6:
            verdict.append("Most words are not understandable yet: train longer (more 'Stage 2 "
                           "steps'), or start from a pretrained base if the Train tab shows one.")
        elif wer > 0.3:
            verdict.append("Partly understandable: more training or more (clean) speech helps.")
        else:
            verdict.append("Understandable.")
    if sim is not None and ceil is not None and sim < ceil - 0.15:
        verdict.append("It does not sound much like your voice yet: train longer, or record more "
                       "speech in the Record & Clean tab.")
    if s.get("failed"):
        verdict.append(f"{len(s['failed'])} sentence(s) could not be synthesised: "
                       f"{s['failed'][0]}")
    return "\n".join(lines + ["", " ".join(verdict), "",
                              f"Full report and audio: `{where}` in the voice folder."])


def export(voice: Voice, run: str | None) -> Path:
    if not run:
        raise VoicelabError("pick the run to export")
    from voicelab import export as export_mod
    return export_mod.export_run(voice, run=run)


def build(voice_dd: gr.Dropdown, tab: gr.Tab | None = None) -> None:
    d = SynthConfig()
    with gr.Row():
        model = gr.Dropdown(label="Model", elem_id="speak-model",
                            info="an exported model, or a checkpoint of a run")
        refresh = gr.Button("Refresh", scale=0)
    with gr.Row():
        run = gr.Dropdown(label="Run to export", elem_id="speak-run")
        export_btn = gr.Button("Export", elem_id="speak-export", scale=0)
    export_md = gr.Markdown(elem_id="speak-export-status")
    text = gr.Textbox(label="Text", lines=3, elem_id="speak-text",
                      value="Hello! This is my cloned voice speaking.")
    lang = gr.Dropdown(LANGS, value="en", label="Language")
    with gr.Row():
        ref_slice = gr.Dropdown(label="Reference: one of your slices", elem_id="speak-ref")
        ref_upload = gr.Audio(sources=["upload", "microphone"], type="filepath",
                              label="...or upload / record a reference (3-10 s)")
    ref_text = gr.Textbox(label="What the reference says (optional, helps the prosody)")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            top_k = gr.Slider(1, 100, d.top_k, step=1, label="top-k")
            top_p = gr.Slider(0.05, 1.0, d.top_p, step=0.05, label="top-p")
            temp = gr.Slider(0.1, 2.0, d.temperature, step=0.05, label="temperature",
                             info="lower: steadier; higher: livelier, more mistakes")
        with gr.Row():
            rep = gr.Slider(1.0, 2.0, d.repetition_penalty, step=0.05, label="repetition penalty")
            speed = gr.Slider(0.5, 2.0, d.speed, step=0.05, label="speed")
            seed = gr.Number(0, precision=0, label="seed",
                             info="same seed, same result; -1 for a new one each time")
    go = gr.Button("Synthesize", variant="primary", elem_id="speak-go")
    audio = gr.Audio(label="Result", interactive=False, elem_id="speak-audio",
                     buttons=["download"])
    file = gr.File(label="Download WAV", interactive=False, elem_id="speak-file")
    info = gr.Markdown(elem_id="speak-info")
    with gr.Accordion("Earlier results", open=False) as earlier_box:
        earlier = gr.Dropdown(label="Kept in the voice's spoken/ folder, newest first",
                              elem_id="speak-earlier")
        earlier_audio = gr.Audio(label="Earlier result", interactive=False,
                                 elem_id="speak-earlier-audio", buttons=["download"])
        earlier_md = gr.Markdown(elem_id="speak-earlier-info")
    with gr.Row():
        check_btn = gr.Button(f"Check quality ({CHECK_SENTENCES} held-out sentences)",
                              elem_id="speak-check", scale=0)
        check_cancel = gr.Button("Cancel", variant="stop", scale=0)
    check_md = gr.Markdown(elem_id="speak-quality")

    def lists(name, cur_model=None, cur_ref=None, cur_run=None):
        """Fresh choices; a pick that is still there is kept (re-entering the tab keeps it)."""
        if not name:
            return (gr.Dropdown(choices=[], value=None),) * 3
        v = voice_or_error(name)
        models, refs, runs = model_choices(v), reference_choices(v), list(reversed(v.list_runs()))

        def keep(cur, values):
            return cur if cur in values else (values[0] if values else None)

        return (gr.Dropdown(choices=models, value=keep(cur_model, [m[1] for m in models])),
                gr.Dropdown(choices=refs, value=keep(cur_ref, [r[1] for r in refs])),
                gr.Dropdown(choices=runs, value=keep(cur_run, runs)))

    def on_go(name, *args):
        v = voice_or_error(name)
        r = speak(v, *args)
        rel = str(Path(r.wav_path).relative_to(v.root))
        return r.wav_path, r.wav_path, r.markdown(), gr.Dropdown(choices=spoken_choices(v),
                                                                 value=rel)

    def earlier_list(name):
        v = voice_or_error(name) if name else None
        return gr.Dropdown(choices=spoken_choices(v) if v else [], value=None)

    def on_earlier(name, rel):
        return spoken_view(voice_or_error(name), rel) if name else (None, "")

    def on_export(name, r):
        p = export(voice_or_error(name), r)
        models, _, _ = lists(name)
        return f"exported `{p.name}`", models

    def on_ref(name, rel):
        return reference_text(voice_or_error(name), rel) if name else ""

    def on_upload_ref(name, upload, rel):
        return upload_ref_text(voice_or_error(name) if name else None, upload, rel)

    go.click(friendly(on_go, 4), [voice_dd, model, text, lang, ref_slice, ref_upload, ref_text,
                               top_k, top_p, temp, rep, speed, seed],
             [audio, file, info, earlier])
    earlier_box.expand(quiet(earlier_list, 1), [voice_dd], [earlier])
    voice_dd.change(quiet(earlier_list, 1), [voice_dd], [earlier])
    earlier.change(quiet(on_earlier, 2), [voice_dd, earlier], [earlier_audio, earlier_md])
    def on_check(name, m, progress=gr.Progress()):
        _cancel.clear()
        return check_quality(voice_or_error(name), m, bridge(progress, "checking", _cancel))

    check_btn.click(friendly(on_check, 1), [voice_dd, model], [check_md])
    check_cancel.click(_cancel.set, None, [check_md])
    export_btn.click(friendly(on_export, 2), [voice_dd, run], [export_md, model])
    refresh.click(friendly(lists, 3), [voice_dd, model, ref_slice, run], [model, ref_slice, run])
    ref_slice.change(quiet(on_ref, 1), [voice_dd, ref_slice], [ref_text])
    ref_upload.change(quiet(on_upload_ref, 1), [voice_dd, ref_upload, ref_slice], [ref_text])
    voice_dd.change(quiet(lists, 3), [voice_dd], [model, ref_slice, run])
    if tab is not None:  # runs and slices are made in other tabs: list them on entry
        tab.select(quiet(lists, 3), [voice_dd, model, ref_slice, run], [model, ref_slice, run])
