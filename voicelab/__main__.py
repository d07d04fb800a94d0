from voicelab.cli import main

# guarded: worker processes started with `spawn` import this module again as __mp_main__
if __name__ == "__main__":
    raise SystemExit(main())
