"""``python -m steadypost``: the same as the ``steadypost`` command."""

from steadypost.cli.main import main

raise SystemExit(main())
