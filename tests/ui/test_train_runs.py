"""The Train tab on runs whose files are damaged: a malformed status.json is said in plain
words, and a run whose checkpoints are all damaged is not called "no checkpoint yet"."""

from __future__ import annotations

import pytest

from voicelab.errors import VoicelabError
from voicelab.listfile import write_list
from voicelab.training import runfiles
from voicelab.ui import jobs, train_runs, train_settings, train_status
from voicelab.workspace import get_voice


def test_a_damaged_status_is_said_in_plain_words(tmp_home):
    run_dir = get_voice("v1").create().run_dir("r1")
    run_dir.mkdir(parents=True)
    (run_dir / runfiles.STATUS).write_text("[1, 2]")
    md = train_status.state_markdown(jobs.run_view(run_dir))
    assert md.startswith("Run `r1`: **Its status file is damaged**")
    assert "checkpoints are not affected" in md and "status.json" in md  # the cause, quoted


def test_a_run_whose_checkpoints_are_all_damaged_says_so(tmp_home):
    v = get_voice("v1").create()
    write_list(v.dataset_list, [])
    run = v.run("r1")
    run.checkpoints.mkdir(parents=True)
    run.checkpoint(5).write_bytes(b"not a checkpoint at all")
    with pytest.raises(VoicelabError, match="every checkpoint of run 'r1' is damaged"):
        train_runs.start("v1", "r1", "tiny", train_settings.preset_values("tiny"), resume=True)
    rows = train_status.checkpoint_rows(run.root)
    assert train_status.resume_label(rows).startswith("Every checkpoint of this run is damaged")
    assert train_status.resume_label([]).startswith("No checkpoint yet")
