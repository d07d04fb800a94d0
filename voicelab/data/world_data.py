"""The world path's training data: slices -> (alignment, WORLD features, d-vector) -> `Batch`.

Per slice, computed once and cached in `features/world/<key>.safetensors`, where key = hash(the
settings that change the result + the slice's text + its audio bytes):

- the forced alignment (voicelab/text/align.py): ARPAbet phone ids, word positions, and the
  frames of each phone, summing exactly to the clip's WORLD frame count;
- the WORLD parameters (voicelab/audio/world.py) [N, D] at 10 ms;
- the resemblyzer d-vector [256] (the pretrained speaker encoder).

A clip that cannot be aligned (wrong transcript, silence, music) is skipped with a message that
names it and says why; the reason is cached too (`<key>.skip.json`), so a second run recomputes
nothing and says the same. Training goes on with the rest; only when nothing is left is it an
error.

`WorldVoiceData` has the interface of `VoiceData` (train / val / items / collate / set_tokens /
dataset_hash), so the trainer's loop, its epoch order and its exact resume are shared.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
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
from voicelab.data.batch import Batch
from voicelab.data.dataset import _pad_stack, item_key, split_indices
from voicelab.errors import AudioError, VoicelabError
from voicelab.listfile import Entry, read_list
from voicelab.text import arpabet
from voicelab.text.align import AlignmentError, align
from voicelab.text.align import settings as align_settings
from voicelab.workspace import Voice

# Bump when the computation changes in a way the settings do not capture (invalidates caches).
WORLD_FEATURES_VERSION = 1
CACHE_SUBDIR = "world"
DEFAULT_LF0_STATS = (math.log(120.0), 0.25)  # a speaker without a voiced frame (never in practice)


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


@dataclass
class WorldItem:
    """One slice of the world path in memory (CPU tensors)."""

    key: str  # the slice's path relative to slices/ (see dataset.item_key)
    speaker: str
    text: str
    phone_ids: Tensor  # [P] long (ARPAbet)
    word_pos: Tensor  # [P] long
    stress: Tensor  # [P] long (arpabet.STRESS)
    durations: Tensor  # [P] long, frames; sum = frames
    acoustic: Tensor  # [N, D] float32 raw WORLD features
    dvector: Tensor  # [256] float32

    @property
    def frames(self) -> int:
        return int(self.acoustic.shape[0])


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


def speaker_lf0_stats(items: list[WorldItem], layout_lf0: int, layout_vuv: int) -> dict[str, Tensor]:
    """{speaker: [mean, std] of log F0 over that speaker's voiced frames}."""
    by: dict[str, list[Tensor]] = {}
    for it in items:
        v = it.acoustic[:, layout_vuv] > 0.5
        by.setdefault(it.speaker, []).append(it.acoustic[v, layout_lf0])
    out = {}
    for spk, parts in by.items():
        x = torch.cat(parts) if parts else torch.zeros(0)
        if x.numel() < 10:
            out[spk] = torch.tensor(DEFAULT_LF0_STATS)
        else:
            out[spk] = torch.stack([x.mean(), x.std().clamp(min=0.05)])
    return out


def lf0_stats_of(wav: np.ndarray, sr: int, cfg: Config) -> Tensor:
    """[2] mean and std of log F0 over the voiced frames of a clip (a reference at synthesis)."""
    f = world.analyze(wav, sr, cfg.world)
    x = f.lf0[f.vuv > 0.5]
    if x.size < 10:
        return torch.tensor(DEFAULT_LF0_STATS)
    return torch.tensor([float(x.mean()), max(float(x.std()), 0.05)])


class WorldVoiceData:
    """All usable slices of a voice in memory, split into train / val, collated into Batches."""

    def __init__(self, items: list[WorldItem], cfg: Config, val_idx: list[int], hash_: str,
                 skipped: list[tuple[str, str]]) -> None:
        self.cfg = cfg
        self.items = items
        self.val_idx = list(val_idx)
        self.train_idx = [i for i in range(len(items)) if i not in set(val_idx)]
        self.dataset_hash = hash_
        self.skipped = skipped  # (slice name, why) of every clip left out
        n_mgc = cfg.world.n_mgc
        self.lf0_index, self.vuv_index = n_mgc, n_mgc + 1
        self.lf0_stats = speaker_lf0_stats(items, self.lf0_index, self.vuv_index)
        self.tokens: dict[str, Tensor] = {}
        self.styles: dict[str, Tensor] = {}

    @property
    def train(self) -> list[int]:
        return self.train_idx

    @property
    def val(self) -> list[int]:
        return self.val_idx

    @classmethod
    def load(
        cls, voice: Voice, cfg: Config, entries: list[Entry] | None = None, progress: Any = None,
        log: Any = None,
    ) -> WorldVoiceData:
        """Read slices/dataset.list (or `entries`); align, analyse and embed every slice.

        log(message) is called once per skipped clip (name and reason)."""
        if entries is None:
            if not voice.dataset_list.is_file():
                raise VoicelabError(
                    f"voice {voice.name!r} has no slices yet: slice the recordings (the Slice "
                    f"tab, or `python -m voicelab slice --voice {voice.name}`) before training"
                )
            entries = read_list(voice.dataset_list)
        entries = [e for e in entries if e.text.strip()]
        if not entries:
            raise VoicelabError(
                f"voice {voice.name!r} has no transcribed slices: add the text of each slice "
                "(the app's Slice tab, or `python -m voicelab transcribe`) before training"
            )
        items, skipped, h = [], [], hashlib.sha256()
        precompute(voice, entries, cfg, progress)
        for n, e in enumerate(entries):
            try:
                t = load_world_item(voice, e, cfg)
            except AlignmentError as err:
                skipped.append((Path(e.path).name, str(err)))
                if log is not None:
                    log(f"skipped {err}")
                continue
            items.append(WorldItem(
                key=item_key(e.path, voice.slices), speaker=e.speaker, text=e.text,
                phone_ids=t["phone_ids"].long(), word_pos=t["word_pos"].long(), stress=t["stress"].long(),
                durations=t["durations"].long(), acoustic=t["acoustic"].float(),
                dvector=t["dvector"].float(),
            ))
            h.update(Path(e.path).name.encode() + b"|" + e.speaker.encode() + b"|")
            h.update(e.text.encode() + b"|" + hashlib.sha256(t["acoustic"].numpy().tobytes()).digest())
            if progress is not None:
                progress(n + 1, len(entries))
        if not items:
            why = "; ".join(f"{name}: {r}" for name, r in skipped[:3])
            raise VoicelabError(
                f"none of the {len(entries)} slices of voice {voice.name!r} could be aligned to its "
                f"text ({why}): check the texts in the Slice tab"
            )
        _, val = split_indices(len(items), int(cfg.train.val_slices), int(cfg.train.seed))
        return cls(items, cfg, val, h.hexdigest(), skipped)

    # ---------------------------------------------------------------------------------------

    def feature_stats(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and std [D] over every frame of the training items."""
        x = torch.cat([self.items[i].acoustic for i in self.train_idx or range(len(self.items))])
        return x.mean(0), x.std(0)

    def collate(
        self, indices: list[int], epoch: int = 0, with_tokens: bool = False, audio: bool = True
    ) -> Batch:
        """Batch of items (indices into self.items), zero padded; see Batch for shapes.
        `epoch` is unused (no random reference crops on this path); audio=False (stage 2)
        leaves out the WORLD features, which the GPT does not read."""
        items = [self.items[i] for i in indices]
        b = len(items)
        empty = torch.zeros(b, 1, 0)
        zeros = torch.zeros(b, dtype=torch.long)
        phone_ids = _pad_stack([it.phone_ids for it in items], 0)
        batch = Batch(
            phone_ids=phone_ids,
            phone_lens=torch.tensor([len(it.phone_ids) for it in items]),
            lang_ids=torch.zeros_like(phone_ids),
            spec=empty, mel=empty, spec_lens=zeros, wav=empty, ref_mel=empty, ref_lens=zeros,
            word_pos=_pad_stack([it.word_pos for it in items], 0),
            stress=_pad_stack([it.stress for it in items], 0),
            durations=_pad_stack([it.durations for it in items], 0),
            lf0_stats=torch.stack([self.lf0_stats[it.speaker] for it in items]).float(),
            dvector=torch.stack([it.dvector for it in items]),
            texts=tuple(it.text for it in items),
        )
        if audio:
            batch.acoustic = torch.stack([
                torch.nn.functional.pad(it.acoustic, (0, 0, 0, max(x.frames for x in items) - it.frames))
                for it in items
            ])
            batch.acoustic_lens = torch.tensor([it.frames for it in items])
        if with_tokens:
            missing = [it.key for it in items if it.key not in self.tokens]
            if missing:
                raise VoicelabError(
                    f"no prosody tokens for {missing[:3]}: stage 2 needs the token extraction "
                    "that follows stage 1 (run stage 1, or resume the run)"
                )
            toks = [self.tokens[it.key] for it in items]
            batch.tokens = _pad_stack(toks, 0)
            batch.token_lens = torch.tensor([len(t) for t in toks])
            batch.style = torch.stack([self.styles[it.key] for it in items])
        return batch

    def set_tokens(self, tokens: dict[str, Tensor], styles: dict[str, Tensor]) -> None:
        """Install stage-2 targets (from the acoustic model's token extraction)."""
        self.tokens = {k: v.long().cpu() for k, v in tokens.items()}
        self.styles = {k: v.float().cpu() for k, v in styles.items()}


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
    from multiprocessing import get_context

    todo = [e for e in entries if not _cached(voice, e, cfg)]
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers < 2 or len(todo) < PARALLEL_MIN_CLIPS:
        return 0
    # fork, as torch's own DataLoader workers on Linux (torch resets its thread pools in the
    # child); spawn would re-run the caller's __main__, which a script without a main guard
    # cannot survive
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        for n, _ in enumerate(pool.map(_work, [(voice, e, cfg) for e in todo], chunksize=2)):
            if progress is not None:
                progress(n + 1, len(todo), "aligning and analysing")
    return len(todo)
