"""The idempotent workflow of notebook 10 (seed 003), deployed under a notebook's prefix, and what reads its ASL.

The workflow (``asl/idempotent_workflow.asl.json``) follows the aws-samples "idempotent-workflow-sam" pattern and
runs on the emulator unchanged: its Lambda steps are replaced by what the backend can run.

- The key and TTL are computed before the start, in Python (:meth:`IdempotentWorkflow.input_for`): the idempotency
  library's canonical JSON hashed with SHA-256 (:mod:`.keys`), TTL taken from the caller. The seed's first state did
  this in a Lambda.
- The step that "can fail occasionally" fails when the input says ``test.fail = true``: deterministic.
- The work writes a charge into the ledger table with ``dynamodb:putItem``, so charges are counted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger
from helpers.services.stepfunctions.definition import iter_states, load
from helpers.services.stepfunctions.keys import idempotency_key
from helpers.services.stepfunctions.runner import Execution, Runner

IDEMPOTENT_WORKFLOW = "idempotent_workflow"
STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")


@dataclass
class Run(Execution):
    """One execution of the workflow: what was asked (key, order, input) and, after ``wait``, how it ended."""

    key: str = ""
    order_id: str = ""
    input: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.label,
            "order": self.order_id,
            "status": self.status,
            "replayed": (self.output or {}).get("replayed", "") if isinstance(self.output, dict) else "",
            "error": self.error,
        }


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
        self.runner = Runner(resources.backend)
        self.sfn = self.runner.sfn
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
        started = self.runner.start(self.arn, data, label=label)
        self.labels[started.arn] = label
        key = data["idempotencyConfig"]["idempotencyKey"]
        return Run(label, started.arn, key=key, order_id=str(payload.get("order_id", "")), input=data)

    def wait(self, run: Run, *, timeout: float = 30.0) -> Run:
        """Block until the execution ends; fills status, output (parsed), error, cause and the history."""
        self.runner.wait(run, timeout=timeout)
        return run

    def run(self, payload: Mapping[str, Any], *, label: str = "run", timeout: float = 30.0, **options: Any) -> Run:
        return self.wait(self.start(payload, label=label, **options), timeout=timeout)

    def wait_for_state(self, run: Run, state: str, *, timeout: float = 10.0) -> None:
        """Block until the execution has entered ``state`` (e.g. to start a duplicate while it is held there)."""
        self.runner.wait_for_state(run, state, timeout=timeout)

    def history(self, run: Run) -> list[dict[str, Any]]:
        return self.runner.history(run.arn)

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
        output = self.runner.run(arn, {}, label="error-probe").output or {}
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


# -- reading the ASL: the status names and error matchers the seed got wrong ----------------------------------------
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
