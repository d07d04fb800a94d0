"""The bench runner: good, failing, silent, slow and missing benchmark scripts, one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicelab.errors import VoicelabError
from voicelab.eval import bench
from voicelab.eval.machine import machine_info, machine_line


def _script(folder: Path, name: str, body: str) -> None:
    (folder / f"bench_{name}.py").write_text("import json, sys, time, pathlib\n" + body)


@pytest.fixture
def bench_dir(tmp_path: Path) -> tuple[Path, Path]:
    b, r = tmp_path / "benchmarks", tmp_path / "benchmarks" / "results"
    r.mkdir(parents=True)
    res = repr(str(r))
    _script(b, "good", f"""
quick = "--quick" in sys.argv
out = pathlib.Path({res})
out.joinpath("good.json").write_text(json.dumps({{"machine": {{"cores": 99}}, "date": "x",
    "quick": quick, "rows": [{{"name": "tiny", "steps_per_s": 12.5}}], "peak_ram_mb": 321}}))
out.joinpath("good.md").write_text("# good\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n")
""")
    _script(b, "split", f"""
name = "split_quick" if "--quick" in sys.argv else "split"
pathlib.Path({res}).joinpath(name + ".json").write_text(json.dumps({{"threads": 1, "rtf": 0.5}}))
""")
    _script(b, "bad", "print('loading'); raise SystemExit('bench_bad: no model found')\n")
    _script(b, "silent", "print('did nothing')\n")
    _script(b, "slow", "time.sleep(30)\n")
    # a stale result from an earlier run must not count as this run's
    (r / "silent.json").write_text('{"old": 1}')
    import os

    os.utime(r / "silent.json", (1, 1))
    return b, r


def test_every_outcome_is_reported_not_raised(bench_dir, tmp_path):
    b, r = bench_dir
    s = bench.run_benchmarks(quick=True, timeout_s=5, bench_dir=b, results_dir=r)
    by = {x.name: x for x in s.runs}
    assert set(by) == set(bench.EXPECTED) | {"good", "bad", "silent", "slow", "split"}
    assert by["split"].status == "ok" and by["split"].key_figures == {"rtf": 0.5, "threads": 1}
    assert by["good"].status == "ok" and by["good"].result["quick"] is True
    assert by["good"].key_figures == {"rows[tiny].steps_per_s": 12.5, "peak_ram_mb": 321}

    assert by["bad"].status == "failed" and "no model found" in by["bad"].error
    assert by["silent"].status == "no result" and by["silent"].result is None
    assert by["slow"].status == "timeout"
    assert all(by[n].status == "missing" for n in bench.EXPECTED)
    j, md = bench.write_summary(s, tmp_path / "out")
    text = md.read_text()
    assert "| good | ok |" in text and "| bad | failed |" in text and "| prepare | missing |" in text
    assert "## good (`good`)" in text and "| 1 | 2 |" in text  # the script's own table, included
    assert s.machine["commit"] is None or s.machine["commit"][:10] in text
    assert json.loads(j.read_text())["quick"] is True


def test_only_and_unknown_names(bench_dir):
    b, r = bench_dir
    s = bench.run_benchmarks(names=["good"], bench_dir=b, results_dir=r)
    assert [x.name for x in s.runs] == ["good"] and s.runs[0].result["quick"] is False
    with pytest.raises(VoicelabError, match="no benchmark named nope"):
        bench.run_benchmarks(names=["nope"], bench_dir=b, results_dir=r)


def test_machine_info_describes_this_machine():
    m = machine_info()
    assert m["cores"] >= 1 and m["torch"] and m["date"].endswith("UTC")
    assert m["ram_gib"] is None or m["ram_gib"] > 0
    line = machine_line(m)
    assert m["cpu"] in line and f"torch {m['torch']}" in line


def test_cli_bench_writes_the_table(bench_dir, tmp_path, monkeypatch, capsys):
    from voicelab import cli

    b, r = bench_dir
    monkeypatch.setattr(bench, "BENCH_DIR", b)
    monkeypatch.setattr(bench, "RESULTS_DIR", r)
    real = bench.run_benchmarks
    monkeypatch.setattr(bench, "run_benchmarks",
                        lambda **kw: real(**kw, bench_dir=b, results_dir=r))  # fmt: skip
    assert cli.main(["bench", "--quick", "--only", "good", "--only", "bad", "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "failed" in out and "1 not ok: bad" in out
    assert (tmp_path / "o" / "summary.md").is_file()


def test_key_figures_put_measurements_first():
    res = {"machine": {"cores": 2}, "results": [{"preset": "tiny", "threads": 1, "repeat": 3,
           "median": {"rtf": 0.08, "first_audio_s": 0.43}, "runs": [{"rtf": 9.9}]}]}
    assert bench.key_figures(res) == {"results[tiny].median.rtf": 0.08,
                                      "results[tiny].median.first_audio_s": 0.43,
                                      "results[tiny].threads": 1, "results[tiny].repeat": 3}
