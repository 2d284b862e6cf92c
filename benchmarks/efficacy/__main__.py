"""``python -m benchmarks.efficacy``: the efficacy suite (see :mod:`benchmarks.efficacy.run`)."""

from benchmarks.efficacy.run import main

raise SystemExit(main())
