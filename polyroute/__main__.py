from polyroute.cli import main

raise SystemExit(main())
