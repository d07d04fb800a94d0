"""WORLD acoustics: what the analysis -> synthesis round trip costs in pocketsphinx WER, and speed.

    python benchmarks/bench_world.py [--quick] [--clips 20] [--option-clips 8] [--fixtures DIR]

For the first --clips clips of each fixture voice (16 kHz studio clips, speech/<voice>/NNN.wav
against metadata.list) it scores with pocketsphinx:
- the original recording;
- the plain round trip synthesize(analyze(wav)) at the reference setting, and the round trip of
  features smoothed in time by a centred moving average over 3 or 5 frames (30-50 ms), which is
  what a regression model's over-smoothed output looks like (vuv then becomes a probability,
  thresholded at 0.5 by synthesize), with and without the mel-cepstral postfilter;
- alternatives (harvest F0, 60-dim envelope, 5 aperiodicity bands, 24 kHz) on fewer clips.
Speed: analyze and synthesize on one core (pyworld is single-threaded), as x real time, for each
sample rate and F0 method.
Writes benchmarks/results/world.json and world.md (corpus WER = all word errors / all
reference words).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.audio import world  # noqa: E402
from voicelab.audio.io import load_audio  # noqa: E402
from voicelab.config import WorldConfig  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.fileio import write_json_atomic, write_text_atomic  # noqa: E402
from voicelab.listfile import read_list  # noqa: E402
from voicelab.text import asr  # noqa: E402
from voicelab.text.asr import word_errors  # noqa: E402

VOICES = ("flite_slt", "flite_rms", "pico_en-US")
OUT = REPO / "benchmarks" / "results"

# The reference setting every row starts from (it is not read from WorldConfig's defaults, so a
# row's name keeps its meaning when the defaults change): 16 kHz, dio + stonemask, F0 60-600 Hz,
# 40-dim coded envelope, WORLD's band aperiodicity, no postfilter.
REFERENCE = dict(sample_rate=16000, frame_period_ms=10.0, f0_method="dio", f0_floor=60.0,
                 f0_ceil=600.0, n_mgc=40, n_bap=0, vuv_threshold=0.5, postfilter=1.0)
# name -> (overrides of REFERENCE, smoothing frames). MAIN rows run on --clips clips per voice;
# OPTION rows (alternatives that cost speed or dimensions) on the first --option-clips of them,
# next to the original and the reference round trip on the same clips.
MAIN: dict[str, tuple[dict, int]] = {
    "reference": ({}, 1),
    "reference, smoothed 3": ({}, 3),
    "reference, smoothed 5": ({}, 5),
    "postfilter 1.2, smoothed 5": ({"postfilter": 1.2}, 5),
    "smoothed 5 except c0": ({}, -5),  # negative: every column but mgc[0] (frame energy)
}
OPTIONS: dict[str, tuple[dict, int]] = {
    "harvest F0": ({"f0_method": "harvest"}, 1),
    "mgc 60": ({"n_mgc": 60}, 1),
    "bap 5 mel bands": ({"n_bap": 5}, 1),
    "24 kHz": ({"sample_rate": 24000}, 1),
}


def smooth(arr: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average over k frames of every column of [N, D] (edges repeated)."""
    if k <= 1:
        return arr
    p = np.pad(arr.astype(np.float64), ((k // 2, k // 2), (0, 0)), mode="edge")
    c = np.cumsum(np.pad(p, ((1, 0), (0, 0))), axis=0)
    return ((c[k:] - c[:-k]) / k).astype(np.float32)


def load_clips(speech: Path, n: int) -> list[tuple[str, str, np.ndarray, int]]:
    clips = []
    for voice in VOICES:
        for e in read_list(speech / voice / "metadata.list")[:n]:
            audio, sr = load_audio(e.path)
            clips.append((voice, e.text, audio, sr))
    return clips


def recognize(audio: np.ndarray, sr: int) -> str:
    """asr.recognize from the model's initial cepstral mean: pocketsphinx carries the mean from
    one utterance to the next, so results would otherwise depend on what was recognised before
    (a few words in 222 on the fixtures)."""
    d = asr._decoder()
    d.set_cmn(d.config["cmninit"])
    return asr.recognize(audio, sr)


def per_clip(clips, make) -> list[tuple[int, int]]:
    """(word errors, reference words) of each clip's make(audio, sr) -> (audio', sr')."""
    out = []
    for _, text, audio, sr in clips:
        y, r = make(audio, sr)
        out.append(word_errors(text, recognize(y, r)))
    return out


def summarize(clips, counts: list[tuple[int, int]]) -> dict:
    """WER per voice and overall (all errors / all reference words) of the first len(counts)
    clips' counts."""
    per: dict[str, list[int]] = {v: [0, 0] for v in VOICES}
    for (voice, *_), (e, w) in zip(clips, counts, strict=False):
        per[voice][0] += e
        per[voice][1] += w
    e_all = sum(e for e, _ in per.values())
    w_all = sum(w for _, w in per.values())
    out = {v: round(e / w, 4) for v, (e, w) in per.items() if w}
    out["all"] = round(e_all / max(w_all, 1), 4)
    out["words"] = w_all
    return out


def round_trip(cfg: WorldConfig, k: int):
    """analyze -> smooth over |k| frames (k < 0: all but column 0, the frame energy c0) ->
    synthesize."""

    def make(audio: np.ndarray, sr: int):
        arr = world.analyze(audio, sr, cfg).to_array()
        if k < 0:
            arr[:, 1:] = smooth(arr[:, 1:], -k)
        else:
            arr = smooth(arr, k)
        return world.synthesize(world.WorldFeatures.from_array(arr, cfg), cfg), cfg.sample_rate

    return make


def speed(clips, cfg: WorldConfig) -> dict:
    """x real time of analyze and synthesize over the clips (one core), best of 2 passes."""
    audio_s = sum(len(a) / sr for _, _, a, sr in clips)
    best_a = best_s = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        feats = [world.analyze(a, sr, cfg) for _, _, a, sr in clips]
        t1 = time.perf_counter()
        for f in feats:
            world.synthesize(f, cfg)
        t2 = time.perf_counter()
        best_a, best_s = min(best_a, t1 - t0), min(best_s, t2 - t1)
    return {"analyze_x_real_time": round(audio_s / best_a, 1),
            "synthesize_x_real_time": round(audio_s / best_s, 1),
            "synthesize_rtf": round(best_s / audio_s, 4), "audio_s": round(audio_s, 1)}


def subset(clips, n: int) -> list[int]:
    """Indices of the first n clips of each voice."""
    seen: dict[str, int] = {}
    idx = []
    for i, (voice, *_) in enumerate(clips):
        seen[voice] = seen.get(voice, 0) + 1
        if seen[voice] <= n:
            idx.append(i)
    return idx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 clips per voice, fewer rows")
    ap.add_argument("--clips", type=int, default=20, help="clips per voice for the main rows")
    ap.add_argument("--option-clips", type=int, default=8, help="clips per voice for the option rows")
    ap.add_argument("--fixtures", default=os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))
    args = ap.parse_args()
    stem = "world_quick" if args.quick else "world"
    speech = Path(args.fixtures) / "speech"
    if not speech.is_dir():
        print(f"no speech fixtures at {speech}: pass --fixtures DIR", file=sys.stderr)
        return 1
    n_main, n_opt = (3, 2) if args.quick else (args.clips, min(args.option_clips, args.clips))
    main_rows = dict(list(MAIN.items())[:2]) if args.quick else MAIN
    opt_rows = dict(list(OPTIONS.items())[1:2]) if args.quick else OPTIONS
    clips = load_clips(speech, n_main)
    sub = subset(clips, n_opt)
    sub_clips = [clips[i] for i in sub]
    t = time.perf_counter()
    counts = {"original recording": per_clip(clips, lambda a, sr: (a, sr))}
    for name, (over, k) in main_rows.items():
        counts[name] = per_clip(clips, round_trip(WorldConfig(**(REFERENCE | over)), k))
        print(f"{name}: {summarize(clips, counts[name])} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    rows = [{"setting": name, "overrides": (MAIN | {"original recording": ({}, 0)})[name][0],
             "smoothing_frames": (MAIN | {"original recording": ({}, 0)})[name][1],
             "wer": summarize(clips, c), "per_clip": c} for name, c in counts.items()]
    options = [{"setting": name, "overrides": {}, "smoothing_frames": k,
                "wer": summarize(sub_clips, [counts[name][i] for i in sub])}
               for name, k in (("original recording", 0), ("reference", 1))]
    for name, (over, k) in opt_rows.items():
        c = per_clip(sub_clips, round_trip(WorldConfig(**(REFERENCE | over)), k))
        options.append({"setting": name, "overrides": over, "smoothing_frames": k, "wer": summarize(sub_clips, c)})
        print(f"{name}: {options[-1]['wer']} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    speeds = []
    speed_clips = [clips[i] for i in subset(clips, 2 if args.quick else 4)]
    for over in ({}, {"sample_rate": 22050}, {"sample_rate": 24000}, {"f0_method": "harvest"}):
        cfg = WorldConfig(**(REFERENCE | over))
        s = speed(speed_clips, cfg) | {"sample_rate": cfg.sample_rate, "f0_method": cfg.f0_method}
        speeds.append(s)
        print(f"speed {over or 'reference'}: {s}", file=sys.stderr)
    result = {"benchmark": "world", "quick": args.quick, "machine": machine_info() | {"device": "cpu"},
              "asr_cmn_reset": True, "clips_per_voice": n_main, "option_clips_per_voice": n_opt, "reference": REFERENCE,
              "chosen_config": dataclasses.asdict(WorldConfig()), "rows": rows,
              "options": options, "speed": speeds}
    OUT.mkdir(parents=True, exist_ok=True)
    write_json_atomic(OUT / f"{stem}.json", result)
    write_text_atomic(OUT / f"{stem}.md", to_markdown(result))
    print(f"wrote {OUT / (stem + '.json')} and {OUT / (stem + '.md')}", file=sys.stderr)
    return 0


def _table(rows: list[dict]) -> list[str]:
    md = ["| setting | smoothing | " + " | ".join(VOICES) + " | all | vs original |",
          "|---|---|" + "---|" * (len(VOICES) + 2)]
    orig = rows[0]["wer"]["all"]
    for r in rows:
        w = r["wer"]
        k = abs(r["smoothing_frames"])
        sm = f"{k} frames" if k > 1 else "-"
        md.append(f"| {r['setting']} | {sm} | " + " | ".join(f"{w.get(v, 0):.1%}" for v in VOICES)
                  + f" | {w['all']:.1%} | {100 * (w['all'] - orig):+.1f} pt |")
    return md


def to_markdown(result: dict) -> str:
    m = result["machine"]
    words, opt_words = result["rows"][0]["wer"]["words"], result["options"][0]["wer"]["words"]
    md = [
        "# WORLD acoustics: round-trip pocketsphinx WER and speed", "",
        f"{m['date']} · {m['cpu']} ({m['cores']} cores) · "
        f"{'quick' if result['quick'] else 'full'} run · fixture voices (16 kHz studio clips)", "",
        "Reference setting: " + ", ".join(f"{k}={v}" for k, v in result["reference"].items()) + ".",
        "Chosen defaults (WorldConfig): " + ", ".join(f"{k}={v}" for k, v in result["chosen_config"].items()) + ".",
        "", f"## Round trip, {result['clips_per_voice']} clips per voice ({words} words: one word = "
        f"{100 / max(words, 1):.2f} points)", "",
        *_table(result["rows"]),
        "", f"## Alternatives, first {result['option_clips_per_voice']} clips per voice ({opt_words} "
        f"words: one word = {100 / max(opt_words, 1):.2f} points), no smoothing", "",
        *_table(result["options"]),
        "", "## Speed (one core)", "",
        "| sample rate | F0 | analyze x real time | synthesize x real time | synthesis RTF |",
        "|---|---|---|---|---|",
    ]
    for s in result["speed"]:
        md.append(f"| {s['sample_rate']} | {s['f0_method']} | {s['analyze_x_real_time']} | "
                  f"{s['synthesize_x_real_time']} | {s['synthesize_rtf']} |")
    md += ["", "Smoothing = a centred moving average over that many 10 ms frames of every feature "
           "(vuv becomes a probability, thresholded at 0.5), mimicking a regression model's output. "
           "Speed: best of two passes over a dozen clips on one core (pyworld is single-threaded, so "
           "2 cores analyse two clips at once); the machine is shared, so speeds are lower bounds. "
           "WER on normalised words (voicelab.text.asr). "
           + ("Every utterance is recognised from pocketsphinx's initial cepstral mean."
              if result.get("asr_cmn_reset") else
              "Measured before the bench reset pocketsphinx's cepstral mean per utterance: a result "
              "then depends on what was recognised before; on the first 8 clips per voice with the "
              "reset, the reference round trip is 21.6% vs 10.8% (+10.8 pt, not +8.1).")]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
