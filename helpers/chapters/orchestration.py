"""Orchestration within a domain (notebook 05): Step Functions state machines and the three integration patterns.

The ASL files live in ``helpers/services/stepfunctions/asl``; :func:`load` fills their ``${Placeholder}`` values.

- ``order_process``: the order process of the choreography, as one state machine (Choice, Parallel, Map, Retry,
  Catch, and service integrations to DynamoDB, SQS and EventBridge);
- ``payment_callback``: wait for a callback (``sqs:sendMessage.waitForTaskToken``) with a heartbeat and a timeout;
  :class:`PaymentWorker` answers, declines, keeps the task alive, or stays silent;
- ``pack_job`` + ``run_job``: run a job (``states:startExecution.sync:2``); where the backend cannot run it,
  :func:`poll_until_done` is the loop the integration saves you from writing;
- ``emit_and_wait``: ``events:putEvents.waitForTaskToken``, answered by the fulfilment domain of
  :mod:`helpers.chapters.choreography`.

History helpers turn ``GetExecutionHistory`` into the path taken (:func:`path_diagram`), a table
(:func:`history_frame`) and a sequence diagram of the service calls (:func:`history_trace`).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.aws.backend import Backend
from helpers.aws.resources import Queue, Resources
from helpers.instruments import viz
from helpers.instruments.trace import Trace

ASL_DIR = Path(__file__).resolve().parents[1] / "services" / "stepfunctions" / "asl"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")
SYNC_CAPABILITY = "stepfunctions_sync_integration"
# Measured for notebook 05 on 2026-11-30: LocalStack 4.14 runs startExecution.sync:2 end to end (the child runs, the
# parent waits and gets its output). helpers.aws.capabilities still says "not verified"; until it is updated this wins.
SYNC_VERIFIED_ON = ("aws",)  # real AWS runs `.sync`; the emulators say so in helpers.aws.capabilities

# moto's Step Functions interpreter logs each failure a workflow handles (a Catch, a timeout) on stderr; the
# execution history carries the same facts, and nbval compares stderr.
logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)


class WorkflowTimeout(RuntimeError):
    """An execution did not finish (or reach a state) in time."""


# -- definitions ------------------------------------------------------------------------------------------------
def load(name: str, **placeholders: str) -> dict[str, Any]:
    """The ASL definition ``<name>.asl.json`` with every ``${Name}`` filled; a missing value is an error."""
    path = ASL_DIR / f"{name}.asl.json"
    if not path.exists():
        known = ", ".join(sorted(p.name.removesuffix(".asl.json") for p in ASL_DIR.glob("*.asl.json")))
        raise FileNotFoundError(f"no state machine {name!r} in {ASL_DIR.name}; known: {known}")
    text = path.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(placeholders))
    if missing:
        raise KeyError(f"{path.name} needs values for: {', '.join(missing)}")
    return json.loads(_PLACEHOLDER.sub(lambda m: placeholders[m.group(1)], text))


def iter_states(definition: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any], str | None]]:
    """(name, state, parent Parallel/Map or None) for every state, nested ones included, in definition order."""
    for name, state in definition["States"].items():
        yield name, state, None
        for inner in _children(state):
            for child, child_state, parent in iter_states(inner):
                yield child, child_state, parent or name


def _children(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if state["Type"] == "Parallel":
        return list(state["Branches"])
    if state["Type"] == "Map":
        return [state.get("ItemProcessor") or state["Iterator"]]
    return []


def features(definition: Mapping[str, Any]) -> dict[str, int]:
    """How many of each state type, Retry and Catch the definition uses, and its service integrations."""
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
        "changed": [n for n in b if n in a and a[n] != b[n] and not _children(b[n])],
    }


# -- histories --------------------------------------------------------------------------------------------------
def states_entered(events: Iterable[Mapping[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def count_events(events: Iterable[Mapping[str, Any]], kind: str) -> int:
    return sum(1 for e in events if e["type"] == kind)


def history_frame(events: Iterable[Mapping[str, Any]]) -> Any:
    """The history as a table: event type, state or resource, and the error where there is one (no ids, no times)."""
    import pandas as pd

    rows = []
    for e in events:
        details: Mapping[str, Any] = next((v for k, v in e.items() if k.endswith("EventDetails")), {}) or {}
        what = details.get("name") or details.get("resource", "")
        rows.append({"event": e["type"], "state / resource": what, "error": details.get("error", "")})
    frame = pd.DataFrame(rows, columns=["event", "state / resource", "error"])
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


def path_diagram(definition: Mapping[str, Any], events: Iterable[Mapping[str, Any]] | None = None) -> viz.Mermaid:
    """A Mermaid flowchart of the state machine; with a history, the states entered and the moves between them green
    (red for a Fail state). Parallel and Map states are boxes around their inner states; dashed arrows are Catches.
    """
    ids = {name: f"s{i}" for i, (name, _, _) in enumerate(iter_states(definition))}
    lines = ["flowchart TD"]
    edges: list[tuple[str, str, str, bool]] = []
    shapes = {"Choice": ('{"', '"}'), "Succeed": ('(["', '"])'), "Fail": ('(["', '"])'), "Wait": ('[/"', '"/]')}

    def emit(states: Mapping[str, Any], indent: str) -> None:
        for name, state in states.items():
            label = viz.escape(name).replace('"', "'")
            inner = _children(state)
            if inner:
                lines.append(f'{indent}subgraph {ids[name]} ["{label} ({state["Type"]})"]')
                for branch in inner:
                    emit(branch["States"], indent + "    ")
                lines.append(f"{indent}end")
            else:
                left, right = shapes.get(state["Type"], ('["', '"]'))
                lines.append(f"{indent}{ids[name]}{left}{label}{right}")
            if "Next" in state:
                edges.append((name, state["Next"], "", False))
            for rule in state.get("Choices", []):
                edges.append((name, rule["Next"], _rule_text(rule), False))
            if "Default" in state:
                edges.append((name, state["Default"], "otherwise", False))
            for catch in state.get("Catch", []):
                edges.append((name, catch["Next"], "catch " + ", ".join(catch["ErrorEquals"]), True))

    emit(definition["States"], "    ")
    for a, b, label, dashed in edges:
        arrow = "-.->" if dashed else "-->"
        text = f'|"{label}"|' if label else ""
        lines.append(f"    {ids[a]} {arrow}{text} {ids[b]}")
    if events is not None:
        entered = set(states_entered(events))
        fails = {n for n, s, _ in iter_states(definition) if s["Type"] == "Fail"}
        ok = [ids[n] for n in ids if n in entered and n not in fails]
        bad = [ids[n] for n in ids if n in entered and n in fails]
        lines.append("    classDef visited fill:#d7f0d7,stroke:#2e7d32,stroke-width:2px")
        lines.append("    classDef failed fill:#f8d7da,stroke:#c62828,stroke-width:2px")
        if ok:
            lines.append(f"    class {','.join(ok)} visited")
        if bad:
            lines.append(f"    class {','.join(bad)} failed")
        taken = [str(i) for i, (a, b, _, _) in enumerate(edges) if a in entered and b in entered]
        if taken:
            lines.append(f"    linkStyle {','.join(taken)} stroke:#2e7d32,stroke-width:3px")
    return viz.Mermaid("\n".join(lines))


def _rule_text(rule: Mapping[str, Any]) -> str:
    for key, value in rule.items():
        if key.startswith(("Numeric", "String", "Boolean")):
            op = re.sub(r"(?<!^)([A-Z])", r" \1", key).lower()
            return f"{rule.get('Variable', '').removeprefix('$.')} {op} {value}"
    return "rule"


# -- running ----------------------------------------------------------------------------------------------------
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
    """Start executions, wait for them, read their histories."""

    def __init__(self, backend: Backend, *, timeout: float = 30.0) -> None:
        self.sfn = backend.client("stepfunctions")
        self.timeout = timeout

    def start(self, machine_arn: str, payload: Mapping[str, Any], *, label: str) -> Execution:
        name = f"{re.sub(r'[^A-Za-z0-9-]', '-', label)[:60]}-{secrets.token_hex(4)}"
        arn = self.sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(dict(payload)))
        return Execution(label, arn["executionArn"])

    def wait(self, execution: Execution, *, timeout: float | None = None) -> Execution:
        described, _ = poll_until_done(self.sfn, execution.arn, poll_seconds=0.1, timeout=timeout or self.timeout)
        execution.status = described["status"]
        execution.output = json.loads(described["output"]) if described.get("output") else None
        execution.error, execution.cause = described.get("error", ""), described.get("cause", "")
        execution.events = self.history(execution.arn)
        return execution

    def run(self, machine_arn: str, payload: Mapping[str, Any], *, label: str) -> Execution:
        return self.wait(self.start(machine_arn, payload, label=label))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        return [event for page in pages for event in page["events"]]

    def wait_for_event(self, execution: Execution, kind: str, *, timeout: float = 10.0) -> None:
        """Block until the history holds an event of this type (e.g. ``TaskSubmitted``: the token is out)."""
        deadline = time.monotonic() + timeout
        while count_events(self.history(execution.arn), kind) == 0:
            if time.monotonic() > deadline:
                raise WorkflowTimeout(f"execution {execution.label!r} has no {kind} event after {timeout:g} s")
            time.sleep(0.05)


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


def runs_sync(backend: Backend) -> bool:
    """Whether ``states:startExecution.sync`` runs on this backend (moto: no, it cannot start nested executions)."""
    return backend.supports(SYNC_CAPABILITY) or backend.name in SYNC_VERIFIED_ON


def explain_sync(backend: Backend) -> str:
    if runs_sync(backend):
        return f"{backend.name}: `states:startExecution.sync:2` runs: the parent starts the job and waits for it."
    return backend.explain(SYNC_CAPABILITY)


# -- the payments worker of the callback pattern ------------------------------------------------------------------
BEHAVIOURS = ("approve", "decline", "silent", "slow")


@dataclass
class PaymentWorker:
    """Takes a payment request (with its task token) from the queue and answers the waiting workflow, or does not.

    ``approve``: SendTaskSuccess. ``decline``: SendTaskFailure ``PaymentDeclined``. ``silent``: never answers (a
    crashed worker). ``slow``: sends ``heartbeats`` SendTaskHeartbeat calls ``heartbeat_every`` seconds apart, then
    SendTaskSuccess: alive, just slow.
    """

    backend: Backend
    queue_url: str
    trace: Trace
    name: str = "payments worker"
    heartbeats: int = 2
    heartbeat_every: float = 1.0
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sqs = self.backend.client("sqs")
        self.sfn = self.backend.client("stepfunctions")

    def take(self, *, wait_seconds: int = 5) -> dict[str, Any]:
        reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds)
        messages = reply.get("Messages", [])
        if not messages:
            raise WorkflowTimeout(f"no payment request arrived within {wait_seconds} s")
        message = messages[0]
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        request = json.loads(message["Body"])
        self.tokens[request["orderId"]] = request["taskToken"]
        self.trace.send("SQS", self.name, f"payment request {request['orderId']} + task token", key=request["orderId"])
        return request

    def handle(self, behaviour: str) -> dict[str, Any]:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour {behaviour!r}: use one of {', '.join(BEHAVIOURS)}")
        request = self.take()
        order, token = request["orderId"], request["taskToken"]
        if behaviour == "silent":
            self.trace.crash(self.name, "never answers", key=order)
            return request
        if behaviour == "slow":
            for _ in range(self.heartbeats):
                time.sleep(self.heartbeat_every)
                self.sfn.send_task_heartbeat(taskToken=token)
                self.trace.record(self.name, "Step Functions", "SendTaskHeartbeat", key=order)
        if behaviour == "decline":
            self.sfn.send_task_failure(taskToken=token, error="PaymentDeclined", cause="the card was declined")
            self.trace.record(self.name, "Step Functions", "SendTaskFailure PaymentDeclined", key=order)
        else:
            self.sfn.send_task_success(taskToken=token, output=json.dumps({"captured": request["amount"]}))
            self.trace.record(self.name, "Step Functions", "SendTaskSuccess", key=order)
        return request

    def answer_again(self, order_id: str) -> str:
        """SendTaskSuccess a second time with the token already used: returns the error code the service gives."""
        try:
            self.sfn.send_task_success(taskToken=self.tokens[order_id], output=json.dumps({"captured": "again"}))
        except self.sfn.exceptions.ClientError as exc:
            code = exc.response["Error"]["Code"]
            self.trace.record(self.name, "Step Functions", "SendTaskSuccess (same token again)", key=order_id)
            self.trace.error("Step Functions", self.name, code, key=order_id)
            return code
        return "accepted"

    def fail_by_hand(self, order_id: str, *, error: str = "AnsweredByHand", cause: str = "") -> None:
        """What an operator does with a callback nobody answers: fail the task with its token (the Catch then runs)."""
        self.sfn.send_task_failure(taskToken=self.tokens[order_id], error=error, cause=cause or "failed by hand")
        self.trace.record("operator", "Step Functions", f"SendTaskFailure {error}", key=order_id)


# -- deploying the notebook's state machines ----------------------------------------------------------------------
@dataclass
class Machines:
    """The state machines of notebook 05 and the resources they call, deployed under one prefix (idempotent).

    Shares the orders table, the ledger table and the bus with the choreography (:class:`~.choreography.Shop`),
    so both styles write to the same stores and can be compared.
    """

    resources: Resources
    orders_table: str
    ledger_table: str
    bus: str
    heartbeat_seconds: int = 2
    callback_timeout_seconds: int = 30
    arns: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock_table: str = ""
    warehouse: Queue | None = None
    payment_requests: Queue | None = None

    def deploy(self, stock: Mapping[str, int]) -> None:
        r = self.resources
        self.stock_table = r.ensure_table("stock", partition_key="sku")
        self.set_stock(stock)
        self.warehouse = r.ensure_queue("warehouse")
        self.payment_requests = r.ensure_queue("payment-requests")
        self.definitions["order-process"] = load(
            "order_process",
            OrdersTable=self.orders_table,
            LedgerTable=self.ledger_table,
            StockTable=self.stock_table,
            WarehouseQueueUrl=self.warehouse.url,
            BusName=self.bus,
        )
        callback = load(
            "payment_callback", PaymentRequestsQueueUrl=self.payment_requests.url, OrdersTable=self.orders_table
        )
        task = callback["States"]["Ask payments and wait"]
        task["HeartbeatSeconds"] = self.heartbeat_seconds
        task["TimeoutSeconds"] = self.callback_timeout_seconds
        self.definitions["payment-callback"] = callback
        self.definitions["pack-job"] = load("pack_job")
        emit = load("emit_and_wait", BusName=self.bus, OrdersTable=self.orders_table)
        # An event may have no listener at all: without a timeout nobody would ever answer this task.
        emit["States"]["Request shipment and wait"]["TimeoutSeconds"] = self.callback_timeout_seconds
        self.definitions["emit-and-wait"] = emit
        for name in ("order-process", "payment-callback", "pack-job", "emit-and-wait"):
            self.arns[name] = r.ensure_state_machine(name, self.definitions[name])
        self.definitions["run-job"] = load("run_job", PackJobArn=self.arns["pack-job"])
        self.arns["run-job"] = r.ensure_state_machine("run-job", self.definitions["run-job"])

    def update(self, name: str, definition: Mapping[str, Any]) -> None:
        """Deploy a new version of a machine (UpdateStateMachine): the change to the process is this one call."""
        self.arns[name] = self.resources.ensure_state_machine(name, dict(definition))
        self.definitions[name] = dict(definition)

    def set_stock(self, stock: Mapping[str, int]) -> None:
        ddb = self.resources.backend.client("dynamodb")
        for sku, available in stock.items():
            ddb.put_item(TableName=self.stock_table, Item={"sku": {"S": sku}, "available": {"N": str(available)}})

    def stock(self) -> dict[str, int]:
        ddb = self.resources.backend.client("dynamodb")
        items = ddb.scan(TableName=self.stock_table, ConsistentRead=True)["Items"]
        return {i["sku"]["S"]: int(i["available"]["N"]) for i in sorted(items, key=lambda i: i["sku"]["S"])}
