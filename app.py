"""Start the voicelab studio: `python app.py [--host H] [--port P] [--share] [--auth USER:PASS]`."""

from __future__ import annotations

if __name__ == "__main__":
    from voicelab.ui.launch import main

    raise SystemExit(main())
