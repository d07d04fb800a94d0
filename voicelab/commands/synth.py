"""`python -m voicelab synth --model PATH --text "..." [--ref WAV [--ref-text T]] -o OUT.wav`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voicelab.errors import VoicelabError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="speak a text with an exported voice (or a checkpoint)",
        description="Text-to-speech: the GPT samples semantic tokens for the text, SoVITS turns "
        "them into 32 kHz audio in the voice of the reference clip. Settings not given come "
        "from the model's synth.* config.",
    )
    p.add_argument("--model", required=True, type=Path,
                   help="an export (exports/NAME.safetensors or .json) or a checkpoint (.pt)")
    p.add_argument("--text", required=True, help="what to say (several sentences are fine)")
    p.add_argument("--lang", default=None, choices=("en", "zh", "auto"),
                   help="language of the text (default: the model's text.default_lang)")
    p.add_argument("--ref", type=Path, help="reference clip of the voice, 3-10 s (default: a "
                   "slice of the voice the model belongs to)")  # fmt: skip
    p.add_argument("--ref-text", help="what is said in --ref (better prosody when given)")
    p.add_argument("--ref-lang", choices=("en", "zh", "auto"), help="language of --ref-text")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same audio")
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--temperature", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--speed", type=float, help="0.25-4, 1 = as trained")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-o", "--out", required=True, type=Path, help="output WAV file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=run)


def check_device(device: str) -> None:
    """auto, cpu, cuda or cuda:N (torch.device would raise a traceback for anything else)."""
    index = device[5:] if device.startswith("cuda:") else ""
    if device not in ("auto", "cpu", "cuda") and not (index.isascii() and index.isdigit()):
        raise VoicelabError(f"--device {device!r} is not a device: use auto, cpu, cuda or cuda:N")


def check_out(out: Path, force: bool) -> None:
    """Refuse an output that is a folder, a name of only dots, a file in a folder that does not
    exist (a typo would otherwise create folders anywhere), or an existing file without --force."""
    if not out.name.strip(".") or out.is_dir():
        raise VoicelabError(f"-o {out} is a folder: give a file name, e.g. {out / 'speech.wav'}")
    if not out.resolve().parent.is_dir():
        raise VoicelabError(f"the folder of -o {out} does not exist: create it first, or pick another path")
    if out.exists() and not force:
        raise VoicelabError(f"{out} already exists: pick another -o or add --force")


def run(args: argparse.Namespace) -> int:
    from voicelab.audio.io import write_wav  # heavy imports (torch, models) only when run
    from voicelab.synth import Synthesizer, check_audible, find_default_reference

    check_out(args.out, args.force)
    check_device(args.device)
    model = args.model
    if not model.is_file():
        raise VoicelabError(f"{model} does not exist: give an export (.safetensors) or a checkpoint (.pt)")
    synth = (Synthesizer.from_checkpoint(model, args.device) if model.suffix == ".pt"
             else Synthesizer.from_bundle(model, args.device))  # fmt: skip
    ref, ref_text, ref_lang = args.ref, args.ref_text, args.ref_lang
    if ref is None:
        ref, ref_text, ref_lang = find_default_reference(model)
        print(f"reference: {ref} ({ref_text!r})", file=sys.stderr)
    result = synth.synthesize(
        args.text, args.lang, ref, ref_text, top_k=args.top_k, top_p=args.top_p,
        temperature=args.temperature, repetition_penalty=args.repetition_penalty,
        speed=args.speed, seed=args.seed, reference_lang=ref_lang,
    )  # fmt: skip
    # result.warnings were already logged to stderr by voicelab.synth
    check_audible(result)  # silence is an error, not a file
    write_wav(args.out, result.waveform, result.sample_rate)
    print(
        f"wrote {args.out}: {result.duration_s:.2f} s of audio in {result.gen_s:.2f} s "
        f"(real-time factor {result.rtf:.2f}, first audio after {result.first_audio_s:.2f} s), "
        f"seed {result.seed}"
    )
    return 0
