"""Orchestration within a domain (notebook 05): Step Functions state machines and the three integration patterns.

The ASL files live with the Step Functions kit (``helpers/services/stepfunctions/asl``), which loads, runs and
draws them; this module is what notebook 05 adds: its machines deployed together, and the workers that answer them.

- ``order_process``: the order process of the choreography, as one state machine (Choice, Parallel, Map, Retry,
  Catch, and service integrations to DynamoDB, SQS and EventBridge);
- ``payment_callback``: wait for a callback (``sqs:sendMessage.waitForTaskToken``) with a heartbeat and a timeout;
  :class:`PaymentWorker` answers, declines, keeps the task alive, or stays silent;
- ``pack_job`` + ``run_job``: run a job (``states:startExecution.sync:2``); where the backend cannot run it,
  the kit's ``poll_until_done`` is the loop the integration saves you from writing;
- ``emit_and_wait``: ``events:putEvents.waitForTaskToken``, answered by the fulfilment domain of
  :mod:`helpers.chapters.choreography`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.backend import Backend
from helpers.aws.resources import Queue, Resources
from helpers.instruments.trace import Trace
from helpers.services.stepfunctions import WorkflowTimeout, load

SYNC_CAPABILITY = "stepfunctions_sync_integration"


def runs_sync(backend: Backend) -> bool:
    """Whether ``states:startExecution.sync`` runs on this backend (moto: no, it cannot start nested executions)."""
    return backend.supports(SYNC_CAPABILITY)


def explain_sync(backend: Backend) -> str:
    if runs_sync(backend):
        return f"{backend.name}: `states:startExecution.sync:2` runs: the parent starts the job and waits for it."
    return backend.explain(SYNC_CAPABILITY)


# -- the payments worker of the callback pattern ------------------------------------------------------------------
BEHAVIOURS = ("approve", "decline", "silent", "slow", "slow_no_heartbeat")


@dataclass
class PaymentWorker:
    """Takes a payment request (with its task token) from the queue and answers the waiting workflow, or does not.

    ``approve``: SendTaskSuccess. ``decline``: SendTaskFailure ``PaymentDeclined``. ``silent``: never answers (a
    crashed worker). ``slow``: sends ``heartbeats`` SendTaskHeartbeat calls ``heartbeat_every`` seconds apart, then
    SendTaskSuccess: alive, just slow. ``slow_no_heartbeat``: the same work, the same length, but silent until its
    answer (the control that shows what the heartbeats were for); ``handle`` then returns the answer's refusal code
    under ``"answer"``.
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
        if behaviour == "slow_no_heartbeat":
            time.sleep(self.heartbeats * self.heartbeat_every)
            request["answer"] = self.answer_again(order)
            return request
        if behaviour == "decline":
            self.sfn.send_task_failure(taskToken=token, error="PaymentDeclined", cause="the card was declined")
            self.trace.record(self.name, "Step Functions", "SendTaskFailure PaymentDeclined", key=order)
        else:
            self.sfn.send_task_success(taskToken=token, output=json.dumps({"captured": request["amount"]}))
            self.trace.record(self.name, "Step Functions", "SendTaskSuccess", key=order)
        return request

    def answer_again(self, order_id: str) -> str:
        """SendTaskSuccess with this order's token (again, or late): "accepted", or the error code the service gives."""
        try:
            self.sfn.send_task_success(taskToken=self.tokens[order_id], output=json.dumps({"captured": "again"}))
        except self.sfn.exceptions.ClientError as exc:
            code = exc.response["Error"]["Code"]
            self.trace.record(self.name, "Step Functions", "SendTaskSuccess (token already closed)", key=order_id)
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
