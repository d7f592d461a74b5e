"""The state machine as a Mermaid flowchart (drawn by :func:`~.viz.flowchart`), with a run's path coloured.

A Parallel or Map state is a box around its inner states; a Choice rule labels its arrow; Catch arrows are dashed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from helpers.instruments import viz
from helpers.services.stepfunctions.definition import children, iter_states
from helpers.services.stepfunctions.history import edges_taken, states_entered

#: The node shape of each state type (every other type is a box).
SHAPES = {"Choice": "decision", "Succeed": "terminal", "Fail": "terminal", "Wait": "slanted"}
_OPERATORS = {"GreaterThanEquals": ">=", "GreaterThan": ">", "LessThan": "<", "LessThanEquals": "<=", "Equals": "="}


def _field(rule: Mapping[str, Any]) -> str:
    return str(rule.get("Variable", "")).rsplit(".", 1)[-1]


def rule_label(rule: Mapping[str, Any]) -> str:
    """A Choice rule in a few words: ``SUCCEEDED``, ``fail = true``, ``amount > 0``, ``count >= maxPolls``."""
    if "And" in rule:
        return " and ".join(rule_label(r) for r in rule["And"] if "StringEquals" in r) or "and"
    if "StringEquals" in rule:
        return str(rule["StringEquals"])
    if "BooleanEquals" in rule:
        return f"{_field(rule)} = {str(rule['BooleanEquals']).lower()}"
    if "IsPresent" in rule:
        return f"{_field(rule)} {'present' if rule['IsPresent'] else 'missing'}"
    for key, value in rule.items():
        if key.startswith("Numeric"):
            name = key.removeprefix("Numeric").removesuffix("Path")
            return f"{_field(rule)} {_OPERATORS.get(name, name)} {str(value).rsplit('.', 1)[-1]}"
    return "rule"


def flowchart(definition: Mapping[str, Any], events: Iterable[Mapping[str, Any]] | None = None) -> viz.Mermaid:
    """Mermaid flowchart of the state machine; with a history, the states entered and the moves made are coloured
    (green; a Fail state entered is red)."""
    ids = {name: f"s{i}" for i, (name, _, _) in enumerate(iter_states(definition))}

    def items(states: Mapping[str, Any]) -> list[viz.FlowNode | viz.FlowGroup]:
        out: list[viz.FlowNode | viz.FlowGroup] = []
        for name, state in states.items():
            inner = children(state)
            if inner:
                nested = [item for machine in inner for item in items(machine["States"])]
                out.append(viz.FlowGroup(ids[name], f"{name} ({state['Type']})", tuple(nested)))
            else:
                out.append(viz.FlowNode(ids[name], name, SHAPES.get(state["Type"], "box")))
        return out

    edges: list[tuple[str, str, str, bool]] = []  # from, to, label, dashed: a box's inner edges come first

    def collect(states: Mapping[str, Any]) -> None:
        for name, state in states.items():
            for machine in children(state):
                collect(machine["States"])
            if "Next" in state:
                edges.append((name, state["Next"], "", False))
            for rule in state.get("Choices", []):
                edges.append((name, rule["Next"], rule_label(rule), False))
            if "Default" in state:
                edges.append((name, state["Default"], "otherwise", False))
            for catch in state.get("Catch", []):
                label = catch["ErrorEquals"][0].split(".", 1)[-1].removesuffix("Exception")
                edges.append((name, catch["Next"], f"catch {label}", True))

    collect(definition["States"])
    unique = list(dict.fromkeys(edges))
    flow_edges = [viz.FlowEdge(ids[a], ids[b], label, dashed) for a, b, label, dashed in unique]
    if events is None:
        return viz.flowchart(items(definition["States"]), flow_edges)
    events = list(events)
    # Listed in definition order, not entry order: a Parallel state's branches finish in any order, and the
    # drawing must not change with it.
    entered = [name for name in ids if name in set(states_entered(events))]
    taken = set(edges_taken(events))
    failed = {n for n, s, _ in iter_states(definition) if s["Type"] == "Fail"}
    members = {
        "visited": [ids[n] for n in entered if n in ids and n not in failed],
        "failed": [ids[n] for n in entered if n in failed],
    }
    return viz.flowchart(
        items(definition["States"]),
        flow_edges,
        classes={"visited": viz.HIGHLIGHT_STYLE, "failed": viz.FAILED_STYLE},
        members=members,
        highlight_edges=[i for i, (a, b, _, _) in enumerate(unique) if (a, b) in taken],
    )
