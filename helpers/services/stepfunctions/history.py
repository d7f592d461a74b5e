"""Reading an execution's history: the events, the states entered, the moves between them, a table, the calls made.

One reader for every notebook: ``GetExecutionHistory`` is paginated (boto3's paginator follows ``nextToken``), and
the views below never show ids or timestamps, so their output can be stored in a notebook and compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from helpers.instruments.trace import Trace


def read(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of the execution, oldest first, across pages."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def states_entered(events: Iterable[Mapping[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def count_events(events: Iterable[Mapping[str, Any]], kind: str) -> int:
    return sum(1 for e in events if e["type"] == kind)


def edges_taken(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(from, to) for each move between states, in order (moves into a Parallel's branch start from the Parallel)."""
    moves: list[tuple[str, str]] = []
    previous: str | None = None
    open_parallels: list[str] = []
    for e in events:
        if "stateEnteredEventDetails" in e:
            name = e["stateEnteredEventDetails"]["name"]
            if previous is not None:
                moves.append((previous, name))
            elif open_parallels:
                moves.append((open_parallels[-1], name))
            if e["type"] in ("ParallelStateEntered", "MapStateEntered"):
                open_parallels.append(name)
                previous = None
            else:
                previous = name if not e["type"].startswith("Fail") else None
        elif "stateExitedEventDetails" in e:
            name = e["stateExitedEventDetails"]["name"]
            if e["type"] in ("ParallelStateExited", "MapStateExited") and open_parallels:
                open_parallels.pop()
            previous = name
        elif e["type"] in ("ParallelStateFailed", "MapStateFailed") and open_parallels:
            previous = open_parallels[-1]
    return moves


def history_frame(events: Iterable[Mapping[str, Any]]) -> Any:
    """The history as a table: event type, state, the resource a task called, and the error where there is one."""
    import pandas as pd

    rows = []
    for e in events:
        details: Mapping[str, Any] = next((v for k, v in e.items() if k.endswith("EventDetails")), {}) or {}
        rows.append(
            {
                "event": e["type"],
                "state": details.get("name", ""),
                "resource": details.get("resource", "") if e["type"].startswith("Task") else "",
                "error": details.get("error", ""),
            }
        )
    frame = pd.DataFrame(rows, columns=["event", "state", "resource", "error"])
    frame.index = range(1, len(frame) + 1)
    return frame


_SERVICES = {"dynamodb": "DynamoDB", "sqs": "SQS", "events": "EventBridge", "states": "Step Functions"}


def history_trace(events: Iterable[Mapping[str, Any]], actor: str = "workflow", *, key: str = "") -> Trace:
    """The service calls an execution made, from its history: each request and its success, failure or time-out.

    A result is matched to its request through ``previousEventId`` (Parallel branches interleave their events).
    """
    trace = Trace(actor)
    events = list(events)
    previous = {e["id"]: e.get("previousEventId") for e in events}
    scheduled: dict[int, str] = {}
    for e in events:
        kind = e["type"]
        if kind == "TaskScheduled":
            d = e["taskScheduledEventDetails"]
            scheduled[e["id"]] = _SERVICES.get(d["resourceType"], d["resourceType"])
            trace.record(actor, scheduled[e["id"]], d["resource"], key=key)
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            origin = e.get("previousEventId")
            while origin is not None and origin not in scheduled:
                origin = previous.get(origin)
            service = scheduled.get(origin, "service") if origin is not None else "service"
            if kind == "TaskSucceeded":
                trace.reply(service, actor, "ok", key=key)
            elif kind == "TaskFailed":
                trace.error(service, actor, e["taskFailedEventDetails"].get("error", "failed"), key=key)
            else:
                trace.lost(service, actor, e["taskTimedOutEventDetails"].get("error", "States.Timeout"), key=key)
    return trace
