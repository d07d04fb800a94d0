"""Synthesis speed: real-time factor (RTF) of `Synthesizer.synthesize` per preset and device.

    python benchmarks/bench_synth.py [--quick] [--presets tiny,small] [--repeat 3] [--device cpu]
                                     [--threads 1,2]

RTF = wall time of one synthesize() call / seconds of audio it returns (below 1 is faster than
real time). The models are untrained (speed does not depend on the weights), so that every
sentence has a realistic length the GPT's EOS logit is pinned to -inf and generation always
runs to the token cap, set to `--tokens-per-phone` (default 2.0 tokens = 80 ms per phoneme
symbol, about the pace of read English: our phoneme strings include stress marks and word
spaces). The reference clip is tests/assets/slt_000.wav with its text (so a prompt is used, as in
normal use); one warm-up call first (imports, caches, the reference encoding), then `--repeat`
timed calls with different seeds. The GPT / SoVITS split of the time is measured by wrapping
`gpt.generate` and `sovits.infer`. On CUDA the time includes torch.cuda.synchronize().

Writes benchmarks/results/synth.json and synth.md (machine, load average, date, per preset).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.config import load_config  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.models.build import build_gpt, build_sovits  # noqa: E402
from voicelab.synth import Synthesizer, resolve_device  # noqa: E402

OUT = REPO / "benchmarks" / "results"
STEM = "synth"  # "synth_quick" after --quick: a quick run never replaces full results
REF = REPO / "tests" / "assets" / "slt_000.wav"
REF_TEXT = "The morning train left the station a few minutes early."
TEXT = (
    "The quick brown fox jumps over the lazy dog near the riverbank. "
    "Every morning she walks to the little bakery on the corner and buys fresh bread."
)
TARGETS = {"small": ("cpu", 0.5), "base": ("cuda", 0.02)}  # issue 4: RTF targets


def machine(device: torch.device) -> dict:
    return machine_info() | {"device": str(device)}


def _timed(fn, bucket: list[float], device: torch.device):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        bucket.append(time.perf_counter() - t)
        return out

    return wrapper


def bench_preset(
    preset: str, device: torch.device, repeat: int, tokens_per_phone: float, threads: int
) -> dict:
    cfg = load_config(preset, [f"synth.max_tokens_per_phone={tokens_per_phone}",
                               f"synth.cpu_threads={threads}"])  # fmt: skip
    logging.getLogger("voicelab.synth").setLevel(logging.ERROR)  # the cap warning is intended here
    torch.manual_seed(0)
    sovits, gpt = build_sovits(cfg), build_gpt(cfg)
    if not sovits.quantizer.initialised:
        # k-means init normally happens in the first training step; one train-mode pass over
        # random content vectors stands in for it (the codes' values do not affect speed)
        frames = 4 * cfg.model.codebook_size
        sovits.quantizer.train()
        with torch.no_grad():
            for _ in range(50):  # quantizer dropout may skip the later codebooks on one pass
                sovits.quantizer(torch.randn(1, cfg.model.hidden, frames), torch.tensor([frames]))
                if sovits.quantizer.initialised:
                    break
    with torch.no_grad():
        gpt.head.bias[gpt.eos_id] = float("-inf")  # untrained: run every sentence to the cap
    synth = Synthesizer(cfg, sovits, gpt, device=device)
    gpt_t: list[float] = []
    sov_t: list[float] = []
    synth.gpt.generate = _timed(synth.gpt.generate, gpt_t, device)
    synth.sovits.infer = _timed(synth.sovits.infer, sov_t, device)
    synth.synthesize(TEXT, "en", REF, REF_TEXT, seed=0)  # warm-up
    runs = []
    for i in range(repeat):
        gpt_t.clear()
        sov_t.clear()
        cpu0 = time.process_time()
        r = synth.synthesize(TEXT, "en", REF, REF_TEXT, seed=i + 1)
        cpu_s = time.process_time() - cpu0
        runs.append({
            "gen_s": r.gen_s, "audio_s": r.duration_s, "rtf": r.rtf, "first_audio_s": r.first_audio_s,
            "cpu_s": cpu_s, "cpu_rtf": cpu_s / r.duration_s,
            "gpt_s": sum(gpt_t), "sovits_s": sum(sov_t),
            "tokens": sum(s.n_tokens for s in r.sentences),
        })  # fmt: skip
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    params = {
        "gpt": sum(p.numel() for p in gpt.parameters()),
        "sovits": sum(p.numel() for p in sovits.parameters()),
    }
    return {"preset": preset, "device": str(device), "threads": threads,
            "repeat": repeat, "median": med, "runs": runs, "parameters": params}  # fmt: skip


def write(results: list[dict], meta: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{STEM}.json").write_text(json.dumps({"machine": meta, "results": results}, indent=2) + "\n")
    lines = [
        "# Synthesis speed (`python benchmarks/bench_synth.py`)",
        "",
        f"{meta['date']}: {meta['cpu']}, {meta['cores']} cores, torch {meta['torch']} "
        f"({meta['torch_threads']} threads), load average {meta['load_average_1m']:.1f} at the start"
        + (f", GPU {meta['gpu']}" if meta.get("gpu") else ""),
        "",
        "Untrained weights, EOS disabled so every sentence runs to the token cap "
        f"({meta['tokens_per_phone']} tokens per phoneme symbol); median of the timed calls; "
        "2 sentences, reference with text (prompted).",
        "",
        "RTF = wall time / audio seconds on this machine as it was (shared, see the load "
        "average); CPU RTF = process CPU seconds (all threads) / audio seconds, which is what one "
        "otherwise idle core would take.",
        "",
        "| preset | device | threads | audio s | wall s | RTF | CPU RTF | first audio s | GPT s | SoVITS s | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        m = r["median"]
        tgt = TARGETS.get(r["preset"])
        target = ""
        if tgt and r["device"].startswith(tgt[0]):
            target = f"RTF <= {tgt[1]}: {'met' if m['rtf'] <= tgt[1] else 'NOT met'}"
        lines.append(
            f"| {r['preset']} | {r['device']} | {r['threads']} | {m['audio_s']:.2f} | {m['gen_s']:.2f} | "
            f"{m['rtf']:.3f} | {m['cpu_rtf']:.3f} | {m['first_audio_s']:.2f} | {m['gpt_s']:.2f} | "
            f"{m['sovits_s']:.2f} | {target} |"
        )
    (OUT / f"{STEM}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,small")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tokens-per-phone", type=float, default=2.0)
    ap.add_argument("--threads", default="",
                    help="comma list of synth.cpu_threads values to try (default: the preset's)")
    ap.add_argument("--quick", action="store_true", help="one timed call per preset")
    args = ap.parse_args(argv)
    global STEM
    STEM = "synth_quick" if args.quick else "synth"
    default_threads = load_config("tiny").synth.cpu_threads
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()] or [default_threads]
    device = resolve_device(args.device)
    repeat = 1 if args.quick else args.repeat
    meta = machine(device) | {"tokens_per_phone": args.tokens_per_phone}
    results = []
    for preset, threads in [(p, t) for p in args.presets.split(",") for t in thread_counts]:
        r = bench_preset(preset.strip(), device, repeat, args.tokens_per_phone, threads)
        m = r["median"]
        print(f"{preset:6s} {device} x{threads}: {m['audio_s']:.2f} s audio in {m['gen_s']:.2f} s, RTF "
              f"{m['rtf']:.3f}, CPU RTF {m['cpu_rtf']:.3f} (GPT {m['gpt_s']:.2f} s, SoVITS "
              f"{m['sovits_s']:.2f} s)", flush=True)  # fmt: skip
        results.append(r)
    write(results, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
