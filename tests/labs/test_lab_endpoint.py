"""Lab 04's check (helpers/labs/endpoint.py): every wrong endpoint fails on what it breaks; right ones pass."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.labs import processes
from helpers.labs.endpoint import EndpointScenario, _Exchange
from tests.labs.harness import assert_fails_as_described, run_lab, solutions, stored_error

TOPIC = "endpoint"


def test_the_starter_fails_for_the_stated_reason_and_the_solution_passes(backend) -> None:  # type: ignore[no-untyped-def]
    starter = run_lab(TOPIC, variant="starter")
    assert starter.keys_missed()[0] == "replay"
    message = f"{len(starter.missed)} of {starter.total} expectations missed. Fix first: {starter.first_miss.what}."
    assert stored_error(TOPIC).startswith(message)
    assert run_lab(TOPIC).passed


@pytest.mark.parametrize("path", solutions("wrong", TOPIC), ids=lambda p: p.stem)
def test_a_wrong_endpoint_fails_on_what_it_breaks(backend, path: Path) -> None:  # type: ignore[no-untyped-def]
    assert_fails_as_described(run_lab(TOPIC, path), path)


@pytest.mark.parametrize("path", solutions("correct", TOPIC), ids=lambda p: p.stem)
def test_a_differently_written_right_endpoint_passes(backend, path: Path) -> None:  # type: ignore[no-untyped-def]
    report = run_lab(TOPIC, path)
    assert report.passed, report.table()


def test_a_charge_told_just_before_the_answer_is_counted() -> None:
    """An instance tells "charged" and then answers: when the answer is already in, the check must still take the
    message waiting in the pipe, or a loaded machine counts one charge too few (it once printed 5 of 6 in CI)."""

    def main(channel: processes.Channel) -> None:
        channel.tell("charged", {"order": "o-1", "instance": "A"})
        channel.next_job()

    child = processes.start("told", main)
    try:
        assert child.conn.poll(5.0)  # the message is in the pipe before pump looks
        with ThreadPoolExecutor(1) as pool:
            x = _Exchange(EndpointScenario(), [child], [0], pool)
            assert x.pump(lambda: True, 1.0)
        assert x.charged["o-1"] == 1
    finally:
        child.kill()
