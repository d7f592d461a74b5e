"""Starting executions and waiting for them: one wait loop for the whole course, :func:`poll_until_done`.

An emulator finishes an execution in the background, so every caller polls. Each wait is bounded and says what it
waited for when it gives up (:class:`WorkflowTimeout`), so a stuck workflow is a clear message, not a hung cell.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.backend import Backend
from helpers.services.stepfunctions.history import count_events, read, states_entered

#: How often a wait asks again (DescribeExecution, GetExecutionHistory): short, because emulators answer in ms.
POLL_SECONDS = 0.05


class WorkflowTimeout(RuntimeError):
    """An execution did not finish (or reach a state, or record an event) in time."""


def poll_until_done(
    sfn: Any,
    execution_arn: str,
    *,
    poll_seconds: float = 1.0,
    timeout: float = 30.0,
    on_poll: Callable[[int, str], None] | None = None,
) -> tuple[dict[str, Any], int]:
    """DescribeExecution until the execution is no longer RUNNING: the loop a ``.sync`` integration stands for.

    Returns the last description and how many DescribeExecution calls it took.
    """
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        polls += 1
        if on_poll is not None:
            on_poll(polls, described["status"])
        if described["status"] != "RUNNING":
            return described, polls
        if time.monotonic() > deadline:
            raise WorkflowTimeout(f"execution still RUNNING after {timeout:g} s ({polls} polls)")
        time.sleep(poll_seconds)


def execution_name(label: str) -> str:
    """A fresh execution name from a readable label (the label's letters, digits and dashes, then 8 hex digits)."""
    return f"{re.sub(r'[^A-Za-z0-9-]', '-', label)[:60]}-{secrets.token_hex(4)}"


@dataclass
class Execution:
    """One execution: ``arn`` is for API calls, never for printing; the rest is filled by :meth:`Runner.wait`."""

    label: str
    arn: str
    status: str = "RUNNING"
    output: Any = None
    error: str = ""
    cause: str = ""
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def path(self) -> list[str]:
        return states_entered(self.events)


class Runner:
    """Start executions, wait for them (or for a state, an event), read their histories."""

    def __init__(self, backend: Backend, *, timeout: float = 30.0) -> None:
        self.sfn = backend.client("stepfunctions")
        self.timeout = timeout

    def start(self, machine_arn: str, payload: Mapping[str, Any], *, label: str, name: str | None = None) -> Execution:
        """StartExecution; ``name`` defaults to a fresh one made from the label (pass one to use it as a token)."""
        data = json.dumps(dict(payload), default=str)
        arn = self.sfn.start_execution(stateMachineArn=machine_arn, name=name or execution_name(label), input=data)
        return Execution(label, arn["executionArn"])

    def wait(self, execution: Execution, *, timeout: float | None = None) -> Execution:
        """Block until the execution ends; fills status, output (parsed), error, cause and the history."""
        described, _ = poll_until_done(
            self.sfn, execution.arn, poll_seconds=POLL_SECONDS, timeout=timeout or self.timeout
        )
        execution.status = described["status"]
        execution.output = json.loads(described["output"]) if described.get("output") else None
        execution.error, execution.cause = described.get("error", ""), described.get("cause", "")
        execution.events = self.history(execution.arn)
        if not execution.error and execution.status == "FAILED":  # some emulators leave these to the history
            failed = [e for e in execution.events if e["type"] == "ExecutionFailed"]
            if failed:
                details = failed[-1].get("executionFailedEventDetails", {})
                execution.error, execution.cause = details.get("error", ""), details.get("cause", "")
        return execution

    def run(self, machine_arn: str, payload: Mapping[str, Any], *, label: str) -> Execution:
        return self.wait(self.start(machine_arn, payload, label=label))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return read(self.sfn, execution_arn)

    def wait_until(
        self, execution: Execution, reached: Callable[[list[dict[str, Any]]], bool], what: str, *, timeout: float
    ) -> None:
        """Block until ``reached(history)`` holds; WorkflowTimeout naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while not reached(self.history(execution.arn)):
            if time.monotonic() > deadline:
                raise WorkflowTimeout(f"execution {execution.label!r} {what} after {timeout:g} s")
            time.sleep(POLL_SECONDS)

    def wait_for_event(self, execution: Execution, kind: str, *, timeout: float = 10.0) -> None:
        """Block until the history holds an event of this type (e.g. ``TaskSubmitted``: the token is out)."""
        has = f"has no {kind} event"
        self.wait_until(execution, lambda events: count_events(events, kind) > 0, has, timeout=timeout)

    def wait_for_state(self, execution: Execution, state: str, *, timeout: float = 10.0) -> None:
        """Block until the execution has entered ``state`` (e.g. to start a duplicate while it is held there)."""
        self.wait_until(
            execution, lambda events: state in states_entered(events), f"did not enter {state!r}", timeout=timeout
        )
