"""Word error rate and speed of the offline ASR (pocketsphinx) on the speech fixtures.

    python benchmarks/bench_asr.py [--quick] [--fixtures ../shared/fixtures]

Two conditions per voice:
- clean: the 16 kHz studio clips speech/<voice>/NNN.wav against metadata.list;
- noisy: the sentences of speech/long/<voice>.flac (44.1 kHz stereo, noise ~25 dB below speech,
  50 Hz hum), cut at their true start/end times (+0.2 s margin), as the slicer would give them.
Writes benchmarks/results/asr.json and asr.md (corpus WER = all word errors / all reference
words; real-time factor = recognition seconds / audio seconds, single thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.audio.io import load_audio  # noqa: E402
from voicelab.errors import VoicelabError  # noqa: E402
from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.listfile import read_list  # noqa: E402
from voicelab.text.asr import recognize, word_errors  # noqa: E402

VOICES = ("flite_slt", "flite_rms", "pico_en-US")
OUT = REPO / "benchmarks" / "results"
STEM = "asr"  # "asr_quick" after --quick: a quick run never replaces full results


def machine() -> dict:
    import pocketsphinx

    return machine_info() | {"device": "cpu", "pocketsphinx": getattr(pocketsphinx, "__version__", "5.x")}


def score(items: list[tuple[np.ndarray, int, str]]) -> dict:
    errors = words = 0
    audio_s = asr_s = 0.0
    worst: list[tuple[float, str, str]] = []
    for audio, sr, ref in items:
        t = time.perf_counter()
        hyp = recognize(audio, sr)
        asr_s += time.perf_counter() - t
        audio_s += len(audio) / sr
        e, n = word_errors(ref, hyp)
        errors, words = errors + e, words + n
        worst.append((e / max(n, 1), ref, hyp))
    worst.sort(key=lambda w: -w[0])
    return {
        "utterances": len(items), "ref_words": words, "word_errors": errors,
        "wer": round(errors / max(words, 1), 4), "audio_s": round(audio_s, 1),
        "rtf": round(asr_s / max(audio_s, 1e-9), 3),
        "worst": [{"wer": round(w, 3), "ref": r, "hyp": h} for w, r, h in worst[:2]],
    }  # fmt: skip


def clean_items(speech: Path, voice: str, limit: int) -> list:
    entries = read_list(speech / voice / "metadata.list")[:limit]
    return [(*load_audio(e.path), e.text) for e in entries]


def noisy_items(speech: Path, voice: str, limit: int) -> list:
    audio, sr = load_audio(speech / "long" / f"{voice}.flac", target_sr=16000)
    truth = json.loads((speech / "long" / f"{voice}.json").read_text())[:limit]
    items = []
    for s in truth:
        a = max(0, int((s["start"] - 0.2) * sr))
        b = min(len(audio), int((s["end"] + 0.2) * sr))
        items.append((audio[a:b], sr, s["text"]))
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 clips per voice and condition")
    ap.add_argument("--fixtures", default=os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"))
    args = ap.parse_args()
    global STEM
    STEM = "asr_quick" if args.quick else "asr"
    speech = Path(args.fixtures) / "speech"
    if not speech.is_dir():
        print(f"no speech fixtures at {speech}: pass --fixtures DIR", file=sys.stderr)
        return 1
    limit = 8 if args.quick else 10_000
    rows = []
    total = {"clean": [0, 0], "noisy": [0, 0]}
    for voice in VOICES:
        for cond, get in (("clean", clean_items), ("noisy", noisy_items)):
            try:
                items = get(speech, voice, limit)
            except (OSError, ValueError, VoicelabError) as e:  # a missing voice: reported, not fatal
                print(f"skip {voice}/{cond}: {e}", file=sys.stderr)
                continue
            r = score(items)
            r.update(voice=voice, condition=cond)
            rows.append(r)
            total[cond][0] += r["word_errors"]
            total[cond][1] += r["ref_words"]
            print(f"{voice:12s} {cond:6s} WER {r['wer']:.1%}  ({r['utterances']} utt, RTF {r['rtf']})",
                  file=sys.stderr)
    overall = {c: round(e / n, 4) for c, (e, n) in total.items() if n}
    result = {"benchmark": "asr", "recognizer": "pocketsphinx (en-us, default model)",
              "quick": args.quick, "machine": machine(), "overall_wer": overall, "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{STEM}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    m = result["machine"]
    md = [
        "# ASR benchmark: pocketsphinx on the speech fixtures", "",
        f"{m['date']} · {m['cpu']} ({m['cores']} cores) · torch {m['torch']} · device cpu · "
        f"{'quick' if args.quick else 'full'} run", "",
        "| voice | condition | utterances | words | WER | real-time factor |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(f"| {r['voice']} | {r['condition']} | {r['utterances']} | {r['ref_words']} | "
                  f"{r['wer']:.1%} | {r['rtf']} |")
    md += ["", "Overall: " + ", ".join(f"{c} {w:.1%}" for c, w in overall.items()), "",
           "clean = 16 kHz studio clips; noisy = sentences cut from the 44.1 kHz noisy long takes "
           "(noise ~25 dB below speech, 50 Hz hum). WER on normalised words (numbers spelled out, "
           "case and punctuation ignored). Transcripts from ASR are saved as unverified: proofread them."]
    (OUT / f"{STEM}.md").write_text("\n".join(md) + "\n")
    print(f"wrote {OUT / 'asr.json'} and {OUT / 'asr.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
