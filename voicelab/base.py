"""The shipped pretrained base: find it, check it, and say whether a run can start from it.

A base is three files in assets/base/ (or $VOICELAB_BASE_DIR), written by
`python -m voicelab pretrain --ship` (voicelab/pretrain.py):

    <name>.safetensors   fp16 weights (a tensor too large for fp16 stays fp32), keys
                         "sovits.<param>", "gpt.<param>" and, when it fitted under the size cap,
                         "disc.<param>": the same layout `--from` reads (training/initial_weights.py
                         load_initial_weights), so a base is simply an initial-weights file
    <name>.json          {"format": "voicelab-base", "format_version", "voicelab_version",
                          "symbols_version", "n_symbols", "n_langs", "config" (resolved),
                          "preset", "steps", "corpus", "training", "metrics", "sha256", ...}
    MODEL_CARD.md        data, steps, hours, metrics, licence (<name>.MODEL_CARD.md for a name
                         other than "base")

Few-shot training starts from the base whose architecture matches the run's preset:

    from_path = resolve_from(args.from_value, cfg)   # "auto" | "base" | "none" | a path
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicelab import __version__
from voicelab.config import (
    ABSENT,
    Config,
    architecture_differences,
    config_from_dict,
    config_to_dict,
)
from voicelab.errors import ConfigError, VoicelabError
from voicelab.text import symbols

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASE_DIR = REPO / "assets" / "base"
BASE_FORMAT = "voicelab-base"
BASE_FORMAT_VERSION = 1
DEFAULT_NAME = "base"
MAX_MB = 50.0  # issue 14: weights + JSON + model card of a shipped base, together
WEIGHT_PREFIXES = ("sovits", "gpt", "disc")
# values of --from that are not paths
FROM_AUTO, FROM_BASE, FROM_NONE = "auto", "base", "none"


class BaseModelError(VoicelabError):
    """A base model is missing, damaged, or does not fit the run (message says what to do)."""


@dataclass(frozen=True)
class BaseInfo:
    """A verified base on disk."""

    path: Path  # the .safetensors file
    meta: dict[str, Any]  # the JSON next to it
    card: Path | None  # its model card, when present

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    def mismatch(self, cfg: Config) -> list[str]:
        """Architecture settings (model.*, features.*, audio.sample_rate) that differ from cfg."""
        def show(v: Any) -> str:
            return v if v is ABSENT else repr(v)

        return [
            f"{k}: {show(old)} in the base, {show(new)} in the preset"
            for k, old, new in architecture_differences(self.config, config_to_dict(cfg))
        ]


def base_dir() -> Path:
    """$VOICELAB_BASE_DIR, else assets/base in the repository."""
    env = os.environ.get("VOICELAB_BASE_DIR")
    return Path(env).expanduser().resolve() if env else DEFAULT_BASE_DIR


def base_paths(folder: Path | str, name: str = DEFAULT_NAME) -> tuple[Path, Path, Path]:
    """(<name>.safetensors, <name>.json, model card) inside `folder`."""
    folder = Path(folder)
    card = folder / ("MODEL_CARD.md" if name == DEFAULT_NAME else f"{name}.MODEL_CARD.md")
    return folder / f"{name}.safetensors", folder / f"{name}.json", card


def _version_tuple(v: Any) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in str(v).split(".")[:2])
    except ValueError:
        return (0,)


def read_base(path: Path | str, verify_hash: bool = True) -> BaseInfo:
    """Load and check a base's JSON (and, with verify_hash, that the weights are the ones it
    describes). Raises BaseModelError saying what to do for anything unusable."""
    st_path = Path(path)
    if st_path.suffix != ".safetensors":
        st_path = st_path.with_name(st_path.name.removesuffix(".json") + ".safetensors")
    json_path = st_path.with_suffix(".json")
    for p in (st_path, json_path):
        if not p.is_file():
            raise BaseModelError(
                f"{p} is missing: a base is <name>.safetensors + <name>.json; ship one with "
                "`python -m voicelab pretrain --ship RUN_DIR`"
            )
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BaseModelError(f"{json_path} is damaged ({e}): ship the base again") from None
    if not isinstance(meta, dict) or meta.get("format") != BASE_FORMAT:
        raise BaseModelError(f"{json_path} does not describe a voicelab base model")
    fv = meta.get("format_version")
    if type(fv) is not int or fv > BASE_FORMAT_VERSION:
        raise BaseModelError(
            f"{st_path.name} is base format {fv!r} (voicelab {meta.get('voicelab_version')}); this "
            f"voicelab ({__version__}) reads format {BASE_FORMAT_VERSION}: update voicelab"
        )
    if _version_tuple(meta.get("voicelab_version")) > _version_tuple(__version__):
        raise BaseModelError(
            f"{st_path.name} was shipped by voicelab {meta.get('voicelab_version')}, newer than "
            f"this one ({__version__}): update voicelab to use it"
        )
    table = (meta.get("symbols_version"), meta.get("n_symbols"), meta.get("n_langs"))
    if table != (symbols.SYMBOLS_VERSION, symbols.NUM_SYMBOLS, symbols.NUM_LANGS):
        raise BaseModelError(
            f"{st_path.name} was trained with phoneme table v{meta.get('symbols_version')} "
            f"({meta.get('n_symbols')} symbols, {meta.get('n_langs')} languages), this voicelab "
            f"has v{symbols.SYMBOLS_VERSION} ({symbols.NUM_SYMBOLS}, {symbols.NUM_LANGS}): its "
            "phoneme ids would mean other sounds. Pretrain a base with this version"
        )
    if not isinstance(meta.get("config"), dict):
        raise BaseModelError(f"{json_path} has no config: ship the base again")
    try:
        config_from_dict(meta["config"])
    except ConfigError as e:
        raise BaseModelError(f"{json_path.name} holds a config this voicelab cannot build "
                             f"({e}): use the voicelab version that shipped it") from None
    if verify_hash:
        h = hashlib.sha256()
        with open(st_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        if h.hexdigest() != meta.get("sha256"):
            raise BaseModelError(
                f"{st_path.name} does not match {json_path.name} (replaced, truncated or damaged): "
                "copy both files again, or ship the base again"
            )
    card = base_paths(st_path.parent, st_path.stem)[2]
    return BaseInfo(path=st_path, meta=meta, card=card if card.is_file() else None)


def speaker_dvectors(path: Path | str) -> dict[str, np.ndarray]:
    """{speaker: [256] unit d-vector} of the corpus speakers a base lists in its JSON
    ("speaker_dvectors", written by `pretrain --ship`); {} for an export, a checkpoint, an older
    base or an unreadable JSON (the caller then has no likeness check to make)."""
    json_path = Path(path).with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict) or meta.get("format") != BASE_FORMAT:
        return {}
    table = meta.get("speaker_dvectors")
    if not isinstance(table, dict):
        return {}
    out = {}
    for name, vec in table.items():
        v = np.asarray(vec, dtype=np.float32).ravel()
        if v.size and np.all(np.isfinite(v)) and np.linalg.norm(v) > 0:
            out[str(name)] = v / np.linalg.norm(v)
    return out


def find_bases(folder: Path | str | None = None) -> list[BaseInfo]:
    """Every readable base in `folder` (default base_dir()), by name. Unreadable ones are
    logged and skipped: a damaged optional file must not stop training from scratch."""
    folder = Path(folder) if folder is not None else base_dir()
    found = []
    for st in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            found.append(read_base(st))
        except BaseModelError as e:
            log.warning("ignoring base %s: %s", st.name, e)
    return found


def default_from(cfg: Config, folder: Path | str | None = None) -> Path | None:
    """The shipped base to fine-tune from by default, or None (training from scratch).

    Returns the first base (DEFAULT_NAME first, then by name) whose architecture equals the
    preset's; logs why when there is none, so a person knows the run starts from nothing.
    """
    bases = find_bases(folder)
    bases.sort(key=lambda b: (b.name != DEFAULT_NAME, b.name))
    for b in bases:
        if not b.mismatch(cfg):
            log.info("fine-tuning from the pretrained base %s (preset %s, %s steps)", b.path,
                     b.meta.get("preset"), b.meta.get("steps", {}).get("total"))  # fmt: skip
            return b.path
    where = folder if folder is not None else base_dir()
    if not bases:
        log.info("no pretrained base in %s: training from scratch (see docs/pretraining.md)", where)
    else:
        first = bases[0]
        diffs = first.mismatch(cfg)
        log.info(
            "the pretrained base %s was trained with another architecture than preset %r (%s%s): "
            "training from scratch; use the preset the base was made with (%s) to start from it",
            first.path.name, cfg.preset, "; ".join(diffs[:3]), " ..." if len(diffs) > 3 else "",
            first.meta.get("preset"),
        )  # fmt: skip
    return None


def resolve_from(
    value: str | Path | None, cfg: Config, folder: Path | str | None = None
) -> Path | None:
    """What `train --from VALUE` means, as a path for TrainOptions.from_path (None = scratch).

    None or "auto": the matching shipped base if there is one (default_from), else scratch.
    "base": the matching shipped base, and an error when there is none (it was asked for).
    "none" / "scratch": no initial weights. Anything else: a file path, returned unchanged
    (the trainer checks it).
    """
    if value is None or str(value).strip().lower() == FROM_AUTO:
        return default_from(cfg, folder)
    text = str(value).strip()
    if text.lower() in (FROM_NONE, "scratch"):
        return None
    if text.lower() == FROM_BASE:
        bases = find_bases(folder)
        match = [b for b in bases if not b.mismatch(cfg)]
        if match:
            match.sort(key=lambda b: (b.name != DEFAULT_NAME, b.name))
            return match[0].path
        where = folder if folder is not None else base_dir()
        if not bases:
            raise BaseModelError(
                f"--from base: there is no pretrained base in {where}. Train one "
                "(docs/pretraining.md), or leave out --from to train from scratch"
            )
        diffs, made = bases[0].mismatch(cfg), bases[0].meta.get("preset")
        raise BaseModelError(
            f"--from base: {bases[0].path.name} was made with preset {made!r}, "
            f"whose architecture differs from {cfg.preset!r} ({'; '.join(diffs[:3])}): train with "
            f"--preset {made}, or use --from none"
        )
    return Path(text).expanduser()


# --------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return "-" if v is None else str(v)


def _data_section(meta: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    """The corpus builder's card up to its training part, or a table from the corpus list."""
    if manifest:
        from voicelab.corpus.modelcard import render

        return [render(manifest).split("\n## Training\n", 1)[0].rstrip(), ""]
    c = meta["corpus"]
    speakers = c.get("speakers") or {}
    return [
        "# voicelab base model: model card", "",
        f"Corpus {c.get('corpus')}: {c.get('clips')} clips, {_fmt(c.get('hours'))} hours, "
        f"{len(speakers)} speakers. **No corpus.json: the licence of each source was not "
        "recorded by `python -m voicelab corpus`.**", "",
        "## Data", "", "| speaker | clips | minutes |", "|---|---|---|",
        *[f"| {s} | {v['clips']} | {v['seconds'] / 60:.1f} |" for s, v in speakers.items()], "",
    ]  # fmt: skip


def _eval_section(evals: dict[str, dict[str, Any]]) -> list[str]:
    if not evals:
        return ["Not evaluated on unseen voices when shipped: follow docs/pretraining.md "
                "(Evaluate), then ship again with --force --eval DIR."]  # fmt: skip
    def pct(v: Any) -> str:
        return f"{100 * v:.1f}%" if isinstance(v, float) else _fmt(v)

    lines = ["Voices never in the corpus, each fine-tuned from this base with the defaults on "
             "its one-minute noisy take and scored on held-out sentences against its real "
             "recordings (`python benchmarks/bench_base.py`, `python -m voicelab eval`; "
             "pocketsphinx WER, resemblyzer similarity):", "",
             "| voice | WER | real voice WER | similarity to target | closest base voice |",
             "|---|---|---|---|---|"]  # fmt: skip
    for v, s in evals.items():
        closest = s.get("closest_other")
        sim_other = (s.get("sim_others") or {}).get(closest)
        lines.append(f"| {v} | {pct(s.get('wer'))} | {pct(s.get('real_wer'))} | "
                     f"{_fmt(s.get('sim_target'))} | {closest or '-'} {_fmt(sim_other)} |")
    return lines


def discriminators_note(meta: dict[str, Any]) -> str:
    """What a base holds of the discriminators: "included", "left out (size cap)", or "not
    used (the world path has none)"."""
    if meta["config"]["model"].get("acoustic") == "world":
        return "not used (the world path has none)"
    return "included" if meta["with_discriminators"] else "left out (size cap)"


def render_card(meta: dict[str, Any], manifest: dict[str, Any] | None) -> str:
    """MODEL_CARD.md of a base: data (from corpus.json where the corpus builder wrote one),
    training, metrics and licence, all from the base's JSON `meta`."""
    t, st, m = meta["training"], meta["steps"], meta["config"]["model"]
    tr = meta["config"]["train"]
    commit = (meta["source"].get("commit") or "unknown")[:10]
    losses = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(meta["metrics"].items()))
    vals = ", ".join(f"{k} {_fmt(v)}" for k, v in meta["validation"].items())
    disc = discriminators_note(meta)
    sets = "".join(f" --set {x}" for x in t.get("settings") or [])
    lic = meta["licence"]
    if lic["checked_shippable"]:
        lic_text = ("Every source was checked as shippable by the corpus builder; the weights "
                    "carry the terms of the most restrictive source above (attribution for CC "
                    "BY sources).")  # fmt: skip
    else:
        lic_text = ("**The licences of the sources were not verified by voicelab** (shipped "
                    "with --allow-unverified-licence): check them before distributing these "
                    "weights.")  # fmt: skip
    lines = [
        *_data_section(meta, manifest),
        "## Training", "",
        f"- Preset `{meta.get('preset')}` (hidden {m['hidden']}, GPT {m['gpt_layers']} x "
        f"{m['gpt_hidden']}): `python -m voicelab pretrain --corpus "
        f"{meta['corpus'].get('corpus')} --preset {meta.get('preset')}{sets}`",
        f"- Steps: SoVITS {st['sovits']}, GPT {st['gpt']} (batch {tr['batch_size']} x "
        f"grad_accum {tr['grad_accum']})",
        f"- Hardware and wall-clock hours: {t.get('device') or 'unknown'}"
        + (f" ({t['machine']})" if t.get("machine") else "") + f", {_fmt(t.get('hours'), 2)} h",
        f"- voicelab {meta['voicelab_version']}, commit {commit}, {meta['source']['checkpoint']}",
        f"- Weights: fp16 EMA of SoVITS and GPT, discriminators {disc}; "
        f"{meta['bytes'] / 1e6:.1f} MB",
        "", "## Metrics", "",
        f"Training losses at the checkpoint: {losses or 'none logged'}. "
        f"Best validation losses: {vals or 'none (no validation slices)'}.", "",
        *_eval_section(meta["eval"]),
        "", "## Licence of the model", "",
        (f"{lic['stated']}. " if lic.get("stated") else "") + lic_text,
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
