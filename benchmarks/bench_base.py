"""Does a voice fine-tuned from the shipped base speak, and sound like itself? Issue 14's acceptance run.

    python benchmarks/bench_base.py [--voices flite_slt flite_rms pico_en-US] [--no-scratch]
        [--base DIR] [--corpus LIST] [--set section.key=value ...] [--work DIR] [--name base]
    python benchmarks/bench_base.py --quick      # one voice, a few steps: the procedure only

For each development voice, in a fresh VOICELAB_HOME (one per voice) under the work folder, all
as real CLI processes (`python -m voicelab ...`), as a user would:

1. `prepare` the voice's one noisy ~75 s take (../shared/fixtures/speech/long/<voice>.flac) and
   `slice` it; then give each slice the proofread text of the take's .json sentences it holds in
   time (the slice's start and end in the take are in its file name), written with
   `transcribe --from-list` (transcripts.import_list: the list stays a GPT-SoVITS list and the
   texts count as checked). A slice that cuts a sentence, or holds none, keeps no text (dropped).
2. `features`, then `train` with the defaults (no --preset, no --set: what a user gets; it
   fine-tunes from the shipped base in assets/base, or --base DIR, when one matches), wall-clocked;
   `export`. Which start the run used is read back from its train.log / config.json.
3. `eval` the export on the held-out sentences: the voice's fixture clips
   (../shared/fixtures/speech/<voice>/metadata.list) whose text is not in the take, against the
   real recordings of them. Speaker similarity to the target, to every base corpus speaker
   (--corpus, else the base's own corpus list, else /work/corpus-en/corpus.list; left out with a
   note when absent) and to the other two fixture voices. eval runs with one torch/OpenMP thread,
   so its real-time factor is synthesis on one core.
4. The same with `train --from none` (from scratch) for comparison (--no-scratch skips it).

Acceptance (issue 14, per voice, the default run): WER of the synthesis at most 15 points above
the real voice's on the same sentences, and similarity to the target higher than to every other
voice. Writes benchmarks/results/<name>.json + <name>.md (<name>_quick.* with --quick). Progress
lines carry timestamps (also in WORK/progress.log); every command's output is in
WORK/commands.log, each run's trainer log in WORK/<voice>/home/<voice>/runs/<run>/train.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_speaks import FIXTURES, REPO, RESULTS, VOICES, _seconds, _summarise, run

from voicelab.eval.evaluate import norm_text
from voicelab.eval.machine import machine_info
from voicelab.listfile import Entry, read_list, write_list

LONG = FIXTURES / "long"
DEFAULT_CORPUS = Path("/work/corpus-en/corpus.list")
WER_GAP_LIMIT_PT = 15.0  # issue 14: synthesis WER at most 15 points above the real voice's
# A slice holds a sentence when at least KEEP of the sentence's time lies inside it; a slice
# that overlaps a sentence by more than IGNORE but less than KEEP cuts it, and its text would be
# wrong either way (missing or extra words), so it is dropped. Overlaps up to IGNORE are a
# sentence's lead-in or tail silence (the .json times include some; the slicer keeps up to
# 500 ms of pause). Measured on the three takes: every sentence is 86-100% inside one slice.
KEEP, IGNORE = 0.8, 0.1
QUICK_SETS = ["train.sovits_steps=20", "train.gpt_steps=10", "train.eval_every=10",
              "train.save_every=10"]  # fmt: skip
QUICK_SENTENCES = 5
_LOG: Path | None = None


def say(msg: str) -> None:
    """A timestamped progress line on stdout (and in WORK/progress.log) for watching a long run."""
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    if _LOG is not None:
        with open(_LOG, "a") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------------------------
# Slices -> texts of the take (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceText:
    file: str
    start: float  # seconds in the take
    end: float
    sentences: tuple[int, ...]  # indices into the take's sentence list, in time order
    text: str | None  # None: dropped (no text given)
    why: str = ""  # why it was dropped


def slice_span(name: str) -> tuple[float, float] | None:
    """(start, end) in seconds of a slice within its clean take, from the slicer's file name
    `<take>_<start ms, 7 digits>_<end ms>.wav` (voicelab/audio/pipeline.py _plan_slices)."""
    m = re.fullmatch(r".+_(\d{7,})_(\d{7,})", Path(name).stem)
    return (int(m.group(1)) / 1000, int(m.group(2)) / 1000) if m else None


def texts_for_slices(
    slices: Sequence[tuple[str, float, float]],
    sentences: Sequence[dict],
    keep: float = KEEP,
    ignore: float = IGNORE,
) -> list[SliceText]:
    """The text of each slice (file, start s, end s) from a take's timed sentences
    ({"start", "end", "text"}): the sentences at least `keep` of whose time lies inside it,
    joined. Dropped (text None): a slice holding no sentence, and one overlapping a sentence by
    more than `ignore` but less than `keep` (it cuts that sentence)."""
    out = []
    for file, a, b in slices:
        held, cut = [], []
        for j, s in enumerate(sentences):
            dur = max(float(s["end"]) - float(s["start"]), 1e-9)
            share = max(0.0, min(b, float(s["end"])) - max(a, float(s["start"]))) / dur
            if share >= keep:
                held.append(j)
            elif share > ignore:
                cut.append(f"sentence {j + 1} ({100 * share:.0f}% inside)")
        held.sort(key=lambda j: float(sentences[j]["start"]))
        if cut:
            out.append(SliceText(file, a, b, tuple(held), None, "cuts " + ", ".join(cut)))
        elif not held:
            out.append(SliceText(file, a, b, (), None, "holds no sentence"))
        else:
            text = " ".join(" ".join(str(sentences[j]["text"]).split()) for j in held)
            out.append(SliceText(file, a, b, tuple(held), text))
    return out


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def run_out(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
    """bench_speaks.run, plus what the command printed (read back from the log)."""
    start = log.stat().st_size if log.exists() else 0
    seconds = run(cmd, env, log)
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        return seconds, f.read()


def give_texts(voice: str, home: Path, work: Path, env: dict[str, str], log: Path) -> dict:
    """Slice texts from the take's .json, written through `transcribe --from-list`."""
    from voicelab.workspace import get_voice

    v = get_voice(voice, base=home)
    entries = read_list(v.dataset_list)
    sentences = json.loads((LONG / f"{voice}.json").read_text())
    spans = []
    for e in entries:
        span = slice_span(Path(e.path).name)
        if span is None:
            raise SystemExit(f"{e.path}: no start/end in the slice's name; cannot map it to the take")
        spans.append((Path(e.path).name, *span))
    mapped = texts_for_slices(spans, sentences)
    by_name = {Path(e.path).name: e for e in entries}
    texted = [m for m in mapped if m.text]
    texts_list = work / "texts.list"
    write_list(texts_list, [Entry(Path(by_name[m.file].path), voice, "en", m.text) for m in texted])
    run(["transcribe", "--voice", voice, "--from-list", str(texts_list)], env, log)
    # read back: the voice's own list must now carry exactly these texts
    now = {Path(e.path).name: e.text for e in read_list(v.dataset_list)}
    wrong = [m.file for m in texted if now.get(m.file) != m.text]
    if wrong:
        raise SystemExit(f"{voice}: {len(wrong)} slice text(s) did not arrive in dataset.list "
                         f"(e.g. {wrong[0]}); see {log}")  # fmt: skip
    used = sorted({j for m in texted for j in m.sentences})
    return {
        "slices": len(mapped),
        "texted": len(texted),
        "dropped": len(mapped) - len(texted),
        "texted_audio_s": round(sum(_seconds(by_name[m.file].path) for m in texted), 1),
        "sentences": len(sentences),
        "sentences_used": len(used),
        "sentences_lost": [sentences[j]["text"] for j in range(len(sentences)) if j not in used],
        "mapping": [asdict(m) for m in mapped],
    }


def held_out(voice: str, work: Path) -> tuple[Path, int]:
    """The voice's fixture clips whose sentence is not in the take, as a .list (real audio)."""
    in_take = {norm_text(s["text"]) for s in json.loads((LONG / f"{voice}.json").read_text())}
    entries = read_list(FIXTURES / voice / "metadata.list", audio_root=FIXTURES / voice)
    held = [e for e in entries if norm_text(e.text) not in in_take]
    path = work / "heldout.list"
    write_list(path, held)
    return path, len(held)


def other_fixtures(voice: str, work: Path) -> tuple[Path, list[str]]:
    """The other fixture voices' clips as one .list (speaker column = the voice's name)."""
    others = [o for o in VOICES if o != voice]
    entries = [e for o in others
               for e in read_list(FIXTURES / o / "metadata.list", audio_root=FIXTURES / o)]  # fmt: skip
    path = work / "others-fixtures.list"
    write_list(path, entries)
    return path, others


def corpus_list(given: str | None, base_folder: Path) -> tuple[Path | None, str]:
    """The base corpus's .list for similarity: --corpus, else the corpus a shipped base records
    (its <name>.json), else DEFAULT_CORPUS. (None, why) when there is none."""
    if given:
        p = Path(given).expanduser()
        p = p / "corpus.list" if p.is_dir() else p
        if not p.is_file():
            raise SystemExit(f"--corpus {given}: no such .list (give a corpus folder or its corpus.list)")
        return p.resolve(), "--corpus"
    metas = sorted(base_folder.glob("*.json"), key=lambda p: (p.stem != "base", p.name))
    for meta_path in metas:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        c = (meta.get("corpus") or {}).get("corpus") if meta.get("format") == "voicelab-base" else None
        if c:
            p = Path(c) / "corpus.list" if Path(c).is_dir() else Path(c)
            if p.is_file():
                return p.resolve(), f"the corpus of {meta_path.name}"
    if DEFAULT_CORPUS.is_file():
        return DEFAULT_CORPUS, "default location"
    return None, (f"no base corpus list (no --corpus, none recorded by a base in {base_folder}, "
                  f"nothing at {DEFAULT_CORPUS}): similarity to the base speakers is not measured")  # fmt: skip


def run_start(run_dir: Path) -> dict:
    """Which weights a finished run started from: its train.log and config.json say."""
    log = run_dir / "train.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    m = re.search(r"initial weights from (.+?) \((.*?)\); fresh optimisers", text)
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        cfg = {}
    finetuned = bool(cfg.get("train", {}).get("finetuned", False))
    out = {"finetuned": finetuned, "from": m.group(1) if m else None,
           "from_note": m.group(2) if m else None, "preset": cfg.get("preset"),
           "sovits_steps": cfg.get("train", {}).get("sovits_steps"),
           "gpt_steps": cfg.get("train", {}).get("gpt_steps")}  # fmt: skip
    out["start"] = f"from {m.group(1)}" if m else "from scratch"
    # the blend at the run's end (train.weight_blend / blend_margin): the share kept, and the
    # likeness the choice measured for each share it tried
    b = re.findall(r"\+ ([0-9.]+) x trained", text)
    out["blend_share"] = float(b[-1]) if b else None
    out["blend_probe"] = [
        {"share": float(w), "target": float(t), "closest": n, "closest_sim": float(c),
         "margin": float(mg)}
        for w, t, c, n, mg in re.findall(r"\[blend\] share ([0-9.]+): new sentences ([0-9.]+) like "
                                         r"the voice, ([0-9.]+) to (\S+) \(margin ([+-][0-9.]+)\)", text)
    ]  # fmt: skip
    if m:  # a shipped base records its steps and corpus in <name>.json beside the weights
        weights = Path(m.group(1))
        meta = (weights if weights.is_absolute() else REPO / weights).with_suffix(".json")
        try:
            b = json.loads(meta.read_text())
        except (OSError, ValueError):
            b = {}
        if b.get("format") == "voicelab-base":
            out["base"] = {"json": str(meta), "preset": b.get("preset"), "steps": b.get("steps"),
                           "corpus": (b.get("corpus") or {}).get("corpus")}  # fmt: skip
            out["start"] = f"from the base {m.group(1)}"
    try:
        status = json.loads((run_dir / "status.json").read_text())
        out["status"] = {k: status.get(k) for k in ("state", "stage", "step", "total_steps") if k in status}
    except (OSError, ValueError):
        pass
    return out


def train_eval(voice: str, run_name: str, from_value: str | None, ctx: dict) -> dict:
    """train (wall-clocked) + export + eval of one run; the acceptance numbers."""
    env, log, work, home = ctx["env"], ctx["log"], ctx["work"], ctx["home"]
    cmd = ["train", "--voice", voice, "--run", run_name, *ctx["overrides"]]
    if from_value is not None:
        cmd += ["--from", from_value]
    run_dir = home / voice / "runs" / run_name
    say(f"{voice}: train --run {run_name}{' --from ' + from_value if from_value else ' (defaults)'} "
        f"(watch {run_dir / 'train.log'})")  # fmt: skip
    load0 = os.getloadavg()[0]
    t_train, printed = run_out(cmd, env, log)
    start = run_start(run_dir)
    # the train command says why it starts where it does (no base, another architecture, ...)
    notes = [ln.strip() for ln in printed.splitlines() if "pretrained base" in ln]
    start["start_note"] = notes[0] if notes else None
    say(f"{voice}: {run_name} trained in {t_train / 60:.1f} min, {start['start']}"
        f"{' (' + notes[0] + ')' if notes else ''}")
    export = work / f"{run_name}.safetensors"
    run(["export", "--voice", voice, "--run", run_name, "-o", str(export)], env, log)
    out = work / f"eval-{run_name}"
    cmd = ["eval", "--model", str(export), "--voice", voice, "--sentences", str(ctx["heldout"]),
           "--others", str(ctx["others_list"]), "--device", "cpu", "-o", str(out)]  # fmt: skip
    if ctx["corpus"] is not None:
        cmd += ["--others", str(ctx["corpus"])]
    if ctx["quick"]:
        cmd += ["--max-sentences", str(QUICK_SENTENCES)]
    say(f"{voice}: eval {run_name} on {ctx['n_heldout']} held-out sentences (one thread)")
    one_core = {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t_eval = run(cmd, one_core, log)
    ev = json.loads((out / "eval.json").read_text())
    r = {"run": run_name, **start, "train_wall_s": round(t_train, 1),
         "train_min": round(t_train / 60, 2), "load_average_1m_before": round(load0, 2),
         "load_average_1m_after": round(os.getloadavg()[0], 2), "export": str(export),
         "eval_dir": str(out), "eval_s": round(t_eval, 1), **score(ev, voice, ctx)}  # fmt: skip
    say(f"{voice}: {run_name}: WER {_pct(r['wer_synth'])} (real {_pct(r['wer_real'])}, gap "
        f"{_pt(r['wer_gap_pt'])}), similarity {_f3(r['similarity_target'])} (best base "
        f"{_pair(r['best_base'])}, best fixture {_pair(r['best_fixture'])}), RTF {_f3(r['rtf'])}: "
        f"{'PASS' if r['passed'] else 'FAIL'}")  # fmt: skip
    return r


def score(ev: dict, voice: str, ctx: dict) -> dict:
    """bench_speaks' summary of one eval.json, plus the split of the other voices into base
    corpus speakers and fixture voices, and issue 14's two criteria."""
    s = _summarise(ev, voice)
    summary = ev["summary"]
    gap = summary.get("wer_gap")
    s["wer_gap_pt"] = None if gap is None else round(100 * gap, 1)  # not 0: no gap is no pass
    sims = s["similarity_others"]
    fixtures = {k: v for k, v in sims.items() if k in ctx["other_voices"]}
    base = {k: v for k, v in sims.items() if k in ctx["corpus_speakers"]}
    best = lambda d: list(max(d.items(), key=lambda kv: kv[1])) if d else None  # noqa: E731
    s["best_base"], s["best_fixture"] = best(base), best(fixtures)
    s["missing_others"] = sorted((set(ctx["other_voices"]) | ctx["corpus_speakers"]) - set(sims))
    s["gap_ok"] = s["wer_gap_pt"] is not None and s["wer_gap_pt"] <= WER_GAP_LIMIT_PT
    s["closest_ok"] = bool(sims) and s["similarity_target"] is not None and s["closest_is_target"]
    s["passed"] = s["gap_ok"] and s["closest_ok"]
    s["sim_ceiling"] = summary.get("sim_ceiling")
    s["sentences"] = summary.get("sentences")
    s["eval_checks"] = summary.get("checks", {})
    return s


def bench_voice(voice: str, args: argparse.Namespace, shared: dict) -> dict:
    work = Path(args.work) / voice
    home = work / "home"
    work.mkdir(parents=True)
    env = {**shared["env"], "VOICELAB_HOME": str(home)}
    log = shared["log"]
    take = LONG / f"{voice}.flac"
    say(f"{voice}: prepare + slice {take.name} ({_seconds(str(take)):.0f} s) in {home}")
    t_prep = run(["prepare", "--voice", voice, str(take)], env, log)
    run(["slice", "--voice", voice], env, log)
    slices = give_texts(voice, home, work, env, log)
    say(f"{voice}: {slices['slices']} slices: {slices['texted']} got a text "
        f"({slices['texted_audio_s']:.0f} s), {slices['dropped']} dropped; "
        f"{slices['sentences_used']} of {slices['sentences']} sentences used")  # fmt: skip
    for m in slices["mapping"]:
        if m["text"] is None:
            say(f"{voice}:   dropped {m['file']}: {m['why']}")
    t_feat, out = run_out(["features", "--voice", voice, *shared["overrides"]], env, log)
    ready = next((ln for ln in out.splitlines() if ln.startswith("features ready")), "")
    skipped = [ln[len("skipped "):] for ln in out.splitlines() if ln.startswith("skipped ")]
    say(f"{voice}: features in {t_feat:.0f} s: {ready or 'see ' + str(log)}")
    heldout, n_held = held_out(voice, work)
    others_list, other_voices = other_fixtures(voice, work)
    ctx = {**shared, "env": env, "work": work, "home": home, "heldout": heldout,
           "n_heldout": min(n_held, QUICK_SENTENCES) if args.quick else n_held,
           "others_list": others_list, "other_voices": other_voices}  # fmt: skip
    result = {"take": str(take), "prepare_s": round(t_prep, 1), "slices": slices,
              "features": {"wall_s": round(t_feat, 1), "summary": ready, "skipped": skipped},
              "heldout_sentences": n_held, "eval_sentences": ctx["n_heldout"],
              "other_fixture_voices": other_voices, "runs": {}}  # fmt: skip
    plan = [("default", None)] + ([] if args.no_scratch else [("scratch", "none")])
    if args.only:
        plan = [p for p in plan if p[0] == args.only]
    earlier = shared["merge"].get(voice, {}).get("runs", {})
    plan = [p for p in plan if p[0] not in earlier]  # taken from --merge instead
    result["runs"].update(earlier)
    for run_name, from_value in plan:
        try:
            result["runs"][run_name] = train_eval(voice, run_name, from_value, ctx)
        except SystemExit as e:  # one failed run must not lose the others: reported, non-zero exit
            say(f"{voice}: {run_name} FAILED: {e}")
            result["runs"][run_name] = {"run": run_name, "error": str(e)}
    d = result["runs"].get("default", {})
    result["passed"] = bool(d.get("passed"))
    return result


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main() -> int:
    global _LOG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", nargs="+", default=list(VOICES), choices=VOICES, metavar="VOICE",
                    help=f"development voices (default: all of {', '.join(VOICES)})")
    ap.add_argument("--quick", action="store_true",
                    help=f"one voice, {' '.join(QUICK_SETS)}, {QUICK_SENTENCES} eval sentences: "
                    "checks the procedure only")  # fmt: skip
    ap.add_argument("--no-scratch", action="store_true", help="skip the --from none comparison runs")
    ap.add_argument("--only", choices=("default", "scratch"),
                    help="run only the default (fine-tune) or only the from-scratch runs")
    ap.add_argument("--merge", metavar="JSON",
                    help="an earlier results .json of this benchmark: its runs of each voice are "
                    "kept and not run again (e.g. the from-scratch rows measured earlier)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to features and train (repeatable); the acceptance run uses none")
    ap.add_argument("--base", metavar="DIR", help="the base folder (VOICELAB_BASE_DIR; default assets/base)")
    ap.add_argument("--corpus", metavar="LIST",
                    help="the base corpus's corpus.list (or its folder) for similarity to the base "
                    f"speakers (default: the base's recorded corpus, else {DEFAULT_CORPUS})")
    ap.add_argument("--work", default=str(RESULTS / "tmp" / "base"), help="scratch folder (emptied first)")
    ap.add_argument("--name", default="base", help="results file stem (default base; _quick is added with --quick)")
    args = ap.parse_args()
    if not LONG.is_dir():
        print(f"skipped: the fixtures are not at {LONG}")
        return 0
    voices = list(dict.fromkeys(args.voices))[:1] if args.quick else list(dict.fromkeys(args.voices))
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _LOG = work / "progress.log"
    sets = list(args.set) + (QUICK_SETS if args.quick else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.base:
        env["VOICELAB_BASE_DIR"] = str(Path(args.base).expanduser().resolve())
    base_folder = Path(env.get("VOICELAB_BASE_DIR") or REPO / "assets" / "base")
    corpus, corpus_note = corpus_list(args.corpus, base_folder)
    speakers = {e.speaker for e in read_list(corpus)} if corpus else set()
    say(f"bench_base: voices {', '.join(voices)}; base folder {base_folder} "
        f"({'has' if any(base_folder.glob('*.safetensors')) else 'no'} .safetensors); corpus "
        f"{corpus or '-'} ({len(speakers)} speakers; {corpus_note}); work {work}")  # fmt: skip
    merge = json.loads(Path(args.merge).read_text())["voices"] if args.merge else {}
    shared = {"merge": merge, "env": env, "log": work / "commands.log", "overrides": [x for s in sets for x in ("--set", s)],
              "quick": args.quick, "corpus": corpus, "corpus_speakers": speakers}  # fmt: skip
    name = f"{args.name}_quick" if args.quick else args.name
    result = {"machine": machine_info(), "quick": args.quick, "argv": sys.argv[1:], "overrides": sets,
              "base_dir": str(base_folder), "corpus_list": str(corpus) if corpus else None,
              "corpus_note": corpus_note, "corpus_speakers": sorted(speakers), "work": str(work),
              "voices": {}}  # fmt: skip
    failed = False
    for v in voices:
        try:
            result["voices"][v] = bench_voice(v, args, shared)
        except SystemExit as e:
            say(f"{v}: FAILED: {e}")
            result["voices"][v] = {"error": str(e), "passed": False}
        failed |= any("error" in r for r in [result["voices"][v], *result["voices"][v].get("runs", {}).values()])
        _write(result, name)  # after every voice: a long run keeps what it has
    result["accepted"] = all(r.get("passed") for r in result["voices"].values())
    result["from_base"] = all(r.get("runs", {}).get("default", {}).get("finetuned") for r in result["voices"].values())
    _write(result, name)
    print(_markdown(result))
    say(f"wrote {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")
    return 1 if failed else 0


def _write(result: dict, name: str) -> None:
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{name}.md").write_text(_markdown(result))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}"


def _f3(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _pair(p: list | None) -> str:
    return "-" if not p else f"{p[0]} {p[1]:.3f}"


def _yes(b: bool | None) -> str:
    return "pass" if b else "FAIL"


def _markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Issue 14: few-shot voices from the shipped base (one noisy ~75 s take each)",
        "",
        f"{m.get('date', '')} · {m.get('cpu', '')}, {m.get('cores')} cores, load "
        f"{m.get('load_average_1m')} · torch {m.get('torch')} · commit {str(m.get('commit'))[:7]}"
        f"{' (dirty)' if m.get('dirty') else ''} · defaults"
        f"{' + ' + ' '.join(r['overrides']) if r['overrides'] else ''}"
        f"{' · QUICK (procedure check only)' if r['quick'] else ''}",
        "",
        f"- base folder `{r['base_dir']}`; base corpus speakers: "
        + (f"{len(r['corpus_speakers'])} from `{r['corpus_list']}` ({r['corpus_note']})"
           if r["corpus_list"] else r["corpus_note"]),
        "- texts: each slice gets the take's proofread sentences it holds (>= 80% of a sentence's "
        "time inside the slice); a slice cutting a sentence or holding none is dropped",
        "- WER: pocketsphinx on the synthesis vs on the real recordings of the same held-out "
        "sentences; similarity: resemblyzer cosine to the voice's slices and to each other voice; "
        "RTF: synthesis on one thread",
        "",
    ]
    for v, p in r["voices"].items():
        lines += [f"## {v}", ""]
        if "error" in p:
            lines += [f"failed: {p['error']}", ""]
            continue
        s = p["slices"]
        lines += [
            f"- {s['slices']} slices: {s['texted']} with a text ({s['texted_audio_s']:.0f} s), "
            f"{s['dropped']} dropped; {s['sentences_used']} of {s['sentences']} take sentences used; "
            f"features {p['features']['wall_s']:.0f} s ({p['features']['summary'] or '-'})",
            f"- evaluated on {p['eval_sentences']} of {p['heldout_sentences']} held-out sentences",
            "",
            "| run | start | WER synthesis | WER real | gap (pt) | similarity to target | best base "
            "speaker | best other fixture voice | gap <= 15 | closest to target | train (min) | "
            "RTF (1 core) | blend share |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        probes: list[str] = []
        for name, q in p["runs"].items():
            if "error" in q:
                lines.append(f"| {name} | failed: {q['error']} |" + " |" * 10)
                continue
            start = ("base " if q.get("base") else "weights ") + Path(q["from"]).name \
                if q.get("from") else "scratch"  # fmt: skip
            lines.append(
                f"| {name} | {start} | {_pct(q['wer_synth'])} | {_pct(q['wer_real'])} | "
                f"{_pt(q['wer_gap_pt'])} | {_f3(q['similarity_target'])} | {_pair(q['best_base'])} | "
                f"{_pair(q['best_fixture'])} | {_yes(q['gap_ok'])} | {_yes(q['closest_ok'])} | "
                f"{q['train_min']:.1f} | {_f3(q['rtf'])} | "
                f"{'-' if q.get('blend_share') is None else format(q['blend_share'], '.2f')} |"
            )
            for t in q.get("blend_probe") or []:
                probes.append(f"| {name} | {t['share']:.2f} | {t['target']:.3f} | {t['closest']} "
                              f"{t['closest_sim']:.3f} | {t['margin']:+.3f} |")
        lines.append("")
        if probes:
            lines += ["The blend's choice (train.log: 20 new sentences per share, similarity to the "
                      "voice and to the closest base speaker):", "",
                      "| run | share | to the voice | closest base speaker | margin |",
                      "|---|---|---|---|---|", *probes, ""]  # fmt: skip
    if "accepted" in r:
        verdict = f"**{r['accepted']}**"
        if not r.get("from_base"):
            verdict += " (not every default run started from a base: this does not judge a base)"
        lines += [f"Accepted (every voice's default run: gap <= 15 points and closer to itself than "
                  f"to every other voice): {verdict}", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
