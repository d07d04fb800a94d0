"""`python -m voicelab VERB ...`: one module per verb in voicelab/commands/.

Each command module defines `register(subparsers)`, which adds its parser and sets
`func=run` (a function taking the parsed args and returning an exit code). A VoicelabError
raised anywhere is printed as one line `error: ...` and becomes its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from voicelab import __version__
from voicelab.errors import EXIT_ERROR, EXIT_INTERRUPTED, VoicelabError

# Verb modules in the order `--help` lists them. Add a module here when its file exists.
COMMANDS = [
    "prepare",
    "slice",
    "transcribe",
    "features",
    "phonemize",
    "train",
    "checkpoints",
    "export",
    "synth",
    "eval",
    "bench",
    "corpus",
    "pretrain",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voicelab",
        description="voicelab: few-shot voice cloning (prepare -> slice -> features -> train "
        "-> export -> synth). Run `python -m voicelab VERB --help` for each step.",
    )
    parser.add_argument("--version", action="version", version=f"voicelab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug logging")
    sub = parser.add_subparsers(dest="command", metavar="VERB")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"voicelab.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if not sys.stderr.isatty():
        # progress bars only on a terminal: piped or logged output would get tqdm's carriage
        # returns mixed into its lines. tqdm reads TQDM_* defaults when it is first imported,
        # which is below (the verb modules), so this covers every bar, the library's too.
        os.environ.setdefault("TQDM_DISABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    try:
        from voicelab.commands.common import check_args

        check_args(args)  # before the verb's heavy imports: a typo is answered at once
        return int(args.func(args) or 0)
    except VoicelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # disk full, permissions: say which file and stop cleanly
        print(f"error: {e.strerror or e} ({e.filename or 'file system'})", file=sys.stderr)
        return EXIT_ERROR
