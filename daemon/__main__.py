"""`python -m daemon` is the `rotaudit` command."""

from daemon.cli import main

raise SystemExit(main())
