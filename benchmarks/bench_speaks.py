"""Does the CPU (world) path learn to speak on this machine? Issue 13's acceptance run.

    python benchmarks/bench_speaks.py [--quick] [--preset cpu] [--set section.key=value ...]

1. A multi-speaker voice of the three fixture voices' transcribed clips (flite slt, flite rms,
   Pico en-US; the last 5 sentences of each held out), in a scratch VOICELAB_HOME.
2. `features` (alignment + WORLD + d-vectors; timed, and timed again: a second run must
   recompute nothing), then `train` from scratch with the preset (default cpu) and `export`,
   all as real CLI processes, wall-clocked.
3. `eval` per voice, in a second scratch home holding only the three target voices (their
   training clips as the target, the other two as "others"): pocketsphinx WER of the synthesis
   vs the real recordings of the held-out sentences, speaker similarity to the target vs the
   other voices, RTF on one core, time to first audio.

Writes benchmarks/results/speaks.json + speaks.md (or speaks_quick.* with --quick, which trains a
few steps only: a smoke test of the procedure, not of the quality).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from voicelab.eval.machine import machine_info  # noqa: E402
from voicelab.listfile import Entry, read_list, write_list  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "speech"
VOICES = ("flite_slt", "flite_rms", "pico_en-US")
HELD_OUT = 5
RESULTS = REPO / "benchmarks" / "results"


def run(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Run a voicelab CLI command; its output goes to `log`. Returns wall seconds."""
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        r = subprocess.run([sys.executable, "-m", "voicelab", *cmd], env=env, cwd=REPO,
                           stdout=f, stderr=subprocess.STDOUT)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}); see {log}")
    return time.perf_counter() - t0


def split() -> tuple[dict[str, list[Entry]], dict[str, list[Entry]]]:
    train, held = {}, {}
    for v in VOICES:
        es = sorted(read_list(FIXTURES / v / "metadata.list", audio_root=FIXTURES / v), key=lambda e: e.path)
        train[v], held[v] = es[:-HELD_OUT], es[-HELD_OUT:]
    return train, held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few steps: checks the procedure only")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--work", default=str(RESULTS / "tmp" / "speaks"), help="scratch folder")
    ap.add_argument("--name", default="speaks",
                    help="results file stem (e.g. speaks_seed7 for a repeat with --set train.seed=7)")
    args = ap.parse_args()
    if not FIXTURES.is_dir():
        print(f"skipped: the fixtures are not at {FIXTURES}")
        return 0
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    train_home, eval_home = work / "train-home", work / "eval-home"
    log = work / "commands.log"
    work.mkdir(parents=True)
    train, held = split()
    sets = list(args.set)
    if args.quick:
        sets += ["train.sovits_steps=20", "train.gpt_steps=10", "train.eval_every=10",
                 "train.save_every=10"]
    overrides = [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "VOICELAB_HOME": str(train_home), "PYTHONPATH": str(REPO)}

    # the multi-speaker training voice
    voice = train_home / "fixtures3"
    (voice / "slices").mkdir(parents=True)
    write_list(voice / "slices" / "dataset.list", [e for v in VOICES for e in train[v]])
    audio_s = sum(_seconds(e.path) for v in VOICES for e in train[v])

    t_feat = run(["features", "--voice", "fixtures3", "--preset", args.preset, *overrides], env, log)
    t_feat2 = run(["features", "--voice", "fixtures3", "--preset", args.preset, *overrides], env, log)
    cpu0 = os.times()
    t_train = run(["train", "--voice", "fixtures3", "--preset", args.preset, "--run", "speaks",
                   "--from", "none", *overrides], env, log)  # fmt: skip
    cpu1 = os.times()
    export = work / "speaks.safetensors"
    run(["export", "--voice", "fixtures3", "--run", "speaks", "-o", str(export)], env, log)

    # evaluation: one target voice per fixture voice, the other two as "others"
    eval_env = {**env, "VOICELAB_HOME": str(eval_home)}
    per_voice = {}
    for v in VOICES:
        vd = eval_home / v / "slices"
        vd.mkdir(parents=True)
        write_list(vd / "dataset.list", train[v])
        write_list(work / f"heldout-{v}.list", held[v])
    for v in VOICES:
        out = work / "eval" / v
        run(["eval", "--model", str(export), "--voice", v, "--sentences",
             str(work / f"heldout-{v}.list"), "--device", "cpu", "-o", str(out)], eval_env, log)
        per_voice[v] = _summarise(json.loads((out / "eval.json").read_text()), v)

    result = {
        "machine": machine_info(),
        "quick": args.quick,
        "preset": args.preset,
        "overrides": sets,
        "training_audio_s": round(audio_s, 1),
        "clips": sum(len(train[v]) for v in VOICES),
        "features_s": round(t_feat, 1),
        "features_x_realtime": round(audio_s / t_feat, 1),
        "features_second_run_s": round(t_feat2, 1),
        "train_wall_s": round(t_train, 1),
        "train_cpu_s": round((cpu1.children_user + cpu1.children_system)
                             - (cpu0.children_user + cpu0.children_system), 1),
        "voices": per_voice,
        "accepted": all(p["wer_gap_pt"] <= 20 and p["closest_is_target"] for p in per_voice.values()),
    }
    name = f"{args.name}_quick" if args.quick else args.name
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{name}.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _seconds(path: str) -> float:
    import soundfile as sf

    info = sf.info(path)
    return info.frames / info.samplerate


def _summarise(ev: dict, voice: str) -> dict:
    """The acceptance numbers out of one eval.json (voicelab/eval/evaluate.py `summarise`)."""
    s = ev["summary"]
    sims = {k: v for k, v in (s.get("sim_others") or {}).items() if v is not None}
    target = s["sim_target"]
    return {
        "wer_synth": s["wer"],
        "wer_real": s.get("real_wer"),
        "wer_gap_pt": round(100 * (s.get("wer_gap") or 0.0), 1),
        "similarity_target": target,
        "similarity_others": sims,
        "closest_is_target": all(target > x for x in sims.values()),
        "rtf": s.get("rtf"),
        "first_audio_s": s.get("first_audio_s"),
    }


def _markdown(r: dict) -> str:
    lines = [
        "# Does the world path learn to speak? (trained from scratch on the fixture voices)",
        "",
        f"{r['machine'].get('date', '')} · {r['machine'].get('cpu', '')} · preset `{r['preset']}` "
        f"{' '.join(r['overrides'])}{' · QUICK (procedure check only)' if r['quick'] else ''}",
        "",
        f"- {r['clips']} clips, {r['training_audio_s']:.0f} s of speech; features "
        f"{r['features_s']:.0f} s ({r['features_x_realtime']}x real time), second run "
        f"{r['features_second_run_s']:.1f} s (nothing recomputed; mostly start-up)",
        f"- training wall {r['train_wall_s'] / 60:.1f} min, CPU {r['train_cpu_s'] / 60:.1f} min",
        "",
        "| voice | WER synthesis | WER real | gap (pt) | similarity to target | best other | RTF (1 core) | first audio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, p in r["voices"].items():
        best = max(p["similarity_others"].items(), key=lambda kv: kv[1], default=("-", float("nan")))
        lines.append(
            f"| {v} | {100 * p['wer_synth']:.1f}% | {100 * (p['wer_real'] or 0):.1f}% | "
            f"{p['wer_gap_pt']:+.1f} | {p['similarity_target']:.3f} | {best[0]} {best[1]:.3f} | "
            f"{p['rtf'] if p['rtf'] is None else round(p['rtf'], 3)} | "
            f"{p['first_audio_s'] if p['first_audio_s'] is None else round(p['first_audio_s'], 2)} s |"
        )
    lines += ["", f"Accepted (gap <= 20 points and closest to itself, every voice): **{r['accepted']}**", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
