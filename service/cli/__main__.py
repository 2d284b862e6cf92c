"""``python -m spard.service.cli``: the ``spard`` command."""

from spard.service.cli import main

raise SystemExit(main())
