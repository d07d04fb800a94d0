"""The world path's training data: the cached slices (data/world_cache.py) -> `Batch`.

`WorldVoiceData` has the interface of `VoiceData` (train / val / items / collate / set_tokens /
dataset_hash), so the trainer's loop, its epoch order and its exact resume are shared. A clip the
aligner cannot use is skipped with its reason (logged, kept in `.skipped`); training goes on
with the rest, and only when nothing is left is it an error.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from voicelab.config import Config
from voicelab.data.batch import Batch
from voicelab.data.dataset import TokenTargets, _pad_stack, item_key, split_indices
from voicelab.data.world_cache import load_world_item, precompute
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list
from voicelab.text.align import AlignmentError
from voicelab.workspace import Voice

# Bump when the computation changes in a way the settings do not capture (invalidates caches).
DEFAULT_LF0_STATS = (math.log(120.0), 0.25)  # a speaker without a voiced frame (never in practice)


@dataclass
class WorldItem:
    """One slice of the world path in memory (CPU tensors)."""

    key: str  # the slice's path relative to slices/ (see dataset.item_key)
    speaker: str
    text: str
    phone_ids: Tensor  # [P] long (ARPAbet)
    word_pos: Tensor  # [P] long
    stress: Tensor  # [P] long (arpabet.STRESS)
    durations: Tensor  # [P] long, frames; sum = frames
    acoustic: Tensor  # [N, D] float32 raw WORLD features
    dvector: Tensor  # [256] float32

    @property
    def frames(self) -> int:
        return int(self.acoustic.shape[0])


def speaker_lf0_stats(items: list[WorldItem], layout_lf0: int, layout_vuv: int) -> dict[str, Tensor]:
    """{speaker: [mean, std] of log F0 over that speaker's voiced frames}."""
    by: dict[str, list[Tensor]] = {}
    for it in items:
        v = it.acoustic[:, layout_vuv] > 0.5
        by.setdefault(it.speaker, []).append(it.acoustic[v, layout_lf0])
    return {spk: lf0_mean_std(torch.cat(parts)) for spk, parts in by.items()}


def lf0_mean_std(voiced_lf0: Tensor) -> Tensor:
    """[2] mean and std of log F0 over voiced frames [N] (a typical voice when N < 10): the
    speaker statistics of training and of a reference clip at synthesis alike."""
    x = voiced_lf0.float()
    if x.numel() < 10:
        return torch.tensor(DEFAULT_LF0_STATS)
    return torch.stack([x.mean(), x.std().clamp(min=0.05)])


class WorldVoiceData(TokenTargets):
    """All usable slices of a voice in memory, split into train / val, collated into Batches."""

    def __init__(self, items: list[WorldItem], cfg: Config, val_idx: list[int], hash_: str,
                 skipped: list[tuple[str, str]]) -> None:
        self.cfg = cfg
        self.items = items
        self.val_idx = list(val_idx)
        self.train_idx = [i for i in range(len(items)) if i not in set(val_idx)]
        self.dataset_hash = hash_
        self.skipped = skipped  # (slice name, why) of every clip left out
        n_mgc = cfg.world.n_mgc
        self.lf0_index, self.vuv_index = n_mgc, n_mgc + 1
        self.lf0_stats = speaker_lf0_stats(items, self.lf0_index, self.vuv_index)
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
        cls, voice: Voice, cfg: Config, entries: list[Entry] | None = None, progress: Any = None,
        log: Any = None,
    ) -> WorldVoiceData:
        """Read slices/dataset.list (or `entries`); align, analyse and embed every slice.

        log(message) is called once per skipped clip (name and reason)."""
        if entries is None:
            if not voice.dataset_list.is_file():
                raise VoicelabError(
                    f"voice {voice.name!r} has no slices yet: slice the recordings (the Slice "
                    f"tab, or `python -m voicelab slice --voice {voice.name}`) before training"
                )
            entries = read_list(voice.dataset_list)
        entries = [e for e in entries if e.text.strip()]
        if not entries:
            raise VoicelabError(
                f"voice {voice.name!r} has no transcribed slices: add the text of each slice "
                "(the app's Slice tab, or `python -m voicelab transcribe`) before training"
            )
        items, skipped, h = [], [], hashlib.sha256()
        precompute(voice, entries, cfg, progress)
        for n, e in enumerate(entries):
            try:
                t = load_world_item(voice, e, cfg)
            except AlignmentError as err:
                skipped.append((Path(e.path).name, str(err)))
                if log is not None:
                    log(f"skipped {err}")
                continue
            items.append(WorldItem(
                key=item_key(e.path, voice.slices), speaker=e.speaker, text=e.text,
                phone_ids=t["phone_ids"].long(), word_pos=t["word_pos"].long(), stress=t["stress"].long(),
                durations=t["durations"].long(), acoustic=t["acoustic"].float(),
                dvector=t["dvector"].float(),
            ))
            h.update(Path(e.path).name.encode() + b"|" + e.speaker.encode() + b"|")
            h.update(e.text.encode() + b"|" + hashlib.sha256(t["acoustic"].numpy().tobytes()).digest())
            if progress is not None:
                progress(n + 1, len(entries))
        if not items:
            why = "; ".join(f"{name}: {r}" for name, r in skipped[:3])
            raise VoicelabError(
                f"none of the {len(entries)} slices of voice {voice.name!r} could be aligned to its "
                f"text ({why}): check the texts in the Slice tab"
            )
        _, val = split_indices(len(items), int(cfg.train.val_slices), int(cfg.train.seed))
        return cls(items, cfg, val, h.hexdigest(), skipped)

    # ---------------------------------------------------------------------------------------

    def feature_stats(self) -> tuple[Tensor, Tensor]:
        """Per-channel mean and std [D] over every frame of the training items."""
        x = torch.cat([self.items[i].acoustic for i in self.train_idx or range(len(self.items))])
        return x.mean(0), x.std(0)

    def collate(
        self, indices: list[int], epoch: int = 0, with_tokens: bool = False, audio: bool = True
    ) -> Batch:
        """Batch of items (indices into self.items), zero padded; see Batch for shapes.
        `epoch` is unused (no random reference crops on this path); audio=False (stage 2)
        leaves out the WORLD features, which the GPT does not read."""
        items = [self.items[i] for i in indices]
        b = len(items)
        empty = torch.zeros(b, 1, 0)
        zeros = torch.zeros(b, dtype=torch.long)
        phone_ids = _pad_stack([it.phone_ids for it in items], 0)
        batch = Batch(
            phone_ids=phone_ids,
            phone_lens=torch.tensor([len(it.phone_ids) for it in items]),
            lang_ids=torch.zeros_like(phone_ids),
            spec=empty, mel=empty, spec_lens=zeros, wav=empty, ref_mel=empty, ref_lens=zeros,
            word_pos=_pad_stack([it.word_pos for it in items], 0),
            stress=_pad_stack([it.stress for it in items], 0),
            durations=_pad_stack([it.durations for it in items], 0),
            lf0_stats=torch.stack([self.lf0_stats[it.speaker] for it in items]).float(),
            dvector=torch.stack([it.dvector for it in items]),
            texts=tuple(it.text for it in items),
        )
        if audio:
            batch.acoustic = torch.stack([
                torch.nn.functional.pad(it.acoustic, (0, 0, 0, max(x.frames for x in items) - it.frames))
                for it in items
            ])
            batch.acoustic_lens = torch.tensor([it.frames for it in items])
        if with_tokens:
            self.add_tokens(batch, items)
        return batch


