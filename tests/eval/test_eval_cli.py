"""`python -m voicelab eval` end to end on an untrained tiny export (the report is complete)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicelab.listfile import Entry, write_list

DATA = Path(__file__).resolve().parent.parent / "assets"


@pytest.mark.slow
def test_cli_eval_end_to_end_on_a_tiny_model(tmp_home, tiny_cfg, tmp_path, capsys):
    """An untrained tiny export through `python -m voicelab eval`: the report is complete."""
    import torch

    from voicelab import cli
    from voicelab.config import config_to_dict
    from voicelab.export import export_run
    from voicelab.models.build import build_gpt, build_sovits
    from voicelab.training import checkpoint as ck
    from voicelab.workspace import get_voice

    for name, clips in (("alice", ["slt_000.wav", "slt_001.wav"]), ("bob", ["rms_000.wav"])):
        v = get_voice(name).create()
        entries = []
        for c in clips:
            dst = v.slices / c
            dst.write_bytes((DATA / c).read_bytes())
            entries.append(Entry(dst, name, "en", "The morning train left the station a few minutes early."))
        write_list(v.dataset_list, entries)
    alice = get_voice("alice")
    torch.manual_seed(0)
    models = {"sovits": build_sovits(tiny_cfg).state_dict(), "gpt": build_gpt(tiny_cfg).state_dict()}
    state = {ck.K_STAGE: "gpt", ck.K_STEP: 1, ck.K_STAGE_STEP: 1, ck.K_EPOCH: 0, ck.K_EPOCH_POS: 0,
             ck.K_MODELS: models, ck.K_OPTIMIZERS: {}, ck.K_SCHEDULERS: {}, ck.K_SCALER: {},
             ck.K_EMA: {}, ck.K_RNG: {}, ck.K_METRICS: {}, ck.K_CONFIG: config_to_dict(tiny_cfg),
             ck.K_DATASET_HASH: "x"}  # fmt: skip
    ck.save_checkpoint(alice.run_dir("main"), state)
    bundle = export_run(alice)
    sentences = tmp_path / "held.txt"
    sentences.write_text("Please bring the red cup.\n")
    out = tmp_path / "report"
    rc = cli.main(["eval", "--model", str(bundle), "--voice", "alice", "--sentences", str(sentences),
                   "-o", str(out), "--device", "cpu"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "eval.json").read_text())
    item = data["items"][0]
    assert data["meta"]["voice"] == "alice" and data["meta"]["machine"]["cores"] >= 1
    assert item["audio_s"] > 0 and item["rtf"] > 0 and item["first_audio_s"] > 0
    assert item["wer"] is not None or any("WER" in w for w in item["warnings"])
    assert (out / item["audio_file"]).is_file() and (out / "eval.md").is_file()
    assert "bob" in data["summary"]["sim_others"] or any("similarity" in w for w in item["warnings"])
    assert "report:" in capsys.readouterr().out
