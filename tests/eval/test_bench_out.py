"""`bench -o DIR` leaves the checkout's tracked benchmarks/results as it was (issue 15.20)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from voicelab.eval import bench


def test_out_dir_run_leaves_tracked_results_untouched(tmp_path: Path):
    b, r, out = tmp_path / "benchmarks", tmp_path / "benchmarks" / "results", tmp_path / "out"
    r.mkdir(parents=True)
    (b / "bench_split.py").write_text(
        "import json, sys, pathlib\n"
        "name = 'split_quick' if '--quick' in sys.argv else 'split'\n"
        f"d = pathlib.Path({str(r)!r})\n"
        "d.joinpath(name + '.json').write_text(json.dumps({'rtf': 0.25}))\n"
        "d.joinpath(name + '.md').write_text('# fresh\\n')\n")
    tracked = r / "split_quick.json"
    tracked.write_text('{"rtf": 0.5}\n')
    os.utime(tracked, (1_000_000, 1_000_000))
    summary = bench.run_benchmarks(quick=True, names=["split"], bench_dir=b, results_dir=r,
                                   out_dir=out)
    (run,) = summary.runs
    assert run.status == "ok" and run.result == {"rtf": 0.25}
    assert tracked.read_text() == '{"rtf": 0.5}\n' and tracked.stat().st_mtime == 1_000_000
    assert not (r / "split_quick.md").exists(), "a file the checkout did not have is not left"
    assert json.loads((out / "split_quick.json").read_text()) == {"rtf": 0.25}
    assert (out / "split_quick.md").read_text() == "# fresh\n"
    # without -o the run updates the results as before
    bench.run_benchmarks(quick=True, names=["split"], bench_dir=b, results_dir=r)
    assert json.loads(tracked.read_text()) == {"rtf": 0.25}
