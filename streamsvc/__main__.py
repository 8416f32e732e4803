from streamsvc.cli import main

raise SystemExit(main())
