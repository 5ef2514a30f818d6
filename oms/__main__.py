"""`python -m oms` is the `oms` command."""

from oms.apps.cli import main

raise SystemExit(main())
