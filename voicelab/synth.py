"""Text-to-speech with a trained voice: text + a reference clip -> a 32 kHz waveform.

    synth = Synthesizer.from_bundle("workspace/me/exports/main-step3000.safetensors")
    sr, wav = synth.synthesize("Hello there.", "en", "ref.wav", reference_text="...", seed=1)
    result = synth.synthesize(...)          # the same call; result.rtf, result.first_audio_s ...

Pipeline (GPT-SoVITS's inference, one sentence at a time):

    reference clip -> mono, 32 kHz, loudness-normalised, 3-10 s -> spectrogram + mel
        mel -> SoVITS.style -> timbre vector (conditions both the GPT and the decoder)
        spec -> SoVITS.extract_tokens -> prompt tokens, with the reference text's phonemes as
                the prompt phonemes (without a reference text no prompt is used: the clip then
                gives only the timbre, GPT-SoVITS's "reference-free" mode)
    text -> split_sentences -> phonemize -> GPT samples tokens (ends at EOS or a cap of
        synth.max_tokens_per_phone * phonemes, with a warning) -> SoVITS.infer -> waveform
    sentences joined with synth.sentence_pause_s of silence

Every random draw (GPT sampling, the SoVITS prior sample) comes from one torch.Generator seeded
with `seed`, and the models run in eval mode, so the same seed gives the same audio.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
import torch
from torch import Tensor

from voicelab.audio import features, io
from voicelab.config import Config, config_from_dict
from voicelab.devices import resolve_device
from voicelab.errors import AudioError, ConfigError, VoicelabError
from voicelab.export import BundleError, load_bundle, load_weights
from voicelab.models import world_synthesis as synth_world
from voicelab.models.build import build_gpt, build_sovits, is_world
from voicelab.models.gpt import SemanticGPT, cpu_threads
from voicelab.models.sampling import check_sampling_args
from voicelab.models.sovits import SoVITS
from voicelab.text import symbols
from voicelab.text.normalize import split_sentences
from voicelab.text.phonemes import phonemize
from voicelab.training import checkpoint as ck

log = logging.getLogger(__name__)

REF_MIN_S = 3.0  # shorter clips carry too little of the voice (GPT-SoVITS refuses them too)
REF_MAX_S = 10.0  # longer clips are trimmed: more prompt only slows the GPT down
REF_MAX_INPUT_S = 600.0  # refuse to even decode a "reference" longer than this
TOKEN_RATE = 25.0  # semantic tokens per second


@dataclass(frozen=True)
class SentenceInfo:
    text: str
    n_phones: int
    n_tokens: int
    hit_cap: bool  # generation was cut by the token cap instead of ending by itself
    seconds: float  # audio length of this sentence


@dataclass
class SynthResult:
    """The audio plus how it was made. Unpacks as `(sample_rate, waveform)`, Gradio's tuple."""

    sample_rate: int
    waveform: np.ndarray  # [T] float32 in [-1, 1]
    seed: int
    gen_s: float  # wall time of the whole call
    first_audio_s: float  # wall time until the first sentence's audio was ready
    sentences: list[SentenceInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reference_s: float = 0.0  # length of the reference actually used

    @property
    def duration_s(self) -> float:
        return len(self.waveform) / float(self.sample_rate)

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of compute per second of audio (< 1 is faster than real time)."""
        return self.gen_s / self.duration_s if self.duration_s else float("inf")

    def __iter__(self) -> Iterator[Any]:
        return iter((self.sample_rate, self.waveform))


# A result whose loudest sample is below this is silence (-60 dBFS: the floor the Speak tab's
# check calls "silent", ui/quality.SILENT_PEAK_DBFS; tests/test_synth.py holds them together).
SILENT_PEAK_DBFS = -60.0
NOT_TRAINED = ("the model is not trained enough to speak: train it longer (resume the run with more "
               "stage-2 steps) or start from a pretrained base; nothing was written")  # fmt: skip
DAMAGED = ("its weights are damaged (a run that diverged, or a damaged file): use an earlier "
           "checkpoint or export the run again; nothing was written")  # fmt: skip


def check_finite_audio(waveform: np.ndarray) -> None:
    """Refuse audio holding NaN / Inf: only damaged weights make it (every caller gets the error)."""
    if not bool(np.isfinite(waveform).all()):
        raise VoicelabError(f"the model produced NaN or infinite audio: {DAMAGED}")


def check_audible(result: SynthResult) -> None:
    """Refuse a result that is silence before it becomes a file (the CLI; the Speak tab shows its
    own "silent" check instead, keeping the result with the advice)."""
    check_finite_audio(result.waveform)
    peak = float(np.max(np.abs(result.waveform))) if result.waveform.size else 0.0
    if peak <= 10 ** (SILENT_PEAK_DBFS / 20):
        raise VoicelabError(
            f"the model produced {result.duration_s:.1f} s of silence (peak below "
            f"{SILENT_PEAK_DBFS:g} dBFS): {NOT_TRAINED}"
        )


@dataclass
class Reference:
    """A reference clip prepared for synthesis (batch of one, on the model's device)."""

    mel: Tensor  # [1, n_mels, T_r]
    mel_lens: Tensor  # [1]
    style: Tensor  # [1, style_dim]
    dvector: Tensor | None  # [1, 256] when model.use_dvector
    prompt_tokens: Tensor | None  # [T_pr] long, None in reference-free mode
    prompt_phones: list[int]  # phoneme ids of the reference text ([] without one)
    prompt_langs: list[int]
    seconds: float
    warnings: list[str]


def _as_mono_float(audio: np.ndarray) -> np.ndarray:
    """Gradio hands int16 [T] or [T, C]; anything else is float in [-1, 1]."""
    a = np.asarray(audio)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:  # [T, C] (Gradio, soundfile) or [C, T]: average the short axis
        a = a.mean(axis=1 if a.shape[1] <= a.shape[0] else 0)
    if a.ndim != 1:
        raise AudioError(f"the reference audio has shape {a.shape}: give a mono or stereo clip")
    return a


def find_default_reference(model_path: Path | str) -> tuple[Path, str, str]:
    """A reference for a model that lives in a voice folder: the first slice of the voice's
    dataset.list that is 3-10 s long -> (wav path, its text, its language).

    Works for exports (<voice>/exports/x.safetensors) and checkpoints
    (<voice>/runs/<run>/checkpoints/step-N.pt). Raises VoicelabError saying to pass --ref.
    """
    import soundfile as sf

    from voicelab.listfile import read_list

    for folder in list(Path(model_path).resolve().parents)[:4]:
        listing = folder / "slices" / "dataset.list"
        if not listing.is_file():
            continue
        for entry in read_list(listing):
            try:
                seconds = sf.info(str(entry.path)).duration
            except (RuntimeError, OSError):  # soundfile raises RuntimeError for unreadable files
                continue
            if REF_MIN_S <= seconds <= REF_MAX_S and entry.text.strip():
                return entry.path, entry.text, entry.lang
        break
    raise VoicelabError(
        f"no reference clip was given and none of 3-10 s was found next to {Path(model_path).name}: "
        "pass --ref WAV (a 3-10 s clip of the voice) and, ideally, --ref-text with its words"
    )


class Synthesizer:
    """Holds the models of one voice in eval mode and turns text into speech."""

    def __init__(
        self, cfg: Config, sovits: SoVITS, gpt: SemanticGPT, device: str | torch.device = "auto",
        source: str = "",
    ) -> None:
        self.cfg = cfg
        self.device = resolve_device(device)
        self.sovits = sovits.to(self.device).eval()
        self.gpt = gpt.to(self.device).eval()
        self.source = source
        self.sample_rate = cfg.audio.sample_rate
        self._ref_cache: tuple[str, Reference] | None = None

    # ---------------------------------------------------------------------------------------
    # loading
    # ---------------------------------------------------------------------------------------

    @classmethod
    def from_weights(
        cls, cfg: Config, weights: dict[str, dict[str, Tensor]], device: str | torch.device = "auto",
        source: str = "",
    ) -> Synthesizer:
        sovits = build_sovits(cfg, symbols.NUM_SYMBOLS, symbols.NUM_LANGS)
        gpt = build_gpt(cfg, symbols.NUM_SYMBOLS, symbols.NUM_LANGS)
        load_weights(sovits, weights["sovits"], "SoVITS")
        load_weights(gpt, weights["gpt"], "GPT")
        return cls(cfg, sovits, gpt, device, source)

    @classmethod
    def from_bundle(cls, path: Path | str, device: str | torch.device = "auto") -> Synthesizer:
        """An export (voicelab/export.py): verified, versions checked."""
        bundle = load_bundle(path)
        return cls.from_weights(bundle.config, bundle.weights, device, source=str(bundle.path))

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | torch.device = "auto") -> Synthesizer:
        """A training checkpoint (EMA weights where kept). Refuses stage-1 checkpoints."""
        path = Path(path)
        state = ck.load_checkpoint(path)
        stage = state.get(ck.K_STAGE)
        if stage != "gpt":
            raise VoicelabError(
                f"{path.name} is from the {stage!r} stage: its GPT has not been trained yet, so it "
                "cannot read text. Pick a checkpoint from the gpt stage, or wait for training to "
                "reach it"
            )
        try:
            cfg = config_from_dict(state[ck.K_CONFIG])
        except ConfigError as e:
            raise VoicelabError(f"{path.name} holds a config this voicelab cannot use: {e}") from None
        try:
            weights, _ = ck.inference_weights(state, what=path.name)
        except ck.CheckpointError as e:
            raise BundleError(str(e)) from None
        return cls.from_weights(cfg, weights, device, source=str(path))

    # ---------------------------------------------------------------------------------------
    # reference
    # ---------------------------------------------------------------------------------------

    def _load_reference_audio(self, reference_audio: Any) -> np.ndarray:
        sr = self.sample_rate
        if isinstance(reference_audio, (str, Path)):
            audio, _ = io.load_audio(reference_audio, target_sr=sr, max_seconds=REF_MAX_INPUT_S)
            return audio
        if isinstance(reference_audio, tuple) and len(reference_audio) == 2:
            in_sr, audio = reference_audio
            audio = _as_mono_float(audio)
            if len(audio) > REF_MAX_INPUT_S * int(in_sr):
                raise AudioError(f"the reference is longer than {REF_MAX_INPUT_S:.0f} s: give a 3-10 s clip")
            return io.resample(audio, int(in_sr), sr) if int(in_sr) != sr else audio
        raise VoicelabError(
            "reference_audio must be a file path or a (sample_rate, samples) pair; got "
            f"{type(reference_audio).__name__}"
        )

    def _normalise(self, audio: np.ndarray) -> np.ndarray:
        """Same loudness and peak ceiling as `prepare` gives the training slices, so the
        style encoder sees a familiar level whatever the recording."""
        a = self.cfg.audio
        if float(np.max(np.abs(audio), initial=0.0)) < io.SILENCE_PEAK:
            raise AudioError("the reference clip is silent: record or pick a clip with speech")
        loud = pyloudnorm.Meter(self.sample_rate).integrated_loudness(audio.astype(np.float64))
        if np.isfinite(loud):
            audio = audio * np.float32(10.0 ** ((a.target_lufs - loud) / 20.0))
        peak, ceiling = float(np.max(np.abs(audio))), 10.0 ** (a.peak_dbfs / 20.0)
        if peak > ceiling:
            audio = audio * np.float32(ceiling / peak)
        return audio.astype(np.float32)

    @torch.inference_mode()
    def prepare_reference(
        self, reference_audio: Any, reference_text: str | None = None, reference_lang: str = "en"
    ) -> Reference:
        """Load, check (3-10 s), normalise and encode a reference clip. Cached for the last one."""
        audio = self._load_reference_audio(reference_audio)
        key = hashlib.sha1(audio.tobytes()).hexdigest() + f"|{reference_text}|{reference_lang}"
        if self._ref_cache and self._ref_cache[0] == key:
            return self._ref_cache[1]
        sr, warnings = self.sample_rate, []
        seconds = len(audio) / sr
        if seconds < REF_MIN_S:
            raise AudioError(
                f"the reference clip is {seconds:.1f} s long; it needs {REF_MIN_S:.0f} to "
                f"{REF_MAX_S:.0f} s of speech: pick or record a longer clip"
            )
        if seconds > REF_MAX_S:
            audio = audio[: int(REF_MAX_S * sr)]
            msg = f"the reference clip is {seconds:.1f} s long; only its first {REF_MAX_S:.0f} s are used"
            if reference_text:
                # the text would describe audio that is no longer there: a wrong prompt is worse
                # than none, so fall back to the reference-free mode
                msg += " and its text is ignored (it covers the whole clip): use a 3-10 s clip"
                reference_text = None
            warnings.append(msg)
            seconds = REF_MAX_S
        audio = self._normalise(audio)
        if is_world(self.cfg):  # the world path: d-vector + F0 register (+ aligned prompt)
            ref = synth_world.prepare_reference(self, audio, sr, seconds, reference_text,
                                                reference_lang, warnings)
            self._ref_cache = (key, ref)
            return ref
        hop = self.cfg.features.hop_length
        audio = audio[: len(audio) // hop * hop]
        wav = torch.from_numpy(audio).to(self.device)[None]  # [1, T]
        spec = features.linear_spectrogram(wav, self.cfg.features)  # [1, F, frames]
        mel = features.spec_to_mel(spec, self.cfg.features, sr)  # [1, n_mels, frames]
        lens = torch.tensor([spec.shape[-1]], device=self.device)
        dvector = None
        if self.cfg.model.use_dvector:
            from voicelab.audio import dvector as dv  # resemblyzer loads only when asked for

            dvector = torch.from_numpy(dv.embed(audio, sr)).to(self.device)[None]
        style = self.sovits.style(mel, lens, dvector)
        prompt_tokens, prompt_phones, prompt_langs = None, [], []
        if reference_text and reference_text.strip():
            ph = phonemize(reference_text, reference_lang)
            warnings.extend(ph.warnings)
            toks, tok_lens = self.sovits.extract_tokens(spec, lens, wav[:, None])
            prompt_tokens = toks[0, : int(tok_lens[0])]
            prompt_phones, prompt_langs = list(ph.ids), list(ph.lang_ids)
        ref = Reference(mel, lens, style, dvector, prompt_tokens, prompt_phones, prompt_langs,
                        seconds, warnings)  # fmt: skip
        self._ref_cache = (key, ref)
        return ref

    # ---------------------------------------------------------------------------------------
    # synthesis
    # ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def _sentence(
        self, text: str, lang: str, ref: Reference, gen: torch.Generator, opts: dict[str, Any],
        speed: float, warnings: list[str],
    ) -> tuple[np.ndarray, SentenceInfo]:
        if is_world(self.cfg):
            wav, info = synth_world.sentence(self, text, lang, ref, gen, opts, speed, warnings)
            return wav, SentenceInfo(text, info["phones"], info["tokens"], False, info["seconds"])
        ph = phonemize(text, lang)
        warnings.extend(w for w in ph.warnings if w not in warnings)
        dev = self.device
        cap = max(1, math.ceil(self.cfg.synth.max_tokens_per_phone * len(ph.ids)))
        ids = torch.tensor(ref.prompt_phones + list(ph.ids), device=dev)
        langs = torch.tensor(ref.prompt_langs + list(ph.lang_ids), device=dev)
        res = self.gpt.generate(ids, langs, ref.style[0], ref.prompt_tokens, max_new_tokens=cap,
                                generator=gen, **opts)  # fmt: skip
        n = int(res.tokens.numel())
        if res.hit_cap:
            warnings.append(
                f"the sentence {text[:40]!r} reached the limit of {n} tokens ({n / TOKEN_RATE:.1f} s) "
                "without ending by itself and was cut there: the voice may need more training "
                "(or raise synth.max_tokens_per_phone)"
            )
        phone_ids = torch.tensor([ph.ids], device=dev)
        wav = self.sovits.infer(
            res.tokens[None], torch.tensor([n], device=dev), phone_ids,
            torch.tensor([len(ph.ids)], device=dev), torch.tensor([ph.lang_ids], device=dev),
            ref.mel, ref.mel_lens, noise_scale=self.cfg.synth.noise_scale, speed=speed,
            dvector=ref.dvector, generator=gen,
        )  # fmt: skip
        length = int(self.sovits.output_lengths(torch.tensor([n]), speed)[0])
        out = wav[0, 0, :length].float().clamp(-1.0, 1.0).cpu().numpy()
        return out, SentenceInfo(text, len(ph.ids), n, res.hit_cap, length / self.sample_rate)

    def synthesize(
        self,
        text: str,
        lang: str | None = None,
        reference_audio: Any = None,
        reference_text: str | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
        repetition_penalty: float | None = None,
        speed: float | None = None,
        seed: int | None = None,
        reference_lang: str | None = None,
    ) -> SynthResult:
        """Speak `text` in the voice of `reference_audio` (a path or a (sample_rate, samples) pair).

        lang: "en", "zh" or "auto" (default cfg.text.default_lang); reference_lang defaults to
        lang. Sampling settings default to cfg.synth. seed=None draws one (see result.seed).
        Returns SynthResult; `sr, wav = synthesize(...)` also works.
        """
        t0 = time.perf_counter()
        s = self.cfg.synth
        lang = lang or self.cfg.text.default_lang
        opts = {
            "top_k": s.top_k if top_k is None else int(top_k),
            "top_p": s.top_p if top_p is None else float(top_p),
            "temperature": s.temperature if temperature is None else float(temperature),
            "repetition_penalty": s.repetition_penalty if repetition_penalty is None else float(repetition_penalty),
        }
        # NaN passes every `<` / `>` comparison: refuse non-finite numbers before the range checks
        bad = [f"{k}={v}" for k, v in opts.items() if not math.isfinite(v)]
        if speed is not None and not math.isfinite(float(speed)):
            bad.append(f"speed={speed}")
        if bad:
            raise VoicelabError(f"{', '.join(bad)}: not a finite number; give an ordinary value")
        check_sampling_args(**opts)
        speed = s.speed if speed is None else float(speed)
        if not 0.25 <= speed <= 4.0:
            raise VoicelabError(f"speed={speed} is out of range: use a value between 0.25 and 4")
        if reference_audio is None:
            raise VoicelabError("a reference clip is needed: give a 3-10 s recording of the voice")
        if not isinstance(text, str) or not text.strip():
            raise VoicelabError("the text is empty: type what the voice should say")
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        if not 0 <= seed < 2**64:  # torch.Generator takes an unsigned 64-bit seed
            raise VoicelabError(f"seed={seed} is out of range: use a whole number from 0 to 2**64 - 1")
        with cpu_threads(self.device, s.cpu_threads):
            return self._synthesize(t0, text, lang, reference_audio, reference_text,
                                    reference_lang or lang, opts, speed, seed)  # fmt: skip

    def _synthesize(
        self, t0: float, text: str, lang: str, reference_audio: Any, reference_text: str | None,
        reference_lang: str, opts: dict[str, Any], speed: float, seed: int,
    ) -> SynthResult:
        s = self.cfg.synth
        gen = torch.Generator(device=self.device).manual_seed(seed)
        ref = self.prepare_reference(reference_audio, reference_text, reference_lang)
        warnings = list(ref.warnings)
        pieces, infos, first = [], [], None
        pause = np.zeros(int(round(s.sentence_pause_s * self.sample_rate)), dtype=np.float32)
        # pieces of bare punctuation ("..." between sentences) have nothing to say: skip them
        sentences = [x for x in split_sentences(text, lang, max_chars=s.max_sentence_chars)
                     if re.search(r"[^\W_]", x)]  # fmt: skip
        if not sentences:
            raise VoicelabError("the text has nothing to speak: type a sentence with words")
        for sentence in sentences:
            wav, info = self._sentence(sentence, lang, ref, gen, opts, speed, warnings)
            if first is None:
                first = time.perf_counter() - t0
            if pieces:
                pieces.append(pause)
            pieces.append(wav)
            infos.append(info)
        waveform = np.concatenate(pieces).astype(np.float32)
        check_finite_audio(waveform)  # NaN would otherwise reach a file as silence
        gen_s = time.perf_counter() - t0
        for w in warnings:  # also in result.warnings; logged for callers that only unpack (sr, wav)
            log.warning("%s", w)
        return SynthResult(self.sample_rate, waveform, seed, gen_s, first or gen_s, infos,
                           warnings, ref.seconds)  # fmt: skip
