"""``python -m benchmarks.idempotency``: see the package docstring and ``--help``."""

import sys

from .run import main

sys.exit(main())
