"""The training data of one voice: slices + texts -> `Batch` (voicelab/data/batch.py).

Few-shot data is small (a minute or a few of speech), so every slice is loaded once at setup
(features via `audio.features.load_features`, cached on disk; phonemes via the text front end,
cached per (text, language)) and batches are collated from memory: no DataLoader workers, and
almost no time outside forward/backward.

Determinism (exact resume depends on it):
- the validation split is a seeded permutation of the entries (`split_indices`);
- the order of an epoch is `distributed.shard_indices(seed, epoch, rank, world)`;
- each example's reference clip is another training slice of the same speaker chosen by
  (index + epoch), cropped at a position drawn from a generator seeded with (seed, epoch, index);
  a speaker with a single slice uses a crop of that same slice.
None of it touches the global RNG.

    data = VoiceData.load(voice, cfg)          # reads slices/dataset.list
    for idx in epoch_batches(len(data.train), 2, seed, epoch):
        batch = data.collate([data.train[i] for i in idx], epoch)
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from voicelab.config import Config
from voicelab.data.batch import Batch
from voicelab.data.sharding import shard_indices
from voicelab.data.transcripts import check_text_length
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list
from voicelab.workspace import Voice

log = logging.getLogger(__name__)
REF_MAX_SECONDS = 3.0  # longest reference crop: enough for timbre, short enough to be cheap


def item_key(path: Path | str, slices_dir: Path) -> str:
    """A slice's identity in tokens.pt: its path relative to slices/ (the bare file name for a
    voice's own slices), else its full path, so that two speakers' `000.wav` in a multi-speaker
    corpus never share semantic tokens."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(slices_dir).resolve()).as_posix()
    except ValueError:
        return p.as_posix()


@dataclass
class Item:
    """One slice in memory (CPU tensors)."""

    key: str  # the slice's path relative to slices/ (see item_key): identifies it in tokens.pt
    speaker: str
    text: str
    phone_ids: Tensor  # [T_p] long
    lang_ids: Tensor  # [T_p] long
    wav: Tensor  # [frames * hop] float32
    spec: Tensor  # [n_fft // 2 + 1, frames]
    mel: Tensor  # [n_mels, frames]

    @property
    def frames(self) -> int:
        return int(self.spec.shape[-1])


class PhonemeCache:
    """phonemize() once per distinct (text, lang): few-shot lists repeat prompts a lot."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[list[int], list[int]]] = {}

    def __call__(self, text: str, lang: str, where: str = "") -> tuple[list[int], list[int]]:
        key = (text, lang)
        if key not in self._cache:
            from voicelab.text.phonemes import phonemize  # the text front end (its own module)

            try:
                res = phonemize(text, lang=lang)
            except VoicelabError as e:
                raise VoicelabError(f"{where}: {e}" if where else str(e)) from None
            if not res.ids:
                raise VoicelabError(
                    f"{where}: the text {text!r} gives no phonemes; fix the transcript"
                )
            self._cache[key] = (list(res.ids), list(res.lang_ids))
        return self._cache[key]


# ---- transcript length (issue 16 item 7): refused at load, naming the slice, not mid-training --


def check_positions(name: str, n_phones: int, frames: int, cfg: Config) -> None:
    """The GPT reads [phones | BOS | tokens] (tokens = frames // 2, 25 Hz): refuse a slice that
    cannot fit model.gpt_max_positions now, instead of after all of stage 1."""
    needed = n_phones + 1 + frames // 2
    if needed > cfg.model.gpt_max_positions:
        raise VoicelabError(
            f"{name}: its text ({n_phones} phonemes) and audio ({frames // 2} tokens) need {needed} "
            f"GPT positions but model.gpt_max_positions={cfg.model.gpt_max_positions}: check that "
            "the text belongs to this slice, cut it into shorter slices, or raise the setting"
        )


# ---------------------------------------------------------------------------------------------


def split_indices(n: int, val_slices: int, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) index lists, both sorted; val is `val_slices` held-out slices."""
    if val_slices < 0:
        raise VoicelabError("train.val_slices must be >= 0")
    if n < val_slices + 1:
        raise VoicelabError(
            f"the voice has {n} slice(s) but training keeps {val_slices} for validation and needs "
            "at least one to learn from: record or import more speech, or lower train.val_slices"
        )
    g = torch.Generator()
    g.manual_seed(int(seed))
    perm = torch.randperm(n, generator=g).tolist()
    return sorted(perm[val_slices:]), sorted(perm[:val_slices])


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This rank's micro-batches (positions into the training list) for one epoch.

    The last batch may be smaller. Every rank gets the same number of batches (the shard is
    padded by wrapping, as DistributedSampler does), so DDP ranks never wait on each other.
    """
    order = shard_indices(n, seed, epoch, rank, world_size)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _pad_stack(tensors: list[Tensor], value: float = 0.0) -> Tensor:
    """Right-pad the last dim and stack: list of [..., T_i] -> [B, ..., max T]."""
    t_max = max(int(t.shape[-1]) for t in tensors)
    out = tensors[0].new_full((len(tensors), *tensors[0].shape[:-1], t_max), value)
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-1]] = t
    return out


def check_finite(feats: dict[str, Tensor], name: str, voice: Voice) -> None:
    """Refuse a slice whose audio or features hold NaN / Inf (a damaged feature cache, a float
    WAV holding NaN): one such batch would poison state the model updates inside its forward
    (the VQ codebooks) and every later step."""
    bad = [k for k in ("wav", "spec", "mel") if k in feats and not bool(torch.isfinite(feats[k]).all())]
    if bad:
        raise VoicelabError(
            f"slice {name}: its {' / '.join(bad)} hold NaN or infinite values. Delete "
            f"{voice.features} (the cache is recomputed) and train again; if it persists, the "
            "slice's audio itself is damaged: slice or prepare the voice again"
        )


class TokenTargets:
    """Stage 2's targets, by item key: the semantic tokens [T_t] and style vectors [style_dim]
    that the stage-1 model's extraction hands over (VoiceData and WorldVoiceData share it)."""

    tokens: dict[str, Tensor]
    styles: dict[str, Tensor]

    def set_tokens(self, tokens: dict[str, Tensor], styles: dict[str, Tensor]) -> None:
        """Install stage-2 targets (from the stage-1 token extraction)."""
        self.tokens = {k: v.long().cpu() for k, v in tokens.items()}
        self.styles = {k: v.float().cpu() for k, v in styles.items()}

    def add_tokens(self, batch: Batch, items: list[Any]) -> None:
        """batch.tokens [B, T_t] (0 padded), token_lens [B], style [B, style_dim] of `items`."""
        missing = [it.key for it in items if it.key not in self.tokens]
        if missing:
            raise VoicelabError(
                f"no semantic tokens for {missing[:3]}: stage 2 needs the token extraction "
                "that follows stage 1 (run stage 1, or resume the run)"
            )
        toks = [self.tokens[it.key] for it in items]
        batch.tokens = _pad_stack(toks, 0)
        batch.token_lens = torch.tensor([len(t) for t in toks])
        batch.style = torch.stack([self.styles[it.key] for it in items])


class VoiceData(TokenTargets):
    """All slices of a voice in memory, split into train / val, collated into Batches."""

    def __init__(self, items: list[Item], cfg: Config, val_idx: list[int], hash_: str) -> None:
        # model.use_dvector: each speaker's resemblyzer d-vector (mean over their slices) joins the
        # style vector; computed here, once per load (~100x real time: a minute of speech ~0.6 s)
        self.dvectors: dict[str, Tensor] = speaker_dvectors(items, cfg) if cfg.model.use_dvector else {}
        self.cfg = cfg
        self.items = items
        self.val_idx = list(val_idx)
        self.train_idx = [i for i in range(len(items)) if i not in set(val_idx)]
        self.dataset_hash = hash_
        self.hop = int(cfg.features.hop_length)
        self.ref_max_frames = max(8, int(REF_MAX_SECONDS * cfg.audio.sample_rate / self.hop))
        # stage 2: per-slice semantic tokens [T_t] and style vectors [style_dim], by item key
        self.tokens: dict[str, Tensor] = {}
        self.styles: dict[str, Tensor] = {}

    @property
    def train(self) -> list[int]:
        return self.train_idx

    @property
    def val(self) -> list[int]:
        return self.val_idx

    @classmethod
    def load(
        cls, voice: Voice, cfg: Config, entries: list[Entry] | None = None, progress: Any = None
    ) -> VoiceData:
        """Read slices/dataset.list (or `entries`), load features and phonemes of every slice."""
        from voicelab.audio.features import load_features  # audio engineer's module

        if entries is None:
            if not voice.dataset_list.is_file():
                raise VoicelabError(
                    f"voice {voice.name!r} has no slices/dataset.list: run `python -m voicelab "
                    f"slice --voice {voice.name}` (and transcribe) before training"
                )
            entries = read_list(voice.dataset_list)
        texted = [e for e in entries if e.text.strip()]
        if len(texted) < len(entries):  # said aloud: a slice left out silently looks like lost data
            untexted = [Path(e.path).name for e in entries if not e.text.strip()]
            log.warning("%d slice(s) have no text and are left out of training (%s): type their "
                        "text in the Slice tab or run `python -m voicelab transcribe`",
                        len(untexted), ", ".join(untexted[:5]) + (" ..." if len(untexted) > 5 else ""))
        entries = texted
        if not entries:
            raise VoicelabError(
                f"voice {voice.name!r} has no transcribed slices: add the text of each slice "
                "(the app's Slice tab, or `python -m voicelab transcribe`) before training"
            )
        phon = PhonemeCache()
        items, h = [], hashlib.sha256()
        lang_default = cfg.text.default_lang
        for n, e in enumerate(entries):
            feats = load_features(voice, e, cfg)
            check_finite(feats, Path(e.path).name, voice)
            frames = int(feats["spec"].shape[-1])
            if frames < 2:
                raise VoicelabError(f"{Path(e.path).name} is too short to train on; remove it")
            lang = e.lang if e.lang != "auto" else lang_default
            check_text_length(e.text, Path(e.path).name)
            ids, lang_ids = phon(e.text, lang, where=Path(e.path).name)
            check_positions(Path(e.path).name, len(ids), frames, cfg)
            wav = feats["wav"][: frames * int(cfg.features.hop_length)]
            if wav.shape[-1] < frames * cfg.features.hop_length:  # pad the last partial frame
                wav = torch.nn.functional.pad(
                    wav, (0, frames * cfg.features.hop_length - wav.shape[-1])
                )
            items.append(
                Item(
                    key=item_key(e.path, voice.slices),
                    speaker=e.speaker,
                    text=e.text,
                    phone_ids=torch.tensor(ids, dtype=torch.long),
                    lang_ids=torch.tensor(lang_ids, dtype=torch.long),
                    wav=wav.float(),
                    spec=feats["spec"].float(),
                    mel=feats["mel"].float(),
                )
            )
            # the hash identifies the data a checkpoint was trained on (audio + text + language)
            h.update(Path(e.path).name.encode() + b"|" + e.speaker.encode() + b"|" + lang.encode())
            h.update(b"|" + e.text.encode() + b"|" + hashlib.sha256(wav.numpy().tobytes()).digest())
            if progress is not None:
                progress(n + 1, len(entries))
        _, val = split_indices(len(items), int(cfg.train.val_slices), int(cfg.train.seed))
        return cls(items, cfg, val, h.hexdigest())

    # ---------------------------------------------------------------------------------------

    def reference(self, i: int, epoch: int) -> Tensor:
        """Reference log-mel [n_mels, T_r] for item i: another same-speaker training slice."""
        me = self.items[i]
        others = [j for j in self.train_idx if j != i and self.items[j].speaker == me.speaker]
        src = self.items[others[(i + epoch) % len(others)]] if others else me
        g = torch.Generator()
        g.manual_seed(int(self.cfg.train.seed) * 7919 + epoch * 104729 + i)
        length = min(src.frames, self.ref_max_frames)
        if src is me and src.frames > 8:
            length = min(length, max(8, (src.frames * 2) // 3))  # a crop, never the whole target
        start = int(torch.randint(0, src.frames - length + 1, (1,), generator=g))
        return src.mel[:, start : start + length]

    def collate(
        self, indices: list[int], epoch: int = 0, with_tokens: bool = False, audio: bool = True
    ) -> Batch:
        """Batch of items (indices into self.items), zero padded; see Batch for shapes.

        audio=False (stage 2, where the GPT reads only phonemes, tokens and style vectors)
        leaves spec / mel / wav / ref_mel empty ([B, C, 0], lengths 0): padding and copying
        spectrograms there would be most of a GPT step's time.
        """
        items = [self.items[i] for i in indices]
        if audio:
            refs = [self.reference(i, epoch) for i in indices]
            spec = _pad_stack([it.spec for it in items])
            mel = _pad_stack([it.mel for it in items])
            spec_lens = torch.tensor([it.frames for it in items])
            wav = _pad_stack([it.wav for it in items]).unsqueeze(1)
            ref_mel, ref_lens = _pad_stack(refs), torch.tensor([r.shape[-1] for r in refs])
        else:
            b, it0 = len(items), items[0]
            spec = it0.spec.new_zeros(b, it0.spec.shape[0], 0)
            mel = ref_mel = it0.mel.new_zeros(b, it0.mel.shape[0], 0)
            wav = it0.wav.new_zeros(b, 1, 0)
            spec_lens = ref_lens = torch.zeros(b, dtype=torch.long)
        batch = Batch(
            phone_ids=_pad_stack([it.phone_ids for it in items], 0),
            phone_lens=torch.tensor([len(it.phone_ids) for it in items]),
            lang_ids=_pad_stack([it.lang_ids for it in items], 0),
            spec=spec,
            mel=mel,
            spec_lens=spec_lens,
            wav=wav,
            ref_mel=ref_mel,
            ref_lens=ref_lens,
            texts=tuple(it.text for it in items),
        )
        if self.dvectors:
            batch.dvector = torch.stack([self.dvectors[it.speaker] for it in items])
        if with_tokens:
            self.add_tokens(batch, items)
        return batch


def speaker_dvectors(items: list[Item], cfg: Config) -> dict[str, Tensor]:
    """{speaker: unit-norm mean resemblyzer d-vector [256] of their slices} (model.use_dvector)."""
    from voicelab.audio.dvector import speaker_embedding

    by: dict[str, list] = {}
    for it in items:
        by.setdefault(it.speaker, []).append((it.wav.numpy(), cfg.audio.sample_rate))
    return {spk: torch.from_numpy(speaker_embedding(clips)).float() for spk, clips in by.items()}
