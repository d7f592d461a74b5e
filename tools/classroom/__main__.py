"""`python -m tools.classroom ...`: see tools/classroom/classroom.py."""

import sys

from tools.classroom.classroom import main

sys.exit(main(sys.argv[1:]))
