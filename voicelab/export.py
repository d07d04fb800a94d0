"""Export a trained run as an inference bundle, and load bundles back (no pickle anywhere).

    path = export_run("my-voice")            # newest run, newest intact checkpoint
    bundle = load_bundle(path)               # Bundle(config, weights["sovits"|"gpt"], meta)

A bundle is two files side by side in workspace/<voice>/exports/:

    <name>.safetensors   EMA weights (model weights where a run kept no EMA), keys
                         "sovits.<param>" and "gpt.<param>"; the discriminators are left out
    <name>.json          {"format": "voicelab-bundle", "format_version", "voicelab_version",
                          "symbols_version", "n_symbols", "n_langs", "config" (resolved),
                          "source": {voice, run, checkpoint, step, stage}, "weights": "ema"|"model",
                          "sha256" of the .safetensors, "created"}

Loading checks all of it and refuses, with a message saying what to do, a missing or damaged
file, weights that are not the ones the JSON describes, a newer bundle format or voicelab, and a
different phoneme table (its ids would mean other sounds).
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from voicelab import __version__
from voicelab.config import Config, config_from_dict
from voicelab.errors import ConfigError, VoicelabError, WorkspaceError
from voicelab.fileio import write_bytes_atomic
from voicelab.text import symbols
from voicelab.training import checkpoint as ck
from voicelab.training import runfiles
from voicelab.workspace import Voice, get_voice, validate_name

BUNDLE_FORMAT = "voicelab-bundle"
BUNDLE_VERSION = 1
MODEL_NAMES = ("sovits", "gpt")  # what synthesis needs; the discriminators stay in the run
_FREE_MARGIN = 1024 * 1024  # the folder entries and the temp file's name need a little room
MAX_META_BYTES = 16 * 1024 * 1024  # a bundle's JSON is a few kB: anything huge is not one
MAX_ABS_WEIGHT = 1e8  # no trained weight or statistic comes near it; 1e30 overflows every layer


class BundleError(VoicelabError):
    """An export could not be written or a bundle could not be used (message says what to do)."""


@dataclass
class Bundle:
    """A loaded, verified export."""

    path: Path  # the .safetensors file
    meta: dict[str, Any]  # the JSON
    config: Config  # the resolved config the models were trained with
    weights: dict[str, dict[str, Tensor]]  # {"sovits": state_dict, "gpt": state_dict} on the CPU


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def _newest_run(voice: Voice) -> str:
    """The run whose newest checkpoint file is the most recent (what a person just trained)."""
    best: tuple[float, str] | None = None
    for run in voice.list_runs():
        files = voice.run(run).checkpoint_files()
        if files:
            t = max(f.stat().st_mtime for f in files)
            if best is None or t > best[0]:
                best = (t, run)
    if best is None:
        raise WorkspaceError(
            f"voice {voice.name!r} has no run with a checkpoint: train it first with "
            f"`python -m voicelab train --voice {voice.name}` (or the app's Train tab)"
        )
    return best[1]


def _bundle_stem(path: Path | str) -> Path:
    """The path without a .safetensors / .json suffix (other dots belong to the name)."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def bundle_paths(path: Path | str) -> tuple[Path, Path]:
    """(<stem>.safetensors, <stem>.json) for a path given with either suffix or none."""
    p = _bundle_stem(path)
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _output_stem(voice: Voice, run: str, step: int, out: Path | str | None) -> Path:
    """Where `export_run` writes. A path must name a file (not a folder, not only dots) in a
    folder that exists: a typo must not create folders anywhere."""
    if out is None:
        return voice.exports / f"{run}-step{step}"
    out_s = str(out)
    if "/" not in out_s and "\\" not in out_s and out_s.strip("."):  # a bare name: exports/
        name = out_s.removesuffix(".safetensors").removesuffix(".json")
        return voice.exports / validate_name(name, "export name")
    given = Path(out).expanduser()
    stem = _bundle_stem(given)
    if given.is_dir() or not stem.name.strip("."):
        raise BundleError(
            f"-o {out} is a folder, not an export name: give a name (it goes to exports/) or a "
            f"path ending in a name, e.g. {given / 'my-voice'}"
        )
    if stem.name.startswith("."):  # `.safetensors` alone would become a hidden, nameless export
        raise BundleError(f"-o {out} names no export (it starts with a dot): give a name such as "
                          f"{stem.parent / 'my-voice'}")
    if not stem.parent.is_dir():
        raise BundleError(f"the folder {stem.parent} does not exist: create it first, or pick another -o")
    return stem


def export_run(
    voice: Voice | str,
    run: str | None = None,
    out: Path | str | None = None,
    *,
    allow_untrained_gpt: bool = False,
) -> Path:
    """Write the newest intact checkpoint of `run` (default: the newest run) as a bundle.

    `out`: None -> exports/<run>-step<N>; a bare name -> exports/<name>; a path -> that path
    (suffix optional). Refuses to overwrite an existing export, and refuses a checkpoint still
    in stage 1 (its GPT has not been trained, so it cannot read text) unless
    `allow_untrained_gpt`. Returns the .safetensors path.
    """
    voice = get_voice(voice, must_exist=True) if isinstance(voice, str) else voice
    if run is not None and not run.strip():  # "" used to mean "newest": a typo must not pick
        raise WorkspaceError(
            f"the run name is empty: give one of {', '.join(voice.list_runs()) or 'no runs yet'}, "
            "or leave --run out for the most recently trained run"
        )
    run = run or _newest_run(voice)
    run_dir = voice.run_dir(run)
    if not run_dir.is_dir():
        known = ", ".join(voice.list_runs()) or "none yet"
        raise WorkspaceError(f"voice {voice.name!r} has no run {run!r} (runs: {known})")
    point = ck.find_resume(run_dir)
    if point is None:
        raise WorkspaceError(
            f"run {run!r} has no checkpoint yet: let training save one (train.save_every) first"
        )
    state = point.state
    step, stage = int(state[ck.K_STEP]), str(state.get(ck.K_STAGE))
    finished = (runfiles.read_status(run_dir) or {}).get("state") == "finished"
    from_weights = bool((state.get(ck.K_CONFIG) or {}).get("train", {}).get("finetuned"))
    # a fine-tune that finished without stage 2 (train.gpt_steps = 0) speaks with the GPT of the
    # weights it started from: trained, so nothing to refuse
    if stage != "gpt" and not allow_untrained_gpt and not (from_weights and finished):
        raise BundleError(
            f"the newest checkpoint of run {run!r} ({point.path.name}) is from the {stage!r} stage: "
            "the GPT that reads text has not been trained yet. Let training reach stage 2 "
            "(train.gpt_steps > 0) or pass --allow-untrained to export it anyway"
        )
    try:
        weights, kind = ck.inference_weights(state, MODEL_NAMES, what=point.path.name)
    except ck.CheckpointError as e:
        raise BundleError(str(e)) from None
    st_path, json_path = bundle_paths(_output_stem(voice, run, step, out))
    for p, other in ((st_path, json_path), (json_path, st_path)):
        if p.exists() and not other.exists():
            raise BundleError(
                f"{p} is left from an interrupted export ({other.name} is missing): delete it and "
                "export again, or pass another name with -o NAME"
            )
        if p.exists():
            raise BundleError(
                f"{p} already exists and is not overwritten: pass another name with -o NAME, "
                "or delete the old export first"
            )
    try:  # the JSON's config must describe models this voicelab can build
        config_from_dict(state[ck.K_CONFIG])
    except ConfigError as e:
        raise BundleError(f"{point.path.name} holds a config this voicelab cannot use: {e}") from None

    # safetensors refuses tensors that share memory; contiguous copies on the CPU are plain
    tensors = {
        f"{name}.{k}": v.detach().to("cpu").contiguous().clone()
        for name in MODEL_NAMES
        for k, v in weights[name].items()
    }
    blob = st_save(tensors, metadata={"format": BUNDLE_FORMAT, "format_version": str(BUNDLE_VERSION)})
    meta = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "voicelab_version": __version__,
        "symbols_version": symbols.SYMBOLS_VERSION,
        "n_symbols": symbols.NUM_SYMBOLS,
        "n_langs": symbols.NUM_LANGS,
        "config": state[ck.K_CONFIG],
        "source": {
            "voice": voice.name,
            "run": run,
            "checkpoint": point.path.name,
            "step": step,
            "stage": stage,
            "trained_with": state.get(ck.K_VERSION),
        },
        "weights": kind,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_pair(st_path, blob, json_path, meta)
    return st_path


def _write_pair(st_path: Path, blob: bytes, json_path: Path, meta: dict[str, Any]) -> None:
    """Write both files of a bundle or neither (neither existed: `export_run` checked).

    The free space is checked first; a write that fails anyway (disk full, Ctrl-C) removes the
    file already written, so no orphan .safetensors blocks the next export of the same name.
    """
    text = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    need = len(blob) + len(text)
    folder = st_path.parent
    probe = next(p for p in (folder, *folder.parents) if p.exists())  # exports/ may be new
    free = shutil.disk_usage(probe).free
    if free < need + _FREE_MARGIN:
        raise BundleError(_disk_full(st_path, need, free))
    try:
        write_bytes_atomic(st_path, blob)
        write_bytes_atomic(json_path, text)  # last: a bundle without its JSON is never loadable
    except BaseException as e:
        for p in (json_path, st_path):
            p.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise BundleError(_disk_full(st_path, need, shutil.disk_usage(probe).free)) from None
        raise


def _disk_full(st_path: Path, need: int, free: int) -> str:
    mb = 1024 * 1024
    return (
        f"the disk holding {st_path.parent} is full: the export {st_path.name} (+ .json) needs "
        f"{need / mb:.1f} MB and {free / mb:.1f} MB are free. Nothing was written: free some "
        "space, or export to another disk with -o PATH"
    )


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


def _version_tuple(v: Any) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in str(v).split(".")[:2])
    except ValueError:
        return (0,)


def _read_meta(json_path: Path, st_name: str) -> dict[str, Any]:
    if json_path.stat().st_size > MAX_META_BYTES:
        raise BundleError(f"{json_path} is far too large for an export description: pick the .json "
                          "written with its .safetensors, or export the run again")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{json_path} is damaged (not valid JSON: {e}): export the run again") from None
    except RecursionError:  # nested thousands of levels deep: no export looks like that
        raise BundleError(f"{json_path} is damaged (nested too deeply): export the run again") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{json_path} is not a voicelab export description: pick the .json of an export")
    fv = meta.get("format_version")
    if type(fv) is not int:
        raise BundleError(f"{json_path} has no valid format_version: export the run again")
    if fv > BUNDLE_VERSION:
        raise BundleError(
            f"{st_name} is bundle format {fv}, made by voicelab {meta.get('voicelab_version')}; "
            f"this voicelab ({__version__}) reads format {BUNDLE_VERSION}: update voicelab"
        )
    if fv < BUNDLE_VERSION:
        raise BundleError(
            f"{st_name} is bundle format {fv}, older than this voicelab reads ({BUNDLE_VERSION}): "
            "export it again from its run with `python -m voicelab export`"
        )
    if _version_tuple(meta.get("voicelab_version")) > _version_tuple(__version__):
        raise BundleError(
            f"{st_name} was exported by voicelab {meta.get('voicelab_version')}, newer than this "
            f"one ({__version__}): update voicelab to use it"
        )
    sv = meta.get("symbols_version")
    if sv != symbols.SYMBOLS_VERSION or meta.get("n_symbols") != symbols.NUM_SYMBOLS:
        raise BundleError(
            f"{st_name} was trained with phoneme table v{sv} ({meta.get('n_symbols')} symbols) but "
            f"this voicelab has v{symbols.SYMBOLS_VERSION} ({symbols.NUM_SYMBOLS} symbols): its "
            f"phoneme ids would mean other sounds. Use voicelab {meta.get('voicelab_version')}, "
            "or train the voice again with this version"
        )
    if meta.get("n_langs") != symbols.NUM_LANGS:
        raise BundleError(
            f"{st_name} knows {meta.get('n_langs')} languages, this voicelab {symbols.NUM_LANGS}: "
            "train the voice again with this version"
        )
    if not isinstance(meta.get("config"), dict):
        raise BundleError(f"{json_path} has no config: export the run again")
    return meta


def load_bundle(path: Path | str) -> Bundle:
    """Load and verify an export (either file's path, or the path without suffix)."""
    st_path, json_path = bundle_paths(path)
    for p in (st_path, json_path):
        if not p.is_file():
            raise BundleError(
                f"{p} is missing: an export is a .safetensors file plus its .json; export the run "
                "again with `python -m voicelab export --voice NAME`"
            )
    meta = _read_meta(json_path, st_path.name)
    blob = st_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise BundleError(
            f"{st_path.name} does not match its .json (the weights were replaced, truncated or "
            "damaged): copy both files of the export again, or export the run again"
        )
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise BundleError(f"{st_path.name} is not a readable safetensors file ({e}): export again") from None
    weights: dict[str, dict[str, Tensor]] = {n: {} for n in MODEL_NAMES}
    for key, value in tensors.items():
        name, _, param = key.partition(".")
        if name not in weights or not param:
            raise BundleError(f"{st_path.name} holds an unexpected tensor {key!r}: export again")
        weights[name][param] = value
    empty = [n for n, w in weights.items() if not w]
    if empty:
        raise BundleError(f"{st_path.name} has no weights for {', '.join(empty)}: export again")
    try:
        cfg = config_from_dict(meta["config"])
    except ConfigError as e:
        raise BundleError(
            f"{json_path.name} holds a config this voicelab cannot read ({e}): use the voicelab "
            f"version that exported it ({meta.get('voicelab_version')})"
        ) from None
    check_weights(cfg, weights, st_path.name)
    return Bundle(path=st_path, meta=meta, config=cfg, weights=weights)


# the config fields that count repeated layers: building loops over them, so each must stay
# below the number of tensors a bundle holds before even an empty (meta) model is built
_COUNT_FIELDS = ("n_layers_text", "n_layers_posterior", "flow_layers", "flow_wn_layers",
                 "content_layers", "gpt_layers", "n_quantizers", "msd_scales")  # fmt: skip


def expected_shapes(cfg: Config) -> dict[str, dict[str, tuple[int, ...]]]:
    """{model: {param: shape}} of the models `cfg` describes, built on the meta device: no memory
    is allocated, so a config claiming huge sizes costs nothing to check."""
    from voicelab.models.build import build_gpt, build_sovits

    with torch.device("meta"):
        models = {"sovits": build_sovits(cfg, symbols.NUM_SYMBOLS, symbols.NUM_LANGS),
                  "gpt": build_gpt(cfg, symbols.NUM_SYMBOLS, symbols.NUM_LANGS)}  # fmt: skip
    return {n: {k: tuple(v.shape) for k, v in m.state_dict().items()} for n, m in models.items()}


def check_weights(cfg: Config, weights: dict[str, dict[str, Tensor]], name: str) -> None:
    """Refuse weights that do not match their config (names, shapes) or hold NaN, inf or absurd
    values, before any model is built (BundleError naming the first bad tensor)."""
    n_tensors = sum(len(w) for w in weights.values())
    for f in _COUNT_FIELDS:
        if getattr(cfg.model, f) > n_tensors:
            raise BundleError(
                f"{name}: its config claims model.{f}={getattr(cfg.model, f)} but the file holds "
                f"only {n_tensors} tensors: the .json was edited or mixed up; export the run again"
            )
    expected = expected_shapes(cfg)
    for model, shapes in expected.items():
        got = weights[model]
        missing = sorted(set(shapes) - set(got))
        extra = sorted(set(got) - set(shapes))
        if missing or extra:
            which = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
            raise BundleError(
                f"{name}: the {model} weights do not fit the model its config describes ({which}, "
                f"{len(missing)} missing, {len(extra)} unexpected): the files were mixed up or "
                "edited; export the run again"
            )
        for k, shape in shapes.items():
            if tuple(got[k].shape) != shape:
                raise BundleError(
                    f"{name}: the {model} weights do not fit the model its config describes "
                    f"({model}.{k} has shape {tuple(got[k].shape)}, the config gives {shape}): the "
                    "files were mixed up or edited; export the run again"
                )
        for k, v in got.items():
            if not v.is_floating_point() or not v.numel():
                continue
            if not bool(torch.isfinite(v).all()):
                raise BundleError(f"{name}: {model}.{k} holds NaN or infinite values: the weights "
                                  "are damaged; export an earlier checkpoint of the run")
            peak = float(v.abs().max())
            if peak > MAX_ABS_WEIGHT:
                raise BundleError(f"{name}: {model}.{k} holds a value of {peak:.3g}, far beyond "
                                  "any trained weight: the weights are damaged; export again")


def load_weights(module: torch.nn.Module, state: dict[str, Tensor], what: str) -> None:
    """load_state_dict with a message a person can act on when the shapes do not fit."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:3]
        raise BundleError(
            f"the {what} weights do not fit the model their config describes ({' '.join(first)}): "
            "the files were mixed up or edited; export the run again"
        ) from None
