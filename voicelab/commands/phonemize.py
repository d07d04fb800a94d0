"""`python -m voicelab phonemize --lang en|zh|auto "TEXT"`: show phonemes and ids."""

from __future__ import annotations

import argparse
import json
import sys

from voicelab.text.phonemes import LANG_CHOICES, phonemize
from voicelab.text.symbols import SYMBOLS_VERSION


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "phonemize",
        help="show the phonemes and ids the models see for a text",
        description="Normalise a text (numbers, abbreviations, symbols) and print its phonemes "
        "(IPA for English, pinyin initials + toned finals for Mandarin) and symbol ids.",
    )
    p.add_argument("text", nargs="+", help="the text (quote it, or give several words)")
    p.add_argument("--lang", choices=LANG_CHOICES, default="auto",
                   help="language: en, zh, or auto (by script; default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r = phonemize(" ".join(args.text), lang=args.lang)
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "normalized": r.normalized, "phones": r.phones, "ids": r.ids,
            "lang_ids": r.lang_ids, "word2ph": r.word2ph, "words": r.words,
            "warnings": r.warnings, "symbols_version": SYMBOLS_VERSION,
        }, ensure_ascii=False))
        return 0
    print(f"normalized: {r.normalized}")
    # word boundaries print as '|' so a space inside a phone list stays readable
    print("phonemes:   " + " ".join("|" if p == " " else p for p in r.phones))
    print("ids:        " + " ".join(map(str, r.ids)))
    print(f"({len(r.phones)} phonemes, symbol table v{SYMBOLS_VERSION})")
    return 0
