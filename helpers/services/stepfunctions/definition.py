"""The ASL definitions kept in this folder: loading them with their placeholders filled, and reading them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ASL_DIR = Path(__file__).parent / "asl"
IDEMPOTENT_WORKFLOW = "idempotent_workflow"
STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


# -- loading ----------------------------------------------------------------------------------------------------
def load(name: str = IDEMPOTENT_WORKFLOW, **placeholders: str) -> dict[str, Any]:
    """The ASL definition ``<name>.asl.json`` with every ``${Name}`` replaced by ``placeholders[Name]``."""
    path = ASL_DIR / f"{name}.asl.json"
    text = path.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(placeholders))
    if missing:
        raise KeyError(f"{path.name} needs values for: {', '.join(missing)}")
    filled = _PLACEHOLDER.sub(lambda m: placeholders[m.group(1)], text)
    return json.loads(filled)


def iter_states(definition: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any], str | None]]:
    """(name, state, parallel parent or None) for every state, branches included, in definition order."""
    for name, state in definition["States"].items():
        yield name, state, None
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                for inner, inner_state, _ in iter_states(branch):
                    yield inner, inner_state, name


def status_names(definition: Mapping[str, Any]) -> dict[str, set[str]]:
    """The ``executionstatus`` values the state machine writes and the ones it tests (conditions and Choices)."""
    written: set[str] = set()
    tested: set[str] = set()
    for _, state, _ in iter_states(definition):
        params = state.get("Parameters") or {}
        for update in [params, *[i.get("Update", {}) for i in params.get("TransactItems", [])]]:
            names = update.get("ExpressionAttributeNames") or {}
            values = update.get("ExpressionAttributeValues") or {}
            status_refs = [k for k, v in names.items() if v == "executionstatus"]
            for ref in status_refs:
                for expr, bucket in (
                    (update.get("UpdateExpression", ""), written),
                    (update.get("ConditionExpression", ""), tested),
                ):
                    for placeholder in re.findall(rf"{re.escape(ref)}\s*=\s*(:\w+)", expr):
                        bucket.add(values[placeholder]["S"])
        for rule in _choice_rules(state):
            if str(rule.get("Variable", "")).endswith("executionstatus.S") and "StringEquals" in rule:
                tested.add(rule["StringEquals"])
    return {"written": written, "tested": tested}


def _choice_rules(state: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    stack = list(state.get("Choices", []))
    while stack:
        rule = stack.pop()
        yield rule
        for combinator in ("And", "Or"):
            stack.extend(rule.get(combinator, []))
        if "Not" in rule:
            stack.append(rule["Not"])


def error_matchers(definition: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every Retry / Catch error name next to the integration that raises it, to check the name prefixes."""
    rows = []
    for name, state, _ in iter_states(definition):
        resource = state.get("Resource", "")
        kind = (
            "aws-sdk" if ":::aws-sdk:" in resource else "optimised" if resource.startswith("arn:aws:states:::") else ""
        )
        for how in ("Retry", "Catch"):
            for matcher in state.get(how, []):
                for error in matcher["ErrorEquals"]:
                    rows.append({"state": name, "integration": kind or state["Type"], "on": how, "error": error})
    return rows
