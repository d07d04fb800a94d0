"""`python -m voicelab eval --model EXPORT --voice NAME`: score a cloned voice (WER, similarity,
MCD, F0, speed) on held-out sentences; JSON + markdown + plots."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from voicelab.commands.prepare import TqdmProgress
from voicelab.eval.report import fmt


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a trained voice: WER, speaker similarity, MCD, F0, real-time factor",
        description="Synthesise held-out sentences with MODEL and score them: pocketsphinx WER "
        "(beside the real voice's WER on the same sentences where recordings exist), resemblyzer "
        "similarity to the voice and to other voices, MCD-DTW and F0 RMSE against real recordings, "
        "real-time factor and time to first audio. Writes eval.json, eval.md, plots and the audio.",
    )
    p.add_argument("--model", required=True, type=Path,
                   help="an export (.safetensors) or a gpt-stage checkpoint (.pt)")  # fmt: skip
    p.add_argument("--voice", required=True, help="the voice the model clones (its slices are the target)")
    p.add_argument("--sentences", type=Path,
                   help="a .list (its audio = real recordings of each sentence by the voice) or a text "
                   "file, one sentence a line (default: 10 built-in held-out English sentences)")
    p.add_argument("--others", type=Path, action="append", default=[], metavar="LIST",
                   help="a .list of other voices to compare against (e.g. the base corpus's "
                   "corpus.list); the workspace's other voices are always included (repeatable)")
    p.add_argument("--ref", type=Path, help="reference clip, 3-10 s (default: a slice of the voice)")
    p.add_argument("--ref-text", help="what is said in --ref")
    p.add_argument("--seed", type=int, default=1234, help="sampling seed (default 1234)")
    p.add_argument("--max-sentences", type=int, default=0, help="evaluate only the first N")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-o", "--out", type=Path,
                   help="output folder (default: workspace/VOICE/eval/MODEL-DATE)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voicelab.commands.synth import check_device
    from voicelab.eval.evaluate import evaluate_model
    from voicelab.workspace import get_voice

    check_device(args.device)
    out = args.out
    if out is None:  # a new folder per run: an earlier evaluation is never overwritten
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = get_voice(args.voice).root / "eval" / f"{args.model.stem}-{stamp}"
    with TqdmProgress("eval", unit="sentence") as progress:
        result, paths = evaluate_model(
            args.model, args.voice, out, sentences=args.sentences, reference=args.ref,
            reference_text=args.ref_text, others=args.others, seed=args.seed, device=args.device,
            max_sentences=args.max_sentences, progress=progress,
        )
    s = result.summary
    print(f"WER {fmt(s['wer'], pct=True)} (real voice {fmt(s['real_wer'], pct=True)}), "
          f"similarity {fmt(s['sim_target'], 3)} (ceiling {fmt(s['sim_ceiling'], 3)}, closest other "
          f"{s['closest_other'] or '-'} {fmt((s['sim_others'] or {}).get(s['closest_other']), 3)}), "
          f"MCD {fmt(s['mcd_db'])} dB, F0 RMSE {fmt(s['f0_rmse_hz'], 1)} Hz, RTF {fmt(s['rtf'], 3)}, "
          f"first audio {fmt(s['first_audio_s'])} s")  # fmt: skip
    print(f"report: {paths.markdown} (+ eval.json, plots, audio/)")
    return 0
