"""The world path's per-slice data (voicelab/data/world_cache.py, world_data.py) against bad values: a cached
features file holding NaN is a damaged cache and recomputed; a slice whose audio holds NaN, or
whose analysis gives non-finite features, is refused naming it, and nothing is cached for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from voicelab.config import load_config
from voicelab.data import world_cache
from voicelab.data.world_cache import load_world_item
from voicelab.data.world_data import WorldVoiceData
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.workspace import get_voice

ASSETS = Path(__file__).resolve().parent.parent / "assets"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def one_clip_voice(home: Path):
    v = get_voice("w", base=home).create()
    e = read_list(ASSETS / "mini.list")[0]
    shutil.copy(e.path, v.slices / e.path.name)
    entry = Entry(v.slices / e.path.name, e.speaker, "en", e.text)
    write_list(v.dataset_list, [entry])
    return v, entry


def cached_files(voice) -> list[Path]:
    return sorted((voice.features / world_cache.CACHE_SUBDIR).glob("*.safetensors"))


@pytest.mark.parametrize("key", ["acoustic", "dvector"])
def test_a_cached_file_holding_nan_is_recomputed(tmp_path, key):
    voice, entry = one_clip_voice(tmp_path)
    cfg = load_config("tiny-world")
    good = load_world_item(voice, entry, cfg)
    [cpath] = cached_files(voice)
    damaged = load_file(str(cpath))
    damaged[key].view(-1)[3] = float("nan")
    save_file(damaged, str(cpath))
    stats: dict[str, int] = {}
    again = load_world_item(voice, entry, cfg, stats)
    assert stats == {"computed": 1}, "a cache holding NaN is damaged: recomputed, not used"
    assert torch.equal(again[key], good[key])
    assert torch.isfinite(load_file(str(cpath))[key]).all(), "the cache file is repaired"


def test_a_slice_whose_audio_holds_nan_is_refused_naming_it(tmp_path):
    voice, entry = one_clip_voice(tmp_path)
    y, sr = sf.read(entry.path, dtype="float32")
    y[len(y) // 2] = np.nan
    sf.write(entry.path, y, sr, subtype="FLOAT")  # a float WAV can hold NaN
    with pytest.raises(VoicelabError, match=f"{Path(entry.path).name}.*NaN") as e:
        WorldVoiceData.load(voice, load_config("tiny-world"))
    assert "again" in str(e.value)  # says what to do
    assert cached_files(voice) == []


def test_non_finite_features_of_a_clip_are_refused_naming_it_and_not_cached(tmp_path, monkeypatch):
    voice, entry = one_clip_voice(tmp_path)
    compute = world_cache.compute_world_item

    def nan_features(*a, **k):
        t = compute(*a, **k)
        t["acoustic"][0, 0] = float("inf")
        return t

    monkeypatch.setattr(world_cache, "compute_world_item", nan_features)
    with pytest.raises(VoicelabError, match=f"{Path(entry.path).name}.*(NaN|infinite)"):
        WorldVoiceData.load(voice, load_config("tiny-world"))
    assert cached_files(voice) == [], "a non-finite result is never cached"


def test_uncached_clips_are_computed_by_worker_processes(tmp_path, monkeypatch):
    """The worker pool (spawned, one per core) fills the cache; the serial pass then only reads.
    Run after torch has done work in this process: a forked pool deadlocked there."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # torch's thread pool has run in this process
    voice, entry = one_clip_voice(tmp_path)
    rms = read_list(ASSETS / "mini.list")[2]
    entries = [entry, Entry(rms.path, rms.speaker, "en", rms.text)]
    monkeypatch.setattr(world_cache, "PARALLEL_MIN_CLIPS", 1)
    cfg = load_config("tiny-world")
    assert world_cache.precompute(voice, entries, cfg, workers=2) == 2
    assert len(cached_files(voice)) == 2
    assert world_cache.precompute(voice, entries, cfg, workers=2) == 0  # nothing left to do
