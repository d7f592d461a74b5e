"""How long each lab's check takes to answer, on the backend the environment selects (embedded moto by default).

    python -m benchmarks.lab_checks            # every lab: starter, solution, and each kept wrong solution
    python -m benchmarks.lab_checks --quick    # starter and solution only

The budget (issue 22): a lab's check answers within 30 s on the embedded backend, wrong solutions included, since a
learner meets the slow paths (a timeout waited for, a barrier held) only with wrong code. Each check is run the way
its notebook runs it (tests/labs/harness.py: the lab's cells, the learner's cell swapped for a kept solution), one
after the other, in one process whose emulator has already served one Step Functions call, so the numbers are the
check's own, not moto's start-up (a fresh kernel adds a few seconds to its first Step Functions call). Reported,
never asserted: a noisy 2-core machine must not turn a suite red.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BUDGET_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="starter and solution only")
    parser.add_argument("labs", nargs="*", help="topics (routing, callback, consumer, endpoint, pipeline_keys)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from helpers.aws import backend as backend_mod
    from tests.labs.harness import LABS, run_lab, solutions

    live = backend_mod.current()
    live.client("stepfunctions").list_state_machines()  # moto loads its Step Functions parser once, here
    rows: list[tuple[str, str, float, float, bool]] = []
    for topic in args.labs or list(LABS):
        runs: list[tuple[str, Path | None, str]] = [("starter", None, "starter"), ("solution", None, "solution")]
        if not args.quick:
            runs += [(f"wrong/{p.stem}", p, "solution") for p in solutions("wrong", topic)]
            runs += [(f"correct/{p.stem}", p, "solution") for p in solutions("correct", topic)]
        for label, path, variant in runs:
            started = time.monotonic()
            report = run_lab(topic, path, variant=variant, prefix=f"bench-{topic[:4]}")
            rows.append((topic, label, report.seconds or 0.0, time.monotonic() - started, report.passed))
    width = max(len(f"{t} {label}") for t, label, *_ in rows)
    print(f"\n{'lab check':<{width}}  {'check s':>8}  {'cells s':>8}  verdict  budget {BUDGET_S:g} s")
    for topic, label, check, cells, passed in rows:
        flag = "OVER" if check > BUDGET_S else ""
        verdict = "pass" if passed else "fail"
        print(f"{topic + ' ' + label:<{width}}  {check:>8.1f}  {cells:>8.1f}  {verdict:>7}  {flag}")
    worst = max(rows, key=lambda r: r[2])
    within = "within" if worst[2] <= BUDGET_S else "OVER"
    print(f"slowest check: {worst[0]} {worst[1]}, {worst[2]:.1f} s ({within} the budget)")
    backend_mod.reset_current()
    return 0


if __name__ == "__main__":
    sys.exit(main())
