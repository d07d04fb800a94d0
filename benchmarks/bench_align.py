"""Forced alignment (voicelab.text.align) on the speech fixtures: speed, confidence, boundaries.

    python benchmarks/bench_align.py [--quick] [--fixtures ../shared/fixtures]

Measures, on one core (pocketsphinx is single-threaded):
- speed: process CPU seconds per audio second over the clean clips (x real time on one core;
  the wall-clock figure is reported too, but this machine is shared), and the text front end's
  time per sentence;
- confidence: the score (log-likelihood ratio per speech frame), the worst word's score and the
  worst silence stretch's score for the right transcript and for wrong ones: another sentence,
  one word replaced, one word dropped, one word added; non-speech (silence, noise, music, hum);
  rejections at a grid of thresholds;
- boundaries: the fraction of speech phones lasting 20-300 ms; on the noisy long takes (the
  same synthetic sentences with noise ~25 dB below speech and 50 Hz hum, cut with margins),
  speech start / end and every phone boundary against the same sentence's clean clip (flite
  and Pico are deterministic: the speech samples are the same, plus noise);
- topn=4 (the model's default) against topn=2 (ours): boundary agreement and speed.
Writes benchmarks/results/align.json and align.md (align_quick.* after --quick).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.audio.io import load_audio  # noqa: E402
from voicelab.eval.machine import machine_info, machine_line  # noqa: E402
from voicelab.text import align as al  # noqa: E402
from voicelab.text import arpabet as ab  # noqa: E402

VOICES = ("flite_slt", "flite_rms", "pico_en-US")
KINDS = {"other": "another sentence", "replace": "one word replaced", "drop": "one word dropped",
         "add": "one word added"}  # fmt: skip
OUT = REPO / "benchmarks" / "results"
MARGIN_S = 0.4  # cut around the true sentence times in the long takes


def read_meta(path: Path) -> list[tuple[Path, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            name, _, _, text = line.split("|", 3)
            out.append((path.parent / name, text))
    return out


def try_align(wav, sr, text, n_frames=None) -> tuple[al.Alignment | None, str, float, float]:
    """-> (alignment or None, rejection reason, wall s, CPU s). Never rejects on scores."""
    t, c = time.perf_counter(), time.process_time()
    try:
        a, why = (
            al.align(
                wav, sr, text, n_frames, min_score=-1e9, min_word_score=-1e9, min_pause_score=-1e9
            ),
            "",
        )
    except al.AlignmentError as e:
        a, why = None, str(e)[:90]
    return a, why, time.perf_counter() - t, time.process_time() - c


def conf(a: al.Alignment) -> dict:
    return {"score": a.score, "worst_word": float(a.word_scores.min()),
            "worst_pause": float(a.pause_scores.min()) if a.pause_scores.size else 0.0}  # fmt: skip


def mutate(text: str, kind: str, rng: random.Random, vocab: list[str]) -> str:
    words = text.rstrip(".!?").split()
    i = rng.randrange(1, len(words))  # not the first word: leading silence could hide it
    if kind == "replace":
        old = words[i].strip(",;:").lower()
        near = [w for w in vocab if abs(len(w) - len(old)) <= 1 and w != old]
        words[i] = rng.choice(near or vocab)
    elif kind == "drop":
        del words[i]
    elif kind == "add":
        words.insert(i, rng.choice([w for w in vocab if len(w) >= 5]))
    return " ".join(words) + "."


FLITE_MAP = {"ax": "AH", "pau": "SIL"}  # flite's US English phones are CMU's, lower-case


def flite_truth(voice: str, text: str, n_samples: int, sr: int) -> list[tuple[str, float]] | None:
    """flite's own segmentation of a flite fixture clip: [(ARPAbet phone, end seconds)], or None
    when flite is missing or its audio is not the fixture's (the fixtures were made with it)."""
    if not voice.startswith("flite_") or shutil.which("flite") is None:
        return None
    v = voice.removeprefix("flite_")
    out = subprocess.run(["flite", "-voice", v, "-t", text, "-o", "none", "-psdur"],
                         capture_output=True, text=True, timeout=60, check=False).stdout  # fmt: skip
    segs = [(FLITE_MAP.get(p, p.upper()), float(t)) for p, t in (x.split(":") for x in out.split())]
    if not segs or abs(segs[-1][1] * sr - n_samples) > 0.01 * sr:  # fixtures end-trimmed <= 5 ms
        return None
    return segs


def boundary_errors(a: al.Alignment, truth: list[tuple[str, float]]) -> list[float]:
    """Signed errors (ms) of the phone boundaries both agree exist: between two speech phones
    that match one to one (difflib over the phone strings, pauses left out)."""
    ends = np.cumsum(a.durations) * al.FRAME_SHIFT_S
    ours = [(p, ends[i]) for i, p in enumerate(a.phones) if p not in ab.PAUSES]
    theirs = [(p, t) for p, t in truth if p not in ab.PAUSES]
    sm = difflib.SequenceMatcher(a=[p for p, _ in ours], b=[p for p, _ in theirs], autojunk=False)
    errs = []
    for blk in sm.get_matching_blocks():
        for k in range(blk.size - 1):  # the end of phone k = the start of phone k + 1, both matched
            errs.append((ours[blk.a + k][1] - theirs[blk.b + k][1]) * 1000)
    return errs


def stats(x) -> dict:
    x = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=np.float64)
    if not x.size:
        return {"n": 0}
    q = np.percentile(x, [0, 5, 50, 95, 100])
    return {"n": int(x.size), **{k: round(float(v), 3) for k, v in zip(("min", "p5", "median", "p95", "max"), q, strict=True)}}  # fmt: skip


def truth_stats(errs: list[float]) -> dict:
    e = np.asarray(errs, dtype=np.float64)
    if not e.size:
        return {"boundaries": 0}
    return {"boundaries": int(e.size), "mean_abs_ms": round(float(np.mean(np.abs(e))), 2),
            "median_abs_ms": round(float(np.median(np.abs(e))), 2),
            "mean_signed_ms": round(float(np.mean(e)), 2),
            "within_20ms": round(float(np.mean(np.abs(e) <= 20)), 4),
            "within_50ms": round(float(np.mean(np.abs(e) <= 50)), 4)}  # fmt: skip


def rejected(r: dict, s_min: float, w_min: float | None, p_min: float | None) -> bool:
    return (
        "rejected" in r
        or r["score"] < s_min
        or (w_min is not None and r["worst_word"] < w_min)
        or (p_min is not None and r["worst_pause"] < p_min)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 clips per voice")
    ap.add_argument(
        "--fixtures",
        default=os.environ.get("VOICELAB_FIXTURES", REPO.parent / "shared" / "fixtures"),
    )
    args = ap.parse_args()
    stem = "align_quick" if args.quick else "align"
    speech = Path(args.fixtures) / "speech"
    if not speech.is_dir():
        print(f"no speech fixtures at {speech}: pass --fixtures DIR", file=sys.stderr)
        return 1
    limit = 10 if args.quick else 10_000
    rng = random.Random(0)
    vocab = rng.sample(sorted(w for w in ab.cmudict() if w.isalpha() and 3 <= len(w) <= 8), 3000)
    clips = {v: read_meta(speech / v / "metadata.list")[:limit] for v in VOICES}

    w0, sr0 = load_audio(clips[VOICES[0]][0][0])  # warm up: decoder, dictionary, espeak
    al.align(w0, sr0, clips[VOICES[0]][0][1])
    t = time.perf_counter()
    texts = [text for v in VOICES for _, text in clips[v]]
    for text in texts:
        ab.text_to_phones(text)
    front_ms = (time.perf_counter() - t) / len(texts) * 1000

    # clean clips: right transcript (timed), then four kinds of wrong ones
    right, wrong, clean = [], [], {}
    audio_s = wall_s = cpu_s = 0.0
    speech_durs: list[int] = []
    truths: dict[tuple[str, int], list] = {}
    berrs: list[float] = []
    n_sp = n_sp_long = 0
    for v in VOICES:
        items = clips[v]
        for k, (path, text) in enumerate(items):
            wav, sr = load_audio(path)
            a, why, dt, dc = try_align(wav, sr, text, al.world_frames(len(wav), sr))
            audio_s, wall_s, cpu_s = audio_s + len(wav) / sr, wall_s + dt, cpu_s + dc
            if a is None:
                right.append({"voice": v, "clip": path.name, "rejected": why})
                continue
            clean[(v, k)] = a
            truth = flite_truth(v, text, len(wav), sr)
            if truth is not None:
                truths[(v, k)] = truth
                berrs += boundary_errors(a, truth)
            right.append(
                {"voice": v, "clip": path.name, **conf(a), "x_real_time_cpu": len(wav) / sr / dc}
            )
            speech_durs += [
                int(d) for p, d in zip(a.phones, a.durations, strict=True) if p not in ab.PAUSES
            ]
            n_sp += a.phones.count(ab.SP)
            n_sp_long += int(np.sum((np.asarray(a.phones) == ab.SP) & (a.durations >= 5)))
            for kind in KINDS:
                text2 = (
                    items[(k + 7) % len(items)][1]
                    if kind == "other"
                    else mutate(text, kind, rng, vocab)
                )
                b, why, _, _ = try_align(wav, sr, text2)
                wrong.append({"voice": v, "clip": path.name, "kind": kind, "text": text2,
                              **(conf(b) if b else {"rejected": why})})  # fmt: skip
        print(f"{v}: {len(items)} clips", file=sys.stderr)

    sr = 16000
    tt = np.arange(3 * sr) / sr
    g = np.random.default_rng(0)
    chords = sum(np.sin(2 * np.pi * f * tt) * (np.sin(np.pi * (k + 1) * tt) > 0)
                 for k, f in enumerate((220, 277, 330, 440)))  # fmt: skip
    nonspeech = {
        "silence": np.zeros(3 * sr, np.float32),
        "white noise": (0.1 * g.standard_normal(3 * sr)).astype(np.float32),
        "music (chords)": (0.2 * chords).astype(np.float32),
        "hum 100 Hz": (0.3 * np.sin(2 * np.pi * 100 * tt)).astype(np.float32),
    }
    ns_rows = []
    for name, audio in nonspeech.items():
        b, why, _, _ = try_align(audio, sr, clips[VOICES[0]][0][1])
        ns_rows.append({"input": name, **(conf(b) if b else {"rejected": why})})

    # noisy long takes vs the clean clips of the same sentences
    noisy = []
    for v in VOICES:
        take = speech / "long" / f"{v}.flac"
        if not take.exists():
            continue
        audio, tsr = load_audio(take)
        truth = json.loads((speech / "long" / f"{v}.json").read_text())
        vtexts = [t for _, t in clips[v]]
        for s in truth:
            if s["text"] not in vtexts:
                continue
            a0 = max(0, int((s["start"] - MARGIN_S) * tsr))
            b0 = min(len(audio), int((s["end"] + MARGIN_S) * tsr))
            a, why, _, _ = try_align(audio[a0:b0], tsr, s["text"])
            if a is None:
                noisy.append({"voice": v, "text": s["text"], "rejected": why})
                continue
            row = {"voice": v, **conf(a)}
            c = clean.get((v, vtexts.index(s["text"])))
            off = (s["start"] - a0 / tsr) * 100  # frames of extra lead-in in the noisy cut
            if c is not None:
                row["start_err_ms"] = float(a.durations[0] - off - c.durations[0]) * 10
                row["end_err_ms"] = (
                    float((a.n_frames - a.durations[-1]) - off - (c.n_frames - c.durations[-1]))
                    * 10
                )
                keep_c = [i for i, p in enumerate(c.phones[:-2]) if p != ab.SP]
                keep_a = [i for i, p in enumerate(a.phones[:-2]) if p != ab.SP]
                if [c.phones[i] for i in keep_c] == [a.phones[i] for i in keep_a]:  # same variants
                    cb, nb = np.cumsum(c.durations)[keep_c], np.cumsum(a.durations)[keep_a]
                    row["boundary_err_ms"] = float(np.mean(np.abs(nb - off - cb)) * 10)
            noisy.append(row)
    print(f"{len(noisy)} noisy sentences", file=sys.stderr)

    # topn=4 (the model's default) against ours, on 30 clips
    topn_rows = {}
    saved = al.TOPN
    subset = list(clean.items())[:: max(1, len(clean) // 30)][:30]
    for topn in (4, saved):
        al.TOPN = topn
        al._aligner.cache_clear()
        diffs, secs, aud, terrs = [], 0.0, 0.0, []
        for (v, k), c in subset:
            wav, sr = load_audio(clips[v][k][0])
            a, _, _, dc = try_align(wav, sr, clips[v][k][1], c.n_frames)
            secs, aud = secs + dc, aud + len(wav) / sr
            if a is not None and (v, k) in truths:
                terrs += boundary_errors(a, truths[(v, k)])
            if a is not None and a.phones == c.phones:
                d = np.cumsum(a.durations)[:-1] - np.cumsum(c.durations)[:-1]
                diffs.append(float(np.mean(np.abs(d))) * 10)
        topn_rows[str(topn)] = {"x_real_time_cpu": round(aud / secs, 1), "same_phones": len(diffs),
                                "mean_abs_boundary_diff_ms_vs_topn2": stats(diffs),
                                "vs_flite_truth": truth_stats(terrs)}  # fmt: skip
    al.TOPN = saved
    al._aligner.cache_clear()

    durs = np.asarray(speech_durs)
    grid = [(s_, None, None) for s_ in (-2.0, -2.5, -3.0)]
    grid += [(-2.5, w_, p_) for w_ in (-5.0, -6.0, -7.0) for p_ in (None, -4.0, -5.0, -6.0)]
    thresholds = []
    for s_min, w_min, p_min in grid:
        row = {"min_score": s_min, "min_word_score": w_min, "min_pause_score": p_min,
               "right": f"{sum(rejected(r, s_min, w_min, p_min) for r in right)}/{len(right)}",
               "noisy": f"{sum(rejected(r, s_min, w_min, p_min) for r in noisy)}/{len(noisy)}"}  # fmt: skip
        for kind in KINDS:
            rows = [r for r in wrong if r["kind"] == kind]
            row[kind] = f"{sum(rejected(r, s_min, w_min, p_min) for r in rows)}/{len(rows)}"
        thresholds.append(row)

    def dist(rows: list[dict]) -> dict:
        return {"n": len(rows), "no_path": sum("rejected" in r for r in rows),
                **{key: stats([r.get(key) for r in rows]) for key in ("score", "worst_word", "worst_pause")}}  # fmt: skip

    result = {
        "benchmark": "align", "quick": args.quick,
        "machine": machine_info() | {"device": "cpu (1 thread: pocketsphinx)"},
        "settings": {"topn": al.TOPN, "min_pause_ms": al.MIN_PAUSE_MS, "min_score": al.MIN_SCORE,
                     "min_word_score": al.MIN_WORD_SCORE, "min_pause_score": al.MIN_PAUSE_SCORE},
        "speed": {
            "clips": len(right), "audio_s": round(audio_s, 1), "cpu_s": round(cpu_s, 2),
            "wall_s": round(wall_s, 2), "x_real_time_cpu": round(audio_s / cpu_s, 1),
            "x_real_time_wall": round(audio_s / wall_s, 1),
            "x_real_time_cpu_per_clip": stats([r.get("x_real_time_cpu") for r in right]),
            "text_to_phones_ms_per_sentence": round(front_ms, 2),
        },
        "right": dist(right) | {"rejected": [r for r in right if "rejected" in r]},
        "wrong": {kind: dist([r for r in wrong if r["kind"] == kind]) for kind in KINDS},
        "noisy": dist(noisy) | {
            "abs_start_err_ms": stats([abs(r["start_err_ms"]) for r in noisy if "start_err_ms" in r]),
            "abs_end_err_ms": stats([abs(r["end_err_ms"]) for r in noisy if "end_err_ms" in r]),
            "mean_abs_boundary_err_ms": stats([r.get("boundary_err_ms") for r in noisy]),
        },
        "nonspeech": ns_rows,
        "durations": {
            "speech_phones": int(durs.size),
            "frac_20_300ms": round(float(np.mean((durs >= 2) & (durs <= 30))), 4),
            "median_ms": float(np.median(durs) * 10), "sp": n_sp, "sp_50ms": n_sp_long,
        },
        "vs_flite_truth": truth_stats(berrs) | {"clips": len(truths)},
        "topn": topn_rows,
        "thresholds": thresholds,
        "right_rows": right, "noisy_rows": noisy, "wrong_rows": wrong,
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (OUT / f"{stem}.md").write_text(markdown(result))
    print(markdown(result), file=sys.stderr)
    return 0


def markdown(r: dict) -> str:
    def fmt(st: dict) -> str:
        return f"{st['min']} / {st['median']} / {st['max']}" if st.get("n") else "-"

    s, d, n, cfg, ft = r["speed"], r["durations"], r["noisy"], r["settings"], r["vs_flite_truth"]
    md = [
        "# Alignment benchmark: pocketsphinx forced alignment on the speech fixtures", "",
        f"{machine_line(r['machine'])} · load {r['machine'].get('load_average_1m')} · "
        f"{'quick' if r['quick'] else 'full'} run (`python benchmarks/bench_align.py`)", "",
        f"Settings: topn={cfg['topn']}, pauses kept from {cfg['min_pause_ms']:.0f} ms, reject below "
        f"score {cfg['min_score']}, a word below {cfg['min_word_score']} or a silence stretch below "
        f"{cfg['min_pause_score']}.", "",
        "## Speed (one core)", "",
        f"{s['clips']} clean clips, {s['audio_s']} s of audio aligned in {s['cpu_s']} s of CPU time: "
        f"**{s['x_real_time_cpu']}x real time per core** (slowest clip "
        f"{s['x_real_time_cpu_per_clip'].get('min')}x; {s['x_real_time_wall']}x by wall clock on this "
        f"shared machine). Text front end: {s['text_to_phones_ms_per_sentence']} ms per sentence.", "",
        "## Confidence: right vs wrong transcripts", "",
        "score = mean log-likelihood per speech frame relative to the best senone of each frame "
        "(nats); worst word / worst pause = the same for the lowest-scoring word / silence stretch. "
        "'no path' = the aligner found no way through the words at all (always rejected).", "",
        "| transcript | clips | no path | score min / median / max | worst word | worst pause |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    rows = [("right (clean clips)", r["right"]), ("right (noisy long takes)", n)]
    rows += [(KINDS[k], w) for k, w in r["wrong"].items()]
    for name, x in rows:
        md.append(f"| {name} | {x['n']} | {x['no_path']} | {fmt(x['score'])} | "
                  f"{fmt(x['worst_word'])} | {fmt(x['worst_pause'])} |")  # fmt: skip
    md += ["", "Rejected at candidate thresholds:", "",
           "| min score | min word score | min pause score | right | right, noisy | "
           + " | ".join(KINDS.values()) + " |", "|---" * (5 + len(KINDS)) + "|"]  # fmt: skip
    for t in r["thresholds"]:
        md.append(f"| {t['min_score']} | {t['min_word_score'] or '-'} | {t['min_pause_score'] or '-'} | "
                  f"{t['right']} | {t['noisy']} | " + " | ".join(t[k] for k in KINDS) + " |")  # fmt: skip
    ns = ", ".join(
        f"{x['input']}: " + (x.get("rejected") or f"score {x['score']:.2f}") for x in r["nonspeech"]
    )
    md += ["", f"Non-speech with a sentence as transcript: {ns}.", "",
           "## Boundaries", "",
           f"- {d['frac_20_300ms']:.1%} of {d['speech_phones']} speech phones last 20-300 ms (median "
           f"{d['median_ms']:.0f} ms); {d['sp']} SP (at punctuation, or pauses >= {cfg['min_pause_ms']:.0f} ms), "
           f"{d['sp_50ms']} of them >= 50 ms.",
           f"- Noisy long takes ({n['n']} sentences cut with {MARGIN_S} s margins) against the clean clip "
           "of the same sentence (same speech samples, plus noise ~25 dB down and 50 Hz hum): "
           f"|speech start difference| median {n['abs_start_err_ms'].get('median')} ms "
           f"(p95 {n['abs_start_err_ms'].get('p95')}), |speech end difference| median "
           f"{n['abs_end_err_ms'].get('median')} ms (p95 {n['abs_end_err_ms'].get('p95')}); mean "
           f"|phone boundary difference| per sentence median {n['mean_abs_boundary_err_ms'].get('median')} ms, "
           f"worst {n['mean_abs_boundary_err_ms'].get('max')} ms ({n['mean_abs_boundary_err_ms'].get('n')} "
           "sentences with the same pronunciation variants).",
           f"- Against flite's own segmentation of its fixture clips ({ft.get('clips')} clips, "
           f"{ft.get('boundaries')} phone boundaries between matching phones; `flite -psdur`, same "
           f"audio): mean |error| {ft.get('mean_abs_ms')} ms (median {ft.get('median_abs_ms')}, mean "
           f"signed {ft.get('mean_signed_ms')}), {ft.get('within_20ms', 0):.1%} within 20 ms, "
           f"{ft.get('within_50ms', 0):.1%} within 50 ms.", "",
           "## topn (Gaussians per codebook)", "",
           "| topn | x real time per core | same phones | mean abs boundary diff vs topn=2 (ms), median / max | vs flite's segmentation: mean abs / within 20 ms |",
           "|---|---|---|---|---|"]  # fmt: skip
    for k, t in r["topn"].items():
        st, ft = t["mean_abs_boundary_diff_ms_vs_topn2"], t["vs_flite_truth"]
        md.append(f"| {k} | {t['x_real_time_cpu']} | {t['same_phones']} | {st.get('median')} / {st.get('max')} | "
                  f"{ft.get('mean_abs_ms')} ms / {ft.get('within_20ms', 0):.1%} |")  # fmt: skip
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
