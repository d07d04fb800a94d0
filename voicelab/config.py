"""The run configuration: a frozen dataclass tree loaded from presets/*.toml.

Every section is a small frozen dataclass with defaults. A preset only lists what differs from
the defaults; `--set section.key=value` overrides on top. Unknown keys, wrong types and bad values
are all collected and reported together in one `ConfigError` (as litgpt does), never one at a time.

    cfg = load_config("tiny", overrides=["train.sovits_steps=20"])
    cfg.audio.sample_rate        # 32000
    config_to_dict(cfg)          # JSON-serialisable; config_from_dict() reverses it

Sections own their fields; a section's `problems()` returns value problems as plain sentences.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from voicelab.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
# The preset a new voice trains with: the world path, which learns to speak on a CPU in minutes
# (docs/architecture.md "The world path"). `base` is the GPU path for real corpora.
DEFAULT_PRESET = "cpu"


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioConfig:
    """Cleaning applied by `prepare` (see voicelab/audio/clean.py)."""

    sample_rate: int = 32000
    highpass_hz: float = 60.0
    denoise: bool = True
    # noisereduce prop_decrease, 0..1. 0.8 measured on the noisy long fixtures: background -14 dB,
    # speech-band level during speech -0.2 to -0.4 dB (benchmarks/results/prepare.md)
    denoise_strength: float = 0.8
    target_lufs: float = -20.0
    peak_dbfs: float = -1.0
    max_input_hours: float = 2.0

    def problems(self) -> list[str]:
        p = []
        if self.sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
            p.append(f"audio.sample_rate={self.sample_rate} is not a supported rate")
        if not 0.0 <= self.denoise_strength <= 1.0:
            p.append("audio.denoise_strength must be between 0 and 1")
        if not -70.0 <= self.target_lufs <= -5.0:
            p.append("audio.target_lufs must be between -70 and -5 LUFS")
        if not -20.0 <= self.peak_dbfs <= 0.0:
            p.append("audio.peak_dbfs must be between -20 and 0 dBFS")
        if self.highpass_hz < 0:
            p.append("audio.highpass_hz must be >= 0")
        if self.max_input_hours <= 0:
            p.append("audio.max_input_hours must be > 0")
        return p


@dataclass(frozen=True)
class SliceConfig:
    """The silence slicer (GPT-SoVITS's UI defaults) and the optional VAD mode."""

    method: Literal["rms", "vad"] = "rms"
    threshold_db: float = -34.0
    min_length_ms: int = 4000
    min_interval_ms: int = 300
    hop_ms: int = 10
    max_sil_kept_ms: int = 500
    max_length_s: float = 12.0
    min_keep_s: float = 0.6

    def problems(self) -> list[str]:
        p = []
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            p.append("slice: need min_length_ms >= min_interval_ms >= hop_ms > 0")
        if self.max_sil_kept_ms < self.hop_ms:
            p.append("slice.max_sil_kept_ms must be >= slice.hop_ms")
        if self.max_length_s * 1000 <= self.min_length_ms:
            p.append("slice.max_length_s must be longer than slice.min_length_ms")
        if self.min_keep_s < 0:
            p.append("slice.min_keep_s must be >= 0")
        if self.threshold_db >= 0:
            p.append("slice.threshold_db must be negative (dB below full scale)")
        return p


@dataclass(frozen=True)
class FeatureConfig:
    """Spectrogram settings: 32 kHz, hop 640 -> 50 frames per second."""

    n_fft: int = 2048
    hop_length: int = 640
    win_length: int = 2048
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 0.0  # 0 means sample_rate / 2

    def problems(self) -> list[str]:
        p = []
        if self.win_length > self.n_fft:
            p.append("features.win_length must be <= features.n_fft")
        if self.hop_length <= 0 or self.n_mels <= 0:
            p.append("features.hop_length and features.n_mels must be > 0")
        if self.fmax and self.fmax <= self.fmin:
            p.append("features.fmax must be above features.fmin (or 0 for Nyquist)")
        return p


@dataclass(frozen=True)
class TextConfig:
    default_lang: Literal["en", "zh", "auto"] = "en"

    def problems(self) -> list[str]:
        return []


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of every module. Presets tiny / small / base set these (see voicelab/models/)."""

    # Which acoustic model: "hifigan" = the GPT-SoVITS path (learned tokens, flow, HiFi-GAN
    # waveform decoder, GAN training; needs a GPU and a real corpus: the `base` preset);
    # "world" = the CPU path (forced-aligned phones, one prosody token per phone, WORLD vocoder
    # parameters regressed and synthesised with WORLD; docs/architecture.md "The world path").
    acoustic: Literal["hifigan", "world"] = "hifigan"
    hidden: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers_text: int = 6
    n_layers_posterior: int = 16
    kernel_size: int = 3
    dropout: float = 0.1
    stochastic_depth: float = 0.0  # probability of dropping a residual block while training
    style_dim: int = 256
    use_dvector: bool = False  # join the style vector with a resemblyzer d-vector
    ssl_model_path: str = ""  # a transformers SSL model (e.g. HuBERT) on disk; "" = spectrogram
    ssl_sample_rate: int = 16000  # the rate that SSL model expects (HuBERT/wav2vec2: 16 kHz)
    content_layers: int = 2  # conv layers of the content encoder before the 25 Hz quantizer
    # residual VQ (semantic tokens, 25 Hz)
    codebook_size: int = 1024
    n_quantizers: int = 1
    vq_kmeans_init: bool = True
    vq_dead_code_threshold: int = 2
    vq_commitment_weight: float = 1.0
    # flow + decoder (HiFi-GAN, hop 640 = prod(upsample_rates))
    flow_layers: int = 4
    flow_wn_layers: int = 4  # WaveNet layers inside each coupling layer of the flow
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[int, ...] = (1, 3, 5)
    segment_frames: int = 20  # spectrogram frames decoded per training example (random window)
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    disc_channels: int = 32
    msd_scales: int = 3  # multi-scale discriminator: raw, /2, /4 ... average-pooled copies
    # GPT semantic prior
    gpt_layers: int = 12
    gpt_hidden: int = 512
    gpt_heads: int = 8
    gpt_max_positions: int = 2048
    # world path only: the frame-rate decoder (dilated conv blocks with speaker-conditional
    # layer norm) that turns phone encodings expanded to 10 ms frames into WORLD parameters
    decoder_layers: int = 6
    decoder_kernel: int = 5

    def problems(self) -> list[str]:
        p = []
        if self.decoder_layers < 1 or self.decoder_kernel < 1 or self.decoder_kernel % 2 == 0:
            p.append("model.decoder_layers must be >= 1 and model.decoder_kernel an odd number >= 1")
        if self.hidden % self.n_heads:
            p.append("model.hidden must be divisible by model.n_heads")
        if self.gpt_hidden % self.gpt_heads:
            p.append("model.gpt_hidden must be divisible by model.gpt_heads")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            p.append("model.upsample_rates and model.upsample_kernel_sizes need the same length")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.stochastic_depth < 1.0:
            p.append("model.dropout and model.stochastic_depth must be in [0, 1)")
        if self.codebook_size < 2 or self.n_quantizers < 1:
            p.append("model.codebook_size must be >= 2 and model.n_quantizers >= 1")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            p.append("model.kernel_size must be an odd number >= 1")
        for name in ("hidden", "filter_channels", "n_layers_text", "n_layers_posterior",
                     "style_dim", "flow_layers", "flow_wn_layers", "content_layers",
                     "upsample_initial_channel", "segment_frames", "disc_channels",
                     "msd_scales", "ssl_sample_rate"):
            if getattr(self, name) < 1:
                p.append(f"model.{name} must be >= 1")
        if self.hidden % 2:
            p.append("model.hidden must be even (the flow splits the latent in halves)")
        if not self.mpd_periods or any(q < 1 for q in self.mpd_periods):
            p.append("model.mpd_periods must be a non-empty list of periods >= 1")
        if not self.resblock_kernel_sizes or not self.resblock_dilations:
            p.append("model.resblock_kernel_sizes and model.resblock_dilations must not be empty")
        if any(k < r for k, r in zip(self.upsample_kernel_sizes, self.upsample_rates)):
            p.append("each model.upsample_kernel_sizes entry must be >= its upsample rate")
        if any(r == 1 and (k - r) % 2 for k, r in zip(self.upsample_kernel_sizes, self.upsample_rates)):
            p.append("an upsample rate of 1 needs an odd model.upsample_kernel_sizes entry")
        if self.upsample_initial_channel < 2 ** len(self.upsample_rates):
            p.append("model.upsample_initial_channel must be >= 2 ** len(model.upsample_rates) "
                     "(the generator halves its channels at every upsampling)")
        if self.vq_dead_code_threshold < 0 or self.vq_commitment_weight < 0:
            p.append("model.vq_dead_code_threshold and model.vq_commitment_weight must be >= 0")
        return p


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedules, regularisation and checkpointing (voicelab/training/)."""

    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    batch_size: int = 8
    grad_accum: int = 1
    sovits_steps: int = 2000
    gpt_steps: int = 1000
    # optimisers
    lr_g: float = 2e-4
    lr_d: float = 1e-4
    lr_gpt: float = 1e-4
    betas: tuple[float, ...] = (0.8, 0.99)
    weight_decay: float = 0.01
    text_lr_mult: float = 0.4
    gpt_unfreeze_last: int = 0  # 0 = train every GPT block; N = only the last N (fine-tuning)
    freeze: tuple[str, ...] = ()  # module names kept frozen ("quantizer", ...)
    unfreeze_after: int = 0  # steps after which `freeze` is lifted (0 = never)
    grad_clip: float = 1.0  # max grad norm; 0 disables clipping
    # schedule (per optimiser step)
    warmup_steps: int = 100
    schedule: Literal["cosine", "exponential", "step", "constant"] = "cosine"
    min_lr_ratio: float = 0.05
    lr_decay_gamma: float = 0.999875  # exponential: per step; step: per step_every steps
    lr_step_every: int = 1000
    plateau_patience: int = 0  # >0: multiply LR by plateau_factor after this many bad evals
    plateau_factor: float = 0.5
    # regularisation
    spec_augment: bool = True
    spec_augment_freq_mask: int = 8
    spec_augment_time_mask: int = 10
    mixup_alpha: float = 0.0  # 0 disables mixup
    kl_balance_alpha: float = 1.0  # 1.0 = plain average of KL terms
    ema_decay: float = 0.999  # 0 disables EMA
    early_stop_patience: int = 0  # evals without improvement before stopping; 0 = off
    # at the end of a stage (its last step, or an early stop) go back to the weights of its best
    # validated checkpoint when that is an earlier one: on a minute of speech the validation loss
    # is lowest after ~100 steps and the early stop comes later (it must see the rise). Needs a
    # checkpoint at each evaluation (save_every = eval_every) to be exact
    keep_best: bool = False
    # a run that starts from pretrained weights ends (after its last stage) with its acoustic
    # model at (1 - w) * initial + w * trained weights (weight-space ensembling, "WiSE-FT"): on a
    # noisy one-minute take it wins back clarity the adaptation cost while keeping the likeness
    # (flite slt at 0.7: WER 38.2% -> 31.1%, real 18.3%; similarity 0.875 -> 0.874;
    # presets/cpu.toml). 1.0 = as trained
    weight_blend: float = 1.0
    # choose that share per voice instead (0 = off): the smallest of blend_shares whose speech
    # (new sentences, spoken as synthesis would) is at least this resemblyzer cosine closer to
    # the voice than to every speaker of the base the run started from (its JSON lists their
    # d-vectors); weight_blend when that cannot be measured. Why: training/blend.py
    blend_margin: float = 0.0
    blend_shares: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0)
    # loss weights
    c_mel: float = 45.0
    c_kl: float = 1.0
    c_fm: float = 2.0
    c_commit: float = 1.0
    # world path: weights of the aperiodicity and voicing terms. A fine-tune on a noisy take sets
    # them to 0: its noise shows up there (flite slt's cleaned take: voiced aperiodicity -5.4 dB
    # against -8.3 dB in the clean recordings, 61% voiced frames against 69%), not its voice
    c_bap: float = 0.3
    c_vuv: float = 0.5
    # reporting and saving
    log_every: int = 10
    eval_every: int = 200
    save_every: int = 500
    save_every_minutes: float = 30.0
    keep_last: int = 3
    val_slices: int = 1
    sample_text: str = "This is a short sample of my new voice."  # spoken at each save
    nan_patience: int = 5  # non-finite steps in a row before rolling back to the last checkpoint
    max_rollbacks: int = 3  # rollbacks (each halving the LR) before training stops with an error
    # True when the run starts from pretrained weights (a shipped base, --from) and trains with
    # its preset's [finetune] schedule (load_config(finetune=True)); recorded so that a resume
    # continues with the same schedule
    finetuned: bool = False

    def problems(self) -> list[str]:
        p = []
        if self.batch_size < 1 or self.grad_accum < 1:
            p.append("train.batch_size and train.grad_accum must be >= 1")
        if self.sovits_steps < 0 or self.gpt_steps < 0:
            p.append("train.sovits_steps and train.gpt_steps must be >= 0")
        for name in ("lr_g", "lr_d", "lr_gpt"):
            if not 0 < getattr(self, name) < 1:
                p.append(f"train.{name} must be between 0 and 1")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            p.append("train.betas must be two numbers in [0, 1)")
        if not 0 <= self.min_lr_ratio <= 1:
            p.append("train.min_lr_ratio must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            p.append("train.ema_decay must be in [0, 1)")
        if self.save_every < 1 or self.log_every < 1 or self.eval_every < 1:
            p.append("train.save_every, train.log_every and train.eval_every must be >= 1")
        if self.keep_last < 1:
            p.append("train.keep_last must be >= 1")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.mixup_alpha < 0:
            p.append("train.warmup_steps, train.grad_clip and train.mixup_alpha must be >= 0")
        index = self.device[5:] if self.device.startswith("cuda:") else ""  # not "cuda-anything"
        if self.device not in ("auto", "cpu", "cuda") and not (index.isascii() and index.isdigit()):
            p.append(f"train.device={self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.val_slices < 0 or self.nan_patience < 1 or self.max_rollbacks < 0:
            p.append("train.val_slices and train.max_rollbacks must be >= 0, train.nan_patience >= 1")
        if not self.sample_text.strip():
            p.append("train.sample_text must not be empty (it is spoken in each audio sample)")
        if not 0.0 < self.weight_blend <= 1.0:
            p.append("train.weight_blend must be in (0, 1] (1 = the trained weights as they are)")
        if not 0.0 <= self.blend_margin < 1.0:
            p.append("train.blend_margin must be in [0, 1) (0 = use train.weight_blend)")
        if not self.blend_shares or not all(0.0 < w <= 1.0 for w in self.blend_shares):
            p.append("train.blend_shares must be shares in (0, 1], at least one")
        if self.c_bap < 0 or self.c_vuv < 0:
            p.append("train.c_bap and train.c_vuv must be >= 0")
        if self.spec_augment_freq_mask < 0 or self.spec_augment_time_mask < 0:
            p.append("train.spec_augment_freq_mask and train.spec_augment_time_mask must be >= 0")
        if self.gpt_unfreeze_last < 0 or self.unfreeze_after < 0 or self.early_stop_patience < 0:
            p.append("train.gpt_unfreeze_last, unfreeze_after, early_stop_patience must be >= 0")
        if not 0 < self.plateau_factor <= 1 or self.plateau_patience < 0:
            p.append("train.plateau_factor must be in (0, 1] and train.plateau_patience >= 0")
        if not 0 < self.kl_balance_alpha <= 1 or self.text_lr_mult <= 0:
            p.append("train.kl_balance_alpha must be in (0, 1] and train.text_lr_mult > 0")
        return p


@dataclass(frozen=True)
class SynthConfig:
    """Defaults for text-to-speech (voicelab/synth.py)."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    speed: float = 1.0
    sentence_pause_s: float = 0.3
    max_tokens_per_phone: float = 6.0  # cap on generated tokens relative to the phoneme count
    noise_scale: float = 0.5  # spread of the SoVITS prior sample (0 = its mean: flat, stable)
    max_sentence_chars: int = 200  # longer sentences are split at commas, then spaces
    # torch CPU threads while synthesizing (0 = torch's default). 1 is fastest on a 2-core or
    # busy machine (e.g. while training runs): small ops pay more for thread sync than they gain
    cpu_threads: int = 1

    def problems(self) -> list[str]:
        p = []
        if self.top_k < 1 or not 0 < self.top_p <= 1 or self.temperature <= 0:
            p.append("synth: need top_k >= 1, 0 < top_p <= 1 and temperature > 0")
        if not 0.25 <= self.speed <= 4:
            p.append("synth.speed must be between 0.25 and 4")
        if self.repetition_penalty < 1:
            p.append("synth.repetition_penalty must be >= 1 (1 = off)")
        if self.sentence_pause_s < 0 or self.max_tokens_per_phone <= 0:
            p.append("synth.sentence_pause_s must be >= 0 and synth.max_tokens_per_phone > 0")
        if not 0 <= self.noise_scale <= 2:
            p.append("synth.noise_scale must be between 0 and 2")
        if self.max_sentence_chars < 8:
            p.append("synth.max_sentence_chars must be at least 8")
        if self.cpu_threads < 0:
            p.append("synth.cpu_threads must be >= 0 (0 = torch's default)")
        return p


@dataclass(frozen=True)
class WorldConfig:
    """WORLD vocoder acoustics of the CPU path (voicelab/audio/world.py).

    Figures: benchmarks/results/world.md (pocketsphinx WER and speed on the fixture voices).
    """

    # Figures: pocketsphinx WER on 20 clips of each fixture voice, original 15.7%, round trip
    # 20.3% (+4.6 pt); smoothed over 3 frames +5.9 pt, over 5 frames +12.8 pt (+6.9 pt when the
    # frame energy c0 is left sharp). Alternatives on 8 clips/voice gained nothing measurable
    # (+8.1 pt reference vs harvest +6.8, mgc 60 +9.5, 5 bap bands +9.5, 24 kHz +11.3).
    # analysis/synthesis rate; the caller resamples the output to audio.sample_rate. 16 kHz:
    # analysis 20x, synthesis 52x real time on one busy core vs 16x / 22x at 24 kHz, and no
    # measurable WER difference (the fixtures are 16 kHz; quality above 8 kHz was not measured)
    sample_rate: int = 16000
    frame_period_ms: float = 10.0  # must stay 10 ms: the aligner works at 100 frames/s
    # dio + stonemask; harvest is 6x slower (3.3x real time) for -1.3 pt WER, within noise
    f0_method: Literal["dio", "harvest"] = "dio"
    f0_floor: float = 60.0
    f0_ceil: float = 600.0
    n_mgc: int = 40  # coded spectral envelope (WORLD's mel-cepstrum) dimensions
    # band aperiodicity: 0 = WORLD's own coding (one band per 3 kHz above 3 kHz)
    n_bap: int = 0
    vuv_threshold: float = 0.5  # synthesis: a frame is voiced when vuv > this
    # synthesis: mel-cepstral sharpening factor (1 = off). 1.2 on 5-frame smoothed features:
    # 29.5% vs 28.5% WER (helps flite_slt, hurts pico_en-US); 1.4 worse still: off
    postfilter: float = 1.0

    def problems(self) -> list[str]:
        p = []
        if self.sample_rate not in (16000, 22050, 24000):
            p.append("world.sample_rate must be 16000, 22050 or 24000")
        if self.frame_period_ms != 10.0:
            p.append("world.frame_period_ms must be 10 (the aligner works at 100 frames/s)")
        if not 30.0 <= self.f0_floor < self.f0_ceil <= 1200.0:
            p.append("world: need 30 <= f0_floor < f0_ceil <= 1200 Hz")
        if not 10 <= self.n_mgc <= 128:
            p.append("world.n_mgc must be between 10 and 128")
        if not 0 <= self.n_bap <= 32:
            p.append("world.n_bap must be between 0 (WORLD's coding) and 32")
        if not 0.0 < self.vuv_threshold < 1.0:
            p.append("world.vuv_threshold must be between 0 and 1")
        if not 1.0 <= self.postfilter <= 3.0:
            p.append("world.postfilter must be between 1 (off) and 3")
        return p


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    slice: SliceConfig = field(default_factory=SliceConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    preset: str = "default"

    def problems(self) -> list[str]:
        p = []
        hop = 1
        for r in self.model.upsample_rates:
            hop *= r
        if hop != self.features.hop_length:
            p.append(
                f"the product of model.upsample_rates ({hop}) must equal "
                f"features.hop_length ({self.features.hop_length})"
            )
        return p


SECTIONS: dict[str, type] = {
    name: tp for name, tp in get_type_hints(Config).items() if name != "preset"
}


# --------------------------------------------------------------------------------------------
# Loading, validation, serialisation
# --------------------------------------------------------------------------------------------


def _coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """Coerce a TOML / JSON / command-line value to the annotated type, or record a problem."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            problems.append(f"{where}={value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where} must be a list, got {value!r}")
            return value
        (inner, *_) = get_args(tp) or (Any,)
        return tuple(_coerce(v, inner, f"{where}[{i}]", problems) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{where} must be a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where} must be a number, got {value!r}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{where} must be text, got {value!r}")
        return value
    return value


# settings voicelab once had and no longer reads, with why: configs saved in checkpoints, runs,
# exports and bases before their removal still hold them, so there they are dropped instead of
# refused; a person asking for one with --set is told it was removed (load_config)
RETIRED_KEYS: dict[str, str] = {
    "train.num_workers": "batches are made in the training process itself, with no loader workers",
}


def _build_section(cls: type, data: dict, name: str, problems: list[str]) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if f"{name}.{key}" in RETIRED_KEYS:
            continue
        if key not in known:
            problems.append(f"unknown key {name}.{key} (known: {', '.join(sorted(known))})")
            continue
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}", problems)
    try:
        return cls(**kwargs)
    except TypeError as e:  # only reachable with a badly typed value already reported
        problems.append(f"{name}: {e}")
        return cls()


def config_from_dict(data: dict, preset: str = "custom") -> Config:
    """Build and validate a Config from nested plain values. Raises ConfigError listing all."""
    problems: list[str] = []
    sections = {}
    for key, value in data.items():
        if key == "preset":
            preset = str(value)
            continue
        if key not in SECTIONS:
            problems.append(f"unknown section [{key}] (known: {', '.join(SECTIONS)})")
            continue
        if not isinstance(value, dict):
            problems.append(f"[{key}] must be a table of settings")
            continue
        type_problems: list[str] = []
        sections[key] = _build_section(SECTIONS[key], value, key, type_problems)
        problems.extend(type_problems)
        if any(not p.startswith("unknown key") for p in type_problems):
            sections[key] = SECTIONS[key]()  # badly typed values: skip this section's checks
    cfg = Config(**sections, preset=preset)
    for name in SECTIONS:  # value checks run even when keys were wrong: report everything
        problems.extend(getattr(cfg, name).problems())
    problems.extend(cfg.problems())
    if problems:
        raise ConfigError(problems)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (tuples become lists) that json.dumps and config_from_dict accept."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _flatten(d: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: list(d) if isinstance(d, tuple) else d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}"))
    return out


def architecture_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The settings saved weights depend on, flat: model.*, features.*, audio.sample_rate."""
    out = _flatten(config.get("model", {}), "model")
    out.update(_flatten(config.get("features", {}), "features"))
    out["audio.sample_rate"] = config.get("audio", {}).get("sample_rate")
    return out


ABSENT = "(absent)"  # how architecture_differences shows a setting one side lacks


def architecture_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, saved value, new value) for every architecture setting that differs.

    `saved` is a config written earlier (a checkpoint's, a base's, an export's) as a plain dict;
    a setting it lacks was added to voicelab after it was written and counts as its default
    (a new setting's default keeps the behaviour from before it existed). A setting `new`
    lacks is shown as ABSENT.
    """
    defaults = architecture_keys(config_to_dict(Config()))
    old = {**{k: v for k, v in defaults.items() if k.split(".")[0] in saved},
           **architecture_keys(saved)}  # fmt: skip
    cur = architecture_keys(new)
    return [
        (k, old.get(k, ABSENT), cur.get(k, ABSENT))
        for k in sorted(set(old) | set(cur))
        if k not in old or k not in cur or old[k] != cur[k]
    ]


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def _parse_override(item: str, problems: list[str]) -> tuple[list[str], Any] | None:
    if "=" not in item:
        problems.append(f"--set {item!r}: expected section.key=value")
        return None
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        problems.append(f"--set {item!r}: the key must look like section.key")
        return None
    raw = raw.strip()
    try:  # numbers, booleans, lists, quoted strings: TOML's own value syntax
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word is a string: --set train.device=cpu
    return parts, value


FINETUNE_TABLE = "finetune"  # a preset's [finetune.train] / [finetune.synth]: see load_config
FINETUNE_SECTIONS = ("train", "synth")  # what a fine-tune may change: never the architecture


def _finetune_table(data: dict, path: Path) -> dict[str, dict]:
    """Pop and check a preset's [finetune] table: {section: {key: value}} for train / synth."""
    table = data.pop(FINETUNE_TABLE, {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ConfigError([f"{path.name}: [finetune] must hold tables such as [finetune.train]"])
    wrong = sorted(set(table) - set(FINETUNE_SECTIONS))
    if wrong:
        raise ConfigError([
            f"{path.name}: [finetune.{wrong[0]}]: a fine-tune may change only "
            f"{' and '.join(FINETUNE_SECTIONS)} settings (the weights fix the architecture)"
        ])
    return table


def load_config(
    preset: str | Path = DEFAULT_PRESET,
    overrides: list[str] | tuple[str, ...] = (),
    finetune: bool = False,
) -> Config:
    """Load a preset by name (presets/NAME.toml) or path, then apply `section.key=value` overrides.

    finetune=True: the run starts from pretrained weights (a shipped base, `--from`), so the
    preset's [finetune.train] / [finetune.synth] values replace its own (fewer steps, lower
    rates, frozen modules) and `train.finetuned` is set; the overrides still come last, so a
    person's `--set train.sovits_steps=N` means N steps whichever way the run starts. The
    [finetune] table is checked on every load, so a typo in it never waits for a base.
    """
    problems: list[str] = []
    path = Path(preset)
    if path.suffix != ".toml":
        path = PRESETS_DIR / f"{preset}.toml"
    if not path.is_file():
        raise ConfigError(
            [f"no preset {str(preset)!r}: choose one of {', '.join(list_presets())} or a .toml path"]
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path} is not valid TOML: {e}"]) from None
    table = _finetune_table(data, path)
    tuned = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for section, values in table.items():
        if not isinstance(tuned.setdefault(section, {}), dict):
            raise ConfigError([f"{path.name}: [{section}] must be a table of settings"])
        tuned[section].update(values)
    tuned.setdefault("train", {})["finetuned"] = True
    if finetune:
        data = tuned
    elif table:
        config_from_dict(tuned, preset=path.stem)  # a wrong [finetune] value fails every load
    for item in overrides:
        parsed = _parse_override(item, problems)
        if parsed:
            (section, key), value = parsed
            if f"{section}.{key}" in RETIRED_KEYS:  # an explicit ask for it must not pass unseen
                problems.append(f"--set {section}.{key}: this setting was removed from voicelab "
                                f"({RETIRED_KEYS[f'{section}.{key}']}): leave it out")  # fmt: skip
                continue
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = value
    if problems:
        raise ConfigError(problems)
    return config_from_dict(data, preset=path.stem)


def save_config_json(cfg: Config, path: Path) -> None:
    from voicelab.fileio import write_text_atomic

    write_text_atomic(path, json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config_json(path: Path) -> Config:
    return config_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
