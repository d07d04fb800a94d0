"""Training data: split, epoch order and sharding, features + phonemes -> Batch, references."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from voicelab.config import load_config
from voicelab.data.dataset import PhonemeCache, VoiceData, epoch_batches, split_indices
from voicelab.errors import VoicelabError
from voicelab.listfile import Entry, read_list, write_list
from voicelab.workspace import get_voice


def make_voice(home: Path, mini_list: Path, name: str = "mini", speaker: str | None = None):
    """A voice whose slices/ holds tests/assets's three clips (speaker kept, or forced)."""
    v = get_voice(name, base=home).create()
    entries = []
    for e in read_list(mini_list):
        dst = v.slices / e.path.name
        shutil.copy(e.path, dst)
        entries.append(Entry(dst, speaker or e.speaker, e.lang, e.text))
    write_list(v.dataset_list, entries)
    return v


def test_split_is_seeded_and_checked():
    tr, va = split_indices(10, 2, seed=3)
    assert (tr, va) == split_indices(10, 2, seed=3)
    assert len(va) == 2 and sorted(tr + va) == list(range(10))
    with pytest.raises(VoicelabError, match="at least one"):
        split_indices(2, 2, seed=0)


def test_epoch_batches_shard_like_distributed_sampler():
    n, bs = 7, 2
    one = epoch_batches(n, bs, seed=5, epoch=0)
    assert sorted(i for b in one for i in b) == list(range(n))
    assert one == epoch_batches(n, bs, seed=5, epoch=0)  # pure function of (seed, epoch)
    assert one != epoch_batches(n, bs, seed=5, epoch=1)
    r0 = epoch_batches(n, bs, seed=5, epoch=2, rank=0, world_size=2)
    r1 = epoch_batches(n, bs, seed=5, epoch=2, rank=1, world_size=2)
    assert len(r0) == len(r1)  # ranks never wait on each other
    assert set(i for b in r0 + r1 for i in b) == set(range(n))
    sampler = torch.utils.data.DistributedSampler(list(range(n)), num_replicas=2, rank=1, seed=5)
    sampler.set_epoch(2)
    assert [i for b in r1 for i in b] == list(sampler)


def test_load_and_collate(tmp_path, mini_list):
    cfg = load_config("tiny", ["train.device=cpu", "train.val_slices=1"])
    v = make_voice(tmp_path, mini_list)
    data = VoiceData.load(v, cfg)
    assert len(data.items) == 3 and len(data.train) == 2 and len(data.val) == 1
    hop = cfg.features.hop_length
    for it in data.items:
        assert it.wav.shape[-1] == it.frames * hop
        assert it.mel.shape == (cfg.features.n_mels, it.frames)
        assert it.phone_ids.shape == it.lang_ids.shape and len(it.phone_ids) > 5
    b = data.collate([0, 1, 2], epoch=0)
    assert b.size == 3
    assert b.wav.shape == (3, 1, b.spec.shape[-1] * hop)
    assert b.spec.shape[1] == cfg.features.n_fft // 2 + 1
    assert b.spec_lens.tolist() == [it.frames for it in data.items]
    for i, it in enumerate(data.items):  # padding is zero, lengths are true lengths
        assert torch.equal(b.phone_ids[i, : len(it.phone_ids)], it.phone_ids)
        assert (b.phone_ids[i, len(it.phone_ids) :] == 0).all()
        assert (b.mel[i, :, it.frames :] == 0).all()
    assert b.ref_lens.max() <= data.ref_max_frames
    with pytest.raises(VoicelabError, match="semantic tokens"):
        data.collate([0], with_tokens=True)
    data.set_tokens(
        {it.key: torch.arange(it.frames // 2) % 7 for it in data.items},
        {it.key: torch.ones(4) for it in data.items},
    )
    bt = data.collate([0, 2], with_tokens=True)
    assert bt.tokens.shape[0] == 2 and bt.style.shape == (2, 4)
    assert bt.token_lens.tolist() == [data.items[0].frames // 2, data.items[2].frames // 2]
    light = data.collate([0, 2], with_tokens=True, audio=False)  # stage 2: no audio copied
    assert light.spec.shape[-1] == light.wav.shape[-1] == light.ref_mel.shape[-1] == 0
    assert torch.equal(light.tokens, bt.tokens) and torch.equal(light.phone_ids, bt.phone_ids)


def test_reference_is_same_speaker(tmp_path, mini_list):
    cfg = load_config("tiny", ["train.device=cpu", "train.val_slices=0"])
    data = VoiceData.load(make_voice(tmp_path, mini_list), cfg)
    by_key = {it.key: i for i, it in enumerate(data.items)}
    slt0, slt1, rms = by_key["slt_000.wav"], by_key["slt_001.wav"], by_key["rms_000.wav"]

    def is_crop_of(ref, j):
        m = data.items[j].mel
        return any(
            torch.equal(ref, m[:, s : s + ref.shape[-1]])
            for s in range(m.shape[-1] - ref.shape[-1] + 1)
        )

    for epoch in range(3):
        assert is_crop_of(data.reference(slt0, epoch), slt1)  # the other slice of flite_slt
        r = data.reference(rms, epoch)  # flite_rms has one slice: a crop of itself, not all of it
        assert is_crop_of(r, rms) and r.shape[-1] < data.items[rms].frames
    assert torch.equal(data.reference(rms, 1), data.reference(rms, 1))  # deterministic


def test_phonemes_cached_and_hash_tracks_text(tmp_path, mini_list):
    cache = PhonemeCache()
    a = cache("Hello there.", "en")
    assert cache("Hello there.", "en") is a and len(cache._cache) == 1
    cfg = load_config("tiny", ["train.device=cpu"])
    v = make_voice(tmp_path, mini_list)
    h1 = VoiceData.load(v, cfg).dataset_hash
    assert VoiceData.load(v, cfg).dataset_hash == h1
    entries = read_list(v.dataset_list)
    write_list(v.dataset_list, [entries[0].with_text("Something else entirely."), *entries[1:]])
    assert VoiceData.load(v, cfg).dataset_hash != h1


def test_no_transcripts_is_a_clear_error(tmp_path, mini_list):
    v = make_voice(tmp_path, mini_list)
    write_list(v.dataset_list, [e.with_text("") for e in read_list(v.dataset_list)])
    with pytest.raises(VoicelabError, match="no transcribed slices"):
        VoiceData.load(v, load_config("tiny"))
    v2 = get_voice("empty", base=tmp_path).create()
    with pytest.raises(VoicelabError, match="dataset.list"):
        VoiceData.load(v2, load_config("tiny"))


def test_item_keys_are_unique_when_speakers_share_file_names(tmp_path):
    """A multi-speaker corpus often names clips 000.wav per speaker: tokens.pt keys must differ."""
    from voicelab.data.dataset import item_key

    slices = tmp_path / "v" / "slices"
    a = item_key(slices / "a.wav", slices)
    assert a == "a.wav"  # a voice's own slices keep their plain file name
    k1 = item_key(tmp_path / "corpus" / "kal" / "000.wav", slices)
    k2 = item_key(tmp_path / "corpus" / "awb" / "000.wav", slices)
    assert k1 != k2
