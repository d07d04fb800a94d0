"""Offline TTS voices a Linux machine can install, as a bootstrap corpus for the base model.

    engines = available_engines()            # {"flite": True, "pico": False, "espeak": True}
    voices = list_voices("espeak")           # [TTSVoice("espeak", "en-us+m1", "en"), ...]
    audio, sr = synthesize(voice, "Hello there.", Prosody(rate=1.1, pitch=0.95))

Engines (each a command-line program, run without a shell, text on the argument list or stdin):
- flite (CMU; `apt install flite`): kal16 and awb. slt and rms are development voices and are
  never listed; kal is kal16 at 8 kHz and awb_time only speaks clock times.
- SVOX Pico (`pico2wave`, Debian non-free `libttspico-utils`): en-GB (en-US is a development
  voice; its other languages are not ones voicelab's text front end speaks).
- espeak-ng (`apt install espeak-ng`): English accents x voice variants, Mandarin (cmn), and the
  MBROLA voices where the mbrola program and its voice files are installed.

Prosody varies clip by clip: rate and pitch factors around 1. espeak-ng and pico take both
natively; flite takes the rate (duration_stretch) and gets its pitch by resampling, with the
duration stretched beforehand so the speaking rate stays as asked.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from voicelab.corpus.exclude import check_voice, is_dev_voice
from voicelab.errors import VoicelabError

ENGINES: dict[str, tuple[str, str]] = {  # engine -> (program, how to install it)
    "flite": ("flite", "apt install flite"),
    "pico": ("pico2wave", "apt install libttspico-utils (Debian non-free; on Ubuntu: multiverse)"),
    "espeak": ("espeak-ng", "apt install espeak-ng"),
}
FLITE_SKIP = {"kal": "same speaker as kal16, at 8 kHz", "awb_time": "speaks clock times only"}
PICO_LANGS = ("en-GB", "en-US")  # pico's English voices (de/es/fr/it: not voicelab languages)
ESPEAK_EN = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan",
             "en-gb-x-gbcwmd")  # fmt: skip
ESPEAK_VARIANTS = ("m1", "m3", "f2", "f4")  # two male, two female formant variants
ESPEAK_ZH = ("cmn",)
MBROLA_EN = {"mb-us1": "us1", "mb-us2": "us2", "mb-us3": "us3", "mb-en1": "en1"}
MBROLA_DIRS = (Path("/usr/share/mbrola"), Path("/usr/share/mbrola/voices"))
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TTSVoice:
    engine: str  # flite | pico | espeak
    voice: str  # the engine's own voice id: kal16, en-GB, en-us+m3, mb-us1
    lang: str  # en | zh (voicelab's text front-end languages)

    @property
    def speaker(self) -> str:
        """A speaker name safe for paths and .list files: 'espeak_en-us-m3'."""
        return f"{self.engine}_{re.sub(r'[^A-Za-z0-9_-]+', '-', self.voice)}"


@dataclass(frozen=True)
class Prosody:
    rate: float = 1.0  # speaking rate factor: 1.2 = 20% faster
    pitch: float = 1.0  # pitch factor: 1.05 = 5% higher

    def __post_init__(self) -> None:
        if not (0.5 <= self.rate <= 2.0 and 0.7 <= self.pitch <= 1.4):
            raise VoicelabError(f"prosody {self}: rate must be 0.5-2 and pitch 0.7-1.4")


def program(engine: str) -> str | None:
    """Path of the engine's program, or None when not installed."""
    if engine not in ENGINES:
        raise VoicelabError(f"unknown TTS engine {engine!r}: choose from {', '.join(ENGINES)}")
    return shutil.which(ENGINES[engine][0])


def available_engines() -> dict[str, bool]:
    return {e: program(e) is not None for e in ENGINES}


def require(engine: str) -> str:
    """The engine's program path; a VoicelabError saying what to install when it is missing."""
    exe = program(engine)
    if exe is None:
        prog, how = ENGINES[engine]
        raise VoicelabError(f"the {engine} TTS engine ({prog}) is not installed: {how}, "
                            f"or leave {engine} out of --tts")  # fmt: skip
    return exe


def _run(cmd: list[str], what: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise VoicelabError(f"{what} took more than {TIMEOUT_S:.0f} s and was stopped") from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise VoicelabError(f"{what} failed (exit {proc.returncode}): {err[-1] if err else 'no output'}")
    return proc


@functools.lru_cache(maxsize=None)
def _espeak_voice_names(lang: str) -> frozenset[str]:
    out = _run([require("espeak"), f"--voices={lang}"], "espeak-ng --voices").stdout
    names = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4:
            names.add(cols[1].lower())  # the language column: what -v accepts
            names.add(cols[3].lower())  # the voice name (mbrola: us-mbrola-1 ...)
            names.add(cols[4].split("/")[-1].lower() if len(cols) > 4 else "")
    return frozenset(names)


def mbrola_installed(voice_file: str) -> bool:
    """MBROLA needs both the `mbrola` program and the voice's data file."""
    return shutil.which("mbrola") is not None and any((d / voice_file).exists() for d in MBROLA_DIRS)


def list_voices(engine: str) -> list[TTSVoice]:
    """Every usable voice of an installed engine, development voices left out."""
    exe = require(engine)
    voices: list[TTSVoice] = []
    if engine == "flite":
        out = _run([exe, "-lv"], "flite -lv").stdout
        names = out.split(":", 1)[-1].split()
        voices = [TTSVoice("flite", n, "en") for n in names if n not in FLITE_SKIP]
    elif engine == "pico":
        voices = [TTSVoice("pico", lang, "en") for lang in PICO_LANGS]
    elif engine == "espeak":
        have = _espeak_voice_names("en") | _espeak_voice_names("cmn")
        for accent in ESPEAK_EN:
            if accent in have:
                voices += [TTSVoice("espeak", f"{accent}+{v}", "en") for v in ESPEAK_VARIANTS]
        for zh in ESPEAK_ZH:
            if zh in have:
                voices += [TTSVoice("espeak", f"{zh}+{v}", "zh") for v in ESPEAK_VARIANTS[:2]]
        voices += [TTSVoice("espeak", name, "en") for name, f in MBROLA_EN.items()
                   if mbrola_installed(f)]  # fmt: skip
    return [v for v in voices if not is_dev_voice(v.engine, v.voice)]


def parse_voice(spec: str) -> TTSVoice:
    """'flite:kal16', 'pico:en-GB', 'espeak:en-gb+f2' or 'espeak:cmn+m1' -> TTSVoice."""
    engine, sep, voice = spec.partition(":")
    if not sep or engine not in ENGINES or not voice:
        raise VoicelabError(f"voice {spec!r}: write ENGINE:VOICE, e.g. flite:kal16 or espeak:en-gb+f2")
    check_voice(engine, voice)
    lang = "zh" if voice.split("+")[0] in ESPEAK_ZH else "en"
    return TTSVoice(engine, voice, lang)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    from voicelab.audio.io import load_audio

    return load_audio(path)


def synthesize(voice: TTSVoice, text: str, prosody: Prosody = Prosody()) -> tuple[np.ndarray, int]:
    """Speak `text` with one TTS voice -> (audio [T] float32, sample rate)."""
    check_voice(voice.engine, voice.voice)  # never produce a development voice, even if asked
    exe = require(voice.engine)
    text = " ".join(text.split())
    if not text:
        raise VoicelabError("nothing to say: the sentence is empty")
    with tempfile.TemporaryDirectory(prefix="voicelab-tts-") as tmp:
        wav = Path(tmp) / "out.wav"
        what = f"{voice.engine} voice {voice.voice}"
        if voice.engine == "flite":
            # Pitch by resampling (below) also speeds the clip up by `pitch`: stretch it first.
            stretch = prosody.pitch / prosody.rate
            _run([exe, "-voice", voice.voice, "--setf", f"duration_stretch={stretch:.4f}",
                  "-t", text, "-o", str(wav)], what)  # fmt: skip
        elif voice.engine == "pico":
            markup = (f"<speed level='{round(100 * prosody.rate)}'><pitch level='"
                      f"{round(100 * prosody.pitch)}'>{escape(text)}</pitch></speed>")  # fmt: skip
            _run([exe, "-l", voice.voice, "-w", str(wav), markup], what)
        else:
            speed = round(175 * prosody.rate)  # espeak-ng's default is 175 words per minute
            pitch = min(99, max(0, round(50 * prosody.pitch)))  # 0-99, default 50
            _run([exe, "-v", voice.voice, "-s", str(speed), "-p", str(pitch), "--stdin", "-w",
                  str(wav)], what, stdin=text)  # fmt: skip
        if not wav.is_file() or wav.stat().st_size <= 44:
            raise VoicelabError(f"{what} wrote no audio for {text[:40]!r}")
        audio, sr = _read_wav(wav)
    if voice.engine == "flite" and prosody.pitch != 1.0:
        import soxr

        # played at sr * pitch, every frequency rises by `pitch`; bring it back to sr samples
        audio = soxr.resample(audio, sr * prosody.pitch, sr).astype(np.float32)
    return audio, sr
