"""`python -m voicelab bench [--quick] [-o DIR]`: run every benchmark, write one table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voicelab.commands.prepare import TqdmProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run every benchmarks/bench_*.py and write one results table",
        description="Run each benchmarks/bench_NAME.py in its own process (with --quick when "
        "asked), read the benchmarks/results/NAME.json it writes, and write summary.md + "
        "summary.json with the machine (CPU, cores, RAM, torch, GPU), the date and the git "
        "commit. A missing or failing benchmark is reported in the table; the others still run.",
    )
    p.add_argument("--quick", action="store_true", help="short runs (a few minutes on a CPU)")
    p.add_argument("-o", "--out", type=Path, help="where summary.md/.json go "
                   "(default: benchmarks/results)")  # fmt: skip
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this benchmark (repeatable), e.g. --only synth")  # fmt: skip
    p.add_argument("--timeout", type=float, help="seconds per benchmark before it is stopped "
                   "(default 600 with --quick, else 3600)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voicelab.eval.bench import RESULTS_DIR, run_benchmarks, write_summary

    with TqdmProgress("bench", unit="benchmark") as progress:
        summary = run_benchmarks(quick=args.quick, names=args.only, timeout_s=args.timeout,
                                 progress=progress, out_dir=args.out)  # fmt: skip
    _, md = write_summary(summary, args.out or RESULTS_DIR)
    for r in summary.runs:
        note = "" if r.status == "ok" else f"  ({(r.error or '').splitlines()[0] if r.error else ''})"
        wall = f"{r.wall_s:6.1f} s" if r.wall_s is not None else "     - "
        print(f"{r.name:12s} {r.status:10s} {wall}{note}")
    bad = [r.name for r in summary.runs if r.status != "ok"]
    print(f"table: {md}" + (f"  ({len(bad)} not ok: {', '.join(bad)})" if bad else ""),
          file=sys.stdout)  # fmt: skip
    return 0
