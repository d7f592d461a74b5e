"""Lab 05's check (helpers/labs/pipeline_keys.py): every wrong consumer fails on what it breaks; right ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.labs.harness import assert_fails_as_described, run_lab, solutions, stored_error

TOPIC = "pipeline_keys"


def test_the_starter_fails_for_the_stated_reason_and_the_solution_passes(backend) -> None:  # type: ignore[no-untyped-def]
    starter = run_lab(TOPIC, variant="starter")
    assert not starter.passed
    assert starter.keys_missed()[0] == "stable_key"
    message = f"{len(starter.missed)} of {starter.total} expectations missed. Fix first: {starter.first_miss.what}."
    assert stored_error(TOPIC).startswith(message)
    assert run_lab(TOPIC).passed


@pytest.mark.parametrize("path", solutions("wrong", TOPIC), ids=lambda p: p.stem)
def test_a_wrong_pair_of_functions_fails_on_what_it_breaks(backend, path: Path) -> None:  # type: ignore[no-untyped-def]
    assert_fails_as_described(run_lab(TOPIC, path), path)


@pytest.mark.parametrize("path", solutions("correct", TOPIC), ids=lambda p: p.stem)
def test_a_differently_written_right_pair_of_functions_passes(backend, path: Path) -> None:  # type: ignore[no-untyped-def]
    report = run_lab(TOPIC, path)
    assert report.passed, report.table()
