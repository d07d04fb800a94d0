"""Arguments shared by several verbs, and the config they resolve to."""

from __future__ import annotations

import argparse

from voicelab.config import Config, list_presets, load_config
from voicelab.workspace import Voice, get_voice


def add_voice_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--voice", required=required, help="voice name (folder under VOICELAB_HOME)")


def add_config_args(p: argparse.ArgumentParser, default_preset: str = "small") -> None:
    p.add_argument(
        "--preset",
        default=default_preset,
        help=f"preset name ({', '.join(list_presets()) or 'see presets/'}) or a .toml path "
        f"(default: {default_preset})",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set train.batch_size=4 (repeatable)",
    )


def resolve_config(args: argparse.Namespace) -> Config:
    return load_config(args.preset, args.overrides)


def voice_from_args(args: argparse.Namespace, must_exist: bool = True) -> Voice:
    return get_voice(args.voice, must_exist=must_exist)
