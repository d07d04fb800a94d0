"""Hardening: every bad input of issue 16 that a command line can give, as real CLI runs.

    python benchmarks/bad_inputs.py [--only SUBSTRING]

Each case runs `python -m voicelab ...` as a subprocess in a fresh temporary VOICELAB_HOME that
holds two voices (alice: slices, a tiny trained run and a good export; bob: typed texts in
slices/dataset.list and a recording in raw/), plus whatever bad file the case needs. Per case it
records the exit code, whether stderr holds a Python traceback, whether the answer was one line
`error: ...` with exit 1 (argparse's own usage errors exit 2 and are counted apart), and which
files that existed before the run were changed or removed ("lost or overwritten"), or were left
behind by a refused run.

Cases whose fix belongs to another helper are marked `pending` with the owner: they run too, so
the table shows when they become fixed.

Writes benchmarks/results/bad_inputs.json and bad_inputs.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OUT = REPO / "benchmarks" / "results"
ASSETS = REPO / "tests" / "assets"
REF = ASSETS / "slt_000.wav"  # 3.4 s: a valid reference clip


@dataclass
class Case:
    name: str
    item: str  # the item number
    argv: list[str]  # after `python -m voicelab`; "{home}", "{tmp}", "{good}" are filled in
    setup: Callable[[Path, Path], None] | None = None  # (home, tmp) -> None: make the bad input
    owner: str = "H6"  # whoever fixes it; anything else is reported as pending on them
    cwd: str = "{tmp}/cwd/sub"
    needle: str = ""  # a word the error line should contain (recorded, not required)


@dataclass
class Outcome:
    name: str
    item: str
    owner: str
    rc: int
    one_line_exit_1: bool
    usage_error: bool
    traceback: bool
    error_line: str
    changed: list[str] = field(default_factory=list)  # existing files modified or removed
    created: list[str] = field(default_factory=list)  # new files after a refused run
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# the workspace
# --------------------------------------------------------------------------------------------


def make_home(home: Path, tmp: Path) -> Path:
    """alice (slices, a tiny gpt-stage run, an export `good`), bob (typed list, raw/ file)."""
    import torch

    from voicelab.config import config_to_dict, load_config
    from voicelab.export import export_run
    from voicelab.listfile import Entry, write_list
    from voicelab.models.build import build_gpt, build_sovits
    from voicelab.training import checkpoint as ck
    from voicelab.workspace import get_voice

    os.environ["VOICELAB_HOME"] = str(home)
    cfg = load_config("tiny", ["train.device=cpu"])
    for name in ("alice", "bob", "carol"):
        v = get_voice(name).create()
        for wav in ("slt_000.wav", "slt_001.wav"):
            shutil.copy(ASSETS / wav, v.slices / wav)
        write_list(v.dataset_list, [
            Entry(v.slices / "slt_000.wav", name, "en", "The morning train left the station."),
            Entry(v.slices / "slt_001.wav", name, "en", f"{name} typed these words by hand."),
        ])  # fmt: skip
    shutil.copy(ASSETS / "rms_000.wav", get_voice("bob").raw / "take1.wav")
    alice = get_voice("alice")
    torch.manual_seed(0)
    sovits, gpt = build_sovits(cfg), build_gpt(cfg)
    models = {"sovits": sovits.state_dict(), "gpt": gpt.state_dict(), "disc": {}}
    state = {
        ck.K_STAGE: "gpt", ck.K_STEP: 10, ck.K_STAGE_STEP: 10, ck.K_EPOCH: 0, ck.K_EPOCH_POS: 0,
        ck.K_MODELS: models, ck.K_OPTIMIZERS: {}, ck.K_SCHEDULERS: {}, ck.K_SCALER: {},
        ck.K_EMA: {"sovits": models["sovits"], "gpt": models["gpt"]}, ck.K_RNG: {},
        ck.K_METRICS: {}, ck.K_CONFIG: config_to_dict(cfg), ck.K_DATASET_HASH: "x",
    }  # fmt: skip
    ck.save_checkpoint(alice.run_dir("main"), state)
    good = export_run(alice, "main", "good")
    (tmp / "cwd" / "sub").mkdir(parents=True)
    (tmp / "notes.txt").write_text("a file of the person's own\n")
    return good


def _tampered(home: Path, name: str, edit_meta=None, edit_tensors=None, raw_json: str | None = None):
    """A copy of alice's good export with its JSON or tensors changed (sha256 kept consistent)."""
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    ex = home / "alice" / "exports"
    blob = (ex / "good.safetensors").read_bytes()
    meta = json.loads((ex / "good.json").read_text())
    if edit_tensors:
        t = st_load(blob)
        edit_tensors(t)
        blob = st_save(t)
    meta["sha256"] = hashlib.sha256(blob).hexdigest()
    if edit_meta:
        edit_meta(meta)
    (ex / f"{name}.safetensors").write_bytes(blob)
    (ex / f"{name}.json").write_text(raw_json if raw_json is not None else json.dumps(meta))


def _poison(value: float):
    def edit(t):
        k = next(k for k, v in t.items() if k.startswith("gpt.") and v.is_floating_point())
        t[k] = t[k].clone()
        t[k].view(-1)[0] = value

    return edit


def _huge_hidden(meta):
    meta["config"]["model"]["hidden"] = 65536


def _write(rel: str, data: bytes | str):
    def setup(home: Path, tmp: Path) -> None:
        p = Path(rel.format(home=home, tmp=tmp))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))

    return setup


def _hand_edit_long_text(home: Path, tmp: Path) -> None:
    lst = home / "carol" / "slices" / "dataset.list"
    lines = lst.read_text().splitlines()
    text = ("The morning train left the station a few minutes early. " * 32).strip()  # ~1,800
    lines[1] = lines[1].rsplit("|", 1)[0] + "|" + text
    lst.write_text("\n".join(lines) + "\n")


class Skip(Exception):
    """The case cannot run on this machine (recorded as skipped)."""


MOUNTS: list[Path] = []


def _mount_full(home: Path, tmp: Path) -> None:
    """A 64 kB file system: smaller than any export, so the export must refuse cleanly."""
    full = tmp / "full"
    full.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)],
                       capture_output=True)  # fmt: skip
    if r.returncode:
        raise Skip("cannot mount a small tmpfs here (needs root)")
    MOUNTS.append(full)


SYNTH = ["synth", "--text", "Hello there.", "--ref", str(REF), "--device", "cpu"]


def cases() -> list[Case]:
    h = "{home}"
    return [
        # item 2: transcribe --export overwrote anything
        Case("export list onto another voice's dataset.list", "2",
             ["transcribe", "--voice", "alice", "--export", f"{h}/bob/slices/dataset.list"]),
        Case("export list onto another voice's list with --force", "2",
             ["transcribe", "--voice", "alice", "--export", f"{h}/bob/slices/dataset.list", "--force"]),
        Case("export list into raw/", "2",
             ["transcribe", "--voice", "alice", "--export", f"{h}/bob/raw/take1.wav", "--force"]),
        Case("export list onto an existing file outside", "2",
             ["transcribe", "--voice", "alice", "--export", "{tmp}/notes.txt"]),
        # item 5: an orphan .safetensors from an interrupted export
        Case("export over an orphan .safetensors", "5",
             ["export", "--voice", "alice", "-o", "half"],
             _write("{home}/alice/exports/half.safetensors", b"half-written")),
        Case("export onto a full disk (a 64 kB tmpfs; needs root, else skipped)", "5",
             ["export", "--voice", "alice", "-o", "{tmp}/full/x"], _mount_full, cwd="{tmp}/cwd/sub"),
        # item 7: transcript length
        Case("import a 1 MB text", "7", ["transcribe", "--voice", "alice", "--from-list", "{tmp}/huge.list"],
             _write("{tmp}/huge.list", "slt_000.wav|x|en|" + "word " * 200_000 + "\n")),
        Case("train on a 1,800-character text edited into dataset.list", "7",
             ["train", "--voice", "carol", "--preset", "tiny", "--set", "train.device=cpu"],
             _hand_edit_long_text),
        # item 8: tracebacks
        Case("export -o /", "8", ["export", "--voice", "alice", "-o", "/"]),
        Case("export -o ./", "8", ["export", "--voice", "alice", "-o", "./"]),
        Case("synth --temperature nan", "8",
             [*SYNTH, "--model", "{good}", "--temperature", "nan", "-o", "a.wav"]),
        Case("synth --seed beyond 64 bits", "8",
             [*SYNTH, "--model", "{good}", "--seed", str(2**70), "-o", "a.wav"]),
        Case("bundle .json nested 200,000 levels", "8",
             [*SYNTH, "--model", f"{h}/alice/exports/nested.safetensors", "-o", "a.wav"],
             lambda home, tmp: _tampered(home, "nested", raw_json="[" * 200_000 + "]" * 200_000)),
        Case("bundle with NaN weights", "8",
             [*SYNTH, "--model", f"{h}/alice/exports/nan.safetensors", "-o", "a.wav"],
             lambda home, tmp: _tampered(home, "nan", edit_tensors=_poison(float("nan")))),
        Case("bundle with 1e30 weights", "8",
             [*SYNTH, "--model", f"{h}/alice/exports/big.safetensors", "-o", "a.wav"],
             lambda home, tmp: _tampered(home, "big", edit_tensors=_poison(1e30))),
        Case("bundle config claims model.hidden=65536", "8",
             [*SYNTH, "--model", f"{h}/alice/exports/wide.safetensors", "-o", "a.wav"],
             lambda home, tmp: _tampered(home, "wide", edit_meta=_huge_hidden)),
        Case(".list that is not UTF-8", "8", ["transcribe", "--voice", "alice", "--from-list", "{tmp}/latin1.list"],
             _write("{tmp}/latin1.list", "slt_000.wav|x|en|caf\xe9 cr\xe8me\n".encode("latin-1")), owner="H2"),
        Case("binary .list", "8", ["transcribe", "--voice", "alice", "--from-list", "{tmp}/binary.list"],
             _write("{tmp}/binary.list", bytes(range(256)) * 4), owner="H2"),
        # item 14: smaller ones
        Case("export --run ''", "14", ["export", "--voice", "alice", "--run", ""]),
        Case("export -o ../", "14", ["export", "--voice", "alice", "-o", "../"]),
        Case("export -o into a missing folder", "14", ["export", "--voice", "alice", "-o", "{tmp}/no/such/dir/x"]),
        Case("synth -o ../", "14", [*SYNTH, "--model", "{good}", "-o", "../"]),
        Case("synth -o into a missing folder", "14", [*SYNTH, "--model", "{good}", "-o", "{tmp}/no/such/x.wav"]),
        Case("synth --device cuda_anything", "14", [*SYNTH, "--model", "{good}", "--device", "cuda_x", "-o", "a.wav"]),
        Case("transcribe --from-list DIR", "14", ["transcribe", "--voice", "alice", "--from-list", "{tmp}"]),
        Case("train.device=cuda-anything", "14",
             ["train", "--voice", "alice", "--preset", "tiny", "--set", "train.device=cuda-anything"]),
        Case("train --run ''", "14", ["train", "--voice", "alice", "--preset", "tiny", "--run", ""], owner="H1"),
        Case("checkpoints --run ''", "14", ["checkpoints", "--voice", "alice", "--run", ""], owner="H1"),
        Case("synth a checkpoint of random bytes", "14",
             [*SYNTH, "--model", "{tmp}/random.pt", "-o", "a.wav"],
             _write("{tmp}/random.pt", os.urandom(4096)), owner="lead (training/checkpoint.py)"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def snapshot(roots: list[Path]) -> dict[str, str]:
    """{path: sha256} of every file under `roots` (the studio's own cache excluded)."""
    out = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and ".studio" not in p.parts and "__pycache__" not in p.parts:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, home: Path, tmp: Path, good: Path, env: dict) -> Outcome:
    if case.setup:
        case.setup(home, tmp)
    fill = {"home": str(home), "tmp": str(tmp), "good": str(good)}
    argv = [a.format(**fill) for a in case.argv]
    before = snapshot([home, tmp])
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "voicelab", *argv], cwd=case.cwd.format(**fill),
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    seconds = time.perf_counter() - t0
    after = snapshot([home, tmp])
    err = proc.stderr
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ") or ": error: " in ln]
    traceback = "Traceback (most recent call last)" in err
    one_line = proc.returncode == 1 and not traceback and len(errors) == 1
    usage = proc.returncode == 2 and not traceback and len(errors) == 1
    changed = sorted(p for p in before if after.get(p) != before[p])
    created = sorted(p for p in after if p not in before) if proc.returncode else []
    rel = lambda p: p.replace(str(home), "$HOME").replace(str(tmp), "$TMP")  # noqa: E731
    line = errors[0] if errors else (err.strip().splitlines() or [""])[-1]
    return Outcome(case.name, case.item, case.owner, proc.returncode, one_line, usage, traceback,
                   rel(line)[:300], [rel(p) for p in changed], [rel(p) for p in created],
                   round(seconds, 2))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="run only cases whose name contains this")
    args = ap.parse_args()
    from voicelab.eval.machine import machine_info

    selected = [c for c in cases() if not args.only or args.only in c.name]
    with tempfile.TemporaryDirectory(prefix="voicelab-bad-") as d:
        tmp = Path(d)
        home = tmp / "workspace"
        good = make_home(home, tmp)
        env = dict(os.environ, VOICELAB_HOME=str(home), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        outcomes = []
        skipped = []
        for c in selected:
            try:
                o = run_case(c, home, tmp, good, env)
            except Skip as e:
                skipped.append(f"{c.name}: {e}")
                print(f"skip [{c.item:>2}] {c.name}: {e}", flush=True)
                continue
            outcomes.append(o)
            mark = "ok " if o.one_line_exit_1 and not o.changed else "BAD"
            print(f"{mark} [{o.item:>2}] {o.name}: rc={o.rc} {o.error_line[:110]}", flush=True)
        for m in MOUNTS:
            subprocess.run(["umount", str(m)], check=False)

    def tally(rows: list[Outcome]) -> dict:
        return {
            "cases": len(rows),
            "one_line_exit_1": sum(o.one_line_exit_1 for o in rows),
            "argparse_usage_errors": sum(o.usage_error for o in rows),
            "tracebacks": sum(o.traceback for o in rows),
            "files_lost_or_overwritten": sum(len(o.changed) for o in rows),
            "files_left_by_refused_runs": sum(len(o.created) for o in rows),
        }

    mine = [o for o in outcomes if o.owner == "H6"]
    pending = [o for o in outcomes if o.owner != "H6"]
    result = {
        "benchmark": "bad_inputs",
        "machine": machine_info(),
        "summary": {"all": tally(outcomes), "fixed_here": tally(mine), "pending_elsewhere": tally(pending)},
        "pending_owners": sorted({f"{o.name}: {o.owner}" for o in pending}),
        "skipped": skipped,
        "cases": [o.__dict__ for o in outcomes],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "" if not args.only else "_only"
    (OUT / f"bad_inputs{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]["all"]
    md = [
        "# Bad inputs (issue 16): every one answered in one line?",
        "",
        f"{result['machine']['date']}, voicelab {result['machine']['voicelab']}, "
        f"commit {result['machine'].get('commit', '?')}. Each case is a real `python -m voicelab` "
        "run in a fresh temporary VOICELAB_HOME.",
        "",
        f"**{s['one_line_exit_1']} of {s['cases']}** answered with one `error:` line and exit 1; "
        f"{s['argparse_usage_errors']} argparse usage errors (exit 2); **{s['tracebacks']} tracebacks**; "
        f"**{s['files_lost_or_overwritten']} files lost or overwritten**; "
        f"{s['files_left_by_refused_runs']} files left behind by refused runs.",
        "",
        "| item | case | owner | exit | one line | traceback | files changed | answer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        answer = o.error_line.replace("|", "\\|")[:160]
        md.append(f"| {o.item} | {o.name} | {o.owner} | {o.rc} | {'yes' if o.one_line_exit_1 else 'NO'} | "
                  f"{'YES' if o.traceback else 'no'} | {len(o.changed)} | {answer} |")
    md += ["", "Cases owned elsewhere run too (pending until their owner's fix lands): "
           + ", ".join(result["pending_owners"]) + "."]
    if skipped:
        md += ["", "Skipped on this machine: " + "; ".join(skipped) + "."]
    (OUT / f"bad_inputs{suffix}.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
