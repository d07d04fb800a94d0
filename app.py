"""The voicelab studio: `python app.py [--host H] [--port P] [--share] [--auth USER:PASS]`."""

if __name__ == "__main__":
    from voicelab.ui.launch import main

    raise SystemExit(main())
