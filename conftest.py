"""Repository-wide pytest hooks: record how long each notebook and lab takes under nbval, per backend.

The numbers go to ``build/timings-<backend>.json`` (per notebook, plus the wall-clock of the run under ``__wall__``,
which is what a learner or CI waits for when pytest-xdist runs notebooks on both cores); ``tools/timing_report.py``
prints them at the end of ``make test``. They are a report, not a test: a slow machine must not turn the suite red.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

_durations: dict[str, float] = defaultdict(float)
_failed: set[str] = set()
_started = time.monotonic()
WALL = "__wall__"


#: Items tests/rerun.py adds around a notebook: the re-runnability check's cost, not the notebook's own time.
RERUN_ITEMS = ("::run 1 without cleanup", "::left nothing")
pytest_plugins = ["pytester"]  # tests/test_rerun.py runs pytest on a notebook it writes


def pytest_runtest_logreport(report) -> None:  # type: ignore[no-untyped-def]
    path = report.nodeid.split("::", 1)[0]
    if not path.endswith(".ipynb") or report.nodeid.endswith(RERUN_ITEMS):
        return
    _durations[path] += report.duration
    if report.failed:
        _failed.add(path)


def pytest_sessionfinish(session, exitstatus) -> None:  # type: ignore[no-untyped-def]
    # Under pytest-xdist the controller sees every worker's reports: only it writes, so workers cannot race it.
    if not _durations or hasattr(session.config, "workerinput"):
        return
    backend = os.environ.get("WORKBOOK_BACKEND", "embedded") or "embedded"
    out = Path(session.config.rootpath) / "build" / f"timings-{backend}.json"
    out.parent.mkdir(exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    for path, seconds in _durations.items():
        existing[path] = {"seconds": round(seconds, 2), "passed": path not in _failed}
    existing[WALL] = round(existing.get(WALL, 0.0) + time.monotonic() - _started, 2)
    out.write_text(json.dumps(existing, indent=2, sort_keys=True))
