"""How fast each corpus source makes audio here: synthesis, WORLD pseudo-speaker, cleaning.

    python benchmarks/bench_corpus.py [--quick]

For every installed English source of `python -m voicelab corpus` (flite kal16, festival ked,
RHVoice bdl/clb, the Asterisk prompts), N sentences (10; 3 with --quick) of the built-in pool,
single thread: seconds of work per second of audio (real-time factor) for making the audio,
for a WORLD pseudo-speaker transform of it (F0 x1.2, warp x1.05) and for the cleaning the
builder applies (24 kHz, no denoise). A source that is not installed is listed as such. The
WER of each source is measured by the builder itself (corpus.json); this script is only about
speed, to size a build before starting it.
Writes benchmarks/results/corpus.json and corpus.md (corpus_quick.* after --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.audio.clean import clean_audio  # noqa: E402
from voicelab.audio.io import load_audio  # noqa: E402
from voicelab.config import load_config  # noqa: E402
from voicelab.corpus import build, pseudo, sources, tts  # noqa: E402
from voicelab.errors import VoicelabError  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402

OUT = REPO / "benchmarks" / "results"
VOICES = ("flite:kal16", "festival:ked_diphone", "rhvoice:bdl", "rhvoice:clb")
TRANSFORM = pseudo.WorldTransform(1.2, 1.05)


def make_items(source: str, n: int) -> list[tuple]:
    """[(audio, sr, seconds to make it)] for n clips of one source."""
    if source == "asterisk":
        es = [e for e in sources.read_corpus("asterisk", sources.ASTERISK_ROOT) if len(e.text.split()) >= 5][:n]
        out = []
        for e in es:
            t = time.perf_counter()
            audio, sr = load_audio(e.path)
            out.append((audio, sr, time.perf_counter() - t))
        return out
    voice = tts.parse_voice(source)
    pool, _ = build.load_sentence_pool(None, "en")
    out = []
    for text in pool[100:100 + n]:
        t = time.perf_counter()
        audio, sr = tts.synthesize(voice, text)
        out.append((audio, sr, time.perf_counter() - t))
    return out


def bench(source: str, n: int, cfg) -> dict:
    items = make_items(source, n)
    audio_s = sum(len(a) / sr for a, sr, _ in items)
    make_s = sum(s for *_, s in items)
    t = time.perf_counter()
    for a, sr, _ in items:
        pseudo.transform(a, sr, TRANSFORM)
    world_s = time.perf_counter() - t
    t = time.perf_counter()
    for a, sr, _ in items:
        clean_audio(a, sr, cfg.audio)
    clean_s = time.perf_counter() - t
    return {"clips": len(items), "audio_s": round(audio_s, 1), "sample_rate": items[0][1] if items else None,
            "make_rtf": round(make_s / audio_s, 3), "pseudo_rtf": round(world_s / audio_s, 3),
            "clean_rtf": round(clean_s / audio_s, 3)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 clips per source instead of 10")
    args = ap.parse_args()
    n = 3 if args.quick else 10
    cfg = load_config("small", ["audio.sample_rate=24000", "audio.denoise=false"])
    results: dict[str, dict] = {}
    for source in (*VOICES, "asterisk"):
        try:
            results[source] = bench(source, n, cfg)
        except VoicelabError as e:  # not installed here: say so, keep going
            results[source] = {"missing": str(e)}
        print(source, results[source], flush=True)
    stem = "corpus_quick" if args.quick else "corpus"
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine_info(), "transform": TRANSFORM.to_dict(), "sources": results}
    (OUT / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# Corpus sources: speed ({n} clips each, single thread)", "",
             f"Machine: {data['machine'].get('cpu', '?')}, load average {data['machine'].get('load_average_1m', '?')}.", "",
             "| source | rate | audio s | make RTF | pseudo-speaker RTF | cleaning RTF |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for s, r in results.items():
        if "missing" in r:
            lines.append(f"| {s} | - | - | not installed: {r['missing']} | - | - |")
        else:
            lines.append(f"| {s} | {r['sample_rate']} | {r['audio_s']} | {r['make_rtf']} | "
                         f"{r['pseudo_rtf']} | {r['clean_rtf']} |")  # fmt: skip
    lines += ["", "RTF: seconds of work per second of audio. 'make' is synthesis (the Asterisk "
              "prompts: decoding G.722 with ffmpeg). WER per source: corpus.json of a build."]  # fmt: skip
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")
    ok = any("missing" not in r for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
