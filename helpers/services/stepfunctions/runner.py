"""The idempotent workflow deployed under a notebook's prefix: start, wait, and read back record and history."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger
from helpers.services.stepfunctions.definition import IDEMPOTENT_WORKFLOW, load
from helpers.services.stepfunctions.history import states_entered
from helpers.services.stepfunctions.keys import idempotency_key


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
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=run.arn)
        return [event for page in pages for event in page["events"]]

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
