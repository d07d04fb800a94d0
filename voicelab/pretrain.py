"""Pretrain a multi-speaker base on a corpus, and ship it (issue 9).

    ps = prepare_pretrain(corpus_dir, cfg)            # corpus -> a Voice-shaped training folder
    code = pretrain(corpus_dir, cfg, run="r1", resume="auto")   # the ordinary trainer, both stages
    result = ship_base(ps.voice.run_dir("r1"), out=base_dir())  # fp16 safetensors + JSON + card

The corpus is what `python -m voicelab corpus --out DIR` writes (DIR/corpus.list, wavs/<speaker>/,
corpus.json, MODEL_CARD.md), or any folder with a GPT-SoVITS `corpus.list`. The training folder
(default: VOICELAB_HOME/_pretrain/<corpus name>) is a Voice whose slices/dataset.list points at the
corpus audio where it lies: nothing is copied. The dataset keys each slice by its file *name*
(tokens.pt, logs), and TTS corpora reuse names across speakers (wavs/a/0001.wav, wavs/b/0001.wav),
so a name that occurs more than once is hard-linked as slices/<speaker>__<name> (free on the same
file system; copied, and counted, only where a hard link is impossible).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from voicelab.config import Config
from voicelab.errors import VoicelabError
from voicelab.fileio import write_json_atomic, write_text_atomic
from voicelab.listfile import Entry, format_entry, read_list
from voicelab.workspace import RunDir, Voice, validate_name
from voicelab.workspace import home as workspace_home

log = logging.getLogger(__name__)

CORPUS_LIST = "corpus.list"
CORPUS_JSON = "corpus.json"
PRETRAIN_JSON = "pretrain.json"  # in the training folder: which corpus it points at
PRETRAIN_DIR = "_pretrain"  # under VOICELAB_HOME
CORPUS_KEYS = ("corpus", "clips", "hours", "speakers", "dev_voice_clips")  # copied into a base


@dataclass
class PretrainSet:
    """A corpus prepared for the trainer."""

    voice: Voice  # the training folder (slices/dataset.list -> corpus audio, features/, runs/)
    corpus: Path
    entries: list[Entry]  # what slices/dataset.list holds (paths as the dataset will read them)
    speakers: dict[str, dict[str, float]]  # speaker -> {"clips", "seconds"}
    linked: int = 0  # clips hard-linked because their file name was not unique
    copied: int = 0  # clips copied because no hard link was possible
    dev_clips: int = 0  # clips of development voices / held-out sentences (allowed on request)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s["seconds"] for s in self.speakers.values())


def default_name(corpus: Path) -> str:
    """The corpus folder's name, as a valid voice name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(corpus).resolve().name).strip("-_") or "corpus"
    return stem[:64]


def pretrain_voice(name: str, home: Path | None = None) -> Voice:
    """The training folder HOME/_pretrain/<name> (HOME: VOICELAB_HOME). Kept under "_pretrain"
    so that it is not listed among the person's voices (workspace names never start with "_"):
    the app would offer it for few-shot training and eval would count it as another voice."""
    name = validate_name(name, "pretraining folder name")
    return Voice(name=name, root=(home or workspace_home()) / PRETRAIN_DIR / name)


def read_corpus_dir(corpus: Path | str) -> list[Entry]:
    """The transcribed entries of corpus/corpus.list, every audio file checked to exist."""
    corpus = Path(corpus).expanduser()
    lst = corpus / CORPUS_LIST
    if not corpus.is_dir() or not lst.is_file():
        raise VoicelabError(
            f"{corpus} is not a corpus folder (no {CORPUS_LIST}): build one with `python -m "
            "voicelab corpus --out DIR ...`, or put a GPT-SoVITS list there as corpus.list"
        )
    entries = [e for e in read_list(lst) if e.text.strip()]
    if not entries:
        raise VoicelabError(f"{lst} has no transcribed clips: every line needs its text")
    missing = [e.path for e in entries if not Path(e.path).is_file()]
    if missing:
        raise VoicelabError(
            f"{len(missing)} audio file(s) of {lst} are missing (first: {missing[0]}): rebuild "
            "the corpus (`python -m voicelab corpus` reuses what exists) or fix the list"
        )
    return entries


def _link_or_copy(src: Path, dst: Path) -> str:
    """Make dst the same file as src (hard link, else a copy): 'linked' or 'copied'. Atomic
    (temp name + os.replace), so ranks of a torchrun job doing it at once leave no half file."""
    if dst.exists():
        if os.path.samefile(src, dst):
            return "linked"
        if filecmp.cmp(src, dst, shallow=True):  # an earlier copy (copy2 keeps size + mtime)
            return "copied"
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:  # another file system, or links not allowed: the one case that copies
            shutil.copy2(src, tmp)
            how = "copied"
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return how


def _memory_note(seconds: float, cfg: Config) -> str | None:
    """The trainer keeps every clip's wav + spectrograms in memory (few-shot design): warn when
    a corpus would not fit, rather than let the machine swap for hours."""
    f, sr = cfg.features, cfg.audio.sample_rate
    per_s = 4 * (sr + (f.n_fft // 2 + 1 + f.n_mels) * sr / f.hop_length)
    need = seconds * per_s
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        avail = next(int(x.split()[1]) * 1024 for x in lines if x.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    if need > 0.8 * avail:
        return (f"the corpus ({seconds / 3600:.1f} h) needs about {need / 2**30:.1f} GiB of memory "
                f"per training process (audio + spectrograms are kept in memory) but "
                f"{avail / 2**30:.1f} GiB are available: build a smaller corpus (corpus "
                "--max-per-voice) or use a machine with more memory")  # fmt: skip
    return None


def prepare_pretrain(
    corpus: Path | str,
    cfg: Config,
    name: str | None = None,
    home: Path | None = None,
    allow_dev_voices: bool = False,
) -> PretrainSet:
    """Point a training folder at a corpus: writes slices/dataset.list (+ links) and pretrain.json.

    Idempotent: the same corpus gives the same dataset.list, so `--resume auto` resumes exactly.
    Refuses clips of the development voices or held-out sentences (they must stay unseen)
    unless `allow_dev_voices` (tests and experiments; such a base must not be shipped as is).
    """
    from voicelab.corpus import exclude

    corpus = Path(corpus).expanduser().resolve()
    entries = read_corpus_dir(corpus)
    voice = pretrain_voice(name or default_name(corpus), home)
    voice.create()
    dev = [e for e in entries if exclude.exclusion_reason(e.speaker, e.text, e.path)]
    if dev and not allow_dev_voices:
        e = dev[0]
        why = exclude.exclusion_reason(e.speaker, e.text, e.path)
        raise VoicelabError(
            f"{len(dev)} clip(s) of {corpus / CORPUS_LIST} are development voices or held-out "
            f"sentences (first: {Path(e.path).name}, {why}): "
            "a base must not hear them, or evaluating on them means nothing. Rebuild the corpus "
            "with `python -m voicelab corpus` (it leaves them out)"
        )
    names = Counter(Path(e.path).name for e in entries)
    ps = PretrainSet(voice=voice, corpus=corpus, entries=[], speakers={}, dev_clips=len(dev))
    taken: set[str] = {n for n, c in names.items() if c == 1}
    for e in entries:
        path = Path(e.path)
        if names[path.name] > 1:  # not unique: a unique name inside slices/
            stem = re.sub(r"[^A-Za-z0-9_-]+", "-", e.speaker) or "speaker"
            new, k = f"{stem}__{path.name}", 1
            while new in taken:
                k += 1
                new = f"{stem}__{k}__{path.name}"
            taken.add(new)
            how = _link_or_copy(path, voice.slices / new)
            ps.linked += how != "copied"
            ps.copied += how == "copied"
            path = voice.slices / new
        ps.entries.append(Entry(path, e.speaker, e.lang, e.text))
        s = ps.speakers.setdefault(e.speaker, {"clips": 0, "seconds": 0.0})
        s["clips"] += 1
        try:
            s["seconds"] += sf.info(str(path)).duration
        except RuntimeError as err:
            raise VoicelabError(f"{path} is not readable audio ({err}): rebuild the corpus") \
                from None
    if ps.copied:
        ps.notes.append(f"{ps.copied} clip(s) with shared file names were copied into "
                        f"{voice.slices} (hard links are impossible there)")  # fmt: skip
    mem = _memory_note(ps.seconds, cfg)
    if mem:
        ps.notes.append(mem)
    # absolute paths (format_entry with no base): the training folder and the corpus may live
    # on different disks; pretrain rewrites this file on every start, so moving both is fine
    text = "".join(format_entry(e) + "\n" for e in ps.entries)
    write_text_atomic(voice.dataset_list, text)
    write_json_atomic(voice.root / PRETRAIN_JSON, {
        "corpus": str(corpus),
        "corpus_list_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "clips": len(ps.entries),
        "hours": round(ps.seconds / 3600, 4),
        "speakers": {k: {"clips": v["clips"], "seconds": round(v["seconds"], 2)}
                     for k, v in sorted(ps.speakers.items())},  # fmt: skip
        "linked": ps.linked,
        "copied": ps.copied,
        "dev_voice_clips": ps.dev_clips,
        "corpus_manifest": _corpus_manifest(corpus),
    })  # fmt: skip
    for n in ps.notes:
        log.warning(n)
    return ps


def _corpus_manifest(corpus: Path) -> dict[str, Any] | None:
    """corpus.json (licences, sources) when the corpus builder wrote one."""
    p = corpus / CORPUS_JSON
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VoicelabError(f"{p} is damaged ({e}): rebuild the corpus") from None
    return m if isinstance(m, dict) else None


def pretrain(
    corpus: Path | str,
    cfg: Config,
    run: str | None = None,
    resume: str | None = None,
    name: str | None = None,
    from_path: Path | None = None,
    allow_dev_voices: bool = False,
    tensorboard: bool = True,
    home: Path | None = None,
) -> int:
    """Prepare the corpus, then train both stages multi-speaker with the ordinary trainer.

    Resumable like any run (`resume="auto"`: newest intact checkpoint of `run`, or of the
    newest run). `from_path` starts from weights only (e.g. a shipped base, to improve it).
    Returns the trainer's EXIT_* code.
    """
    from voicelab.training.trainer import TrainOptions, train_voice

    ps = prepare_pretrain(corpus, cfg, name=name, home=home, allow_dev_voices=allow_dev_voices)
    log.info(
        "pretraining on %s: %d clips, %.2f h, %d speakers -> %s", ps.corpus, len(ps.entries),
        ps.seconds / 3600, len(ps.speakers), ps.voice.runs,
    )  # fmt: skip
    if len(ps.speakers) < 2:
        log.warning("the corpus has one speaker: a base learns to clone new voices only from many")
    opts = TrainOptions(run=run, resume=resume, from_path=from_path, tensorboard=tensorboard)
    return train_voice(ps.voice, cfg, opts)


# --------------------------------------------------------------------------------------------
# Shipping a base: fp16 safetensors + JSON + model card, at most MAX_MB together
# --------------------------------------------------------------------------------------------


@dataclass
class ShipResult:
    weights: Path
    meta_path: Path
    card: Path
    total_bytes: int  # weights + JSON + model card (what MAX_MB caps)
    with_disc: bool  # False when the discriminators were left out to stay under the cap
    kept_fp32: list[str]  # tensors too large for fp16
    meta: dict[str, Any]


def _source_state(source: Path) -> tuple[dict[str, Any], Path, Path]:
    """(checkpoint state, its path, run folder) from a run folder or a checkpoint file."""
    from voicelab.training import checkpoint as ck

    source = Path(source).expanduser()
    if source.is_dir():
        point = ck.find_resume(source)
        if point is None:
            raise VoicelabError(f"{source} holds no checkpoint: give a pretraining run folder "
                                "(workspace/_pretrain/NAME/runs/RUN) or a checkpoint .pt")
        for p, why in point.skipped:
            log.warning("skipped damaged checkpoint %s: %s", p.name, why)
        return point.state, point.path, source
    if source.suffix == ".pt" and source.is_file():
        return ck.load_checkpoint(source), source, source.parent.parent
    raise VoicelabError(f"--ship {source}: give a run folder or a checkpoint (.pt) file")


def _half(name: str, t: Any, kept: list[str]) -> Any:
    """fp16 copy of a float tensor; fp32 where fp16 would overflow; refuse non-finite weights."""
    import torch

    t = t.detach().to("cpu").contiguous()
    if not t.is_floating_point():
        return t.clone()
    if not bool(torch.isfinite(t).all()):
        raise VoicelabError(f"{name} holds NaN/Inf values: the run diverged; ship an earlier "
                            "checkpoint")
    if t.numel() and float(t.abs().max()) > 60000.0:  # fp16 tops out at 65504
        kept.append(name)
        return t.float().clone()
    return t.half()


def _training_hours(run_dir: Path) -> float | None:
    """Wall-clock hours over every start of the run (metrics.jsonl: wall_s restarts per process)."""
    from voicelab.training import runfiles

    spans: dict[int, float] = {}
    for r in runfiles.read_metrics(run_dir):
        if isinstance(r.get("time"), (int, float)) and isinstance(r.get("wall_s"), (int, float)):
            start = round(r["time"] - r["wall_s"])  # one key per process start
            spans[start] = max(spans.get(start, 0.0), float(r["wall_s"]))
    return round(sum(spans.values()) / 3600, 4) if spans else None


def _last_losses(run_dir: Path, upto: int) -> dict[str, float]:
    """The last logged losses of each stage up to step `upto` (metrics.jsonl): the checkpoint
    itself only keeps the current stage's, and a base's card should show both."""
    from voicelab.training import runfiles

    out: dict[str, float] = {}
    for r in runfiles.read_metrics(run_dir):
        if isinstance(r.get("step"), int) and r["step"] <= upto:
            out.update({k: v for k, v in r.items()
                        if k.startswith(("loss/", "acc/")) and isinstance(v, (int, float))})
    return out


def _device_of(run_dir: Path) -> str | None:
    """The device named in train.log ('...; device cuda:0, 8 process(es)'), newest start."""
    p = RunDir(run_dir).log
    if not p.is_file():
        return None
    text = p.read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"; device (\S+), (\d+) process", text)
    return f"{found[-1][0]} x{found[-1][1]}" if found else None


def _recipe(cfg: dict[str, Any]) -> list[str]:
    """The `--set KEY=VALUE` a run used on top of its preset (how to train this base again)."""
    from voicelab.config import ConfigError, _flatten, config_to_dict, load_config

    try:
        preset = config_to_dict(load_config(str(cfg.get("preset"))))
    except ConfigError:
        return []
    own, ref = _flatten(cfg, ""), _flatten(preset, "")
    return [f"{k[1:]}={json.dumps(v)}" for k, v in sorted(own.items())
            if k != ".preset" and ref.get(k, v) != v]  # fmt: skip


def _machine() -> str:
    from voicelab.eval.machine import cpu_model, usable_cores

    return f"{cpu_model()}, {usable_cores()} cores"


def _eval_summaries(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """{voice: summary} from eval.json files (or their folders) of `python -m voicelab eval`."""
    out = {}
    for p in paths:
        p = Path(p) / "eval.json" if Path(p).is_dir() else Path(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise VoicelabError(f"--eval {p}: not an eval.json of `python -m voicelab eval` "
                                f"({e})") from None
        s = data.get("summary") if isinstance(data, dict) else None
        if not isinstance(s, dict):
            raise VoicelabError(f"--eval {p}: has no summary; run `python -m voicelab eval` again")
        voice = str((data.get("meta") or {}).get("voice") or p.parent.name)
        out[voice] = s
    return out


def _base_meta(state: dict[str, Any], ckpt: Path, run_dir: Path, info: dict[str, Any],
               evals: list[Path]) -> dict[str, Any]:  # fmt: skip
    """The JSON of a base, less what depends on the written bytes (sha256, size)."""
    from voicelab import __version__
    from voicelab import base as B
    from voicelab.eval.machine import git_commit
    from voicelab.text import symbols
    from voicelab.training import checkpoint as ck

    stage_step, total = int(state[ck.K_STAGE_STEP]), int(state[ck.K_STEP])
    cfg = state[ck.K_CONFIG]
    stages = (state.get(ck.K_EXTRA) or {}).get("stages") or {}
    best = {n: s.get("best_val") for n, s in stages.items() if isinstance(s, dict)}
    metrics = state.get(ck.K_METRICS) or {}
    return {
        "format": B.BASE_FORMAT,
        "format_version": B.BASE_FORMAT_VERSION,
        "voicelab_version": __version__,
        "symbols_version": symbols.SYMBOLS_VERSION,
        "symbols_hash": symbols.symbols_hash(),
        "n_symbols": symbols.NUM_SYMBOLS,
        "n_langs": symbols.NUM_LANGS,
        "preset": cfg.get("preset"),
        "config": cfg,
        # a gpt-stage checkpoint: stage_step counts GPT steps, the rest of the run was SoVITS
        "steps": {"sovits": total - stage_step, "gpt": stage_step, "total": total},
        "source": {"run_dir": str(run_dir), "checkpoint": ckpt.name,
                   "trained_with": state.get(ck.K_VERSION), "commit": git_commit().get("commit")},
        "corpus": {k: info.get(k) for k in CORPUS_KEYS},
        "training": {"hours": _training_hours(run_dir), "device": _device_of(run_dir),
                     "machine": _machine(), "settings": _recipe(cfg)},
        "metrics": {**_last_losses(run_dir, int(state[ck.K_STEP])),
                    **{k: v for k, v in metrics.items() if k.startswith(("loss/", "acc/"))}},
        "validation": {n: v for n, v in best.items() if isinstance(v, float) and math.isfinite(v)},
        "eval": _eval_summaries(evals),
        "speaker_dvectors": _speaker_dvectors(run_dir),
        "dtype": "float16",
    }  # fmt: skip


DVECTOR_CLIPS = 8  # clips per speaker behind the d-vector a base lists (eval compares with 4)


def _speaker_dvectors(run_dir: Path) -> dict[str, list[float]]:
    """{speaker: [256] centroid d-vector} of the corpus a run trained on (its training folder's
    slices/dataset.list): a fine-tune checks with them that a clone sounds like its voice rather
    than like the base's nearest speaker (train.blend_margin). {} when the list is gone."""
    from voicelab.audio import dvector
    from voicelab.eval.evaluate import group_by_speaker, load_clips

    lst = Path(run_dir).parent.parent / "slices" / "dataset.list"
    if not lst.is_file():
        log.warning("no %s: the base lists no speaker d-vectors (fine-tunes use train.weight_blend)",
                    lst)
        return {}
    out = {}
    for speaker, entries in sorted(group_by_speaker(read_list(lst)).items()):
        clips = load_clips(entries, DVECTOR_CLIPS)
        if clips:
            out[speaker] = [round(float(x), 5) for x in dvector.speaker_embedding(clips)]
    return out


def ship_base(
    source: Path | str,
    out: Path | str | None = None,
    name: str = "base",
    max_mb: float | None = None,
    force: bool = False,
    allow_unverified_licence: bool = False,
    licence: str | None = None,
    evals: list[Path] = (),
) -> ShipResult:
    """Write a pretraining run's newest intact checkpoint (or the given one) as a base.

    EMA weights of SoVITS and GPT plus the discriminators (left out, with a log line, when they
    would break the size cap), fp16, in `out` (default base_dir()). Refuses: a checkpoint still in
    stage 1, non-finite weights, a corpus whose licences were not checked as shippable (unless
    allow_unverified_licence), anything over max_mb (default base.MAX_MB: weights, JSON and
    model card together) and overwriting without force.
    """
    from safetensors.torch import save as st_save

    from voicelab import base as B
    from voicelab.fileio import write_bytes_atomic
    from voicelab.training import checkpoint as ck

    name = validate_name(name, "base name")
    max_mb = B.MAX_MB if max_mb is None else float(max_mb)
    out = Path(out).expanduser() if out is not None else B.base_dir()
    st_path, json_path, card_path = B.base_paths(out, name)
    existing = [p for p in (st_path, json_path) if p.exists()]
    if existing and not force:
        raise VoicelabError(f"{existing[0]} already exists and is not overwritten: pass --force to "
                            "replace it, or --name to ship beside it")  # fmt: skip
    state, ckpt, run_dir = _source_state(Path(source))
    if state.get(ck.K_STAGE) != "gpt":
        raise VoicelabError(
            f"{ckpt.name} is from the {state.get(ck.K_STAGE)!r} stage: the GPT of this base has "
            "not been trained yet. Let pretraining reach stage 2 (resume it with --resume auto)"
        )
    info_path = run_dir.parent.parent / PRETRAIN_JSON
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    manifest = info.get("corpus_manifest")
    shippable = bool(manifest and manifest.get("shippable"))
    if not shippable and not allow_unverified_licence:
        why = ("its corpus.json marks a source that may not ship" if manifest else
               "its corpus has no corpus.json recording each source's licence")  # fmt: skip
        raise VoicelabError(
            f"not shipping {ckpt.name}: {why}. Build the corpus with `python -m voicelab corpus` "
            "from shippable sources, or check every licence yourself and pass "
            "--allow-unverified-licence"
        )
    if info.get("dev_voice_clips"):
        log.warning("this base heard %d clips of development voices / held-out sentences: its "
                    "evaluation on them is no test on unseen voices", info["dev_voice_clips"])

    weights, _ = ck.inference_weights(state, ("sovits", "gpt"), what=ckpt.name)
    kept: list[str] = []
    tensors: dict[str, Any] = {}
    for part, sd in weights.items():
        tensors.update({f"{part}.{k}": _half(f"{part}.{k}", v, kept) for k, v in sd.items()})
    saved_disc = state[ck.K_MODELS].get("disc", {})  # training-only: not an inference weight
    disc = {f"disc.{k}": _half(f"disc.{k}", v, kept) for k, v in saved_disc.items()}
    meta = _base_meta(state, ckpt, run_dir, info, list(evals))
    meta.update(licence={"checked_shippable": shippable, "stated": licence, "sources": {
        s: v.get("licence") for s, v in ((manifest or {}).get("sources") or {}).items()}},
        kept_fp32=kept, model_card=card_path.name)  # fmt: skip

    def ship_files(with_disc: bool) -> tuple[bytes, bytes, bytes]:
        """(weights, JSON, model card): the three files the size cap counts together."""
        ts = {**tensors, **(disc if with_disc else {})}
        header = {"format": B.BASE_FORMAT, "format_version": str(B.BASE_FORMAT_VERSION)}
        blob = st_save(ts, metadata=header)
        m = {**meta, "with_discriminators": with_disc, "sha256": hashlib.sha256(blob).hexdigest(),
             "bytes": len(blob), "created": _utc_now()}  # fmt: skip
        meta_bytes = (json.dumps(m, indent=2, ensure_ascii=False) + "\n").encode()
        card = B.render_card(json.loads(meta_bytes), manifest).encode("utf-8")
        return blob, meta_bytes, card

    limit = int(max_mb * 1e6)
    with_disc = bool(disc)
    blob, meta_bytes, card = ship_files(with_disc)
    if with_disc and len(blob) + len(meta_bytes) + len(card) > limit:
        disc_mb = sum(t.numel() * t.element_size() for t in disc.values()) / 1e6
        log.warning("the discriminators (%.1f MB) would take the base over %g MB: shipped "
                    "without them (fine-tuning starts its discriminators fresh)", disc_mb, max_mb)
        with_disc = False
        blob, meta_bytes, card = ship_files(False)
    size = len(blob) + len(meta_bytes) + len(card)
    if size > limit:
        raise VoicelabError(
            f"the base would be {size / 1e6:.1f} MB (SoVITS + GPT in fp16, JSON and model card), "
            f"over the {max_mb:g} MB "
            "limit: pretrain a smaller architecture (e.g. --set model.gpt_layers=6) or raise "
            "--max-mb if the limit does not apply to you"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(st_path, blob)
    write_bytes_atomic(card_path, card)
    write_bytes_atomic(json_path, meta_bytes)  # last: without its JSON a base is never used
    log.info("shipped %s (%.1f MB, %s discriminators)", st_path, size / 1e6,
             "with" if with_disc else "without")
    return ShipResult(st_path, json_path, card_path, size, with_disc, kept, json.loads(meta_bytes))


def _utc_now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
