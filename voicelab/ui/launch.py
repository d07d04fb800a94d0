"""`python app.py [--host H] [--port P] [--share] [--auth USER:PASS]`: serve the studio.

Sharing makes the studio reachable from the internet through Gradio's tunnel. Without --auth
anyone with the link can use it (and read your recordings), so that gets a loud warning. When the
share link cannot be made (no internet, firewall), the studio says so in the console and in the
page, and keeps serving locally.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from voicelab.errors import VoicelabError
from voicelab.ui.common import MAX_UPLOAD_MB
from voicelab.workspace import home

WARN_NO_AUTH = (
    "WARNING: --share without --auth: anyone who gets the link can use this studio, listen to "
    "your recordings and start training. Add --auth USER:PASS."
)


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
    from voicelab.ui import app as ui_app

    ws = home()
    ws.mkdir(parents=True, exist_ok=True)
    demo = ui_app.build_app()
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    if args.share and not auth:
        print("\n" + "!" * 78 + f"\n{WARN_NO_AUTH}\n" + "!" * 78 + "\n", file=sys.stderr)
        ui_app.NOTICES.append(WARN_NO_AUTH)
    demo.queue(default_concurrency_limit=4)
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
    )
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
