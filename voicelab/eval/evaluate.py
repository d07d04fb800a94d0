"""One evaluation run: synthesise held-out sentences with a voice and score them.

    items = load_sentences(path_or_None)                  # text (+ a real recording, if any)
    target = load_clips(read_list(voice.dataset_list))    # the voice's own clips
    result = evaluate(synth_fn, items, target, others)    # EvalResult (per sentence + summary)

The scores are the typed results of eval/results.py (`ItemScore`, `EvalResult`), which the
report (eval/report.py) reads without importing this module.

`synth_fn(text, lang) -> SynthResult-like` (.sample_rate, .waveform [T], .gen_s, .first_audio_s)
is usually `Synthesizer.synthesize` with a fixed reference and seed; tests pass fakes.

Scores, per sentence and averaged:
- WER of pocketsphinx on the synthesised audio, beside its WER on the real recording of the same
  sentence where there is one (the real voice is the baseline: pocketsphinx itself is weak);
- speaker similarity (resemblyzer cosine) of the synthesised audio to the target voice (the mean
  of its clips' embeddings) and to every other voice; the target's own held-out recordings give
  the ceiling;
- MCD with DTW and F0 RMSE against the real recording of the same sentence;
- real-time factor and time to first audio.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicelab.audio import dvector
from voicelab.audio.io import load_audio, write_wav
from voicelab.errors import VoicelabError
from voicelab.eval import metrics
from voicelab.eval.machine import machine_info
from voicelab.eval.report import write_report
from voicelab.eval.results import EvalResult, ItemScore
from voicelab.listfile import Entry, read_list
from voicelab.workspace import get_voice, list_voices

log = logging.getLogger(__name__)

DEFAULT_SENTENCES = Path(__file__).resolve().parent / "sentences_en.txt"
WER_GAP_LIMIT = 0.15  # issue 9's acceptance: synthesised WER at most 15 points above the real
Clip = tuple[np.ndarray, int]  # (audio [T] float32, sample rate)
SynthFn = Callable[[str, str], Any]


@dataclass(frozen=True)
class EvalItem:
    text: str
    lang: str = "en"
    real: Path | None = None  # the target voice reading this sentence, if recorded


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def norm_text(text: str) -> str:
    """Lower-case words only: how sentences are compared for 'seen in training'."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def load_sentences(path: Path | str | None = None) -> list[EvalItem]:
    """Sentences to evaluate.

    - a GPT-SoVITS .list (`path|speaker|lang|text`): the audio are real recordings of the sentence
      by the target voice (missing files just mean "no recording");
    - any other text file: one sentence per line, optionally `lang|text`; '#' starts a comment;
    - None: the built-in held-out English sentences.
    """
    path = Path(path) if path else DEFAULT_SENTENCES
    if not path.is_file():
        raise VoicelabError(f"{path} does not exist: give a .list or a text file, one sentence a line")
    if path.suffix == ".list":
        items = [EvalItem(e.text, e.lang if e.lang != "auto" else "en",
                          e.path if Path(e.path).is_file() else None)  # fmt: skip
                 for e in read_list(path) if e.text.strip()]  # fmt: skip
    else:
        items = []
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            lang, _, text = line.partition("|") if "|" in line else ("en", "", line)
            lang = lang.strip().lower() or "en"
            if lang not in ("en", "zh"):
                raise VoicelabError(f"{path}: language {lang!r} in {line[:60]!r}: use en or zh")
            items.append(EvalItem(text.strip(), lang))
    if not items:
        raise VoicelabError(f"{path} holds no sentences: write one sentence per line")
    return items


def load_clips(entries: Sequence[Entry | Path], limit: int = 8, min_s: float = 1.0) -> list[Clip]:
    """Up to `limit` clips of at least `min_s` seconds (spread over the list, not just the first)."""
    paths = [Path(e.path if isinstance(e, Entry) else e) for e in entries]
    paths = [p for p in paths if p.is_file()]
    if len(paths) > limit:  # evenly spaced picks: the first slices are often one sitting
        paths = [paths[round(i)] for i in np.linspace(0, len(paths) - 1, limit * 2)]
        paths = list(dict.fromkeys(paths))
    clips = []
    for p in paths:
        audio, sr = load_audio(p)
        if len(audio) >= min_s * sr:
            clips.append((audio, sr))
        if len(clips) >= limit:
            break
    return clips


def group_by_speaker(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(e.speaker, []).append(e)
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _safe(fn: Callable[[], Any], what: str, warnings: list[str]) -> Any:
    """Run one metric; a clip it cannot score (too short, silent) becomes a warning, not a crash."""
    try:
        return fn()
    except VoicelabError as e:
        warnings.append(f"{what}: {e}")
        return None


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def evaluate(
    synth_fn: SynthFn,
    items: Sequence[EvalItem],
    target: Sequence[Clip],
    others: dict[str, Sequence[Clip]] | None = None,
    training_texts: Sequence[str] = (),
    save_audio: Callable[[int, np.ndarray, int], str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> EvalResult:
    """Synthesise every item, score it, and summarise.

    target: clips of the voice being cloned (its centroid d-vector is "the voice"); others:
    other voices by name, each a few clips. Sentences whose words appear in `training_texts`
    are not held out: they are skipped and listed in `excluded`. `save_audio(i, wav, sr)` may
    store the synthesised audio and return its file name.
    """
    if not target:
        raise VoicelabError("no clips of the target voice to compare with: slice the voice first "
                            "(python -m voicelab slice --voice NAME)")  # fmt: skip
    seen = {norm_text(t) for t in training_texts}
    excluded = [it.text for it in items if norm_text(it.text) in seen]
    todo = [it for it in items if norm_text(it.text) not in seen]
    if not todo:
        raise VoicelabError("every evaluation sentence is in the voice's training data: give "
                            "held-out sentences with --sentences FILE")  # fmt: skip
    target_emb = dvector.speaker_embedding(target)
    others_emb = {name: dvector.speaker_embedding(c) for name, c in (others or {}).items() if c}
    scores: list[ItemScore] = []
    failed: list[str] = []
    for i, it in enumerate(todo):
        if progress:
            progress(i, len(todo), it.text[:40])
        try:
            res = synth_fn(it.text, it.lang)
        except VoicelabError as e:  # one sentence the model cannot say must not sink the run
            failed.append(f"{it.text[:60]}: {e}")
            continue
        wav = np.asarray(res.waveform, dtype=np.float32)
        sr = int(res.sample_rate)
        dur = len(wav) / sr
        s = ItemScore(index=i, text=it.text, lang=it.lang, real=str(it.real) if it.real else None,
                      audio_s=dur, gen_s=float(res.gen_s), first_audio_s=float(res.first_audio_s),
                      rtf=float(res.gen_s) / dur if dur else float("inf"))  # fmt: skip
        s.warnings.extend(getattr(res, "warnings", []) or [])
        if save_audio:
            s.audio_file = save_audio(i, wav, sr)
        if it.lang == "en":  # pocketsphinx ships an English model only
            w = _safe(lambda: metrics.wer(it.text, wav, sr), "WER", s.warnings)
            if w:
                s.wer, s.hypothesis = w.wer, w.hypothesis
        emb = _safe(lambda: dvector.embed(wav, sr), "similarity", s.warnings)
        if emb is not None:
            s.sim_target = dvector.cosine(emb, target_emb)
            s.sim_others = {n: dvector.cosine(emb, e) for n, e in others_emb.items()}
        if it.real is not None:
            ra, rsr = load_audio(it.real)
            if it.lang == "en":
                w = _safe(lambda: metrics.wer(it.text, ra, rsr), "WER (real)", s.warnings)
                if w:
                    s.real_wer, s.real_hypothesis = w.wer, w.hypothesis
            remb = _safe(lambda: dvector.embed(ra, rsr), "similarity (real)", s.warnings)
            if remb is not None:
                s.real_sim_target = dvector.cosine(remb, target_emb)
            m = _safe(lambda: metrics.mcd_dtw(ra, rsr, wav, sr), "MCD", s.warnings)
            if m:
                s.mcd_db = m.mcd_db
            f = _safe(lambda: metrics.f0_rmse(ra, rsr, wav, sr), "F0", s.warnings)
            if f:
                s.f0_rmse_hz, s.f0_rmse_cents, s.vde = f.rmse_hz, f.rmse_cents, f.vde
        scores.append(s)
    if progress:
        progress(len(todo), len(todo), "done")
    if not scores:
        raise VoicelabError(f"no sentence could be synthesised (first problem: {failed[0]})")
    summary = summarise(scores, target, target_emb)
    summary["failed"] = failed
    return EvalResult(items=scores, summary=summary, excluded=excluded)


def leave_one_out_ceiling(target: Sequence[Clip]) -> float | None:
    """Mean similarity of each target clip to the centroid of the others (needs >= 3 clips)."""
    if len(target) < 3:
        return None
    embs = dvector.embed_many(target)
    sims = []
    for i in range(len(embs)):
        rest = np.delete(embs, i, axis=0).mean(axis=0)
        sims.append(dvector.cosine(embs[i], rest))
    return float(np.mean(sims))


def summarise(scores: list[ItemScore], target: Sequence[Clip], target_emb: np.ndarray) -> dict:
    """Averages over sentences, plus issue 9's acceptance checks where they can be computed."""
    total_audio = sum(s.audio_s for s in scores)
    total_gen = sum(s.gen_s for s in scores)
    names = sorted({n for s in scores for n in s.sim_others})
    sim_others = {n: _mean([s.sim_others.get(n) for s in scores]) for n in names}
    ceiling = _mean([s.real_sim_target for s in scores])
    ceiling_kind = "held-out real recordings"
    if ceiling is None:
        ceiling, ceiling_kind = leave_one_out_ceiling(target), "leave-one-out over target clips"
    wer_synth = _mean([s.wer for s in scores])
    wer_real = _mean([s.real_wer for s in scores if s.wer is not None])
    paired = [(s.wer, s.real_wer) for s in scores if s.wer is not None and s.real_wer is not None]
    sim_target = _mean([s.sim_target for s in scores])
    best_other = max(sim_others.items(), key=lambda kv: kv[1] or -2, default=(None, None))
    summary = {
        "sentences": len(scores),
        "audio_s": total_audio,
        "wer": wer_synth,
        "real_wer": wer_real,
        "wer_gap": float(np.mean([a - b for a, b in paired])) if paired else None,
        "sim_target": sim_target,
        "sim_others": sim_others,
        "closest_other": best_other[0],
        "sim_ceiling": ceiling,
        "sim_ceiling_kind": ceiling_kind if ceiling is not None else None,
        "mcd_db": _mean([s.mcd_db for s in scores]),
        "f0_rmse_hz": _mean([s.f0_rmse_hz for s in scores]),
        "f0_rmse_cents": _mean([s.f0_rmse_cents for s in scores]),
        "vde": _mean([s.vde for s in scores]),
        "rtf": total_gen / total_audio if total_audio else None,
        "first_audio_s": _mean([s.first_audio_s for s in scores]),
    }
    checks = {}
    if summary["wer_gap"] is not None:
        checks["wer_within_15_points_of_real"] = summary["wer_gap"] <= WER_GAP_LIMIT
    if sim_target is not None and sim_others:
        checks["closer_to_target_than_every_other_voice"] = all(
            v is not None and sim_target > v for v in sim_others.values()
        )
    summary["checks"] = checks
    return summary


# --------------------------------------------------------------------------------------------
# From files: what `python -m voicelab eval` runs
# --------------------------------------------------------------------------------------------


def other_voices(voice_name: str, lists: Sequence[Path | str] = (), limit: int = 4,
                 home: Path | None = None) -> dict[str, list[Clip]]:  # fmt: skip
    """Clips of every other voice: the workspace's other voices (their slices) and the speakers of
    any extra .list files (e.g. a base corpus), `limit` clips each."""
    out: dict[str, list[Clip]] = {}
    for name in list_voices(home):
        if name == voice_name:
            continue
        v = get_voice(name, base=home)
        if v.dataset_list.is_file():
            clips = load_clips(read_list(v.dataset_list), limit)
            if clips:
                out[name] = clips
    for lst in lists:
        for speaker, entries in group_by_speaker(read_list(lst)).items():
            if speaker == voice_name:
                continue
            clips = load_clips(entries, limit)
            if clips:
                out.setdefault(speaker, clips)
    return out


def evaluate_model(
    model: Path | str,
    voice_name: str,
    out_dir: Path | str,
    sentences: Path | str | None = None,
    reference: Path | str | None = None,
    reference_text: str | None = None,
    others: Sequence[Path | str] = (),
    seed: int = 1234,
    device: str = "auto",
    max_sentences: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
):
    """Load the model, synthesise, score, and write the report into `out_dir`.

    Returns (EvalResult, ReportPaths). The reference clip defaults to one 3-10 s slice of the voice.
    """
    import time

    from voicelab.synth import Synthesizer, find_default_reference  # torch: only when synthesising

    model = Path(model)
    if not model.is_file():
        raise VoicelabError(f"{model} does not exist: give an export (.safetensors) or a checkpoint (.pt)")
    voice = get_voice(voice_name, must_exist=True)
    if not voice.dataset_list.is_file():
        raise VoicelabError(f"voice {voice_name!r} has no slices/dataset.list: run "
                            f"`python -m voicelab slice --voice {voice_name}` first")  # fmt: skip
    train_entries = read_list(voice.dataset_list)
    items = load_sentences(sentences)
    if max_sentences > 0:
        items = items[:max_sentences]
    target = load_clips(train_entries, limit=8)
    ref_lang = "en"
    if reference is None:
        # the voice's first 3-10 s slice with a text (searched from the voice folder)
        reference, reference_text, ref_lang = find_default_reference(voice.dataset_list)
    synth = (Synthesizer.from_checkpoint(model, device) if model.suffix == ".pt"
             else Synthesizer.from_bundle(model, device))  # fmt: skip
    # One untimed call first: the first synthesis pays one-off costs (kernels, caches) that
    # would otherwise be charged to the first sentence's time to first audio.
    t0 = time.perf_counter()
    synth.synthesize("Hello.", "en", reference, reference_text, seed=seed, reference_lang=ref_lang)
    warmup_s = time.perf_counter() - t0

    def synth_fn(text: str, lang: str):
        return synth.synthesize(text, lang, reference, reference_text, seed=seed,
                                reference_lang=ref_lang)  # fmt: skip

    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"

    def save(i: int, wav: np.ndarray, sr: int) -> str:
        write_wav(audio_dir / f"{i:03d}.wav", wav, sr)
        return f"audio/{i:03d}.wav"

    result = evaluate(synth_fn, items, target, other_voices(voice_name, others),
                      training_texts=[e.text for e in train_entries], save_audio=save,
                      progress=progress)  # fmt: skip
    result.meta = {"voice": voice_name, "model": model.name, "model_path": str(model.resolve()),
                   "reference": str(reference), "reference_text": reference_text, "seed": seed,
                   "device": str(synth.device), "warmup_s": warmup_s,
                   "sentences_file": str(sentences or DEFAULT_SENTENCES), "machine": machine_info()}  # fmt: skip
    return result, write_report(result, out_dir)
