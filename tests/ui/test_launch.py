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
        out = capsys.readouterr()
        err = out.err
        assert "WARNING: --share without --auth" in err
        assert "could not create a share link" in err
        # one clear line: not Gradio's own failure text and frpc download steps (issue 15, 13)
        assert "Could not create share link" not in out.out + err
        assert "share=True" not in out.out + err
        assert demo.share_url is None
        assert any("could not create a share link" in n for n in ui_app.NOTICES)
        assert any("--share without --auth" in n for n in ui_app.NOTICES)
        with urllib.request.urlopen(demo.local_url, timeout=30) as r:  # still serving locally
            assert r.status == 200
        banner = ui_app.notices_markdown()
        assert "could not create a share link" in banner.value
    finally:
        demo.close()


def _get(url: str) -> int:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_studio_serves_its_own_cache_under_the_workspace_and_removes_it(tmp_home, tmp_path,
                                                                            monkeypatch):
    """Issue 16 item 12: Gradio's shared /tmp/gradio cache (another app's uploads) was served,
    and the studio's temp folders were never cleaned."""
    import os
    import tempfile
    from pathlib import Path

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # "the host's" temp folder
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    other_app = tmp_path / "gradio" / ("a" * 40)  # what another Gradio app on the host cached
    other_app.mkdir(parents=True)
    secret = other_app / "upload.txt"
    secret.write_text("someone else's file")
    stale = tmp_home / launch.STUDIO_DIR / "999999999-dead"  # a killed studio's folder
    stale.mkdir(parents=True)
    args = launch.parse_args(["--port", str(_free_port())])
    demo = launch.launch(args, block=False)
    session = demo.voicelab_session
    try:
        assert not stale.exists()
        assert session.parent == tmp_home / launch.STUDIO_DIR and session.is_dir()
        assert os.environ["GRADIO_TEMP_DIR"] == str(session / "gradio")
        assert Path(tempfile.mkdtemp(prefix="voicelab-speak-")).parent == session / "tmp"
        base = demo.local_url.rstrip("/")
        assert _get(f"{base}/gradio_api/file={secret}") != 200
        mine = session / "gradio" / ("b" * 40) / "out.txt"
        mine.parent.mkdir(parents=True)
        mine.write_text("ours")
        assert _get(f"{base}/gradio_api/file={mine}") == 200
    finally:
        demo.close()
        launch.close_session_folder(session)
    assert not session.exists() and secret.exists()  # ours removed, the other app's untouched
    assert tempfile.tempdir == str(tmp_path) and "GRADIO_TEMP_DIR" not in os.environ


def test_failed_logins_are_braked(monkeypatch):
    """Issue 16 item 13: 100 wrong logins took 0.5 s. After FREE_TRIES failures each attempt
    waits, doubling; parallel guesses wait their turn; the right password still works."""
    import asyncio
    import time

    monkeypatch.setattr(launch, "BRAKE_BASE_S", 0.1)
    brake = launch.LoginBrake("me", "secret")

    async def attempts():
        t0 = time.monotonic()
        for _ in range(launch.FREE_TRIES):
            assert not await brake.check("me", "wrong")
        free = time.monotonic() - t0
        t0 = time.monotonic()
        results = await asyncio.gather(*(brake.check("me", f"guess{i}") for i in range(4)))
        braked = time.monotonic() - t0
        t0 = time.monotonic()
        ok = await brake.check("me", "secret")
        return free, results, braked, ok, time.monotonic() - t0

    free, results, braked, ok, last = asyncio.run(attempts())
    assert free < 0.1 and not any(results)
    assert braked >= 0.1 + 0.2 + 0.4 + 0.8 - 0.05  # one at a time, doubling: parallel gains nothing
    assert ok and last >= 1.6 - 0.05  # the right password works, after the brake's wait
    assert not asyncio.run(brake.check("you", "secret"))  # the user name counts too


def test_the_login_route_uses_the_brake(tmp_home, monkeypatch):
    import json
    import time
    import urllib.parse

    monkeypatch.setattr(launch, "BRAKE_BASE_S", 0.2)
    monkeypatch.setattr(launch, "FREE_TRIES", 1)
    args = launch.parse_args(["--port", str(_free_port()), "--auth", "me:secret"])
    demo = launch.launch(args, block=False)
    try:
        def login(pw: str) -> int:
            data = urllib.parse.urlencode({"username": "me", "password": pw}).encode()
            req = urllib.request.Request(demo.local_url.rstrip("/") + "/login", data=data)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return json.loads(r.read())["success"] and r.status
            except urllib.error.HTTPError as e:
                return e.code

        import urllib.error

        t0 = time.monotonic()
        assert [login("bad") for _ in range(3)] == [400, 400, 400]
        assert time.monotonic() - t0 >= 0.2 + 0.4 - 0.05
        assert login("secret") == 200
    finally:
        demo.close()
        launch.close_session_folder(demo.voicelab_session)
