"""benchmarks/bench_base.py's pure parts: slice times from names, slice -> take sentence texts,
and which weights a run started from. (The benchmark itself is a long CLI run, not a test.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_base  # noqa: E402

SENTENCES = [  # a fake take: four sentences with pauses between them
    {"start": 0.8, "end": 4.0, "text": "One two three."},
    {"start": 5.0, "end": 8.0, "text": "Four  five six."},
    {"start": 9.0, "end": 12.0, "text": "Seven eight."},
    {"start": 13.0, "end": 16.0, "text": "Nine ten."},
]


def test_slice_span_reads_the_slicers_file_name():
    assert bench_base.slice_span("pico_en-US_0000500_0004080.wav") == (0.5, 4.08)
    assert bench_base.slice_span("my_take_2_0012345_0067890.wav") == (12.345, 67.89)
    assert bench_base.slice_span("slice_0003.wav") is None


def test_texts_for_slices_maps_held_sentences_and_drops_cuts():
    slices = [
        ("a.wav", 0.9, 4.3),  # 97% of sentence 1: its onset is past the json start
        ("b.wav", 4.5, 12.4),  # sentences 2 and 3 whole, joined in time order
        ("c.wav", 12.8, 14.5),  # half of sentence 4: a cut, dropped
        ("d.wav", 14.6, 17.0),  # the other half
        ("e.wav", 17.5, 19.0),  # after the last sentence: nothing
    ]
    got = {m.file: m for m in bench_base.texts_for_slices(slices, SENTENCES)}
    assert got["a.wav"].text == "One two three." and got["a.wav"].sentences == (0,)
    assert got["b.wav"].text == "Four five six. Seven eight." and got["b.wav"].sentences == (1, 2)
    assert got["c.wav"].text is None and "sentence 4 (50% inside)" in got["c.wav"].why
    assert got["d.wav"].text is None and "cuts sentence 4" in got["d.wav"].why
    assert got["e.wav"].text is None and got["e.wav"].why == "holds no sentence"


def test_a_sliver_of_a_neighbour_is_ignored_but_a_real_share_is_not():
    # 0.2 s of sentence 2 (7%) is a tail the slicer kept: ignored; 0.6 s (20%) is words: a cut
    sliver = bench_base.texts_for_slices([("s.wav", 0.5, 5.2)], SENTENCES)[0]
    assert sliver.text == "One two three."
    share = bench_base.texts_for_slices([("s.wav", 0.5, 5.6)], SENTENCES)[0]
    assert share.text is None and "sentence 2" in share.why


def test_run_start_reads_the_base_a_run_started_from(tmp_path: Path):
    base = tmp_path / "assets"
    base.mkdir()
    (base / "base.json").write_text(json.dumps({
        "format": "voicelab-base", "preset": "cpu", "steps": {"total": 11000},
        "corpus": {"corpus": "/work/corpus-en"}}))  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "cpu", "train": {"finetuned": True}}))
    (run / "train.log").write_text(
        f"2026-11-29 22:51:46,062 INFO initial weights from {base / 'base.safetensors'} "
        "(base: sovits, gpt); fresh optimisers\n"
    )
    r = bench_base.run_start(run)
    assert r["finetuned"] and r["from"] == str(base / "base.safetensors")
    assert r["base"]["steps"] == {"total": 11000} and r["start"].startswith("from the base")
    (run / "train.log").write_text("2026-11-29 22:49:28,815 INFO stage sovits: steps 1..20\n")
    (run / "config.json").write_text(json.dumps({"train": {"finetuned": False}}))
    assert bench_base.run_start(run)["start"] == "from scratch"
