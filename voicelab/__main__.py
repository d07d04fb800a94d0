from voicelab.cli import main

raise SystemExit(main())
