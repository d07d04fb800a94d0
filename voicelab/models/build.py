"""One place that builds the models from a Config, so trainer, export and synthesis agree.

    models = build_models(cfg)          # Models(sovits, disc, gpt)

By `model.acoustic`: "hifigan" builds SoVITS + discriminators + SemanticGPT over the IPA symbol
table (voicelab.text.symbols); "world" builds WorldAcoustic + AlignedGPT over the ARPAbet table
(voicelab.text.arpabet) and no discriminator. Stage 1's model is called "sovits" in both, so
checkpoints, exports and the trainer's stage names stay the same.
    parameter_counts(models)            # {"sovits": {"decoder": 123, ...}, "disc": {...}, ...}
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from voicelab.audio import world
from voicelab.config import Config
from voicelab.models.aligned_gpt import AlignedGPT
from voicelab.models.discriminators import MultiDiscriminator
from voicelab.models.gpt import SemanticGPT
from voicelab.models.sovits import SoVITS
from voicelab.models.world_acoustic import FeatureLayout, WorldAcoustic
from voicelab.text import arpabet, symbols


@dataclass
class Models:
    sovits: SoVITS | WorldAcoustic
    disc: MultiDiscriminator | None  # None on the world path (no adversarial training)
    gpt: SemanticGPT  # AlignedGPT on the world path


def is_world(cfg: Config) -> bool:
    return getattr(cfg.model, "acoustic", "hifigan") == "world"


def world_layout(cfg: Config) -> FeatureLayout:
    """The WORLD channel layout of cfg's [world] settings."""
    return FeatureLayout(n_mgc=cfg.world.n_mgc, n_bap=world.n_bap(cfg.world))


def build_world_models(cfg: Config) -> Models:
    """WorldAcoustic + AlignedGPT over the ARPAbet table; no discriminator."""
    return Models(
        sovits=WorldAcoustic(cfg.model, arpabet.NUM_SYMBOLS, arpabet.NUM_WORD_POS, arpabet.NUM_STRESS,
                              world_layout(cfg)),
        disc=None,
        gpt=AlignedGPT(cfg.model, arpabet.NUM_SYMBOLS, arpabet.NUM_WORD_POS, arpabet.NUM_STRESS),
    )


def text_sizes(n_symbols: int | None = None, n_langs: int | None = None) -> tuple[int, int]:
    """(n_symbols, n_langs) from voicelab.text.symbols unless given explicitly."""
    n_symbols = symbols.NUM_SYMBOLS if n_symbols is None else n_symbols
    n_langs = symbols.NUM_LANGS if n_langs is None else n_langs
    return int(n_symbols), int(n_langs)


def build_sovits(
    cfg: Config, n_symbols: int | None = None, n_langs: int | None = None
) -> SoVITS | WorldAcoustic:
    """Stage 1's model. n_symbols / n_langs apply to the hifigan path's IPA table only."""
    if is_world(cfg):
        return WorldAcoustic(cfg.model, arpabet.NUM_SYMBOLS, arpabet.NUM_WORD_POS, arpabet.NUM_STRESS,
                              world_layout(cfg))
    n_symbols, n_langs = text_sizes(n_symbols, n_langs)
    return SoVITS(
        cfg.model,
        n_symbols=n_symbols,
        n_langs=n_langs,
        spec_channels=cfg.features.n_fft // 2 + 1,
        n_mels=cfg.features.n_mels,
        sample_rate=cfg.audio.sample_rate,
    )


def build_gpt(cfg: Config, n_symbols: int | None = None, n_langs: int | None = None) -> SemanticGPT:
    """SemanticGPT over codebook_size + 1 (EOS) tokens (AlignedGPT on the world path)."""
    if is_world(cfg):
        return AlignedGPT(cfg.model, arpabet.NUM_SYMBOLS, arpabet.NUM_WORD_POS, arpabet.NUM_STRESS)
    n_symbols, n_langs = text_sizes(n_symbols, n_langs)
    return SemanticGPT(cfg.model, n_symbols, n_langs, vocab=cfg.model.codebook_size + 1)


def build_models(cfg: Config, n_symbols: int | None = None, n_langs: int | None = None) -> Models:
    """All three models of a run. n_symbols / n_langs default to the text front end's table."""
    if is_world(cfg):
        return build_world_models(cfg)
    return Models(
        sovits=build_sovits(cfg, n_symbols, n_langs),
        disc=MultiDiscriminator(cfg.model),
        gpt=build_gpt(cfg, n_symbols, n_langs),
    )


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_counts(models: Models) -> dict[str, dict[str, int]]:
    """{model: {top-level submodule: parameters, ..., "total": n}} for each built model."""
    out: dict[str, dict[str, int]] = {}
    for name in ("sovits", "disc", "gpt"):
        model = getattr(models, name)
        if model is None:
            continue
        per = {child: count_parameters(m) for child, m in model.named_children()}
        direct = sum(p.numel() for p in model.parameters(recurse=False))
        if direct:
            per["(own)"] = direct
        per["total"] = count_parameters(model)
        out[name] = per
    return out


def format_parameter_table(counts: dict[str, dict[str, int]]) -> str:
    """A markdown table of parameter_counts() (one row per submodule)."""
    rows = ["| model | module | parameters |", "|---|---|---:|"]
    for model, per in counts.items():
        for module, n in per.items():
            rows.append(f"| {model} | {module} | {n:,} |")
    return "\n".join(rows)
