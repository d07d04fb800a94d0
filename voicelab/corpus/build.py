"""Build a multi-speaker training corpus: on-disk corpora + .list files + offline TTS voices.

    result = build_corpus(out, cfg, corpora={"vctk": "/data/VCTK"}, tts=["flite", "espeak"])

    out/
      wavs/<speaker>/<name>.wav   cleaned like any voice: mono, high-passed, (denoised,)
                                  loudness-normalised, cfg.audio.sample_rate, PCM-16, edge
                                  silences cut to the slicer's max_sil_kept
      corpus.list                 path|speaker|lang|text (paths relative to out/)
      corpus.json                 sources, speakers, licences, counts, what was excluded and why
      MODEL_CARD.md               the model-card template listing every voice and corpus used

Every clip passes `exclude.exclusion_reason` (no development or held-out evaluation voice,
fixture audio or held-out sentence), and the TTS voices and sentence pool are filtered the same
way before any audio is made. A clip whose wav already exists in out/ is reused, so an
interrupted build continues where it stopped; corpus.list and corpus.json are rewritten from
everything at the end.

Intelligibility is measured, not assumed: every TTS voice, every corpus with few speakers (the
Asterisk prompts) and every WORLD pseudo-speaker (pseudo.py) reads `wer_clips` probe clips that
pocketsphinx transcribes (TTS voices: the same Harvard sentences for all, at neutral prosody;
a pseudo-speaker: its source's probe audio transformed). The word error rates go into
corpus.json and the model card, and a pseudo-speaker whose WER is more than
`pseudo.MAX_WER_RISE` points above its source's is not admitted. Results are cached in
out/probes.json, so a resumed build does not transcribe again.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from voicelab.audio.clean import clean_audio
from voicelab.audio.io import load_audio, write_wav
from voicelab.audio.slicer import frame_rms
from voicelab.config import Config, SliceConfig
from voicelab.corpus import exclude, probe, pseudo, sources, tts
from voicelab.corpus.licences import licence_of, source_of_speaker
from voicelab.errors import AudioError, VoicelabError
from voicelab.fileio import write_json_atomic
from voicelab.listfile import Entry, write_list

HERE = Path(__file__).resolve().parent
DEFAULT_SENTENCES = {"en": HERE / "sentences_en.txt", "zh": HERE / "sentences_zh.txt"}
RATES = (0.85, 0.92, 1.0, 1.08, 1.15)
PITCHES = (0.9, 0.95, 1.0, 1.05, 1.1)
Progress = Callable[[int, int, str], None] | None
WER_CORPUS_MAX_SPEAKERS = 5  # corpora with more speakers than this are not probed (LibriTTS: 247)
PROBE_MIN_WORDS = 5  # a probe clip of a corpus has at least this many words (WER needs words)


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
    transform: pseudo.WorldTransform | None = None  # a pseudo-speaker: WORLD transform after
    base: str = ""  # the speaker a pseudo-speaker is made from


@dataclass
class CorpusResult:
    out: Path
    entries: list[Entry]
    speakers: dict[str, dict]
    excluded: dict[str, int]
    failed: list[str] = field(default_factory=list)
    made: int = 0
    reused: int = 0
    wer: dict[str, dict] = field(default_factory=dict)  # speaker -> probe result
    pseudo: dict[str, dict] = field(default_factory=dict)  # pseudo-speaker -> admission record
    notes: list[str] = field(default_factory=list)  # what was asked for but is not there, and why

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
             seed: int, transform: pseudo.WorldTransform | None = None) -> list[Planned]:  # fmt: skip
    """Each voice reads its own random pick of the pool, each clip at its own rate and pitch.

    The pick depends only on (seed, speaker), so adding a voice never changes the others' clips.
    With `transform`, each voice's WORLD pseudo-speaker reads (its own pick, its own name).
    """
    plans = []
    for v in voices:
        exclude.check_voice(v.engine, v.voice)
        pool = pools.get(v.lang) or []
        if not pool:
            continue
        speaker = pseudo.pseudo_name(v.speaker, transform) if transform else v.speaker
        rng = random.Random(seed * 1_000_003 + zlib.crc32(speaker.encode()))
        n = len(pool) if max_per_voice <= 0 else min(max_per_voice, len(pool))
        # one order and one prosody per sentence, whatever n: a smaller --max-per-voice picks a
        # subset of a larger one's clips, so a build rerun with a lower cap reuses its audio
        order = list(range(len(pool)))
        rng.shuffle(order)
        prosodies = [tts.Prosody(rng.choice(RATES), rng.choice(PITCHES)) for _ in pool]
        for i in sorted(order[:n]):
            pro = prosodies[i]
            name = f"{i:04d}_r{round(pro.rate * 100)}_p{round(pro.pitch * 100)}"
            plans.append(Planned(speaker, v.lang, pool[i], source_of_speaker(v.engine, v.voice),
                                 f"wavs/{speaker}/{name}.wav", voice=v, prosody=pro,
                                 transform=transform, base=v.speaker if transform else ""))  # fmt: skip
    return plans


def plan_pseudo(base: str, t: pseudo.WorldTransform, plans: list[Planned],
                voices: dict[str, tts.TTSVoice], pools: dict[str, list[str]], max_per_voice: int,
                seed: int) -> list[Planned]:  # fmt: skip
    """The clips of one WORLD pseudo-speaker of `base` (a TTS voice or a corpus speaker).

    A TTS voice's pseudo-speaker reads its own pick of sentences; a corpus speaker's is made from
    the same recordings (there is nothing else to read), each clip transformed.
    """
    if base in voices:
        return plan_tts([voices[base]], pools, max_per_voice, seed, transform=t)
    own = [p for p in plans if p.speaker == base and p.transform is None]
    if not own:
        raise VoicelabError(f"pseudo-speaker of {base!r}: no speaker of that name in this build "
                            f"(speakers: {', '.join(sorted({p.speaker for p in plans})) or 'none'})")  # fmt: skip
    name = pseudo.pseudo_name(base, t)
    return [Planned(name, p.lang, p.text, p.source, f"wavs/{name}/{Path(p.out_rel).name}",
                    audio_path=p.audio_path, voice=p.voice, prosody=p.prosody, transform=t,
                    base=base) for p in own]  # fmt: skip


def plan_entries(entries: list[Entry], source: str) -> list[Planned]:
    plans = []
    taken: set[str] = set()
    for e in entries:
        spk = _safe_name(e.speaker or source)
        stem = _safe_name(Path(e.path).stem)
        rel = f"wavs/{spk}/{stem}.wav"
        if rel in taken:  # the same file name in two folders (Asterisk: digits/1, ...)
            rel = f"wavs/{spk}/{_safe_name(Path(e.path).parent.name)}_{stem}.wav"
        taken.add(rel)
        plans.append(Planned(spk, e.lang if e.lang != "auto" else "en", e.text, source, rel,
                             audio_path=Path(e.path)))  # fmt: skip
    return plans


def filter_plans(plans: list[Planned], excluded: dict[str, int]) -> list[Planned]:
    """Drop every clip that may not enter a base corpus, counting the reasons."""
    kept = []
    for p in plans:
        why = exclude.exclusion_reason(p.speaker, p.text, p.audio_path)
        if why is None and p.voice is not None:
            why = exclude.voice_exclusion(p.voice.engine, p.voice.voice)
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


def source_audio(p: Planned, prosody: tts.Prosody | None = None) -> tuple[np.ndarray, int]:
    """The clip's audio before any transform or cleaning: [T] float32 mono, its own rate."""
    if p.voice is not None:
        return tts.synthesize(p.voice, p.text, prosody or p.prosody or tts.Prosody())
    audio, sr = load_audio(p.audio_path, mono=True, max_seconds=600)
    return audio, sr


def make_clip(p: Planned, cfg: Config) -> np.ndarray:
    """The cleaned, edge-trimmed [T] float32 audio of one planned clip at cfg.audio.sample_rate."""
    audio, sr = source_audio(p)
    if p.transform is not None:
        audio = pseudo.transform(audio, sr, p.transform)
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


def _count(excluded: dict[str, int], why: str, n: int = 1) -> None:
    excluded[why] = excluded.get(why, 0) + n


def _cap(plans: list[Planned], max_per_voice: int) -> list[Planned]:
    """The same per-speaker cap for corpora and pseudo-speakers as for TTS voices."""
    counts: dict[str, int] = {}
    out = []
    for p in plans:
        counts[p.speaker] = counts.get(p.speaker, 0) + 1
        if max_per_voice <= 0 or counts[p.speaker] <= max_per_voice:
            out.append(p)
    return out


def interleave(plans: list[Planned]) -> list[Planned]:
    """Round-robin over speakers (each speaker's clips in their order), so that every speaker
    grows at the same pace: a build stopped early leaves a balanced corpus, and rerunning it
    with a lower --max-per-voice reuses what was made. corpus.list keeps this order."""
    by: dict[str, list[Planned]] = {}
    for p in plans:
        by.setdefault(p.speaker, []).append(p)
    out = []
    for k in range(max((len(v) for v in by.values()), default=0)):
        out += [v[k] for v in by.values() if k < len(v)]
    return out


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
    pseudo_speakers: list[str] = (),
    wer_clips: int = 12,
) -> CorpusResult:
    """Plan every clip from every source, measure WERs, make the missing clips, write list +
    manifest + card.

    corpora: {"ljspeech"|"libritts"|"vctk"|"aishell3"|"asterisk": root}; lists: GPT-SoVITS
    .list files; tts_engines: engines whose every usable voice reads ("all": every installed
    engine but espeak, whose voices pocketsphinx hardly understands); tts_voices: single voices
    as "engine:voice"; sentences: {"en": file, "zh": file} replacing the built-in pools;
    pseudo_speakers: "SPEAKER:F0:WARP" WORLD pseudo-speakers of speakers of this build;
    wer_clips: probe clips per speaker for the WER (0: no probes, every pseudo-speaker admitted
    unmeasured is refused, so pseudo-speakers need probes).
    """
    out = Path(out)
    corpora = dict(corpora or {})
    if not (corpora or lists or tts_engines or tts_voices):
        raise VoicelabError("nothing to build from: give a corpus (--ljspeech, --libritts, --vctk, "
                            "--aishell3, --asterisk), a --list, or --tts all / flite,festival,rhvoice")  # fmt: skip
    excluded: dict[str, int] = {}
    notes: list[str] = []
    plans: list[Planned] = []
    source_paths: dict[str, list[str]] = {}
    for kind, root in corpora.items():
        plans += plan_entries(sources.read_corpus(kind, root), kind)
        source_paths.setdefault(kind, []).append(str(root))
    for lst in lists:
        plans += plan_entries(sources.read_corpus("list", lst), "list")
        source_paths.setdefault("list", []).append(str(lst))
    engines = list(tts_engines)
    if "all" in engines:
        engines = [e for e in engines if e != "all"]
        for e in tts.ENGINES:
            if e == "espeak" or tts.program(e) is None:
                notes.append(tts.engine_status(e) if e != "espeak" else
                             "espeak: not part of --tts all (pocketsphinx understands its voices "
                             "poorly); ask for a few with --tts-voice espeak:VOICE")  # fmt: skip
            elif e not in engines:
                engines.append(e)
        notes.append(tts.engine_status("mbrola"))
    voices: list[tts.TTSVoice] = []
    for engine in engines:
        voices += tts.list_voices(engine)  # raises, saying what to install, when missing
        left = tts.excluded_voices(engine)
        if left:
            notes.append(f"{engine}: left out " + ", ".join(f"{v.voice} ({why})" for v, why in left))
    voices += [tts.parse_voice(v) for v in tts_voices]  # refuses excluded voices
    voices = list(dict.fromkeys(voices))
    pools: dict[str, list[str]] = {}
    if voices:
        for lang in sorted({v.lang for v in voices}):
            pool, dropped = load_sentence_pool((sentences or {}).get(lang), lang)
            pools[lang] = pool
            if dropped:
                _count(excluded, "held-out sentence", dropped)
        plans += plan_tts(voices, pools, max_per_voice, seed)
        for v in voices:
            source_paths.setdefault(source_of_speaker(v.engine, v.voice), []).append(v.voice)
    plans = _cap(filter_plans(plans, excluded), max_per_voice)
    by_voice = {v.speaker: v for v in voices}
    pseudo_plans: dict[str, list[Planned]] = {}
    for spec in pseudo_speakers:
        base, t = pseudo.parse_pseudo(spec)
        if exclude.speaker_exclusion(base):
            raise VoicelabError(f"pseudo-speaker {spec!r}: {base} is a "
                                f"{exclude.speaker_exclusion(base)}, so no voice may be made from it")  # fmt: skip
        made = _cap(filter_plans(plan_pseudo(base, t, plans, by_voice, pools, max_per_voice, seed), excluded),
                    max_per_voice)  # fmt: skip
        if made:
            pseudo_plans[made[0].speaker] = made
    if not plans:
        raise VoicelabError("every clip was excluded or no source had any: see the sources given")

    result = CorpusResult(out=out, entries=[], speakers={}, excluded=excluded, notes=notes)
    measure_wers(result, plans, pseudo_plans, by_voice, pools, wer_clips, seed, out, progress)
    for name, pp in pseudo_plans.items():
        rec = result.pseudo[name]
        if rec["admitted"]:
            plans += pp
        else:
            _count(excluded, "pseudo-speaker not admitted (WER)", len(pp))
    sr = cfg.audio.sample_rate
    plans = interleave(plans)
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
        except (VoicelabError, OSError, RuntimeError, ValueError) as e:  # one bad clip never stops a build
            result.failed.append(f"{p.out_rel}: {e}")
            _count(excluded, "could not be made")
            continue
        result.entries.append(Entry(dst.resolve(), p.speaker, p.lang, p.text))
        s = result.speakers.setdefault(p.speaker, {"source": p.source, "lang": p.lang,
                                                   "clips": 0, "seconds": 0.0})  # fmt: skip
        if p.voice is not None:
            s["voice"] = f"{p.voice.engine}:{p.voice.voice}"
        if p.transform is not None:
            s["pseudo"] = {"of": p.base, **p.transform.to_dict()}
        if p.speaker in result.wer:
            s["wer"] = result.wer[p.speaker]["wer"]
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


# --------------------------------------------------------------------------------------------
# Word error rates and the admission of pseudo-speakers
# --------------------------------------------------------------------------------------------


def _probe_items(speaker: str, plans: list[Planned], by_voice: dict[str, tts.TTSVoice],
                 pools: dict[str, list[str]], k: int, seed: int) -> tuple[str, list]:  # fmt: skip
    """(cache key, [(audio, sr, text)]) of a base speaker's probe clips, or ("", []) when it is
    not probed (not English, or a corpus with many speakers)."""
    if speaker in by_voice:
        v = by_voice[speaker]
        if v.lang != "en":
            return "", []
        texts = probe.probe_sentences(pools.get("en") or [], k, seed)
        key = f"tts|{v.engine}:{v.voice}|{k}|{seed}|{zlib.crc32('|'.join(texts).encode())}"
        return key, LazyItems([(lambda t=t: tts.synthesize(v, t), t) for t in texts])
    own = [p for p in plans if p.speaker == speaker and p.lang == "en" and p.audio_path is not None]
    long_enough = [p for p in own if len(p.text.split()) >= PROBE_MIN_WORDS] or own
    chosen = [long_enough[i] for i in probe.pick(len(long_enough), k, seed, speaker)]
    key = f"corpus|{speaker}|{k}|{seed}|{zlib.crc32('|'.join(str(p.audio_path) for p in chosen).encode())}"
    return key, LazyItems([(lambda p=p: source_audio(p), p.text) for p in chosen])


class LazyItems(list):
    """Probe items [((audio, sr), text)] whose audio is only made when first read, so a resumed
    build whose WERs are all cached makes no probe audio at all."""

    def __init__(self, makers: list) -> None:
        super().__init__(makers)
        self._made = False

    def _make(self) -> None:
        if not self._made:
            for i, (make, text) in enumerate(list.__iter__(self)):
                list.__setitem__(self, i, (make(), text))
            self._made = True

    def __iter__(self):
        self._make()
        return list.__iter__(self)


def measure_wers(result: CorpusResult, plans: list[Planned], pseudo_plans: dict[str, list[Planned]],
                 by_voice: dict[str, tts.TTSVoice], pools: dict[str, list[str]], k: int, seed: int,
                 out: Path, progress: Progress = None) -> None:  # fmt: skip
    """Fill result.wer (speaker -> probe score) and result.pseudo (admission of each
    pseudo-speaker: WER within pseudo.MAX_WER_RISE points of its source's)."""
    cache_path = out / "probes.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    speakers = list(dict.fromkeys(p.speaker for p in plans))
    per_source: dict[str, set[str]] = {}
    for p in plans:
        per_source.setdefault(p.source, set()).add(p.speaker)
    bases = {pp[0].base for pp in pseudo_plans.values()}
    wanted = [s for s in speakers if s in by_voice or s in bases or
              len(per_source[next(p.source for p in plans if p.speaker == s)]) <= WER_CORPUS_MAX_SPEAKERS]  # fmt: skip
    if k <= 0:
        wanted = []
    total = len(wanted) + len(pseudo_plans)
    base_items: dict[str, list] = {}
    done = 0
    for s in wanted:
        if progress:
            progress(done, total, f"WER {s}")
        key, items = _probe_items(s, plans, by_voice, pools, k, seed)
        done += 1
        if not items:
            continue
        base_items[s] = items
        if key not in cache:
            cache[key] = probe.score((a, sr, t) for (a, sr), t in items)
            write_json_atomic(cache_path, cache)
        result.wer[s] = {**cache[key], "key": key}
    for name, pp in pseudo_plans.items():
        base, t = pp[0].base, pp[0].transform
        if progress:
            progress(done, total, f"WER {name}")
        done += 1
        rec = {"of": base, **t.to_dict(), "wer": None, "source_wer": None, "admitted": False}
        result.pseudo[name] = rec
        if base not in result.wer or base not in base_items:
            rec["why"] = "its source has no WER measured (need --wer-clips > 0 and English)"
            result.notes.append(f"pseudo-speaker {name} not admitted: {rec['why']}")
            continue
        key = f"{result.wer[base]['key']}|pseudo|{t.tag}"
        if key not in cache:
            cache[key] = probe.score((pseudo.transform(a, sr, t), sr, text) for (a, sr), text in base_items[base])
            write_json_atomic(cache_path, cache)
        result.wer[name] = {**cache[key], "key": key}
        rec["wer"], rec["source_wer"] = cache[key]["wer"], result.wer[base]["wer"]
        rec["admitted"] = rec["wer"] is not None and rec["wer"] <= rec["source_wer"] + pseudo.MAX_WER_RISE
        if not rec["admitted"]:
            rec["why"] = (f"WER {rec['wer']}% is more than {pseudo.MAX_WER_RISE:g} points above its "
                          f"source's {rec['source_wer']}%")  # fmt: skip
            result.notes.append(f"pseudo-speaker {name} not admitted: {rec['why']}")


def manifest(result: CorpusResult, source_paths: dict[str, list[str]], cfg: Config, seed: int,
             max_per_voice: int) -> dict:  # fmt: skip
    """corpus.json: what went in, with licences and measured WERs, and what was kept out."""
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
            "wer": {n: s["wer"] for n, s in sorted(spk.items()) if s.get("wer") is not None},
        }
    return {
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "voicelab": __version__,
        "sample_rate": cfg.audio.sample_rate,
        "seed": seed,
        "max_per_voice": max_per_voice,
        "clips": len(result.entries),
        "hours": round(result.hours, 4),
        "sources": per_source,
        "speakers": {n: {**s, "seconds": round(s["seconds"], 2)} for n, s in sorted(result.speakers.items())},
        "wer": {
            "method": "pocketsphinx (voicelab.text.asr) word error rate in percent on probe clips: "
            "each TTS voice reads the same Harvard sentences at neutral prosody, a corpus speaker "
            "its own longer clips, a pseudo-speaker its source's probe audio transformed",
            "speakers": {n: {k: v for k, v in w.items() if k != "key"} for n, w in sorted(result.wer.items())},
        },
        "pseudo_speakers": result.pseudo,
        "pseudo_rule": f"admitted when WER <= source WER + {pseudo.MAX_WER_RISE:g} points",
        "excluded": result.excluded,
        "kept_out_by_rule": {
            "voices": sorted(f"{e}:{v}" for e, v in exclude.DEV_VOICES),
            "heldout_voices": sorted([f"{e}:{v}" for e, v in exclude.HELDOUT_VOICES] + ["every MBROLA voice"]),
            "heldout_sentences": len(exclude.heldout_texts()),
        },
        "notes": result.notes,
        "failed": result.failed[:50],
        "shippable": all(per_source[s]["licence"]["shippable"] for s in used),
    }
