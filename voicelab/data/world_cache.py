"""The world path's per-slice cache: forced alignment + WORLD features + d-vector.

Per slice, computed once and cached in `features/world/<key>.safetensors`, where key = hash(the
settings that change the result + the slice's text + its audio bytes):

- the forced alignment (voicelab/text/align.py): ARPAbet phone ids, word positions, stress, and
  the frames of each phone, summing exactly to the clip's WORLD frame count;
- the WORLD parameters (voicelab/audio/world.py) [N, D] at 10 ms;
- the resemblyzer d-vector [256] (the pretrained speaker encoder).

A clip that cannot be aligned (wrong transcript, silence, music) raises AlignmentError naming it
and why; the verdict is cached too (`<key>.skip.json`), so a second run recomputes nothing and
says the same. `precompute` shares uncached clips among forked workers, one per core;
`extract_world_features` is the `features` verb on this path.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from voicelab.audio import world
from voicelab.audio.features import _write_cache
from voicelab.config import Config
from voicelab.errors import AudioError, VoicelabError
from voicelab.listfile import Entry, read_list
from voicelab.text import arpabet
from voicelab.text.align import AlignmentError, align
from voicelab.text.align import settings as align_settings
from voicelab.workspace import Voice

# Bump when the computation changes in a way the settings do not capture (invalidates caches).
WORLD_FEATURES_VERSION = 1
CACHE_SUBDIR = "world"


def fingerprint(cfg: Config) -> str:
    """The settings that change the cached result, as canonical JSON (part of the cache key)."""
    return json.dumps(
        {
            "v": WORLD_FEATURES_VERSION,
            "world": asdict(cfg.world),
            "arpabet": [arpabet.SYMBOLS_VERSION, arpabet.symbols_hash()],
            "align": align_settings(),
        },
        sort_keys=True,
    )


def cache_key(cfg: Config, audio_bytes: bytes, text: str) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(fingerprint(cfg).encode())
    h.update(b"\0" + text.strip().encode() + b"\0")
    h.update(audio_bytes)
    return h.hexdigest()


def _read_audio(path: Path) -> tuple[bytes, np.ndarray, int]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{path.name}: slice listed in dataset.list is missing: slice again") from None
    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(f"{path.name}: cannot read this slice ({e.error_string}): slice again") from None
    y = y.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path.name}: the audio holds NaN or infinite samples: slice again")
    return data, y, int(sr)


def compute_world_item(wav: np.ndarray, sr: int, text: str, cfg: Config) -> dict[str, Tensor]:
    """Align + analyse + embed one clip. Raises AlignmentError / AudioError / VoicelabError."""
    from voicelab.audio.dvector import embed

    n = world.num_frames(len(wav), sr, cfg.world)
    al = align(wav, sr, text, n_frames=n)
    feats = world.analyze(wav, sr, cfg.world).to_array()
    if feats.shape[0] != n or int(al.durations.sum()) != n:
        raise VoicelabError(
            f"internal: {feats.shape[0]} WORLD frames, {int(al.durations.sum())} aligned, {n} expected"
        )
    return {
        "acoustic": torch.from_numpy(feats),
        "phone_ids": torch.tensor(al.ids, dtype=torch.long),
        "word_pos": torch.tensor(al.word_pos, dtype=torch.long),
        "stress": torch.tensor(al.stress, dtype=torch.long),
        "durations": torch.from_numpy(np.asarray(al.durations, dtype=np.int64)),
        "dvector": torch.from_numpy(embed(wav, sr)),
    }


def _valid(t: dict[str, Tensor], dim: int) -> bool:
    need = ("acoustic", "phone_ids", "word_pos", "stress", "durations", "dvector")
    if any(k not in t for k in need):
        return False
    a = t["acoustic"]
    return (
        a.dim() == 2 and a.shape[1] == dim and int(t["durations"].sum()) == a.shape[0]
        and t["phone_ids"].shape == t["durations"].shape == t["word_pos"].shape == t["stress"].shape
        and bool(torch.isfinite(a).all()) and bool(torch.isfinite(t["dvector"]).all())
    )


def check_finite_item(t: dict[str, Tensor], name: str) -> None:
    """Refuse a slice whose computed features hold NaN / Inf (as VoiceData.load does): one such
    batch would poison every later step; it is never cached either."""
    bad = [k for k in ("acoustic", "dvector") if not bool(torch.isfinite(t[k]).all())]
    if bad:
        raise VoicelabError(
            f"slice {name}: its {' / '.join(bad)} came out holding NaN or infinite values: "
            "listen to the slice (silence, clipping or noise); remove it or slice the voice again"
        )


def load_world_item(
    voice: Voice, entry: Entry, cfg: Config, stats: dict[str, int] | None = None
) -> dict[str, Tensor]:
    """One slice's alignment, WORLD features and d-vector, from the cache or computed now.

    Raises AlignmentError (a VoicelabError naming the clip and why) for a clip that cannot be
    used; that verdict is cached as well. stats counts "computed" / "cached" / "skipped".
    """
    path = Path(entry.path)
    data, wav, sr = _read_audio(path)
    key = cache_key(cfg, data, entry.text)
    cdir = voice.features / CACHE_SUBDIR
    cpath, skip = cdir / f"{key}.safetensors", cdir / f"{key}.skip.json"

    def count(kind: str) -> None:
        if stats is not None:
            stats[kind] = stats.get(kind, 0) + 1

    if skip.is_file():
        try:
            reason = json.loads(skip.read_text())["reason"]
        except (OSError, ValueError, KeyError, TypeError):
            reason = None
        if isinstance(reason, str):
            count("skipped")
            raise AlignmentError(f"{path.name}: {reason}")
    if cpath.is_file():
        try:
            t = load_file(str(cpath))
            if _valid(t, world.feature_dim(cfg.world)):
                count("cached")
                return t
        except (SafetensorError, OSError, ValueError):
            pass  # a damaged cache file is only a cache: recompute it
    lang = entry.lang if entry.lang != "auto" else cfg.text.default_lang
    try:
        if lang != "en":
            raise AlignmentError(
                f"language {lang!r}: the CPU (world) path speaks English only (its aligner is "
                "pocketsphinx's English model); train other languages with the GPU preset `base`"
            )
        t = compute_world_item(wav, sr, entry.text, cfg)
    except (AlignmentError, AudioError) as e:
        reason = str(e)
        _write_cache(skip, json.dumps({"reason": reason}).encode())
        count("skipped")
        raise AlignmentError(f"{path.name}: {reason}") from None
    check_finite_item(t, path.name)  # (a cached file is checked by _valid: NaN = recompute)
    _write_cache(cpath, save({k: v.contiguous() for k, v in t.items()}))
    count("computed")
    return t


def extract_world_features(voice: Voice, cfg: Config, progress: Any = None) -> dict[str, Any]:
    """The `features` verb on the world path: every slice of dataset.list aligned, analysed and
    embedded (or found in the cache). Returns counts, seconds of audio, elapsed and skips."""
    import time

    if not voice.dataset_list.is_file():
        raise VoicelabError(
            f"voice {voice.name!r} has no slices yet: run `python -m voicelab slice --voice "
            f"{voice.name}` first"
        )
    entries = [e for e in read_list(voice.dataset_list) if e.text.strip()]
    stats: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    seconds = 0.0
    t0 = time.perf_counter()
    done_in_workers = precompute(voice, entries, cfg, progress)
    for i, e in enumerate(entries):
        if progress is not None:
            progress(i, len(entries), Path(e.path).name)
        try:
            t = load_world_item(voice, e, cfg, stats)
            seconds += t["acoustic"].shape[0] * cfg.world.frame_period_ms / 1000.0
        except AlignmentError as err:
            skipped.append((Path(e.path).name, str(err)))
    if progress is not None:
        progress(len(entries), len(entries), "done")
    # clips the workers computed were read back from the cache by the pass above
    computed = stats.get("computed", 0) + done_in_workers
    cached = stats.get("cached", 0) + stats.get("skipped", 0) - done_in_workers
    return {"total": len(entries), "computed": computed, "cached": max(cached, 0),
            "skipped": skipped, "audio_seconds": seconds,
            "elapsed_s": time.perf_counter() - t0}


# Alignment + WORLD analysis + d-vector cost ~12x real time of one core (measured on the fixture
# clips: align 23x, WORLD 34x, d-vector 108x), under the 20x target: the uncached clips are
# shared among worker processes, one per core. Below this many, starting the workers (each
# imports torch and loads the encoder: ~3 s) costs more than it saves.
PARALLEL_MIN_CLIPS = 12


def _work(job: tuple[Voice, Entry, Config]) -> None:
    voice, entry, cfg = job
    try:
        load_world_item(voice, entry, cfg)
    except VoicelabError:
        pass  # cached as a skip (or reported again by the caller's own pass)


def _cached(voice: Voice, entry: Entry, cfg: Config) -> bool:
    try:
        key = cache_key(cfg, Path(entry.path).read_bytes(), entry.text)
    except OSError:
        return True  # missing: the caller's own pass reports it
    d = voice.features / CACHE_SUBDIR
    return (d / f"{key}.safetensors").is_file() or (d / f"{key}.skip.json").is_file()


def precompute(voice: Voice, entries: list[Entry], cfg: Config, progress: Any = None,
               workers: int | None = None) -> int:
    """Fill the cache for `entries` with one worker process per core. Returns how many clips
    were computed here (0 when few enough that the caller's serial pass is quicker)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    todo = [e for e in entries if not _cached(voice, e, cfg)]
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers < 2 or len(todo) < PARALLEL_MIN_CLIPS:
        return 0
    # spawn, not fork: a fork after torch's OpenMP pool has run deadlocks the children (seen:
    # bench_train hung after timing other presets). Spawn re-imports the caller's main module;
    # a script without a main guard breaks the pool, and then the caller's serial pass does
    # the work instead (slower, never wrong).
    done = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_work, [(voice, e, cfg) for e in todo], chunksize=2):
                done += 1
                if progress is not None:
                    progress(done, len(todo), "aligning and analysing")
    except BrokenProcessPool:
        pass
    return done
