from rnnkit.cli import main

raise SystemExit(main())
