"""Model-check the lease protocol exhaustively: every sequence of actions up to a depth, 2 workers, one key.

    python -m benchmarks.lease_model                 # depth 9, every injected fault
    python -m benchmarks.lease_model --depth 6 --faults none --workers 3

Prints how many interleavings (action sequences of exactly that length) were covered, how many distinct states
were expanded, how many library steps ran, and the violations found (there must be none; the exit code is 1 if
there are). Each violation is printed with the steps that led to it: replay them with
``benchmarks.lease_model.explore.replay`` and keep them as a regular test.
"""

from __future__ import annotations

import argparse
import json
import sys

from .explore import explore
from .world import ADVANCES, FAULTS, LEASE, PHASE_ACTIONS, WINDOW


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lease_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=9, help="length of every action sequence explored (default 9)")
    parser.add_argument("--workers", type=int, default=2, help="workers sharing the key (default 2)")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"store faults injected on any store call, comma-separated from {', '.join(FAULTS)}, or 'none'",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    faults = () if args.faults in ("", "none") else tuple(f.strip() for f in args.faults.split(","))
    if not set(faults) <= set(FAULTS) or args.depth < 1 or args.workers < 1:
        parser.error(f"need depth >= 1, workers >= 1 and faults from {', '.join(FAULTS)} (or 'none')")
    result = explore(args.depth, workers=args.workers, faults=faults, max_violations=10**9)
    if args.json:
        data = {
            "workers": result.workers,
            "depth": result.depth,
            "faults": list(result.faults),
            "interleavings": result.sequences,
            "states": result.states,
            "steps_run": result.transitions,
            "seconds": round(result.seconds, 2),
            "violations": result.violations,
            "outcomes": dict(result.outcomes),
        }
        print(json.dumps(data, indent=2))
    else:
        actions = "; ".join(f"{phase}: {', '.join(kinds)}" for phase, kinds in PHASE_ACTIONS.items())
        print("Lease protocol of helpers.idempotency, model-checked on the memory store (one key, manual clock)")
        print(f"  per worker ({actions}); clock moves {', '.join(f'{s:g}' for s in ADVANCES)} s")
        print(f"  lease {LEASE:g} s, expiry window {WINDOW:g} s")
        print(result.summary())
        answers = ", ".join(f"{label} {n:,}" for label, n in sorted(result.outcomes.items()))
        print(f"  answers seen: {answers}")
        for violation in result.violations[:5]:
            print("\nVIOLATION:", violation)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
