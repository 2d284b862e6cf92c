"""``python -m spard.cli``: the ``spard`` command."""

from spard.cli import main

raise SystemExit(main())
