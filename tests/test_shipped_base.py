"""The base voicelab ships in assets/base (issue 14): intact, small enough, the default preset's
architecture, documented, and what a default `train` actually starts from.

Skipped where no base has been shipped (the `shipped_base` fixture of conftest.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from voicelab import base as B
from voicelab.config import DEFAULT_PRESET, load_config

sys.path.insert(0, str(Path(__file__).parent))
from test_pretrain import cli, new_voice, one_thread  # noqa: E402, F401  (one_thread: autouse)

FAST = ["train.device=cpu", "train.log_every=1", "train.save_every_minutes=0",
        "train.val_slices=1", "train.eval_every=100", "train.save_every=100"]  # fmt: skip


def test_the_shipped_base_is_intact_small_and_fits_the_default_preset(shipped_base):
    info = B.read_base(B.base_paths(shipped_base)[0])  # sha256, versions, phoneme table
    files = B.base_paths(shipped_base)
    total = sum(p.stat().st_size for p in files)
    assert total <= B.MAX_MB * 1e6, f"{total / 1e6:.1f} MB"
    assert info.meta["preset"] == DEFAULT_PRESET
    assert not info.mismatch(load_config())
    assert B.default_from(load_config()) == info.path


def test_the_model_card_names_sources_licences_and_measured_quality(shipped_base):
    info = B.read_base(B.base_paths(shipped_base)[0], verify_hash=False)
    card = info.card.read_text(encoding="utf-8")
    speakers = info.meta["corpus"]["speakers"]
    assert len(speakers) >= 5
    for name in speakers:
        assert name in card
    for word in ("licence", "WER", "similarity", "steps", "hours"):
        assert word.lower() in card.lower(), word
    for held_out in ("slt", "rms", "awb"):  # never trained on (named only as excluded)
        assert not any(held_out in s for s in speakers)


def test_a_default_run_fine_tunes_from_the_shipped_base(shipped_base, tmp_path):
    """`train` with no --from starts from the base with the preset's fine-tune schedule, and
    the base already knows English phone durations: its first duration loss is a fraction of a
    from-scratch start's (a voice's timbre it has not heard is another matter)."""
    home = tmp_path / "ws"
    new_voice(home, "mini")
    steps = ["--sovits-steps", "3", "--gpt-steps", "1"]
    sets = [x for s in FAST for x in ("--set", s)]
    assert cli(home, "train", "--voice", "mini", "--run", "tuned", *steps, *sets) == 0
    assert cli(home, "train", "--voice", "mini", "--run", "scratch", "--from", "none", *steps,
               *sets) == 0  # fmt: skip
    runs = home / "mini" / "runs"
    saved = json.loads((runs / "tuned" / "config.json").read_text())
    tuned_cfg = load_config(DEFAULT_PRESET, finetune=True)
    assert saved["train"]["finetuned"] is True
    assert saved["train"]["lr_g"] == tuned_cfg.train.lr_g
    assert list(saved["train"]["freeze"]) == list(tuned_cfg.train.freeze)
    assert str(shipped_base / "base.safetensors") in (runs / "tuned" / "train.log").read_text()
    assert json.loads((runs / "scratch" / "config.json").read_text())["train"]["finetuned"] is False

    def first_duration_loss(run: str) -> float:
        for line in (runs / run / "metrics.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec.get("stage") == "sovits" and "loss/dur" in rec:
                return float(rec["loss/dur"])
        raise AssertionError(f"no stage-1 record in {run}")

    assert first_duration_loss("tuned") < 0.3 * first_duration_loss("scratch")


@pytest.mark.parametrize("field", ["sha256"])
def test_a_damaged_shipped_copy_is_ignored_with_a_reason(shipped_base, tmp_path, field, caplog):
    """A copy of the base whose JSON no longer matches its weights is not used: training falls
    back to scratch with the reason in the log (a damaged optional file must not stop it)."""
    import shutil

    copy = tmp_path / "base"
    shutil.copytree(shipped_base, copy)
    meta = json.loads((copy / "base.json").read_text())
    meta[field] = "0" * 64
    (copy / "base.json").write_text(json.dumps(meta))
    with caplog.at_level("WARNING"):
        assert B.default_from(load_config(), copy) is None
    assert "does not match" in caplog.text
