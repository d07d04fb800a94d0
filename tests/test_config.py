"""Config loading: presets, unknown keys, every problem reported at once, --set parsing, JSON."""

from __future__ import annotations

import json

import pytest

from voicelab.config import (
    config_from_dict,
    config_to_dict,
    list_presets,
    load_config,
    load_config_json,
    save_config_json,
)
from voicelab.errors import ConfigError


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_presets_load(preset):
    cfg = load_config(preset)
    assert cfg.preset == preset and cfg.audio.sample_rate == 32000
    assert cfg.features.hop_length == 640 and cfg.slice.threshold_db == -34.0
    assert preset in list_presets()


def test_gpt_sovits_slicer_defaults():
    s = load_config("tiny").slice
    assert (s.threshold_db, s.min_length_ms, s.min_interval_ms, s.hop_ms, s.max_sil_kept_ms) == (
        -34.0, 4000, 300, 10, 500)  # fmt: skip
    assert (s.max_length_s, s.min_keep_s) == (12.0, 0.6)


def test_unknown_keys_and_sections_are_errors():
    with pytest.raises(ConfigError) as e:
        config_from_dict({"audio": {"sample_rat": 32000}, "nonsense": {}})
    msg = str(e.value)
    assert "unknown key audio.sample_rat" in msg and "sample_rate" in msg  # lists known keys
    assert "unknown section [nonsense]" in msg


def test_every_problem_at_once():
    with pytest.raises(ConfigError) as e:
        config_from_dict(
            {
                "audio": {"denoise_strength": 1.5, "target_lufs": 3.0},
                "slice": {"min_length_ms": 100, "threshold_db": 5.0},
                "features": {"win_length": 4096},
                "train": {"batch_size": "four"},
            }
        )
    problems = e.value.problems
    for needle in ("denoise_strength", "target_lufs", "min_length_ms", "threshold_db",
                   "win_length", "train.batch_size must be a whole number"):  # fmt: skip
        assert any(needle in p for p in problems), needle
    assert len(problems) >= 6


def test_set_overrides_parse_toml_values():
    cfg = load_config(
        "tiny",
        [
            "audio.denoise=false",
            "audio.target_lufs=-23",  # int -> float
            "slice.method=vad",  # bare word -> string
            "model.upsample_rates=[10, 8, 2, 2, 2]",
            'train.device="cpu"',
        ],
    )
    assert cfg.audio.denoise is False and cfg.audio.target_lufs == -23.0
    assert cfg.slice.method == "vad" and cfg.model.upsample_rates == (10, 8, 2, 2, 2)
    assert cfg.train.device == "cpu"


@pytest.mark.parametrize(
    "item,needle",
    [
        ("audio.target_lufs", "expected section.key=value"),
        ("target_lufs=-20", "section.key"),
        ("audio.denoise=maybe", "true or false"),
        ("slice.method=fast", "not one of"),
        ("audio.sample_rate=12345", "not a supported rate"),
    ],
)
def test_bad_overrides(item, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config("tiny", [item])


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="choose one of .*tiny"):
        load_config("no-such-preset")


def test_hop_must_match_the_decoder():
    with pytest.raises(ConfigError, match="upsample_rates"):
        load_config("tiny", ["features.hop_length=320"])


def test_json_round_trip(tmp_path):
    cfg = load_config("small", ["audio.denoise_strength=0.6"])
    d = config_to_dict(cfg)
    json.dumps(d)
    assert config_from_dict(d) == cfg
    save_config_json(cfg, tmp_path / "config.json")
    assert load_config_json(tmp_path / "config.json") == cfg


def test_a_retired_setting_is_refused_in_set_but_loads_from_saved_configs(tmp_path):
    # --set is a person asking for the setting now: say it is gone instead of ignoring it
    with pytest.raises(ConfigError, match="train.num_workers: this setting was removed"):
        load_config("tiny", ["train.num_workers=4"])
    # a config.json / checkpoint written while it existed still loads (the key is dropped)
    d = config_to_dict(load_config("tiny"))
    d["train"]["num_workers"] = 2
    (tmp_path / "config.json").write_text(json.dumps(d))
    assert load_config_json(tmp_path / "config.json") == load_config("tiny")


# --- the [finetune] table of a preset (issue 14) ----------------------------------------------


def test_finetune_table_replaces_train_values_and_overrides_still_win():
    scratch = load_config("cpu")
    tuned = load_config("cpu", finetune=True)
    assert not scratch.train.finetuned and tuned.train.finetuned
    assert tuned.train.sovits_steps < scratch.train.sovits_steps  # the base already speaks
    assert tuned.train.lr_g < scratch.train.lr_g
    assert tuned.model == scratch.model  # never the architecture
    mine = load_config("cpu", ["train.sovits_steps=77"], finetune=True)
    assert mine.train.sovits_steps == 77 and mine.train.finetuned


def test_finetune_table_may_not_change_the_architecture(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[model]\nacoustic = "world"\n[finetune.model]\nhidden = 64\n')
    with pytest.raises(ConfigError, match="only train and synth"):
        load_config(p)


def test_a_wrong_finetune_value_fails_every_load(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[finetune.train]\nsovits_stepz = 5\n')
    with pytest.raises(ConfigError, match="sovits_stepz"):
        load_config(p)  # not only when a base is found
