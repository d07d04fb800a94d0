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
