"""ASL definitions kept as files in ``asl/``: loaded with their placeholders filled, read, compared and edited.

Every state machine of the course is one of these files (notebooks 05 and 10, the capstone of 12, the lab that
finishes a callback), so one loader checks them all: an unknown name lists the known ones, and a definition is never
returned with a ``${Placeholder}`` left unfilled.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ASL_DIR = Path(__file__).parent / "asl"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


def load(name: str, **placeholders: str) -> dict[str, Any]:
    """The ASL definition ``asl/<name>.asl.json`` with every ``${Name}`` filled; a missing value is an error."""
    path = ASL_DIR / f"{name}.asl.json"
    if not path.exists():
        known = ", ".join(sorted(p.name.removesuffix(".asl.json") for p in ASL_DIR.glob("*.asl.json")))
        raise FileNotFoundError(f"no state machine {name!r} in {ASL_DIR.name}/; known: {known}")
    text = path.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(placeholders))
    if missing:
        raise KeyError(f"{path.name} needs values for: {', '.join(missing)}")
    return json.loads(_PLACEHOLDER.sub(lambda m: json.dumps(placeholders[m.group(1)])[1:-1], text))


def children(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The inner state machines of a Parallel (its branches) or a Map (its item processor); none otherwise."""
    if state["Type"] == "Parallel":
        return list(state["Branches"])
    if state["Type"] == "Map":
        return [state.get("ItemProcessor") or state["Iterator"]]
    return []


def iter_states(definition: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any], str | None]]:
    """(name, state, enclosing Parallel/Map or None) for every state, nested ones included, in definition order."""
    for name, state in definition["States"].items():
        yield name, state, None
        for inner in children(state):
            for child, child_state, parent in iter_states(inner):
                yield child, child_state, parent or name


def features(definition: Mapping[str, Any]) -> dict[str, int]:
    """How many of each state type, Retry and Catch the definition uses."""
    counts: dict[str, int] = {}
    for _, state, _ in iter_states(definition):
        counts[state["Type"]] = counts.get(state["Type"], 0) + 1
        for how in ("Retry", "Catch"):
            if state.get(how):
                counts[how] = counts.get(how, 0) + len(state[how])
    return dict(sorted(counts.items()))


def integrations(definition: Mapping[str, Any]) -> list[str]:
    """The service integrations the Task states call, e.g. ``dynamodb:putItem``, in order of first use."""
    found = [
        s["Resource"].removeprefix("arn:aws:states:::") for _, s, _ in iter_states(definition) if s["Type"] == "Task"
    ]
    return list(dict.fromkeys(found))


def insert_after(definition: Mapping[str, Any], after: str, name: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the definition with ``state`` inserted after the top-level state ``after`` (it takes its Next/End)."""
    new = copy.deepcopy(dict(definition))
    previous = new["States"][after]
    added = dict(state)
    if "Next" in previous:
        added["Next"] = previous["Next"]
    else:
        added["End"] = previous.pop("End", True)
    previous["Next"] = name
    states = {}
    for key, value in new["States"].items():
        states[key] = value
        if key == after:
            states[name] = added
    new["States"] = states
    return new


def definition_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[str]]:
    """States added, removed and changed between two definitions (top level and nested)."""
    a = {n: s for n, s, _ in iter_states(old)}
    b = {n: s for n, s, _ in iter_states(new)}
    return {
        "added": [n for n in b if n not in a],
        "removed": [n for n in a if n not in b],
        "changed": [n for n in b if n in a and a[n] != b[n] and not children(b[n])],
    }
