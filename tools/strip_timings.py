"""Remove per-cell execution timestamps from stored notebooks, so a re-run's diff shows only real changes.

nbconvert records when each cell started and finished (``metadata.execution``); `make notebook` turns that off
(``--ExecutePreprocessor.record_timing=False``), which keeps old timestamps in place, so this removes them.
Usage: ``python tools/strip_timings.py NOTEBOOK...``; a notebook without them is left untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

TIMING_KEY = "execution"


def strip(path: Path) -> bool:
    """Remove the timestamps from one notebook; True when it changed."""
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    changed = False
    for cell in notebook.cells:
        if TIMING_KEY in cell.get("metadata", {}):
            del cell.metadata[TIMING_KEY]
            changed = True
    if changed:
        nbformat.write(notebook, path)
    return changed


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python tools/strip_timings.py NOTEBOOK...", file=sys.stderr)
        return 2
    for name in argv:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such notebook", file=sys.stderr)
            return 1
        if strip(path):
            print(f"{name}: execution timestamps removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
