"""The licence of every source a base corpus may draw on, checked against the installed text.

For TTS engines the licence text is the Debian copyright file the package installed under
/usr/share/doc; `licence_of` reads it and confirms the expected wording is there, so the model
card never states a licence that the machine's own files contradict. Corpora on disk carry their
licence in their own README; the summary here is what their publishers state.

"shippable" means: audio made from this source may go into a base model that voicelab ships
(assets/base/). MBROLA voices are free for non-commercial use only, so they are not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Licence:
    name: str  # what the source is
    licence: str  # short licence name
    shippable: bool
    url: str = ""
    copyright_file: str = ""  # installed licence text (Debian packages)
    expect: str = ""  # wording that must appear in copyright_file
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


LICENCES: dict[str, Licence] = {
    "flite": Licence(
        "CMU Flite voices (kal16, awb: CMU ARCTIC / diphone databases)",
        "CMU Flite licence (BSD-style: use, modify and distribute, keep the notice)", True,
        "http://cmuflite.org", "/usr/share/doc/flite/copyright",
        "Permission is hereby granted, free of charge, to use and distribute",
    ),
    "pico": Licence(
        "SVOX Pico (en-GB)", "Apache-2.0", True, "https://android.googlesource.com/platform/external/svox",
        "/usr/share/doc/libttspico-utils/copyright", "Apache License",
    ),
    "espeak": Licence(
        "eSpeak NG voices and variants", "GPL-3.0-or-later (program and voice data)", True,
        "https://github.com/espeak-ng/espeak-ng", "/usr/share/doc/espeak-ng-data/copyright",
        "either version 3 of the License",
        note="the GPL covers the program and its data; its generated audio is program output",
    ),
    "mbrola": Licence(
        "MBROLA voices (through espeak-ng)", "MBROLA voice licences: non-commercial use only", False,
        "https://github.com/numediart/MBROLA-voices", "", "",
        note="fine for experiments; leave them out of anything shipped",
    ),
    "ljspeech": Licence("LJ Speech 1.1 (one speaker, LibriVox readings)", "Public domain", True,
                        "https://keithito.com/LJ-Speech-Dataset/"),  # fmt: skip
    "libritts": Licence("LibriTTS / LibriTTS-R (LibriVox readings)", "CC BY 4.0", True,
                        "https://www.openslr.org/60/", note="attribution required"),  # fmt: skip
    "vctk": Licence("CSTR VCTK Corpus 0.92", "CC BY 4.0", True,
                    "https://datashare.ed.ac.uk/handle/10283/3443", note="attribution required"),  # fmt: skip
    "aishell3": Licence("AISHELL-3 (Mandarin, 218 speakers)", "Apache-2.0", True,
                        "https://www.openslr.org/93/"),  # fmt: skip
    "list": Licence("GPT-SoVITS .list supplied by the user", "unknown: state it in the model card",
                    False, note="only ship it when you hold the rights to the recordings"),  # fmt: skip
}


def licence_of(source: str) -> dict:
    """The licence record of a source, plus whether the installed licence text confirms it."""
    lic = LICENCES[source]
    d = lic.to_dict()
    if lic.copyright_file:
        p = Path(lic.copyright_file)
        if not p.is_file():
            d["installed_check"] = f"{p} not found (package not installed here)"
        else:
            text = " ".join(p.read_text(encoding="utf-8", errors="replace").split())
            d["installed_check"] = ("confirmed in " + str(p)) if lic.expect in text else (
                f"CHECK BY HAND: {p} does not contain the expected wording")  # fmt: skip
    return d


def source_of_speaker(engine_or_corpus: str, voice: str = "") -> str:
    """Licence key of a TTS voice or corpus (espeak's mb-* voices are MBROLA's)."""
    if engine_or_corpus == "espeak" and voice.startswith("mb-"):
        return "mbrola"
    return engine_or_corpus
