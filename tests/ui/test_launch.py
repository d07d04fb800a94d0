"""app.py's launcher: argument checks, loud warning without --auth, no share link -> local."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from voicelab.ui import app as ui_app
from voicelab.ui import launch


def test_arguments_are_checked(capsys):
    args = launch.parse_args(["--host", "0.0.0.0", "--port", "8000", "--auth", "me:secret"])
    assert (args.host, args.port, args.auth, args.share) == ("0.0.0.0", 8000, "me:secret", False)
    for bad in (["--auth", "nocolon"], ["--auth", ":pw"], ["--port", "70000"]):
        with pytest.raises(SystemExit):
            launch.parse_args(bad)
    assert "USER:PASS" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_share_failure_keeps_serving_locally_and_says_so(tmp_home, monkeypatch, capsys):
    import gradio.networking

    def no_internet(*a, **k):
        raise RuntimeError("Could not get share link from Gradio API Server.")

    monkeypatch.setattr(gradio.networking, "setup_tunnel", no_internet)
    monkeypatch.setattr(ui_app, "NOTICES", [])
    args = launch.parse_args(["--port", str(_free_port()), "--share"])
    demo = launch.launch(args, block=False)
    try:
        err = capsys.readouterr().err
        assert "WARNING: --share without --auth" in err
        assert "could not create a share link" in err
        assert demo.share_url is None
        assert any("could not create a share link" in n for n in ui_app.NOTICES)
        assert any("--share without --auth" in n for n in ui_app.NOTICES)
        with urllib.request.urlopen(demo.local_url, timeout=30) as r:  # still serving locally
            assert r.status == 200
        banner = ui_app.notices_markdown()
        assert "could not create a share link" in banner.value
    finally:
        demo.close()
