"""Print the timing report that ends ``make test``: per notebook and lab, one column per backend, with budgets; then
the course site's build time (``build/site-build.json``, written by ``tools/site/build_site.py``) against its budget.

A report, not a test: the numbers of a noisy 2-core machine must not turn the suite red, so budgets are printed
beside each number (``*`` marks one over its budget) and the totals are set against the course's budgets.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

WALL = "__wall__"
NOTEBOOK_BUDGET_S = 30
LONG_NOTEBOOKS = {"05", "10", "11", "12"}  # the workflow-heavy ones (issue #17)
LONG_BUDGET_S = 45
COURSE_BUDGET_S = 180  # every notebook and lab under nbval on the embedded backend, wall clock
MAKE_TEST_BUDGET_S = 12 * 60  # a fresh-clone `make test` on 2 cores, both backends, browser, site and classroom


def budget(path: str) -> int:
    match = re.search(r"notebooks/(\d{2})_", path)
    return LONG_BUDGET_S if match and match.group(1) in LONG_NOTEBOOKS else NOTEBOOK_BUDGET_S


def site_line(build_dir: str) -> str | None:
    """The course site's build time (written by tools/site/build_site.py, the site test runs it) against its budget."""
    path = Path(build_dir) / "site-build.json"
    if not path.exists():
        return None
    site = json.loads(path.read_text())
    verdict = "within" if site["build_seconds"] <= site["budget_seconds"] else "OVER"
    install = ""
    if site["install_seconds"]:
        install = f" (+{site['install_seconds']:.0f} s installing its pinned scripts once)"
    return (
        f"course site ({site['pages']} pages, {site['cores']} cores): built in {site['build_seconds']:.1f} s{install}, "
        f"{verdict} its {site['budget_seconds']} s budget"
    )


def main(build_dir: str) -> int:
    site = site_line(build_dir)
    files = sorted(Path(build_dir).glob("timings-*.json"))
    if not files:
        print("timing report: no notebook timings recorded")
        if site:
            print(site)
        return 0
    runs = {f.stem.removeprefix("timings-"): json.loads(f.read_text()) for f in files}
    paths = sorted({p for run in runs.values() for p in run if p != WALL})
    backends = sorted(runs)
    width = max(len(p) for p in paths)
    print("\ntiming report (seconds under nbval, per notebook and lab; * over budget, ! failed)")
    print(f"{'notebook or lab':<{width}}  " + "  ".join(f"{b:>10}" for b in backends) + "  budget")
    for path in paths:
        cells = []
        for b in backends:
            entry = runs[b].get(path)
            if entry is None:
                cells.append(f"{'-':>10}")
                continue
            flag = "!" if not entry["passed"] else "*" if entry["seconds"] > budget(path) else " "
            cells.append(f"{entry['seconds']:>9.1f}{flag}")
        print(f"{path:<{width}}  " + "  ".join(cells) + f"  {budget(path):>6}")
    sums = [sum(v["seconds"] for k, v in runs[b].items() if k != WALL) for b in backends]
    walls = [runs[b].get(WALL) for b in backends]
    print(f"{'sum of the above':<{width}}  " + "  ".join(f"{s:>9.1f} " for s in sums))
    print(
        f"{'wall clock (both cores)':<{width}}  "
        + "  ".join(f"{w:>9.1f} " if w is not None else f"{'-':>10}" for w in walls)
        + f"  {COURSE_BUDGET_S:>6} (embedded)"
    )
    embedded = runs.get("embedded", {}).get(WALL)
    if embedded is not None:
        verdict = "within" if embedded <= COURSE_BUDGET_S else "OVER"
        print(f"whole course on the embedded backend: {embedded:.0f} s, {verdict} its {COURSE_BUDGET_S} s budget")
    if site:
        print(site)
    started = Path(build_dir) / "make-test.started"
    if started.exists():
        import time

        elapsed = time.time() - float(started.read_text())
        verdict = "within" if elapsed <= MAKE_TEST_BUDGET_S else "OVER"
        print(f"make test so far: {elapsed / 60:.1f} min, {verdict} its {MAKE_TEST_BUDGET_S // 60} min budget")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build"))
