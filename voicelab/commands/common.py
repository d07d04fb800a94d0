"""Arguments shared by several verbs, and the config they resolve to."""

from __future__ import annotations

import argparse
from pathlib import Path

from voicelab.config import DEFAULT_PRESET, Config, list_presets, load_config
from voicelab.workspace import Voice, get_voice


def add_voice_arg(p: argparse.ArgumentParser, required: bool = True, must_exist: bool = True) -> None:
    """--voice NAME; `must_exist`: check_args refuses a voice that does not exist before the
    verb runs (verbs that create the voice pass False)."""
    p.add_argument("--voice", required=required, help="voice name (folder under VOICELAB_HOME)")
    p.set_defaults(voice_must_exist=must_exist)


def check_args(args: argparse.Namespace) -> None:
    """Cheap checks of the arguments verbs share, run by cli.main before the verb: a verb
    imports torch and the models first (seconds), and a typo must not wait for that.

    The voice exists (unless the verb creates it), prepare's files exist, --model is a file,
    --device names a device, and synth's -o is not an existing file without --force. Each verb
    still checks for itself.
    """
    from voicelab.errors import VoicelabError

    if getattr(args, "voice_must_exist", False) and getattr(args, "voice", None):
        get_voice(args.voice, must_exist=True)
    if getattr(args, "command", None) == "prepare":  # before the voice folder is created
        missing = [f for f in args.files if not Path(f).exists()]
        if missing:
            raise VoicelabError(f"{missing[0]}: no such file: check the path (nothing was "
                                "added)" + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""))
    if getattr(args, "device", None) or getattr(args, "command", None) == "synth":
        from voicelab.commands.synth import check_device, check_out  # light: argparse only

        # in the order the verbs check (the output, the device, then the model)
        if getattr(args, "command", None) == "synth":
            check_out(args.out, args.force)
        if getattr(args, "device", None):
            check_device(args.device)
    model = getattr(args, "model", None)
    if isinstance(model, Path) and not model.is_file():
        raise VoicelabError(f"{model} does not exist: give an export (.safetensors) or a "
                            "checkpoint (.pt)")


def add_config_args(p: argparse.ArgumentParser, default_preset: str = DEFAULT_PRESET) -> None:
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
