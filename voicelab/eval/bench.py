"""Run every benchmarks/bench_*.py and gather their results into one table.

    summary = run_benchmarks(quick=True)          # each script in its own subprocess
    write_summary(summary, "benchmarks/results")  # summary.json + summary.md

Each script is `python benchmarks/bench_<name>.py [--quick]` and writes
benchmarks/results/<name>.json (and, if it likes, <name>.md with its own table). A script that is
missing, fails, runs past its time limit or leaves no fresh result is reported as such in the
table: one broken benchmark never hides the others.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voicelab.errors import VoicelabError
from voicelab.eval.machine import REPO, machine_info, machine_line
from voicelab.fileio import write_json_atomic, write_text_atomic

BENCH_DIR = REPO / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
# The benchmarks the project promises (issue 8); others found on disk are run as well.
EXPECTED = ("prepare", "asr", "synth", "train", "checkpoint", "ui")
SKIP_KEYS = {"machine", "date", "commit", "dirty", "quick", "name", "argv", "runs"}
MAX_KEY_FIGURES = 8
LABEL_KEYS = ("name", "preset", "case", "voice", "condition", "device", "size", "stage")


@dataclass
class BenchRun:
    name: str
    status: str  # ok | failed | timeout | missing | no result
    script: str | None = None
    returncode: int | None = None
    wall_s: float | None = None
    result: dict | None = None  # the script's own JSON
    markdown: str | None = None  # the script's own table, when it wrote <name>.md
    error: str | None = None  # last lines of its output when it did not succeed
    key_figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchSummary:
    machine: dict
    quick: bool
    runs: list[BenchRun]

    def to_dict(self) -> dict:
        return {"machine": self.machine, "quick": self.quick, "runs": [asdict(r) for r in self.runs]}


def discover(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    """{name: script} for every bench_<name>.py in `bench_dir`."""
    if not bench_dir.is_dir():
        return {}
    return {p.stem[len("bench_"):]: p for p in sorted(bench_dir.glob("bench_*.py"))}


# Leaf names that are measurements (shown first) and ones that are settings (shown last).
METRIC_RE = re.compile(r"(rtf|wer|per_s|_s$|_ms$|seconds|_mb|mb_|gib|mfu|latency|x_real|speed|loss)")
SETTING_RE = re.compile(r"(threads|repeat|batch_size|seed|^steps$|^utterances$|words$|^tokens$)")


def key_figures(result: Any, limit: int = MAX_KEY_FIGURES) -> dict[str, Any]:
    """The headline numbers of a result JSON, flattened to 'a.b[row].c' keys, for the overview.

    Measurements (rtf, wer, .._s, ..per_s, MB ...) come before settings (threads, repeat ...);
    machine details, bookkeeping and raw per-repeat `runs` are left out.
    """
    found: list[tuple[str, Any]] = []

    def walk(obj: Any, prefix: str, depth: int) -> None:
        if depth > 5 or len(found) > 200:
            return
        if isinstance(obj, dict):
            for k, v in obj.items():
                if str(k) not in SKIP_KEYS:
                    walk(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        elif isinstance(obj, list):
            for i, v in enumerate(obj[:4]):
                label = None
                if isinstance(v, dict):  # name a row by its identifying fields: flite_slt/clean
                    label = "/".join([v[k] for k in LABEL_KEYS if isinstance(v.get(k), str)][:2])
                walk(v, f"{prefix}[{label or i}]", depth + 1)
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            found.append((prefix, round(obj, 4) if isinstance(obj, float) else obj))

    walk(result, "", 0)

    def rank(item: tuple[str, Any]) -> int:
        path = re.sub(r"\[[^]]*\]", "", item[0].lower())  # row labels are names, not units
        leaf = path.rsplit(".", 1)[-1]
        if SETTING_RE.search(leaf):
            return 2
        return 0 if any(METRIC_RE.search(part) for part in path.split(".")) else 1

    return dict(sorted(found, key=rank)[:limit])


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_one(name: str, script: Path | None, quick: bool, timeout_s: float,
            results_dir: Path = RESULTS_DIR) -> BenchRun:  # fmt: skip
    """Run one benchmark script in a subprocess and collect its fresh result."""
    if script is None or not script.is_file():
        return BenchRun(name, "missing", error=f"benchmarks/bench_{name}.py does not exist yet")
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
    env = dict(os.environ)
    # the scripts import voicelab from this checkout, wherever they are started from
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return BenchRun(name, "timeout", str(script.relative_to(REPO) if script.is_relative_to(REPO) else script),
                        None, time.time() - start, error=f"ran past {timeout_s:.0f} s\n{_tail(out)}")  # fmt: skip
    wall = time.time() - start
    rel = str(script.relative_to(REPO)) if script.is_relative_to(REPO) else str(script)
    run = BenchRun(name, "ok", rel, proc.returncode, wall)
    # a result older than this run is a leftover from an earlier one: never report it as new
    def fresh_file(p: Path) -> bool:
        return p.is_file() and p.stat().st_mtime >= start - 1

    # some scripts keep quick results apart (<name>_quick.json): prefer those after --quick
    stems = [f"{name}_quick", name] if quick else [name]
    res_json = next((results_dir / f"{s}.json" for s in stems if fresh_file(results_dir / f"{s}.json")),
                    results_dir / f"{name}.json")  # fmt: skip
    res_md = res_json.with_suffix(".md")
    fresh = fresh_file(res_json)
    if proc.returncode != 0:
        run.status = "failed"
        run.error = f"exit code {proc.returncode}\n{_tail(proc.stderr or proc.stdout)}"
    elif not fresh:
        run.status = "no result"
        run.error = f"finished but did not write {res_json.relative_to(REPO) if res_json.is_relative_to(REPO) else res_json}"
    if fresh:
        try:
            run.result = json.loads(res_json.read_text(encoding="utf-8"))
            run.key_figures = key_figures(run.result)
        except (OSError, ValueError) as e:
            run.status, run.error = "failed", f"{res_json.name} is not valid JSON: {e}"
        if fresh_file(res_md):
            run.markdown = res_md.read_text(encoding="utf-8")
    return run


def _result_files(name: str, results_dir: Path) -> list[Path]:
    return [results_dir / f"{stem}{ext}" for stem in (f"{name}_quick", name) for ext in (".json", ".md")]


def run_elsewhere(name: str, script: Path | None, quick: bool, timeout_s: float,
                  results_dir: Path, out_dir: Path) -> BenchRun:  # fmt: skip
    """run_one, leaving results_dir (the checkout's tracked benchmarks/results) as it was: the
    script's fresh files are copied to `out_dir` and the checkout's own files put back (the
    scripts always write into benchmarks/results)."""
    files = _result_files(name, results_dir)
    before = {p: p.read_bytes() for p in files if p.is_file()}
    stat = {p: (p.stat().st_atime, p.stat().st_mtime) for p in before}
    try:
        run = run_one(name, script, quick, timeout_s, results_dir)
    finally:
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in files:
            if p.is_file() and (p not in before or p.read_bytes() != before[p]):
                write_text_atomic(out_dir / p.name, p.read_text(encoding="utf-8", errors="replace"))
            if p in before:
                if not p.is_file() or p.read_bytes() != before[p]:
                    p.write_bytes(before[p])
                os.utime(p, stat[p])  # unchanged in every way git (and a reader) can see
            elif p.is_file():
                p.unlink()
    return run


def run_benchmarks(
    quick: bool = False,
    names: list[str] | None = None,
    timeout_s: float | None = None,
    bench_dir: Path = BENCH_DIR,
    results_dir: Path = RESULTS_DIR,
    progress: Callable[[int, int, str], None] | None = None,
    out_dir: Path | None = None,
) -> BenchSummary:
    """Run the named benchmarks (default: the expected ones plus any others on disk).

    `out_dir` other than `results_dir` (`bench -o DIR`): the scripts' result files go there
    and the checkout's benchmarks/results is left exactly as it was."""
    found = discover(bench_dir)
    todo = names or list(dict.fromkeys([*EXPECTED, *found]))
    unknown = [n for n in todo if n not in found and n not in EXPECTED]
    if names and unknown:
        raise VoicelabError(f"no benchmark named {', '.join(unknown)}: choose from "
                            f"{', '.join(sorted(set(found) | set(EXPECTED)))}")  # fmt: skip
    limit = timeout_s or (600.0 if quick else 3600.0)
    # Before anything runs: the scripts rewrite benchmarks/results/, which would otherwise make
    # every checkout look modified ("uncommitted changes") by the time the table is written.
    machine = machine_info()
    runs = []
    for i, name in enumerate(todo):
        if progress:
            progress(i, len(todo), name)
        if out_dir is not None and Path(out_dir).resolve() != Path(results_dir).resolve():
            runs.append(run_elsewhere(name, found.get(name), quick, limit, results_dir, Path(out_dir)))
        else:
            runs.append(run_one(name, found.get(name), quick, limit, results_dir))
    if progress:
        progress(len(todo), len(todo), "done")
    return BenchSummary(machine=machine, quick=quick, runs=runs)


def _cell(v: Any) -> str:
    return str(v).replace("|", "/").replace("\n", " ")


def to_markdown(summary: BenchSummary) -> str:
    m = summary.machine
    lines = [
        "# voicelab benchmarks",
        "",
        f"Machine: {machine_line(m)}",
        f"Mode: {'--quick' if summary.quick else 'full'}",
        "",
        "| benchmark | status | wall s | key figures |",
        "|---|---|---|---|",
    ]
    for r in summary.runs:
        figs = ", ".join(f"{k}={v}" for k, v in r.key_figures.items())
        if r.status != "ok":
            why = (r.error or "").splitlines()
            figs = (figs + "; " if figs else "") + (why[0] if why else "")
        wall = f"{r.wall_s:.1f}" if r.wall_s is not None else "-"
        lines.append(f"| {r.name} | {r.status} | {wall} | {_cell(figs) or '-'} |")
    for r in summary.runs:
        if r.markdown:
            body = r.markdown.strip()
            if body.startswith("#"):  # the script's own title becomes the section heading
                first, _, rest = body.partition("\n")
                body = f"## {first.lstrip('#').strip()} (`{r.name}`)\n{rest}"
            else:
                body = f"## {r.name}\n\n{body}"
            lines += ["", body]
    failed = [r for r in summary.runs if r.status in ("failed", "timeout") and r.error]
    if failed:
        lines += ["", "## Problems", ""]
        for r in failed:
            lines += [f"- **{r.name}** ({r.status}):", "", "```", r.error, "```"]
    return "\n".join(lines) + "\n"


def write_summary(summary: BenchSummary, out_dir: Path | str = RESULTS_DIR) -> tuple[Path, Path]:
    """summary.json + summary.md in `out_dir`."""
    out_dir = Path(out_dir)
    j = write_json_atomic(out_dir / "summary.json", summary.to_dict())
    md = write_text_atomic(out_dir / "summary.md", to_markdown(summary))
    return j, md
