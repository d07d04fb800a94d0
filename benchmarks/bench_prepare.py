"""Benchmark: prepare + slice + features on the long noisy takes, as times real time.

    python benchmarks/bench_prepare.py [--quick] [--fixtures DIR] [--out benchmarks/results]

Runs the real pipeline (voicelab.audio.pipeline) in a temporary VOICELAB_HOME on
../shared/fixtures/speech/long/*.flac (about 77 s each, 44.1 kHz stereo, background noise and
mains hum) and reports, per stage and for the whole chain, seconds of input audio processed per
wall-clock second. CPU seconds are reported too: on a shared machine the wall clock also counts
time spent waiting for other people's processes, the CPU time does not.

It also records the two measurements behind the defaults: the denoiser's effect on speech and
on the pauses for several strengths, and the slicer's boundary errors against the true sentence
times. Results: benchmarks/results/prepare.json and prepare.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.audio import clean as C  # noqa: E402
from voicelab.audio.io import load_audio  # noqa: E402
from voicelab.config import load_config  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.eval.metrics import take_speech_intervals as speech_intervals  # noqa: E402
from voicelab.fileio import write_json_atomic, write_text_atomic  # noqa: E402


def machine() -> dict:
    import torch

    return machine_info() | {"device": "cuda" if torch.cuda.is_available() else "cpu"}


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_chain(takes: list[Path], cfg) -> dict:
    from voicelab.audio.pipeline import extract_features, prepare_files, slice_voice
    from voicelab.workspace import get_voice

    audio_s = sum(sf.info(str(p)).duration for p in takes)
    with tempfile.TemporaryDirectory() as home:
        os.environ["VOICELAB_HOME"] = home
        voice = get_voice("bench")
        res, w1, c1 = timed(lambda: prepare_files(voice, takes, cfg))
        bad = [r.error for r in res if not r.ok]
        if bad:
            raise SystemExit(f"prepare failed: {bad}")
        entries, w2, c2 = timed(lambda: slice_voice(voice, cfg))
        feats, w3, c3 = timed(lambda: extract_features(voice, cfg, device="cpu"))
        _, w4, _ = timed(lambda: extract_features(voice, cfg, device="cpu"))
    stages = {
        "prepare": (w1, c1),
        "slice": (w2, c2),
        "features": (w3, c3),
    }
    wall = w1 + w2 + w3
    cpu = c1 + c2 + c3
    return {
        "audio_seconds": round(audio_s, 2),
        "slices": len(entries),
        "stages": {
            k: {"wall_s": round(w, 3), "cpu_s": round(c, 3), "x_realtime_wall": round(audio_s / w, 1),
                "x_realtime_cpu": round(audio_s / max(c, 1e-9), 1)}  # fmt: skip
            for k, (w, c) in stages.items()
        },
        "chain_wall_s": round(wall, 3),
        "chain_cpu_s": round(cpu, 3),
        "x_realtime_wall": round(audio_s / wall, 1),
        "x_realtime_cpu": round(audio_s / cpu, 1),
        "features_second_run_wall_s": round(w4, 3),
        "features_second_run_computed": 0 if feats.total else None,
    }


def denoise_table(takes: list[Path], strengths=(0.5, 0.8, 1.0)) -> list[dict]:
    """Speech-band (300-3400 Hz) level change during true speech, and level change in the
    pauses, for each strength (negative dB = quieter after denoising)."""
    from scipy.signal import butter, sosfilt

    band = butter(4, [300, 3400], btype="bandpass", fs=32000, output="sos")
    rows = []
    for take in takes:
        x, _ = load_audio(take, target_sr=32000)
        x = C.highpass(x, 32000, 60.0)
        speech = np.zeros(len(x), bool)
        for a, b in speech_intervals(take):
            speech[int(a * 32000) : int(b * 32000)] = True
        gaps = np.ones(len(x), bool)
        for t in json.loads(take.with_suffix(".json").read_text()):
            gaps[int((t["start"] - 0.1) * 32000) : int((t["end"] + 0.1) * 32000)] = False
        bx = sosfilt(band, x)
        for s in strengths:
            y = C.denoise(x, 32000, s)
            by = sosfilt(band, y)
            rows.append({
                "take": take.stem,
                "strength": s,
                "speech_db": round(float(10 * np.log10(np.mean(by[speech] ** 2) / np.mean(bx[speech] ** 2))), 2),
                "pauses_db": round(float(10 * np.log10(np.mean(y[gaps] ** 2) / np.mean(x[gaps] ** 2))), 2),
            })  # fmt: skip
    return rows


def slicer_errors(takes: list[Path], cfg) -> list[dict]:
    """Per take: slices, sentences cut inside their speech, silence kept around the speech (ms)."""
    from voicelab.audio.slicer import slice_intervals

    rows = []
    for take in takes:
        audio, sr = load_audio(take, mono=False)
        x = C.clean_audio(audio, sr, cfg.audio).audio
        iv = slice_intervals(x, 32000, cfg.slice)
        truth = speech_intervals(take)
        cuts = {a for a, _ in iv} | {b for _, b in iv}
        cut_inside = sum(any(s * 32000 < c < e * 32000 for c in cuts) for s, e in truth)
        before, after = [], []
        for a, b in iv:
            inside = [(s, e) for s, e in truth if a <= s * 32000 and e * 32000 <= b]
            if inside:
                before.append(1000 * (inside[0][0] - a / 32000))
                after.append(1000 * (b / 32000 - inside[-1][1]))
        rows.append({
            "take": take.stem, "slices": len(iv), "sentences": len(truth),
            "sentences_cut_inside_speech": int(cut_inside),
            "silence_before_ms_mean": round(float(np.mean(before)), 1),
            "silence_before_ms_max": round(float(np.max(before)), 1),
            "silence_after_ms_mean": round(float(np.mean(after)), 1),
            "silence_after_ms_max": round(float(np.max(after)), 1),
        })  # fmt: skip
    return rows


def markdown(r: dict) -> str:
    m, c = r["machine"], r["chain"]
    lines = [
        "# prepare + slice + features benchmark",
        "",
        f"{m['date']}; {m['cpu']}, {m['cores']} usable cores, load average "
        f"{m['load_average_1m']:.1f} at start; torch {m['torch']} on {m['device']}.",
        "",
        f"**Whole chain: {c['x_realtime_wall']}x real time by the wall clock, "
        f"{c['x_realtime_cpu']}x by CPU time** ({c['audio_seconds']} s of audio, "
        f"{c['slices']} slices).",
        "",
        "| stage | wall s | CPU s | x real time (wall) | x real time (CPU) |",
        "|---|---|---|---|---|",
    ]
    for k, s in c["stages"].items():
        lines.append(f"| {k} | {s['wall_s']} | {s['cpu_s']} | {s['x_realtime_wall']} | {s['x_realtime_cpu']} |")
    lines.append(f"| **chain** | {c['chain_wall_s']} | {c['chain_cpu_s']} | {c['x_realtime_wall']} | "
                 f"{c['x_realtime_cpu']} |")  # fmt: skip
    lines += [
        "",
        f"Features again with nothing changed: {c['features_second_run_wall_s']} s (all cached).",
        "",
        "## Denoise strength (noisereduce, noise profile from the quietest 10% of frames)",
        "",
        "Level change after denoising: speech band 300-3400 Hz during the true speech, and the "
        "whole band in the pauses.",
        "",
        "| take | strength | speech dB | pauses dB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {d['take']} | {d['strength']} | {d['speech_db']:+.2f} | {d['pauses_db']:+.2f} |"
              for d in r["denoise"]]  # fmt: skip
    lines += [
        "",
        "## Slicer against the true sentence times",
        "",
        "| take | slices | sentences | cut inside speech | silence kept before (mean / max ms) | "
        "after (mean / max ms) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['take']} | {s['slices']} | {s['sentences']} | {s['sentences_cut_inside_speech']} | "
        f"{s['silence_before_ms_mean']:.0f} / {s['silence_before_ms_max']:.0f} | "
        f"{s['silence_after_ms_mean']:.0f} / {s['silence_after_ms_max']:.0f} |"
        for s in r["slicer"]
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one take, chain only")
    ap.add_argument("--fixtures", type=Path, default=Path(
        os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures")))  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    takes = sorted((args.fixtures / "speech" / "long").glob("*.flac"))
    if not takes:
        print(f"no long takes under {args.fixtures}/speech/long", file=sys.stderr)
        return 1
    if args.quick:
        takes = takes[:1]
    cfg = load_config("small", ["train.device=cpu"])
    result = {"machine": machine(), "settings": {"denoise_strength": cfg.audio.denoise_strength}}
    run_chain(takes[:1], cfg)  # warm-up: imports, mel filters, first-call allocations
    result["chain"] = run_chain(takes, cfg)
    if not args.quick:
        result["denoise"] = denoise_table(takes)
        result["slicer"] = slicer_errors(takes, cfg)
    name = "prepare_quick" if args.quick else "prepare"
    write_json_atomic(args.out / f"{name}.json", result)
    if not args.quick:
        write_text_atomic(args.out / f"{name}.md", markdown(result))
    c = result["chain"]
    print(f"prepare+slice+features: {c['x_realtime_wall']}x real time (wall), "
          f"{c['x_realtime_cpu']}x (CPU) on {c['audio_seconds']} s of audio")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
