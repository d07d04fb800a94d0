"""Build a multi-speaker training corpus: on-disk corpora + .list files + offline TTS voices.

    result = build_corpus(out, cfg, corpora={"vctk": "/data/VCTK"}, tts=["flite", "espeak"])

    out/
      wavs/<speaker>/<name>.wav   cleaned like any voice: mono, high-passed, (denoised,)
                                  loudness-normalised, cfg.audio.sample_rate, PCM-16, edge
                                  silences cut to the slicer's max_sil_kept
      corpus.list                 path|speaker|lang|text (paths relative to out/)
      corpus.json                 sources, speakers, licences, counts, what was excluded and why
      MODEL_CARD.md               the model-card template listing every voice and corpus used

Every clip passes `exclude.exclusion_reason` (no development voice, fixture audio or held-out
sentence), and the TTS voices and sentence pool are filtered the same way before any audio is
made. A clip whose wav already exists in out/ is reused, so an interrupted build continues where
it stopped; corpus.list and corpus.json are rewritten from everything at the end.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from voicelab.audio.clean import clean_audio
from voicelab.audio.io import load_audio, write_wav
from voicelab.audio.slicer import frame_rms
from voicelab.config import Config, SliceConfig
from voicelab.corpus import exclude, sources, tts
from voicelab.corpus.licences import licence_of, source_of_speaker
from voicelab.errors import AudioError, VoicelabError
from voicelab.fileio import write_json_atomic
from voicelab.listfile import Entry, write_list

HERE = Path(__file__).resolve().parent
DEFAULT_SENTENCES = {"en": HERE / "sentences_en.txt", "zh": HERE / "sentences_zh.txt"}
RATES = (0.85, 0.92, 1.0, 1.08, 1.15)
PITCHES = (0.9, 0.95, 1.0, 1.05, 1.1)
Progress = Callable[[int, int, str], None] | None


@dataclass
class Planned:
    """One clip to make: where its audio comes from and where it goes."""

    speaker: str
    lang: str
    text: str
    source: str  # licence key: flite, espeak, mbrola, pico, ljspeech, ..., list
    out_rel: str  # wavs/<speaker>/<name>.wav
    audio_path: Path | None = None  # a corpus file
    voice: tts.TTSVoice | None = None  # or a TTS voice ...
    prosody: tts.Prosody | None = None  # ... with this rate / pitch


@dataclass
class CorpusResult:
    out: Path
    entries: list[Entry]
    speakers: dict[str, dict]
    excluded: dict[str, int]
    failed: list[str] = field(default_factory=list)
    made: int = 0
    reused: int = 0

    @property
    def hours(self) -> float:
        return sum(s["seconds"] for s in self.speakers.values()) / 3600.0


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def load_sentence_pool(path: Path | str | None, lang: str) -> tuple[list[str], int]:
    """(sentences, how many were dropped as held-out) for one language."""
    p = Path(path) if path else DEFAULT_SENTENCES[lang]
    if not p.is_file():
        raise VoicelabError(f"{p} does not exist: give a text file with one sentence a line")
    lines = [x.strip() for x in p.read_text(encoding="utf-8-sig").splitlines()]
    lines = [x for x in lines if x and not x.startswith("#")]
    kept = [x for x in lines if not exclude.is_heldout_text(x)]
    return list(dict.fromkeys(kept)), len(lines) - len(kept)


def _safe_name(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)[:80] or "clip"


def plan_tts(voices: list[tts.TTSVoice], pools: dict[str, list[str]], max_per_voice: int,
             seed: int) -> list[Planned]:  # fmt: skip
    """Each voice reads its own random pick of the pool, each clip at its own rate and pitch.

    The pick depends only on (seed, speaker), so adding a voice never changes the others' clips.
    """
    plans = []
    for v in voices:
        exclude.check_voice(v.engine, v.voice)
        pool = pools.get(v.lang) or []
        if not pool:
            continue
        rng = random.Random(seed * 1_000_003 + zlib.crc32(v.speaker.encode()))
        n = len(pool) if max_per_voice <= 0 else min(max_per_voice, len(pool))
        for k, i in enumerate(sorted(rng.sample(range(len(pool)), n))):
            pro = tts.Prosody(rng.choice(RATES), rng.choice(PITCHES))
            name = f"{i:04d}_r{round(pro.rate * 100)}_p{round(pro.pitch * 100)}"
            plans.append(Planned(v.speaker, v.lang, pool[i], source_of_speaker(v.engine, v.voice),
                                 f"wavs/{v.speaker}/{name}.wav", voice=v, prosody=pro))  # fmt: skip
    return plans


def plan_entries(entries: list[Entry], source: str) -> list[Planned]:
    plans = []
    for e in entries:
        spk = _safe_name(e.speaker or source)
        stem = _safe_name(Path(e.path).stem)
        plans.append(Planned(spk, e.lang if e.lang != "auto" else "en", e.text, source,
                             f"wavs/{spk}/{stem}.wav", audio_path=Path(e.path)))  # fmt: skip
    return plans


def filter_plans(plans: list[Planned], excluded: dict[str, int]) -> list[Planned]:
    """Drop every clip that may not enter a base corpus, counting the reasons."""
    kept = []
    for p in plans:
        why = exclude.exclusion_reason(p.speaker, p.text, p.audio_path)
        if why is None and p.voice is not None and exclude.is_dev_voice(p.voice.engine, p.voice.voice):
            why = "development voice"
        if why:
            excluded[why] = excluded.get(why, 0) + 1
        else:
            kept.append(p)
    return kept


# --------------------------------------------------------------------------------------------
# Making the audio
# --------------------------------------------------------------------------------------------


def trim_edges(audio: np.ndarray, sr: int, cfg: SliceConfig) -> np.ndarray:
    """Cut leading/trailing silence (below the slicer's threshold), keeping up to its
    max_sil_kept on each side, as the slicer leaves around the utterances it cuts."""
    hop = max(1, int(sr * cfg.hop_ms / 1000))
    rms = frame_rms(audio, 4 * hop, hop)
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10)) > cfg.threshold_db)
    if loud.size == 0:
        raise AudioError(f"no sound above the slicer threshold ({cfg.threshold_db} dB)")
    keep = int(sr * cfg.max_sil_kept_ms / 1000)
    start = max(0, loud[0] * hop - keep)
    end = min(len(audio), (loud[-1] + 1) * hop + keep)
    return audio[start:end]


def make_clip(p: Planned, cfg: Config) -> np.ndarray:
    """The cleaned, edge-trimmed [T] float32 audio of one planned clip at cfg.audio.sample_rate."""
    if p.voice is not None:
        audio, sr = tts.synthesize(p.voice, p.text, p.prosody or tts.Prosody())
    else:
        audio, sr = load_audio(p.audio_path, mono=False, max_seconds=600)
    cleaned = clean_audio(audio, sr, cfg.audio)
    out = trim_edges(cleaned.audio, cleaned.sample_rate, cfg.slice)
    seconds = len(out) / cleaned.sample_rate
    if seconds > cfg.slice.max_length_s:
        raise AudioError(f"{seconds:.1f} s is longer than slice.max_length_s "
                         f"({cfg.slice.max_length_s} s) and its text cannot be split with it")  # fmt: skip
    if seconds < cfg.slice.min_keep_s:
        raise AudioError(f"only {seconds:.2f} s of sound")
    return out


# --------------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------------


def build_corpus(
    out: Path | str,
    cfg: Config,
    corpora: dict[str, Path | str] | None = None,
    lists: list[Path | str] = (),
    tts_engines: list[str] = (),
    tts_voices: list[str] = (),
    sentences: dict[str, Path | str] | None = None,
    max_per_voice: int = 100,
    seed: int = 1234,
    progress: Progress = None,
) -> CorpusResult:
    """Plan every clip from every source, make the missing ones, write list + manifest + card.

    corpora: {"ljspeech"|"libritts"|"vctk"|"aishell3": root}; lists: GPT-SoVITS .list files;
    tts_engines: engines whose every (non-development) voice reads; tts_voices: single voices as
    "engine:voice"; sentences: {"en": file, "zh": file} replacing the built-in pools.
    """
    out = Path(out)
    corpora = dict(corpora or {})
    if not (corpora or lists or tts_engines or tts_voices):
        raise VoicelabError("nothing to build from: give a corpus (--ljspeech, --libritts, --vctk, "
                            "--aishell3), a --list, or --tts flite,pico,espeak")  # fmt: skip
    excluded: dict[str, int] = {}
    plans: list[Planned] = []
    source_paths: dict[str, list[str]] = {}
    for kind, root in corpora.items():
        plans += plan_entries(sources.read_corpus(kind, root), kind)
        source_paths.setdefault(kind, []).append(str(root))
    for lst in lists:
        plans += plan_entries(sources.read_corpus("list", lst), "list")
        source_paths.setdefault("list", []).append(str(lst))
    voices: list[tts.TTSVoice] = []
    for engine in tts_engines:
        voices += tts.list_voices(engine)  # raises, saying what to install, when missing
    voices += [tts.parse_voice(v) for v in tts_voices]  # refuses development voices
    voices = list(dict.fromkeys(voices))
    if voices:
        pools = {}
        for lang in sorted({v.lang for v in voices}):
            pool, dropped = load_sentence_pool((sentences or {}).get(lang), lang)
            pools[lang] = pool
            if dropped:
                excluded["held-out sentence"] = excluded.get("held-out sentence", 0) + dropped
        plans += plan_tts(voices, pools, max_per_voice, seed)
        for v in voices:
            source_paths.setdefault(source_of_speaker(v.engine, v.voice), []).append(v.voice)
    plans = filter_plans(plans, excluded)
    # the same per-speaker cap for corpora as for TTS voices
    counts: dict[str, int] = {}
    capped = []
    for p in plans:
        counts[p.speaker] = counts.get(p.speaker, 0) + 1
        if max_per_voice <= 0 or counts[p.speaker] <= max_per_voice:
            capped.append(p)
    plans = capped
    if not plans:
        raise VoicelabError("every clip was excluded or no source had any: see the sources given")

    result = CorpusResult(out=out, entries=[], speakers={}, excluded=excluded)
    sr = cfg.audio.sample_rate
    for i, p in enumerate(plans):
        if progress:
            progress(i, len(plans), p.speaker)
        dst = out / p.out_rel
        try:
            if dst.is_file() and sf.info(str(dst)).samplerate == sr:
                seconds = sf.info(str(dst)).duration
                result.reused += 1
            else:
                audio = make_clip(p, cfg)
                write_wav(dst, audio, sr)
                seconds = len(audio) / sr
                result.made += 1
        except (VoicelabError, OSError, RuntimeError) as e:  # one bad clip never stops a build
            result.failed.append(f"{p.out_rel}: {e}")
            why = "could not be made"
            excluded[why] = excluded.get(why, 0) + 1
            continue
        result.entries.append(Entry(dst.resolve(), p.speaker, p.lang, p.text))
        s = result.speakers.setdefault(p.speaker, {"source": p.source, "lang": p.lang,
                                                   "clips": 0, "seconds": 0.0})  # fmt: skip
        if p.voice is not None:
            s["voice"] = f"{p.voice.engine}:{p.voice.voice}"
        s["clips"] += 1
        s["seconds"] += seconds
    if progress:
        progress(len(plans), len(plans), "done")
    if not result.entries:
        raise VoicelabError(f"no clip could be made (first problem: {result.failed[0]})")
    write_list(out / "corpus.list", result.entries)
    write_json_atomic(out / "corpus.json", manifest(result, source_paths, cfg, seed, max_per_voice))
    from voicelab.corpus.modelcard import write_model_card

    write_model_card(out / "MODEL_CARD.md", json.loads((out / "corpus.json").read_text()))
    return result


def manifest(result: CorpusResult, source_paths: dict[str, list[str]], cfg: Config, seed: int,
             max_per_voice: int) -> dict:  # fmt: skip
    """corpus.json: what went in, with licences, and what was kept out."""
    from voicelab import __version__

    used = sorted({s["source"] for s in result.speakers.values()})
    per_source = {}
    for src in used:
        spk = {n: s for n, s in result.speakers.items() if s["source"] == src}
        per_source[src] = {
            "licence": licence_of(src),
            "given": source_paths.get(src, []),
            "speakers": sorted(spk),
            "clips": sum(s["clips"] for s in spk.values()),
            "hours": round(sum(s["seconds"] for s in spk.values()) / 3600, 4),
        }
    return {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "voicelab": __version__,
        "sample_rate": cfg.audio.sample_rate,
        "seed": seed,
        "max_per_voice": max_per_voice,
        "clips": len(result.entries),
        "hours": round(result.hours, 4),
        "sources": per_source,
        "speakers": {n: {**s, "seconds": round(s["seconds"], 2)} for n, s in sorted(result.speakers.items())},
        "excluded": result.excluded,
        "kept_out_by_rule": {
            "voices": sorted(f"{e}:{v}" for e, v in exclude.DEV_VOICES),
            "heldout_sentences": len(exclude.heldout_texts()),
        },
        "failed": result.failed[:50],
        "shippable": all(per_source[s]["licence"]["shippable"] for s in used),
    }
