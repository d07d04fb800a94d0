"""The world path's aperiodicity and voicing terms are settings (train.c_bap, train.c_vuv): a
fine-tune on a noisy take leaves them to the base, since its noise shows up there."""

from __future__ import annotations

import pytest

from voicelab.config import load_config
from voicelab.errors import ConfigError
from voicelab.training.steps import world_loss_weights


def test_bap_and_vuv_weights_come_from_the_config():
    w = world_loss_weights(load_config("cpu").train)
    assert w["loss/bap"] > 0 and w["loss/vuv"] > 0
    w = world_loss_weights(load_config("cpu", ["train.c_bap=0", "train.c_vuv=0"]).train)
    assert w["loss/bap"] == 0 and w["loss/vuv"] == 0 and w["loss/mgc"] > 0


def test_a_negative_weight_is_refused():
    with pytest.raises(ConfigError, match="c_bap"):
        load_config("cpu", ["train.c_bap=-1"])
