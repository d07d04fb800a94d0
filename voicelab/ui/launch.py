"""`python app.py [--host H] [--port P] [--share] [--auth USER:PASS]`: serve the studio.

Sharing makes the studio reachable from the internet through Gradio's tunnel. Without --auth
anyone with the link can use it (and read your recordings), so that gets a loud warning. When the
share link cannot be made (no internet, firewall), the studio says so in the console and in the
page, and keeps serving locally.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import contextlib
import hmac
import io
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from voicelab.errors import VoicelabError
from voicelab.ui.common import MAX_UPLOAD_MB
from voicelab.workspace import home

WARN_NO_AUTH = (
    "WARNING: --share without --auth: anyone who gets the link can use this studio, listen to "
    "your recordings and start training. Add --auth USER:PASS."
)


# ---- served files: the studio's own cache under VOICELAB_HOME ---------------------------------
# Gradio serves every file in its upload/output cache. Its default cache (/tmp/gradio) is shared
# by every Gradio app on the host, so a file uploaded to another app could be fetched from this
# one by its hashed path. Each studio process gets its own folder instead, under
# VOICELAB_HOME/.studio/<pid>-<random>/ ("." keeps it out of the voice list): gradio/ is
# GRADIO_TEMP_DIR, tmp/ takes the process's temp files (the Speak and Clean tabs' mkdtemp
# folders). The folder is removed when the studio closes, and folders of studios that are no
# longer running are removed at the next start.
STUDIO_DIR = ".studio"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def open_session_folder(ws: Path) -> Path:
    """Create this process's cache folder, point Gradio and `tempfile` at it, sweep dead ones."""
    base = ws / STUDIO_DIR
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # left by a studio that was killed: nobody serves them any more
        pid = old.name.split("-", 1)[0]
        if old.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    session = base / f"{os.getpid()}-{secrets.token_hex(4)}"
    (session / "gradio").mkdir(parents=True)
    (session / "tmp").mkdir()
    _SAVED.append((os.environ.get("GRADIO_TEMP_DIR"), tempfile.tempdir))
    os.environ["GRADIO_TEMP_DIR"] = str(session / "gradio")
    tempfile.tempdir = str(session / "tmp")
    atexit.register(close_session_folder, session)
    return session


_SAVED: list[tuple[str | None, str | None]] = []


def close_session_folder(session: Path) -> None:
    """Remove the folder and give Gradio and `tempfile` their previous settings back."""
    if os.environ.get("GRADIO_TEMP_DIR") == str(session / "gradio") and _SAVED:
        env, tmp = _SAVED.pop()
        if env is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = env
        tempfile.tempdir = tmp
    shutil.rmtree(session, ignore_errors=True)


# ---- --auth brute-force brake --------------------------------------------------------------
# Gradio checks a login in no time, so a shared link could be guessed at hundreds of passwords a
# second. Every login attempt waits its turn (one at a time, so parallel guesses gain nothing);
# after FREE_TRIES failures within FAIL_WINDOW_S each attempt first waits BRAKE_BASE_S, doubling
# per further failure up to BRAKE_MAX_S. Gradio gives the callable no client address (behind
# the share tunnel every client looks alike anyway), so the brake is global: while someone is
# guessing, the owner's own login waits too, which is the price of not being guessed.
FREE_TRIES = 5
FAIL_WINDOW_S = 15 * 60
BRAKE_BASE_S = 1.0
BRAKE_MAX_S = 16.0


class LoginBrake:
    """Checks one USER:PASS for `Blocks.launch(auth=brake.check)`, braking repeated failures."""

    def __init__(self, user: str, password: str) -> None:
        self._user, self._password = user.encode(), password.encode()
        self._failures: collections.deque[float] = collections.deque()
        self._lock: asyncio.Lock | None = None

    def delay(self, now: float) -> float:
        """Seconds the next attempt waits, from the failures still inside the window."""
        while self._failures and now - self._failures[0] > FAIL_WINDOW_S:
            self._failures.popleft()
        extra = len(self._failures) - FREE_TRIES
        return 0.0 if extra < 0 else min(BRAKE_MAX_S, BRAKE_BASE_S * 2.0**extra)

    async def check(self, username: str, password: str) -> bool:
        """The callable for launch(auth=...): a coroutine function, so Gradio awaits it (an
        object with an async __call__ would return an un-awaited, truthy coroutine: a login)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            wait = self.delay(time.monotonic())
            if wait:
                await asyncio.sleep(wait)
            ok = hmac.compare_digest(str(username).encode(), self._user) & hmac.compare_digest(
                str(password).encode(), self._password
            )
            if not ok:
                self._failures.append(time.monotonic())
                if len(self._failures) == FREE_TRIES:
                    print(f"warning: {FREE_TRIES} failed logins: each further attempt waits "
                          "longer (someone may be guessing the password)", file=sys.stderr)
            return bool(ok)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="voicelab studio (Gradio)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0 to reach it from other machines)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="make a public gradio.live link")
    p.add_argument("--auth", metavar="USER:PASS", help="require this login")
    p.add_argument("-v", "--verbose", action="store_true", help="log every UI event (debugging)")
    args = p.parse_args(argv)
    if args.auth is not None and (":" not in args.auth or not all(args.auth.split(":", 1))):
        p.error("--auth must look like USER:PASS (both non-empty)")
    if not 0 < args.port < 65536:
        p.error("--port must be between 1 and 65535")
    return args


def launch(args: argparse.Namespace, block: bool = True):
    """Build and launch; returns the Blocks (after serving ends when `block`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's start-up self-checks
    from voicelab.ui import app as ui_app

    ws = home()
    ws.mkdir(parents=True, exist_ok=True)
    session = open_session_folder(ws)  # before the Blocks exist: they read GRADIO_TEMP_DIR
    demo = ui_app.build_app()
    demo.voicelab_session = session  # for callers with block=False: close_session_folder(...)
    auth = LoginBrake(*args.auth.split(":", 1)).check if args.auth else None
    if args.share and not auth:
        print("\n" + "!" * 78 + f"\n{WARN_NO_AUTH}\n" + "!" * 78 + "\n", file=sys.stderr)
        ui_app.NOTICES.append(WARN_NO_AUTH)
    demo.queue(default_concurrency_limit=4)
    # Gradio prints its share-link failure unconditionally (frpc download steps for a developer);
    # the studio says it in one line below instead
    gradio_says = io.StringIO()
    with contextlib.redirect_stdout(gradio_says):
        _launch(demo, args, auth, ws)
    if args.share and not demo.share_url:
        msg = (
            "could not create a share link (no internet connection, or the tunnel is blocked): "
            f"the studio is only available locally at {demo.local_url}"
        )
        print(f"\n*** {msg} ***\n", file=sys.stderr)
        ui_app.NOTICES.append(msg)
    print(f"voicelab studio on {demo.share_url or demo.local_url}  (workspace: {ws})", flush=True)
    if block:
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            # training processes live in their own sessions and keep going; a restarted app
            # re-attaches to them
            print("\nstudio closed; any training keeps running in the background", file=sys.stderr)
        finally:
            demo.close()
            close_session_folder(session)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.verbose:  # our events only; the HTTP libraries' debug output drowns them
        for noisy in ("httpx", "httpcore", "asyncio", "urllib3", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        launch(args)
    except VoicelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _launch(demo: Any, args: argparse.Namespace, auth: Any, ws: Path) -> None:
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        allowed_paths=[str(ws)],  # players may serve workspace files, nothing else
        prevent_thread_lock=True,
        show_error=True,
        footer_links=[],
        # Gradio's own prints ("set share=True in launch()", ...) are advice for developers
        quiet=True,
    )
