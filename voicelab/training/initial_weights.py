"""`train --from`: a new run starts from weights only (optimisers, counters and RNGs fresh).

    note = load_initial_weights(path, cfg, {"sovits": sovits, "disc": disc, "gpt": gpt})

Sources: a training checkpoint .pt (EMA weights where kept, via checkpoint.inference_weights),
or a .safetensors with `<model>.*` keys (an export, or a shipped base, which may also carry
`disc.*`). A model the file has no weights for keeps its initialisation (a base without its
discriminator); a model that is None in `models` is skipped (a kind without a discriminator).

A .safetensors whose JSON says it is a shipped base ("format": "voicelab-base") is checked by
base.read_base first, however it was named (`--from base`, `--from auto` or a path): its
sha256, format and voicelab versions and phoneme table, so a replaced, truncated or mismatched
base is refused with what to do instead of being loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor, nn

from voicelab import base
from voicelab.config import Config, config_to_dict
from voicelab.errors import VoicelabError
from voicelab.training import checkpoint as ck


def _load_strict(module: nn.Module, sd: dict[str, Tensor], name: str, path: Path) -> None:
    try:
        module.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "shape mismatch"
        raise VoicelabError(
            f"--from {path}: the {name} weights do not fit the model of this preset ({first}); "
            "train with the preset those weights were made with"
        ) from None


def _side_json(path: Path) -> dict:
    """The JSON beside a .safetensors (an export's or a base's), {} when there is none."""
    meta = path.with_suffix(".json")
    if not meta.is_file():
        return {}
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VoicelabError(
            f"--from {path}: {meta.name} beside it is damaged ({e}): copy both files again"
        ) from None
    return info if isinstance(info, dict) else {}


def load_initial_weights(path: Path, cfg: Config, models: dict[str, nn.Module | None]) -> str:
    """Load `path` into `models` ({"sovits", "disc", "gpt"}: modules or None). Returns a short
    description of what was loaded. Raises VoicelabError for a missing file, a different
    architecture, or a file that holds no voicelab weights.
    """
    path = Path(path)
    if not path.is_file():
        raise VoicelabError(
            f"--from {path}: no such file; give a checkpoint (.pt) or an export (.safetensors)"
        )
    live = {name: m for name, m in models.items() if m is not None}
    if path.suffix == ".pt":
        state = ck.load_checkpoint(path)
        ck.check_compatible(state[ck.K_CONFIG], config_to_dict(cfg))
        speak = tuple(n for n in ("sovits", "gpt") if n in live)
        weights, _ = ck.inference_weights(state, speak, what=f"--from {path}")
        for name in speak:
            _load_strict(live[name], weights[name], name, path)
        saved = state[ck.K_MODELS]
        if "disc" in live and "disc" in saved:
            _load_strict(live["disc"], saved["disc"], "disc", path)
        return f"checkpoint at step {state[ck.K_STEP]}"
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        info = _side_json(path)
        if info.get("format") == base.BASE_FORMAT:
            try:
                base.read_base(path)  # sha256, versions, phoneme table, config
            except base.BaseModelError as e:
                raise base.BaseModelError(f"--from {path}: {e}") from None
        if isinstance(info.get("config"), dict):
            ck.check_compatible(info["config"], config_to_dict(cfg))
        tensors = load_file(str(path))
        loaded = []
        for name in ("sovits", "gpt", "disc"):
            sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
            if sd and name in live:
                _load_strict(live[name], sd, name, path)
                loaded.append(name)
        if not loaded:
            raise VoicelabError(
                f"--from {path}: holds no sovits.* or gpt.* weights (not a voicelab export)"
            )
        return "export: " + ", ".join(loaded)
    raise VoicelabError(f"--from {path}: use a checkpoint (.pt) or an export (.safetensors)")
