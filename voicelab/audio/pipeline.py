"""The three data steps of one voice, on its workspace folders: prepare, slice, features.

    prepare_files(voice, files, cfg)   originals -> raw/ (copied, never modified), clean/<stem>.wav
                                       + clean/<stem>.report.json; per-file results, errors kept
    slice_voice(voice, cfg)            clean/*.wav -> slices/*.wav + slices/dataset.list
    import_list(voice, list, cfg)      an existing GPT-SoVITS .list + its audio -> slices/
    extract_features(voice, cfg)       slices -> features/ cache (see features.load_features)

`progress`, where given, is called as progress(done, total, message).

Texts typed for slices are precious: re-slicing keeps every text whose slice audio comes out
identical (matched by a hash of the samples, not by file name), and refuses, changing nothing,
when texts would be lost, unless `force=True` (then the old list is kept as a .bak file).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from voicelab.audio.clean import QualityReport, clean_audio
from voicelab.audio.features import load_features
from voicelab.audio.io import load_audio, to_pcm16, write_wav
from voicelab.audio.slicer import slice_intervals
from voicelab.config import Config
from voicelab.devices import resolve_device
from voicelab.errors import AudioError, VoicelabError
from voicelab.fileio import fsync_dir, write_json_atomic, write_text_atomic
from voicelab.listfile import Entry, read_list, write_list
from voicelab.workspace import Voice

Progress = Callable[..., None] | None


def _tick(progress: Progress, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


# --------------------------------------------------------------------------------------------
# raw/: copies of the originals, never modified, never overwritten
# --------------------------------------------------------------------------------------------


def safe_stem(name: str) -> str:
    """A file stem made of letters, digits, '.', '-' and '_' (other characters become '_')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._-")
    return (stem or "audio")[:80]


def file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy_no_overwrite(src: Path, dst: Path) -> bool:
    """Copy src to dst atomically, failing (False) instead of replacing an existing dst."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, dst)  # unlike os.replace, a hard link never replaces an existing file
        except FileExistsError:
            return False
        except OSError:  # file systems without hard links
            if dst.exists():
                return False
            os.replace(tmp, dst)
        fsync_dir(dst.parent)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def store_raw(voice: Voice, src: Path) -> Path:
    """Copy an original into raw/ and return its path there.

    A file already in raw/ is used where it is. The same content under the same name is not
    copied twice; a different file with a clashing name gets a new one (name-2.wav, ...). The
    stem is unique among raw/ files, because clean/<stem>.wav is named after it.
    """
    src = Path(src).resolve()
    raw = voice.raw.resolve()
    if src.parent == raw:
        return src
    raw.mkdir(parents=True, exist_ok=True)
    base, ext = safe_stem(src.name), src.suffix.lower()
    digest = None
    for n in range(1, 10_000):
        stem = base if n == 1 else f"{base}-{n}"
        taken = [p for p in raw.glob(f"{stem}.*") if p.stem == stem]
        if taken:
            digest = digest or file_hash(src)
            if any(file_hash(p) == digest for p in taken):
                return next(p for p in taken if file_hash(p) == digest)
            continue
        if _copy_no_overwrite(src, raw / f"{stem}{ext}"):
            return raw / f"{stem}{ext}"
    raise VoicelabError(f"{src.name}: too many files named {base} in {raw}: rename it")


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    """What happened to one input file. `error` is set (and paths None) when it failed."""

    source: Path
    raw: Path | None = None
    clean: Path | None = None
    report: QualityReport | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def prepare_one(voice: Voice, src: Path, cfg: Config) -> PrepareResult:
    src = Path(src)
    audio, sr = load_audio(src, mono=False, max_seconds=cfg.audio.max_input_hours * 3600)
    try:
        result = clean_audio(audio, sr, cfg.audio)
    except AudioError as e:
        raise AudioError(f"{src.name}: {e}") from None
    raw = store_raw(voice, src)
    clean = voice.clean / f"{raw.stem}.wav"
    write_wav(clean, result.audio, result.sample_rate)
    report = {"source": src.name, "raw": raw.name, "clean": clean.name, **result.report.to_dict()}
    report["settings"] = asdict(cfg.audio)
    write_json_atomic(voice.clean / f"{raw.stem}.report.json", report)
    return PrepareResult(source=src, raw=raw, clean=clean, report=result.report)


def prepare_files(
    voice: Voice, files: list[Path | str], cfg: Config, progress: Progress = None
) -> list[PrepareResult]:
    """Copy each file into raw/ and write its cleaned 32 kHz WAV + quality report into clean/.

    One bad file does not stop the others: its result carries the error message instead.
    """
    if not files:
        raise VoicelabError("no audio files given: name one or more recordings to prepare")
    voice.create()
    results = []
    for i, f in enumerate(files):
        _tick(progress, i, len(files), Path(f).name)
        try:
            results.append(prepare_one(voice, Path(f), cfg))
        except (VoicelabError, OSError) as e:
            msg = str(e) if isinstance(e, VoicelabError) else f"{Path(f).name}: {e.strerror or e}"
            results.append(PrepareResult(source=Path(f), error=msg))
    _tick(progress, len(files), len(files), "done")
    return results


# --------------------------------------------------------------------------------------------
# slice
# --------------------------------------------------------------------------------------------


def pcm_hash(pcm: np.ndarray, sr: int) -> str:
    """Identity of a slice's audio: its int16 samples and rate (independent of the WAV header)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(sr).encode())
    h.update(np.ascontiguousarray(pcm, dtype=np.int16).tobytes())
    return h.hexdigest()


def _read_pcm(path: Path) -> tuple[np.ndarray, int]:
    """[T] int16 samples (channels averaged) and rate; AudioError if the file is unreadable."""
    try:
        pcm, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, OSError) as e:
        raise AudioError(f"{path.name}: cannot be read ({e}): prepare or slice it again") from None
    return pcm.mean(axis=1).astype(np.int16) if pcm.shape[1] > 1 else pcm[:, 0], sr


def _hash_of_file(path: Path) -> str | None:
    """pcm_hash of an existing audio file, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return pcm_hash(*_read_pcm(path))
    except AudioError:
        return None


@dataclass
class _Planned:
    path: Path
    pcm: np.ndarray
    digest: str


def _plan_slices(voice: Voice, cfg: Config, progress: Progress) -> list[_Planned]:
    sources = sorted(voice.clean.glob("*.wav")) if voice.clean.is_dir() else []
    if not sources:
        raise VoicelabError(
            f"nothing to slice for voice {voice.name!r}: run "
            f"`python -m voicelab prepare --voice {voice.name} FILE...` first"
        )
    sr_want = cfg.audio.sample_rate
    planned = []
    for i, src in enumerate(sources):
        _tick(progress, i, len(sources), src.name)
        pcm, sr = _read_pcm(src)
        if sr != sr_want:
            raise VoicelabError(
                f"{src.name} is at {sr} Hz but audio.sample_rate is {sr_want}: run prepare again"
            )
        x = pcm.astype(np.float32) / 32768.0
        if cfg.slice.method == "vad":
            from voicelab.audio.vad import vad_intervals

            intervals = vad_intervals(x, sr, cfg.slice)
        else:
            intervals = slice_intervals(x, sr, cfg.slice)
        for a, b in intervals:
            name = f"{src.stem}_{a * 1000 // sr:07d}_{b * 1000 // sr:07d}.wav"
            planned.append(_Planned(voice.slices / name, pcm[a:b], pcm_hash(pcm[a:b], sr)))
    return planned


def _old_texts(voice: Voice) -> tuple[dict[str, Entry], list[Entry]]:
    """Texted entries of the current list by audio hash, and those whose audio is gone."""
    if not voice.dataset_list.is_file():
        return {}, []
    by_hash, missing = {}, []
    for e in read_list(voice.dataset_list):
        if not e.text.strip():
            continue
        digest = _hash_of_file(Path(e.path))
        if digest is None:
            missing.append(e)
        else:
            by_hash[digest] = e
    return by_hash, missing


def slice_voice(
    voice: Voice, cfg: Config, progress: Progress = None, force: bool = False
) -> list[Entry]:
    """Slice every clean/*.wav; write slices/*.wav and slices/dataset.list.

    Texts from the current list are carried over to slices whose audio is unchanged. When
    some typed texts would be lost, nothing is changed and a VoicelabError says so, unless
    `force` (then the old list is saved as slices/dataset.list.<time>.bak first).
    """
    sr = cfg.audio.sample_rate
    planned = _plan_slices(voice, cfg, progress)
    old, missing = _old_texts(voice)
    new_digests = {p.digest for p in planned}
    lost = missing + [e for d, e in old.items() if d not in new_digests]
    if lost and not force:
        raise VoicelabError(
            f"slicing again would drop the typed text of {len(lost)} slice(s) whose audio would "
            f"change (e.g. {Path(lost[0].path).name}: {lost[0].text[:40]!r}); nothing was "
            "changed. Keep the current slices, or re-slice anyway with `slice --force` (the old "
            "list is kept as a .bak file)"
        )
    voice.slices.mkdir(parents=True, exist_ok=True)
    if lost and voice.dataset_list.is_file():
        bak = voice.slices / f"dataset.list.{time.strftime('%Y%m%d-%H%M%S')}.bak"
        write_text_atomic(bak, voice.dataset_list.read_text(encoding="utf-8"))
    entries = []
    for p in planned:
        if _hash_of_file(p.path) != p.digest:  # unchanged slices are not rewritten
            write_wav(p.path, p.pcm, sr)
        kept = old.get(p.digest)
        lang = kept.lang if kept else cfg.text.default_lang
        entries.append(Entry(p.path.resolve(), voice.name, lang, kept.text if kept else ""))
    keep_names = {p.path.name for p in planned}
    for stale in voice.slices.glob("*.wav"):  # slices of an earlier cut that no longer exist
        if stale.name not in keep_names:
            stale.unlink()
    write_list(voice.dataset_list, entries)
    n = len(list(voice.clean.glob("*.wav")))
    _tick(progress, n, n, f"{len(entries)} slices")
    return entries


# --------------------------------------------------------------------------------------------
# import an existing .list
# --------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    entries: list[Entry] = field(default_factory=list)  # the whole dataset.list after import
    added: int = 0
    skipped: int = 0  # already imported (identical audio)
    errors: list[str] = field(default_factory=list)


def import_list(
    voice: Voice, list_path: Path | str, cfg: Config, progress: Progress = None
) -> ImportResult:
    """Import a GPT-SoVITS .list: each clip is copied into raw/, cleaned into slices/, and
    added to dataset.list with its text (speaker = the voice name). Existing entries stay."""
    incoming = read_list(list_path)
    if not incoming:
        raise VoicelabError(f"{list_path} lists no audio: nothing to import")
    voice.create()
    sr = cfg.audio.sample_rate
    current = read_list(voice.dataset_list) if voice.dataset_list.is_file() else []
    known = {}
    for e in current:
        digest = _hash_of_file(Path(e.path))
        if digest is not None:
            known[digest] = e
    res = ImportResult()
    for i, e in enumerate(incoming):
        _tick(progress, i, len(incoming), Path(e.path).name)
        try:
            audio, in_sr = load_audio(e.path, mono=False, max_seconds=cfg.audio.max_input_hours * 3600)
            try:
                cleaned = clean_audio(audio, in_sr, cfg.audio)
            except AudioError as err:
                raise AudioError(f"{Path(e.path).name}: {err}") from None
            pcm = to_pcm16(cleaned.audio)
            digest = pcm_hash(pcm, sr)
            if digest in known:
                res.skipped += 1
                continue
            raw = store_raw(voice, Path(e.path))
            dst = voice.slices / f"{raw.stem}.wav"
            write_wav(dst, pcm, sr)
            entry = Entry(dst.resolve(), voice.name, e.lang, e.text)
            known[digest] = entry
            current.append(entry)
            res.added += 1
        except (VoicelabError, OSError) as err:
            msg = str(err) if isinstance(err, VoicelabError) else f"{Path(e.path).name}: {err}"
            res.errors.append(msg)
    if res.added:
        write_list(voice.dataset_list, current)
    res.entries = current
    _tick(progress, len(incoming), len(incoming), "done")
    return res


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureSummary:
    total: int
    computed: int
    cached: int
    audio_seconds: float
    elapsed_s: float
    device: str

    def __len__(self) -> int:
        return self.total


def extract_features(
    voice: Voice, cfg: Config, progress: Progress = None, device: str | None = None
) -> FeatureSummary:
    """Compute (or find cached) spectrograms for every slice in dataset.list."""
    if not voice.dataset_list.is_file():
        raise VoicelabError(
            f"voice {voice.name!r} has no slices yet: run `python -m voicelab slice --voice "
            f"{voice.name}` first"
        )
    entries = read_list(voice.dataset_list)
    if not entries:
        raise VoicelabError(f"{voice.dataset_list} is empty: run slice again")
    # one resolver for every device setting (voicelab.devices); the summary names it as a string
    dev = str(resolve_device(device or cfg.train.device))
    stats: dict[str, int] = {}
    seconds = 0.0
    t0 = time.perf_counter()
    for i, e in enumerate(entries):
        _tick(progress, i, len(entries), Path(e.path).name)
        seconds += load_features(voice, e, cfg, device=dev, stats=stats)["wav"].shape[0]
    _tick(progress, len(entries), len(entries), "done")
    return FeatureSummary(
        total=len(entries),
        computed=stats.get("computed", 0),
        cached=stats.get("cached", 0),
        audio_seconds=seconds / cfg.audio.sample_rate,
        elapsed_s=time.perf_counter() - t0,
        device=dev,
    )
