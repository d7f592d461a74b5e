"""Choreography between domains (notebook 05): orders, payments and fulfilment react to each other's events.

No one runs the process. Each domain owns its data and its inbox queue, subscribes to the event types it cares about
with a rule on one shared EventBridge bus, and publishes what it did. The consumers run in the kernel (the emulators
cannot run Lambda without Docker), one ``ReceiveMessage`` at a time, so a run is the same every time.

- orders: writes the order (``orders`` table, status ``CREATED``) and publishes ``OrderCreated``;
- payments: on ``OrderCreated`` charges the card (the course ledger) and publishes ``PaymentCaptured``, or publishes
  ``PaymentDeclined`` for a declined card without charging;
- fulfilment: on ``PaymentCaptured`` writes a shipment (``shipments`` table) and publishes ``OrderShipped``; on
  ``ShipmentRequested`` from a workflow (emit-and-wait) it ships and answers the workflow's task token.

Every publish and every delivery is recorded in a :class:`~.trace.Trace`, so the sequence diagrams are drawn
from what happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Queue, Resources, Target
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace

BUS = "commerce"
SOURCE_PREFIX = "com."

Handler = Callable[["Shop", Mapping[str, Any]], None]


class NotSettled(RuntimeError):
    """The domains did not reach the expected state in time (an event was lost, or a consumer is missing)."""


@dataclass
class Domain:
    """One bounded context: its inbox queue, the event types it subscribes to, and what it does with each."""

    name: str
    listens_to: tuple[str, ...]
    handler: Handler
    queue: Queue | None = None
    handled: int = 0


@dataclass
class Shop:
    """The three domains wired through one bus. ``add_domain`` is how a new step joins: a queue, a rule, a consumer."""

    resources: Resources
    ledger: Ledger
    trace: Trace = field(default_factory=lambda: Trace("choreography"))
    bus_base: str = BUS
    domains: dict[str, Domain] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        b = self.resources.backend
        self.events, self.sqs, self.ddb = b.client("events"), b.client("sqs"), b.client("dynamodb")
        self.sfn = b.client("stepfunctions")
        self.bus = self.resources.ensure_bus(self.bus_base).rsplit("/", 1)[-1]
        self.orders_table = self.resources.ensure_table("orders", partition_key="order_id")
        self.shipments_table = self.resources.ensure_table("shipments", partition_key="order_id")

    # -- wiring ---------------------------------------------------------------------------------------------------
    def add_domain(self, name: str, listens_to: tuple[str, ...] | list[str], handler: Handler) -> Domain:
        """A queue ``<name>-inbox`` and a rule ``<name>-subscription`` for those event types (idempotent)."""
        queue = self.resources.ensure_queue(f"{name}-inbox")
        domain = Domain(name, tuple(listens_to), handler, queue)
        if domain.listens_to:
            rule = self.resources.ensure_rule(
                f"{name}-subscription",
                bus=self.bus,
                pattern={"detail-type": list(domain.listens_to)},
                targets=[Target(f"{name}-inbox", queue.arn)],
                description=f"{name} subscribes to {', '.join(domain.listens_to)}",
            )
            self.resources.allow_send_from(queue, rule, "events.amazonaws.com")
        self.domains[name] = domain
        return domain

    def wire_standard_domains(self) -> None:
        """orders (publishes only), payments (OrderCreated), fulfilment (PaymentCaptured, ShipmentRequested)."""
        self.add_domain("orders", (), lambda shop, event: None)
        self.add_domain("payments", ("OrderCreated",), payments_handler)
        self.add_domain("fulfilment", ("PaymentCaptured", "ShipmentRequested"), fulfilment_handler)

    def add_notifications(self) -> Domain:
        """The new step: e-mail the customer when an order ships. Nothing that exists changes."""
        return self.add_domain("notifications", ("OrderShipped",), notifications_handler)

    def subscriptions(self) -> dict[str, dict[str, Any]]:
        """Rule name -> its pattern and target ids, to compare the wiring before and after a change."""
        found = {}
        for rule in self.events.list_rules(EventBusName=self.bus)["Rules"]:
            targets = self.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=self.bus)["Targets"]
            found[rule["Name"]] = {
                "pattern": json.loads(rule["EventPattern"]),
                "targets": sorted(t["Id"] for t in targets),
            }
        return dict(sorted(found.items()))

    # -- messages -------------------------------------------------------------------------------------------------
    def publish(self, domain: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        """PutEvents from ``domain`` (source ``com.<domain>``), recorded as an async send to the bus."""
        order = str(detail.get("orderId", ""))
        reply = self.events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus,
                    "Source": SOURCE_PREFIX + domain,
                    "DetailType": detail_type,
                    "Detail": json.dumps(dict(detail)),
                }
            ]
        )
        if reply.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused {detail_type} for {order}: {reply['Entries']}")
        self.trace.send(domain, "EventBridge", f"{detail_type} {order}", key=order)

    def place_order(self, order_id: str, amount: float, *, card: str = "ok") -> None:
        """The orders domain's own work: write the order, then tell the world."""
        self.ddb.put_item(
            TableName=self.orders_table,
            Item={"order_id": {"S": order_id}, "status": {"S": "CREATED"}, "amount": {"N": str(amount)}},
        )
        self.trace.effect("orders", "orders table", f"order {order_id} CREATED", key=order_id)
        self.publish("orders", "OrderCreated", {"orderId": order_id, "amount": amount, "card": card})

    def deliver_once(self) -> int:
        """One pass over every inbox: each message received is handled by its domain, then deleted."""
        handled = 0
        for domain in list(self.domains.values()):
            if domain.queue is None or not domain.listens_to:
                continue
            reply = self.sqs.receive_message(QueueUrl=domain.queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in reply.get("Messages", []):
                event = json.loads(message["Body"])
                order = str(event["detail"].get("orderId", ""))
                self.trace.send("EventBridge", domain.name, f"{event['detail-type']} {order}", key=order)
                domain.handler(self, event)
                domain.handled += 1
                handled += 1
                self.sqs.delete_message(QueueUrl=domain.queue.url, ReceiptHandle=message["ReceiptHandle"])
        return handled

    def settle(self, until: Callable[[], bool], *, timeout: float = 10.0, pause: float = 0.1) -> int:
        """Deliver until ``until()`` holds; returns the deliveries made. The bus delivers asynchronously."""
        deadline = time.monotonic() + timeout
        delivered = 0
        while True:
            delivered += self.deliver_once()
            if until():
                return delivered
            if time.monotonic() > deadline:
                raise NotSettled(f"the domains did not settle within {timeout:g} s ({delivered} deliveries made)")
            time.sleep(pause)

    # -- asking the domains ---------------------------------------------------------------------------------------
    def order_status(self, order_id: str) -> str:
        item = self.ddb.get_item(TableName=self.orders_table, Key={"order_id": {"S": order_id}}).get("Item")
        return item["status"]["S"] if item else "unknown"

    def shipment_status(self, order_id: str) -> str:
        item = self.ddb.get_item(TableName=self.shipments_table, Key={"order_id": {"S": order_id}}).get("Item")
        return item["status"]["S"] if item else "no shipment"

    def where_is(self, order_id: str) -> list[dict[str, str]]:
        """'Where is this order?' asked of every domain, one question each: no domain knows the whole answer."""
        charges = self.ledger.charges_per_order().get(order_id, 0)
        return [
            {"domain": "orders", "asked": "GetItem orders table", "answer": self.order_status(order_id)},
            {"domain": "payments", "asked": "ledger charges", "answer": f"{charges} charge(s)"},
            {"domain": "fulfilment", "asked": "GetItem shipments table", "answer": self.shipment_status(order_id)},
        ]


# -- the domains' handlers ----------------------------------------------------------------------------------------
def payments_handler(shop: Shop, event: Mapping[str, Any]) -> None:
    detail = event["detail"]
    order = detail["orderId"]
    if detail.get("card") == "declined":
        shop.publish("payments", "PaymentDeclined", {"orderId": order, "reason": "card declined"})
        return
    shop.ledger.charge(order, detail["amount"], by="payments")
    shop.trace.effect("payments", "ledger", f"charge {order}", key=order)
    shop.publish("payments", "PaymentCaptured", {"orderId": order, "amount": detail["amount"]})


def fulfilment_handler(shop: Shop, event: Mapping[str, Any]) -> None:
    detail = event["detail"]
    order = detail["orderId"]
    tracking = f"TRK-{order}"
    shop.ddb.put_item(
        TableName=shop.shipments_table,
        Item={"order_id": {"S": order}, "status": {"S": "SHIPPED"}, "tracking": {"S": tracking}},
    )
    shop.trace.effect("fulfilment", "shipments table", f"ship {order}", key=order)
    token = detail.get("taskToken")
    if token:
        # Better together: a workflow asked for this shipment and waits for the answer (emit-and-wait).
        try:
            shop.sfn.send_task_success(taskToken=token, output=json.dumps({"tracking": tracking}))
        except ClientError as exc:
            shop.trace.error("Step Functions", "fulfilment", exc.response["Error"]["Code"], key=order)
            raise
        shop.trace.record("fulfilment", "Step Functions", f"SendTaskSuccess {tracking}", key=order)
    shop.publish("fulfilment", "OrderShipped", {"orderId": order, "tracking": tracking})


def notifications_handler(shop: Shop, event: Mapping[str, Any]) -> None:
    order = event["detail"]["orderId"]
    shop.notifications.append(order)
    shop.trace.effect("notifications", "customer", f"e-mail: {order} shipped", key=order)
