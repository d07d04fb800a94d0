"""`python -m voicelab features --voice NAME`: every slice's training features, cached: alignment +
WORLD parameters + d-vector on the world path (model.acoustic = "world"), mel + linear
spectrograms on the hifigan path."""

from __future__ import annotations

import argparse

from voicelab.commands.common import add_config_args, add_voice_arg, resolve_config, voice_from_args
from voicelab.commands.prepare import TqdmProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="compute mel and linear spectrograms of every slice (cached in features/)",
        description="Compute the spectrograms of every slice in slices/dataset.list and cache "
        "them in features/spec/, keyed by the settings and the audio: running it again "
        "recomputes nothing unless a slice or a [features] setting changed.",
    )
    add_voice_arg(p)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: train.device)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here so that `--help` of every verb does not wait for torch and scipy
    from voicelab.audio.pipeline import extract_features

    cfg = resolve_config(args)
    voice = voice_from_args(args)
    if cfg.model.acoustic == "world":  # the CPU path: alignment + WORLD features + d-vectors
        from voicelab.data.world_cache import extract_world_features

        with TqdmProgress("features", unit="slice") as progress:
            r = extract_world_features(voice, cfg, progress=progress)
        for name, why in r["skipped"]:
            print(f"skipped {why}")
        print(
            f"features ready for {r['total'] - len(r['skipped'])} of {r['total']} slices "
            f"({r['audio_seconds']:.0f} s of audio): {r['computed']} computed, {r['cached']} "
            f"already cached, {len(r['skipped'])} skipped, {r['elapsed_s']:.1f} s "
            f"({r['audio_seconds'] / max(r['elapsed_s'], 1e-9):.0f}x real time)"
        )
        return 0
    with TqdmProgress("features", unit="slice") as progress:
        s = extract_features(voice, cfg, progress=progress, device=args.device)
    print(
        f"features ready for {s.total} slices ({s.audio_seconds:.0f} s of audio) on {s.device}: "
        f"{s.computed} computed, {s.cached} already cached, {s.elapsed_s:.1f} s"
    )
    return 0
