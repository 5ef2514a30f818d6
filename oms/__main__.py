"""`python -m oms` is the `oms` command."""

from oms.cli import main

raise SystemExit(main())
