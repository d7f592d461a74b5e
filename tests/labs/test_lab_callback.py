"""Lab 02's check (helpers/labs/callback.py): every wrong workflow fails on what it breaks; right ones pass.

A callback check waits for workers and timeouts (15-25 s of mostly sleeping), so the runs of this file share their
wait: they run four at a time, each under a prefix of its own, and each test reads its run's report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.labs.report import Report
from tests.labs.harness import assert_fails_as_described, run_lab, solutions, stored_error

TOPIC = "callback"
WRONG, CORRECT = solutions("wrong", TOPIC), solutions("correct", TOPIC)


@pytest.fixture(scope="module")
def reports(backend) -> dict[str, Report]:  # type: ignore[no-untyped-def]
    runs: dict[str, tuple[Path | None, str]] = {"starter": (None, "starter"), "solution": (None, "solution")}
    runs |= {str(p): (p, "solution") for p in [*WRONG, *CORRECT]}

    def one(item: tuple[int, tuple[str, tuple[Path | None, str]]]) -> tuple[str, Report]:
        n, (name, (path, variant)) = item
        return name, run_lab(TOPIC, path, variant=variant, prefix=f"t02-{n}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, enumerate(runs.items())))


def test_the_starter_fails_for_the_stated_reason_and_the_solution_passes(reports) -> None:  # type: ignore[no-untyped-def]
    starter = reports["starter"]
    assert starter.keys_missed()[0] == "dead_given_up"
    message = f"{len(starter.missed)} of {starter.total} expectations missed. Fix first: {starter.first_miss.what}."
    assert stored_error(TOPIC).startswith(message)
    assert reports["solution"].passed, reports["solution"].table()


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.stem)
def test_a_wrong_workflow_fails_on_what_it_breaks(reports, path: Path) -> None:  # type: ignore[no-untyped-def]
    assert_fails_as_described(reports[str(path)], path)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_a_differently_written_right_workflow_passes(reports, path: Path) -> None:  # type: ignore[no-untyped-def]
    report = reports[str(path)]
    assert report.passed, report.table()
