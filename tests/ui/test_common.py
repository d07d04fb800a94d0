"""The wrapper every UI event goes through: refusals are toasts, outputs keep what they showed."""

from __future__ import annotations

import warnings

import gradio as gr

from voicelab.errors import VoicelabError
from voicelab.ui.common import friendly
from voicelab.ui.progress import CancelFlag, Cancelled, bridge


def _is_skip(update) -> bool:
    return update == gr.skip()


def test_a_refusal_leaves_every_output_as_it_was(monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", lambda msg, **kw: shown.append(("warning", msg)))
    monkeypatch.setattr(gr, "Info", lambda msg, **kw: shown.append(("info", msg)))

    def refuse(x):
        raise VoicelabError(f"no {x}")

    out = friendly(refuse, 3)("slices")
    assert len(out) == 3 and all(_is_skip(o) for o in out)
    assert shown == [("warning", "no slices")]
    assert _is_skip(friendly(refuse, 1)("text")), "one output: a single skip, not a tuple"
    assert friendly(lambda: ("a", "b"), 2)() == ("a", "b")


def test_cancel_is_an_info_not_an_error(monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", lambda msg, **kw: shown.append(("warning", msg)))
    monkeypatch.setattr(gr, "Info", lambda msg, **kw: shown.append(("info", msg)))
    flag = CancelFlag()
    flag.set()

    def job():
        bridge(None, "slicing", flag)(1, 10)
        return "done"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _is_skip(friendly(job, 1)())
    assert shown[0][0] == "info" and "slicing cancelled" in shown[0][1]
    assert issubclass(Cancelled, VoicelabError)


def test_ui_messages_give_ui_advice_not_cli_flags():
    """Issue 15.4: the library's messages name CLI flags; the studio says which button."""
    from voicelab.ui.common import ui_advice

    msgs = [
        "nothing was changed. Keep the current slices, or re-slice anyway with `slice --force` "
        "(the old list is kept as a .bak file)",
        "pause: checkpoint saved at step 12; resume with --resume auto",
        "run r1 already has checkpoints: add --resume auto to continue it, or choose a new --run "
        "name (nothing was overwritten)",
        "restore the files from a backup, or train under a new --run name to start over.",
        "different architecture (x). Resume with the settings it was started with, start a new "
        "run with --run NAME, or fine-tune from it with --from (weights only).",
        "was cut there: the voice may need more training (or raise synth.max_tokens_per_phone)",
    ]
    out = [ui_advice(m) for m in msgs]
    for m in out:
        assert "--" not in m and "synth." not in m, m
    assert "tick 're-slice even if typed texts are lost'" in out[0]
    assert out[1].endswith("press Resume to continue") and "press Resume to continue it" in out[2]
    assert "type a new run name in the Train tab" in out[3] and out[4].endswith("Train tab.")
