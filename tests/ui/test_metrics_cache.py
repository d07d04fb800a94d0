"""The Train tab's metrics reader (ui/plots.MetricsCache) when metrics.jsonl is rewritten: a
resume from an older checkpoint drops the abandoned timeline's records (runfiles.truncate_metrics)
and the trainer then appends the new timeline, so the file can be shorter, or as long as before,
with other bytes: the plots must show only the surviving timeline, never a stale position."""

from __future__ import annotations

import json
import os
from pathlib import Path

from voicelab.training import runfiles
from voicelab.ui import plots


def lines(steps, value: float) -> str:
    return "".join(json.dumps({"step": s, "loss/mel": value + s}) + "\n" for s in steps)


def read(cache: plots.MetricsCache, run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss/mel"]) for r in cache.records(run)]


def test_a_file_rewritten_by_truncate_metrics_is_read_again(tmp_path):
    path = tmp_path / runfiles.METRICS
    path.write_text(lines(range(1, 7), 0.0))
    cache = plots.MetricsCache()
    assert len(read(cache, tmp_path)) == 6
    assert runfiles.truncate_metrics(tmp_path, 3) == 3  # resume from step 3 (atomic rewrite)
    with open(path, "a") as f:  # the new timeline grows past the old length before the next poll
        f.write(lines(range(4, 9), 100.0))
    assert read(cache, tmp_path) == [(1, 1.0), (2, 2.0), (3, 3.0)] + [(s, 100.0 + s) for s in range(4, 9)]


def test_a_file_rewritten_in_place_to_the_same_length_is_read_again(tmp_path):
    path = tmp_path / runfiles.METRICS
    path.write_text(lines(range(1, 7), 0.0))
    cache = plots.MetricsCache()
    assert len(read(cache, tmp_path)) == 6
    inode, size = os.stat(path).st_ino, os.stat(path).st_size
    with open(path, "r+") as f:  # same inode, same size, other records after step 3
        f.write(lines(range(1, 4), 0.0) + lines(range(4, 7), 3.0))
    assert os.stat(path).st_ino == inode and os.stat(path).st_size == size
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))  # the write moved mtime on
    assert read(cache, tmp_path) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 7.0), (5, 8.0), (6, 9.0)]


def test_an_unchanged_file_is_not_read_again(tmp_path, monkeypatch):
    path = tmp_path / runfiles.METRICS
    path.write_text(lines(range(1, 4), 0.0))
    cache = plots.MetricsCache()
    first = read(cache, tmp_path)
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
    assert read(cache, tmp_path) == first
