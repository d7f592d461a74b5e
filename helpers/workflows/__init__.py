"""State machines kept as ASL files, and what notebook 10 needs to run and draw them.

``load(name, **placeholders)`` reads ``<name>.asl.json`` from this folder and fills ``${Placeholder}`` values (table
names), refusing to return a definition with one left unfilled.

The idempotent workflow (``idempotent_workflow.asl.json``) follows the aws-samples "idempotent-workflow-sam" pattern
(reference section 5) and runs on the emulator unchanged: its Lambda steps are replaced by what the backend can run.

- The key and TTL are computed before the start, in Python (:func:`workflow_input`): canonical JSON (sorted keys,
  compact separators) hashed with SHA-256, TTL taken from the caller. The seed's first state did this in a Lambda.
- The step that "can fail occasionally" fails when the input says ``test.fail = true``: deterministic.
- The work writes a charge into the ledger table with ``dynamodb:putItem``, so charges are counted.

:class:`IdempotentWorkflow` deploys it (the idempotency table with TTL attribute ``ttl``, the state machine), starts
executions with the right input, waits for them, and reads back the record, the history and the path taken
(``history_frame``, ``flowchart``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jmespath

from helpers import viz
from helpers.ledger import Ledger
from helpers.resources import Resources

ASL_DIR = Path(__file__).parent
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


# -- the idempotency key ----------------------------------------------------------------------------------------
def canonical_json(value: Any) -> str:
    """One text per JSON value: keys sorted, no whitespace, UTF-8 kept, Decimals as numbers."""

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def idempotency_key(payload: Any, *, select: str | None = None) -> str:
    """SHA-256 of the canonical JSON of the payload, or of the part a JMESPath ``select`` picks.

    Any JSON value may be selected (an object, a list, a string, a number); selecting nothing is an error, because
    every request without a key would otherwise share one.
    """
    value = payload if select is None else jmespath.search(select, payload)
    if value is None:
        raise ValueError(f"{select!r} selects nothing from the payload, so there is no idempotency key")
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def seed_key(payload: Any) -> str:
    """The seed's key, for comparison: ``json.dumps`` without ``sort_keys``, so key order changes the key."""
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


# -- reading the definition ---------------------------------------------------------------------------------------
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


# -- reading a history ------------------------------------------------------------------------------------------
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
        details = next((v for k, v in e.items() if k.endswith("EventDetails")), {}) or {}
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


def _short_rule(rule: Mapping[str, Any]) -> str:
    if "And" in rule:
        return " and ".join(_short_rule(r) for r in rule["And"] if "StringEquals" in r) or "and"
    if "StringEquals" in rule:
        return str(rule["StringEquals"])
    if "BooleanEquals" in rule:
        return f"{rule['Variable'].rsplit('.', 1)[-1]} = {str(rule['BooleanEquals']).lower()}"
    if "IsPresent" in rule:
        return f"{rule['Variable'].rsplit('.', 1)[-1]} {'present' if rule['IsPresent'] else 'missing'}"
    for key, value in rule.items():
        if key.startswith("Numeric"):
            op = {"GreaterThanEquals": ">=", "GreaterThan": ">", "LessThan": "<", "LessThanEquals": "<=", "Equals": "="}
            name = key.removeprefix("Numeric").removesuffix("Path")
            return f"{op.get(name, name)} {str(value).rsplit('.', 1)[-1]}"
    return "rule"


def flowchart(definition: Mapping[str, Any], events: Iterable[Mapping[str, Any]] | None = None) -> viz.Mermaid:
    """Mermaid flowchart of the state machine; with a history, the states entered and the moves made are coloured."""
    ids: dict[str, str] = {}
    for i, (name, _, _) in enumerate(iter_states(definition)):
        ids[name] = f"s{i}"
    lines = ["flowchart TD"]

    def node(name: str, state: Mapping[str, Any]) -> str:
        label = name.replace('"', "'")
        shape = {
            "Choice": ('{"', '"}'),
            "Succeed": ('(["', '"])'),
            "Fail": ('(["', '"])'),
            "Wait": ('[/"', '"/]'),
        }.get(state["Type"], ('["', '"]'))
        return f"{ids[name]}{shape[0]}{label}{shape[1]}"

    edges: list[tuple[str, str, str, bool]] = []  # from, to, label, dashed

    def add_edges(name: str, state: Mapping[str, Any]) -> None:
        if "Next" in state:
            edges.append((name, state["Next"], "", False))
        for rule in state.get("Choices", []):
            edges.append((name, rule["Next"], _short_rule(rule), False))
        if "Default" in state:
            edges.append((name, state["Default"], "otherwise", False))
        for catch in state.get("Catch", []):
            label = catch["ErrorEquals"][0].split(".", 1)[-1].removesuffix("Exception")
            edges.append((name, catch["Next"], f"catch {label}", True))

    def emit(states: Mapping[str, Any], indent: str) -> None:
        for name, state in states.items():
            if state["Type"] == "Parallel":
                lines.append(f'{indent}subgraph {ids[name]} ["{name} (Parallel)"]')
                for branch in state["Branches"]:
                    emit(branch["States"], indent + "    ")
                lines.append(f"{indent}end")
            else:
                lines.append(indent + node(name, state))
            add_edges(name, state)
            if state["Type"] == "Parallel":
                for branch in state["Branches"]:
                    for inner, inner_state in branch["States"].items():
                        add_edges(inner, inner_state)

    for name, state in definition["States"].items():
        if state["Type"] == "Parallel":
            emit({name: state}, "    ")
        else:
            lines.append("    " + node(name, state))
            add_edges(name, state)
    # a Parallel's inner edges were added twice (once per emit call above); keep the first of each
    seen: set[tuple[str, str, str, bool]] = set()
    unique = [e for e in edges if not (e in seen or seen.add(e))]
    for a, b, label, dashed in unique:
        arrow = "-.->" if dashed else "-->"
        text = f'|"{label}"|' if label else ""
        lines.append(f"    {ids[a]} {arrow}{text} {ids[b]}")
    if events is not None:
        events = list(events)
        entered = states_entered(events)
        taken = set(edges_taken(events))
        failed = {n for n, s, _ in iter_states(definition) if s["Type"] == "Fail"}
        visited = [ids[n] for n in dict.fromkeys(entered) if n in ids and n not in failed]
        failed_visited = [ids[n] for n in dict.fromkeys(entered) if n in failed]
        lines.append("    classDef visited fill:#d7f0d7,stroke:#2e7d32,stroke-width:2px")
        lines.append("    classDef failed fill:#f8d7da,stroke:#c62828,stroke-width:2px")
        if visited:
            lines.append(f"    class {','.join(visited)} visited")
        if failed_visited:
            lines.append(f"    class {','.join(failed_visited)} failed")
        indexes = [str(i) for i, (a, b, _, _) in enumerate(unique) if (a, b) in taken]
        if indexes:
            lines.append(f"    linkStyle {','.join(indexes)} stroke:#2e7d32,stroke-width:3px")
    return viz.Mermaid("\n".join(lines))


# -- running it ---------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One execution: what was asked, and (after ``wait``) how it ended. ``arn`` is for API calls, not for printing."""

    label: str
    arn: str
    key: str
    order_id: str
    input: dict[str, Any] = field(default_factory=dict, repr=False)
    status: str = "RUNNING"
    output: Any = None
    error: str = ""
    cause: str = ""
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.label,
            "order": self.order_id,
            "status": self.status,
            "replayed": (self.output or {}).get("replayed", "") if isinstance(self.output, dict) else "",
            "error": self.error,
        }


class WorkflowTimeout(RuntimeError):
    """An execution did not finish (or reach a state) in time."""


class IdempotentWorkflow:
    """The idempotent workflow deployed under a notebook's prefix, with a ledger table for its charges."""

    def __init__(
        self,
        resources: Resources,
        ledger: Ledger,
        *,
        name: str = "idempotent-workflow",
        table: str = "idempotency",
        ttl_seconds: int = 86_400,
        poll_seconds: int = 1,
        max_polls: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resources, self.ledger = resources, ledger
        self.name, self.table_base = name, table
        self.ttl_seconds, self.poll_seconds, self.max_polls = ttl_seconds, poll_seconds, max_polls
        self.clock = clock
        self.sfn = resources.backend.client("stepfunctions")
        self.ddb = resources.backend.client("dynamodb")
        self.table = ""
        self.arn = ""
        self.definition: dict[str, Any] = {}
        self.labels: dict[str, str] = {}  # execution ARN -> the label it was started with

    def deploy(self) -> str:
        """Create (or bring back to shape) the idempotency table and the state machine; returns the machine's ARN."""
        self.table = self.resources.ensure_table(self.table_base, partition_key="id", ttl_attribute="ttl")
        self.definition = load(IDEMPOTENT_WORKFLOW, IdempotencyTable=self.table, LedgerTable=self.ledger.table)
        self.arn = self.resources.ensure_state_machine(self.name, self.definition)
        return self.arn

    def input_for(
        self,
        payload: Mapping[str, Any],
        *,
        hold_seconds: int = 0,
        fail: bool = False,
        ttl_seconds: int | None = None,
        now: float | None = None,
        poll_seconds: int | None = None,
        max_polls: int | None = None,
        select: str | None = None,
    ) -> dict[str, Any]:
        """The execution input: payload, key + TTL (the seed's first Lambda), test switches, wait bounds, charge id."""
        now_s = int(self.clock() if now is None else now)
        key = idempotency_key(payload, select=select)
        charge = self.ledger.put_item_request(payload.get("order_id", "?"), payload.get("amount", 0), by="workflow")
        item = charge["Put"]["Item"]
        return {
            "payload": dict(payload),
            "idempotencyConfig": {
                "idempotencyKey": key,
                "ttl": now_s + (self.ttl_seconds if ttl_seconds is None else ttl_seconds),
                "now": now_s,
            },
            "test": {"holdSeconds": hold_seconds, "fail": fail},
            "wait": {
                "pollSeconds": self.poll_seconds if poll_seconds is None else poll_seconds,
                "maxPolls": self.max_polls if max_polls is None else max_polls,
            },
            "charge": {"chargeId": item["charge_id"]["S"], "seq": int(item["seq"]["N"])},
        }

    def start(self, payload: Mapping[str, Any], *, label: str = "run", **options: Any) -> Run:
        if not self.arn:
            self.deploy()
        data = self.input_for(payload, **options)
        name = f"{re.sub(r'[^A-Za-z0-9-]', '-', label)[:60]}-{secrets.token_hex(4)}"
        arn = self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(data, default=str))[
            "executionArn"
        ]
        self.labels[arn] = label
        return Run(label, arn, data["idempotencyConfig"]["idempotencyKey"], str(payload.get("order_id", "")), data)

    def wait(self, run: Run, *, timeout: float = 30.0) -> Run:
        """Block until the execution ends; fills status, output (parsed), error, cause and the history."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=run.arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise WorkflowTimeout(f"execution {run.label!r} still RUNNING after {timeout:g} s")
            time.sleep(0.1)
        run.status = described["status"]
        run.output = json.loads(described["output"]) if described.get("output") else None
        run.error, run.cause = described.get("error", ""), described.get("cause", "")
        run.events = self.history(run)
        if not run.error and run.status == "FAILED":
            failed = [e for e in run.events if e["type"] == "ExecutionFailed"]
            if failed:
                details = failed[-1].get("executionFailedEventDetails", {})
                run.error, run.cause = details.get("error", ""), details.get("cause", "")
        return run

    def run(self, payload: Mapping[str, Any], *, label: str = "run", timeout: float = 30.0, **options: Any) -> Run:
        return self.wait(self.start(payload, label=label, **options), timeout=timeout)

    def wait_for_state(self, run: Run, state: str, *, timeout: float = 10.0) -> None:
        """Block until the execution has entered ``state`` (e.g. to start a duplicate while it is held there)."""
        deadline = time.monotonic() + timeout
        while state not in states_entered(self.history(run)):
            if time.monotonic() > deadline:
                raise WorkflowTimeout(f"execution {run.label!r} did not enter {state!r} within {timeout:g} s")
            time.sleep(0.05)

    def history(self, run: Run) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": run.arn}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def record(self, key: str) -> dict[str, Any] | None:
        """The idempotency record, plainly: status, stored result, TTL, and the run that holds it (by its label)."""
        item = self.ddb.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        result = item.get("executionresult", {}).get("S")
        execution = item.get("execution", {}).get("S", "")
        return {
            "executionstatus": item.get("executionstatus", {}).get("S"),
            "executionresult": json.loads(result) if result else None,
            "held by": self.labels.get(execution, execution.rsplit(":", 1)[-1]),
            "ttl": int(item["ttl"]["N"]) if "ttl" in item else None,
            "execution_arn": execution,
        }

    def record_view(self, run: Run) -> dict[str, Any] | None:
        """The record of a run's key for printing: no ARNs, the TTL as seconds after that run's request time."""
        record = self.record(run.key)
        if record is None:
            return None
        now = run.input.get("idempotencyConfig", {}).get("now")
        expires = record["ttl"] - now if record["ttl"] is not None and now is not None else None
        return {
            "status": record["executionstatus"],
            "result": record["executionresult"],
            "held by": record["held by"],
            "expires after (s)": expires,
        }

    def probe_error_names(self) -> dict[str, str]:
        """Fail the same conditional put through both DynamoDB integrations and return the error name each raises.

        Optimised integrations (``arn:aws:states:::dynamodb:putItem``) name errors ``DynamoDB.*``; AWS SDK
        integrations (``arn:aws:states:::aws-sdk:dynamodb:putItem``) name them ``DynamoDb.*``. A Retry or Catch
        written with the other prefix never matches.
        """
        if not self.table:
            self.deploy()
        item = {"id": {"S": "error-name-probe"}}
        self.ddb.put_item(TableName=self.table, Item=item)
        task = {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}
        definition = {
            "StartAt": "optimised",
            "States": {
                name: {
                    "Type": "Task",
                    "Resource": resource,
                    "Parameters": task,
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{name}", "Next": following}],
                    "ResultPath": None,
                    "Next": following,
                }
                for name, resource, following in (
                    ("optimised", "arn:aws:states:::dynamodb:putItem", "aws-sdk"),
                    ("aws-sdk", "arn:aws:states:::aws-sdk:dynamodb:putItem", "done"),
                )
            }
            | {"done": {"Type": "Succeed"}},
        }
        arn = self.resources.ensure_state_machine(f"{self.name}-error-probe", definition)
        probe = Run("error-probe", "", "", "")
        probe.arn = self.sfn.start_execution(stateMachineArn=arn, name=f"probe-{secrets.token_hex(4)}", input="{}")[
            "executionArn"
        ]
        output = self.wait(probe).output or {}
        self.ddb.delete_item(TableName=self.table, Key=item)
        return {kind: output.get(kind, {}).get("Error", "") for kind in ("optimised", "aws-sdk")}

    def put_record(self, key: str, *, status: str, execution: str, ttl: int) -> None:
        """Write a record by hand (tests and the "crashed holder" demo)."""
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "id": {"S": key},
                "executionstatus": {"S": status},
                "execution": {"S": execution},
                "ttl": {"N": str(ttl)},
            },
        )
