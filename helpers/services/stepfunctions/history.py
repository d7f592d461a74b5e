"""Reading an execution's history: the states entered, the moves between them, and a table of its events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def states_entered(events: Iterable[Mapping[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


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
            if e["type"] == "ParallelStateEntered":
                open_parallels.append(name)
                previous = None
            else:
                previous = name if not e["type"].startswith("Fail") else None
        elif "stateExitedEventDetails" in e:
            name = e["stateExitedEventDetails"]["name"]
            if e["type"] == "ParallelStateExited":
                if open_parallels:
                    open_parallels.pop()
                previous = name
            else:
                previous = name
        elif e["type"] in ("ParallelStateFailed",) and open_parallels:
            previous = open_parallels[-1]
    return moves


def history_frame(events: Iterable[Mapping[str, Any]]) -> Any:
    """The history as a table: event type, state, and the error where there is one (no ids, no timestamps)."""
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
