"""Print the per-notebook timing report that ends ``make test``: one column per backend, budgets alongside."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BUDGETS_S = {"00": 10, "06": 30, "07": 30, "08": 30, "09": 30, "10": 45, "11": 45}


def budget(path: str) -> int | None:
    match = re.search(r"/(\d{2})_", path)
    return BUDGETS_S.get(match.group(1)) if match else None


def main(build_dir: str) -> int:
    files = sorted(Path(build_dir).glob("timings-*.json"))
    if not files:
        print("timing report: no notebook timings recorded")
        return 0
    runs = {f.stem.removeprefix("timings-"): json.loads(f.read_text()) for f in files}
    paths = sorted({p for run in runs.values() for p in run})
    backends = sorted(runs)
    width = max(len(p) for p in paths)
    print("\nnotebook timing report (seconds under nbval; budget from the issues)")
    print(f"{'notebook':<{width}}  " + "  ".join(f"{b:>10}" for b in backends) + "  budget")
    for path in paths:
        cells = []
        for b in backends:
            entry = runs[b].get(path)
            if entry is None:
                cells.append(f"{'-':>10}")
                continue
            flag = "" if entry["passed"] else "!"
            over = "*" if budget(path) and entry["seconds"] > budget(path) else ""
            cells.append(f"{entry['seconds']:>9.1f}{flag or over or ' '}")
        limit = budget(path)
        print(f"{path:<{width}}  " + "  ".join(cells) + f"  {limit if limit else '-':>6}")
    print("(* over budget, ! failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build"))
