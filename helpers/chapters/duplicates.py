"""Where duplicates come from: notebook 06's orders service, payments and workers, with one fault switched on at a time.

Notebook 06 reproduces the talk's three sources of duplicates (transmission, receiver, service) and counts every card
charge in a :class:`~helpers.instruments.ledger.Ledger`. This module is the machinery the demos share, kept here so
the notebook's cells show the call, the counts and the assertion, and so the machinery has tests of its own:

- :class:`Shop` holds the ledger, the trace and which demo each order belongs to. :meth:`Shop.pay` is the side effect
  (one ledger row per call: not idempotent, on purpose); :meth:`Shop.place_order` is the orders service calling
  payments through a :class:`~helpers.instruments.faults.FaultPlan` and retrying what failed.
- :meth:`Shop.receive`, :meth:`Shop.delete`, :meth:`Shop.work` and :meth:`Shop.work_through`: a payments worker on an
  SQS queue (through :mod:`helpers.services.messaging`), every call recorded in the trace, crashing where the plan
  says; :meth:`Shop.slow_part` is the part of a job that outlasts the visibility timeout.
- :meth:`Shop.invoke_async`: what the Lambda service does with an asynchronous invoke (run the handler, retry a
  function error), run in the kernel because neither emulator runs Lambda code without Docker. The attempt count is
  Lambda's documented default; running the retries at once, without Lambda's one- and two-minute waits, is this
  helper's choice, so the notebook runs in seconds.
- :meth:`Shop.put_order_events` and :meth:`Shop.consume_bus_queue`: orders published to an EventBridge bus whose rule
  targets an SQS queue, and the consumer on that queue. Where the plan says ``deliver_twice``, the consumer's
  DeleteMessage does not reach SQS: the helper's stand-in for AWS's rare copy that survives a delete (no emulator
  loses one). The second delivery that follows is SQS's own: the message, unchanged, after the visibility timeout.
- :func:`flaky_network` and :func:`sweep_controls`: the seeded loss-rate sweep and the widget that re-runs it.

Names the demos make up (actors, scenario labels, the ``orderId`` body of a queued order) are the course's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.resources import Queue
from helpers.instruments.faults import (
    DELIVER_TWICE,
    EXCEED_VISIBILITY,
    LAMBDA_ASYNC_MAX_ATTEMPTS,
    LOSE_RESPONSE,
    FaultPlan,
    RetryOutcome,
    WorkerCrashed,
    retry,
)
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services import messaging

RECEIVE_COUNT = "ApproximateReceiveCount"


def order_created(order_id: str, price: float) -> dict[str, Any]:
    """An ``OrderCreated`` event in the talk's envelope (``detail.metadata`` + ``detail.data``), with no client key:
    the events of this notebook carry nothing a receiver could deduplicate on, which is the point."""
    return {
        "source": "com.orders",
        "detail-type": "OrderCreated",
        "detail": {"metadata": {}, "data": {"order-id": order_id, "price": price, "currency": "AU"}},
    }


def order_of(message: Mapping[str, Any]) -> str:
    """The order a received SQS message is about: a queued order (``orderId``) or an EventBridge event."""
    body = json.loads(message["Body"])
    if "detail" in body:
        return str(body["detail"]["data"]["order-id"])
    return str(body["orderId"])


def receive_count(message: Mapping[str, Any]) -> int:
    """SQS's ``ApproximateReceiveCount`` of a message received with that system attribute: 1, then 2 on redelivery."""
    return int(message["Attributes"][RECEIVE_COUNT])


@dataclass(frozen=True)
class Delivery:
    """One message the bus consumer received: which order, which event and SQS message, and SQS's receive count."""

    order_id: str
    event_id: str
    message_id: str
    receive_count: int
    receipt_handle: str
    deleted: bool


@dataclass
class Shop:
    """The orders and payments of notebook 06: a ledger of charges, a trace of who said what, the demo per order."""

    ledger: Ledger
    trace: Trace
    sqs: Any
    scenario_of: dict[str, str] = field(default_factory=dict)

    # -- 1 · transmission ----------------------------------------------------------------------------------------
    def pay(self, order_id: str, amount: float, *, actor: str = "payments") -> str:
        """The side effect: one ledger row per call. Not idempotent, on purpose."""
        self.trace.effect(actor, "ledger", f"charge {order_id}", key=order_id)
        self.ledger.charge(order_id, amount, by=actor)
        return f"receipt for {order_id}"

    def place_order(
        self, order_id: str, amount: float, plan: FaultPlan, *, scenario: str, max_attempts: int = 3
    ) -> RetryOutcome:
        """The orders service: call payments through the faulty network (``plan``), retry what failed."""
        self.scenario_of[order_id] = scenario

        def attempt(n: int) -> str:
            with self.trace.exchange("orders", "payments", f"charge {order_id} (attempt {n})", key=order_id) as ex:
                ex.reply = plan.call(order_id, self.pay, order_id, amount)
            return ex.reply

        return retry(attempt, max_attempts=max_attempts)

    # -- 2 · receiver ----------------------------------------------------------------------------------------------
    def send_order(self, queue: Queue, order_id: str, amount: float, *, scenario: str) -> None:
        """The orders service queues an order for the payments worker."""
        self.scenario_of[order_id] = scenario
        self.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"orderId": order_id, "amount": amount}))
        self.trace.send("orders", "orders queue", f"OrderCreated {order_id}", key=order_id)

    def receive(
        self, queue: Queue, worker: str, *, wait_s: int = 0, name: str = "orders queue"
    ) -> dict[str, Any] | None:
        """One ReceiveMessage for one message (with its receive count), recorded in the trace; None if none came."""
        got = messaging.receive(self.sqs, queue.url, max_messages=1, wait_s=wait_s, system_attributes=[RECEIVE_COUNT])
        if not got:
            return None
        message = got[0]
        order_id = order_of(message)
        self.trace.record(worker, name, "ReceiveMessage", key=order_id)
        self.trace.reply(name, worker, f"{order_id}, receive count {receive_count(message)}", key=order_id)
        return message

    def delete(self, queue: Queue, worker: str, message: Mapping[str, Any], *, name: str = "orders queue") -> None:
        messaging.delete(self.sqs, queue.url, [message])
        self.trace.record(worker, name, "DeleteMessage", key=order_of(message))

    def work(self, queue: Queue, message: Mapping[str, Any], worker: str, plan: FaultPlan) -> str:
        """The worker's job: charge, then (unless the plan crashes it first) delete the message. Returns the order."""
        order = json.loads(message["Body"])
        self.pay(order["orderId"], order["amount"], actor=worker)
        plan.after_effect(order["orderId"])  # the crash, when the plan says so
        self.delete(queue, worker, message)
        return str(order["orderId"])

    def work_through(self, queue: Queue, plan: FaultPlan, *, orders: int, wait_s: int, worker: str = "worker") -> int:
        """Receive and work until ``orders`` orders are done; returns how often the worker crashed.

        A crashed worker never deletes its message, so the loop only ends if SQS hands that message out again after
        the visibility timeout (``wait_s`` must outlast it). It gives up, with a message, rather than loop forever.
        """
        done: set[str] = set()
        crashes = 0
        for _ in range(3 * orders):
            if len(done) == orders:
                return crashes
            message = self.receive(queue, worker, wait_s=wait_s)
            if message is None:
                raise TimeoutError(
                    f"nothing received within {wait_s} s with {len(done)} of {orders} orders done: a crashed "
                    "message must come back after the visibility timeout"
                )
            try:
                done.add(self.work(queue, message, worker, plan))
            except WorkerCrashed:
                crashes += 1
                self.trace.crash(worker, "crashed before DeleteMessage", key=order_of(message))
        if len(done) < orders:
            raise RuntimeError(
                f"{3 * orders} receives and only {len(done)} of {orders} orders done: the worker crashes"
            )
        return crashes

    def slow_part(self, worker: str, order_id: str, plan: FaultPlan, *, work_s: float, visibility_s: int) -> bool:
        """The rest of the job: slow (``work_s``) when the plan says the work outlasts the visibility timeout."""
        if not plan.should(EXCEED_VISIBILITY, order_id):
            return False
        self.trace.note(worker, f"still working: {work_s} s > visibility timeout {visibility_s} s", key=order_id)
        time.sleep(work_s)
        return True

    # -- 3 · service: Lambda asynchronous invocation -----------------------------------------------------------------
    def handler(self, event: Mapping[str, Any], plan: FaultPlan) -> dict[str, str]:
        """The payments function: charge, then e-mail the receipt (which may time out, failing the function)."""
        order_id = event["detail"]["data"]["order-id"]
        self.pay(order_id, event["detail"]["data"]["price"], actor="payments fn")
        plan.after_effect(order_id)  # the e-mail call times out: the function fails AFTER charging
        return {"charged": order_id}

    def invoke_async(
        self,
        event: Mapping[str, Any],
        plan: FaultPlan,
        *,
        scenario: str,
        max_attempts: int = LAMBDA_ASYNC_MAX_ATTEMPTS,
    ) -> RetryOutcome:
        """What the Lambda service does with an async invoke: run the handler, retry it while it fails."""
        order_id = event["detail"]["data"]["order-id"]
        self.scenario_of[order_id] = scenario

        def attempt(n: int) -> dict[str, str]:
            self.trace.send("Lambda", "payments fn", f"invoke {order_id} (attempt {n})", key=order_id)
            try:
                return self.handler(event, plan)
            except WorkerCrashed:
                self.trace.crash("payments fn", "e-mail timed out: function error", key=order_id)
                raise

        return retry(attempt, max_attempts=max_attempts, retry_on=(WorkerCrashed,))

    # -- 3 · service: the bus and its target queue -------------------------------------------------------------------
    def put_order_events(self, events: Any, bus: str, prices: Mapping[str, float], *, scenario: str) -> None:
        """PutEvents, one ``OrderCreated`` per order, onto the classic bus; a failed entry is an error, not a shrug."""
        for order_id, price in prices.items():
            self.scenario_of[order_id] = scenario
            event = order_created(order_id, price)
            failed = messaging.put_orders(
                events, bus, [event["detail"]], source=event["source"], detail_type=event["detail-type"]
            )
            if failed:
                raise RuntimeError(f"PutEvents refused the event for {order_id}")
            self.trace.send("orders", "EventBridge", f"PutEvents {order_id}", key=order_id)

    def consume_bus_queue(
        self,
        queue: Queue,
        plan: FaultPlan,
        *,
        expect: int,
        wait_s: int,
        timeout_s: float = 15.0,
        consumer: str = "payments consumer",
        name: str = "payments inbox",
    ) -> list[Delivery]:
        """The consumer on the rule's target queue: receive one message, charge, delete; ``expect`` receives in all.

        Where ``plan`` says ``deliver_twice`` for an order, that receive's DeleteMessage is not sent (the stand-in for
        a delete that misses a server holding a copy); SQS then delivers the same message again once its visibility
        timeout ends. Every receive is returned as a :class:`Delivery`, so a notebook counts what SQS actually did.
        """
        deliveries: list[Delivery] = []
        seen: set[str] = set()
        arriving = messaging.receive_until(
            self.sqs, queue.url, expect, wait_s=wait_s, timeout_s=timeout_s, system_attributes=[RECEIVE_COUNT]
        )
        for message in arriving:
            event = json.loads(message["Body"])
            order_id = order_of(message)
            if message["MessageId"] not in seen:  # drawn when first seen: the rule's delivery is EventBridge's doing
                seen.add(message["MessageId"])
                self.trace.send("EventBridge", name, f"{order_id} (rule target)", key=order_id)
            self.trace.record(consumer, name, "ReceiveMessage", key=order_id)
            self.trace.reply(name, consumer, f"{order_id}, receive count {receive_count(message)}", key=order_id)
            self.pay(order_id, event["detail"]["data"]["price"], actor=consumer)
            lost = plan.should(DELIVER_TWICE, order_id)
            if lost:
                self.trace.lost(consumer, name, "DeleteMessage (a copy survives)", key=order_id)
            else:
                self.delete(queue, consumer, message, name=name)
            deliveries.append(
                Delivery(
                    order_id,
                    str(event["id"]),
                    message["MessageId"],
                    receive_count(message),
                    message["ReceiptHandle"],
                    deleted=not lost,
                )
            )
        return deliveries

    # -- the damage ------------------------------------------------------------------------------------------------
    def damage(self) -> Any:
        """Orders, charges and double charges per demo, read back from the ledger (a pandas DataFrame)."""
        charges = self.ledger.frame()
        charges["scenario"] = charges["order_id"].map(self.scenario_of)
        return (
            charges.groupby("scenario", sort=False)
            .agg(orders=("order_id", "nunique"), charges=("order_id", "size"))
            .assign(**{"double charges": lambda t: t["charges"] - t["orders"]})
        )


# -- the sweep --------------------------------------------------------------------------------------------------------
def flaky_network(ledger: Ledger, rate: float, orders: int, *, seed: int) -> dict[str, Any]:
    """``orders`` orders through a network that loses each response with probability ``rate`` (seeded), each
    retried up to 3 attempts; the ledger is cleared first, so the row counts this run only."""
    ledger.clear()
    plan = FaultPlan(seed=seed, lose_response=rate)
    gave_up = 0
    for i in range(orders):
        order_id = f"sweep-{i:03d}"

        def attempt(n: int, oid: str = order_id) -> str:
            return plan.call(oid, ledger.charge, oid, 5, by="payments")

        gave_up += retry(attempt).gave_up
    return {
        "loss rate": rate,
        "orders": orders,
        "responses lost": plan.count(LOSE_RESPONSE),
        "client gave up": gave_up,
        "charges": ledger.count(),
        "double charges": ledger.duplicates(),
    }


def sweep_controls(run: Callable[[float, int], Mapping[str, Any]], *, rate: float = 0.3, orders: int = 20) -> Any:
    """Sliders for the loss rate and the number of orders, and a *run* button that shows ``run(rate, orders)`` as
    a one-row table. Needs a live JupyterLab to react; headless, it is only displayed."""
    import ipywidgets as widgets
    import pandas as pd
    from IPython.display import display

    rate_slider = widgets.FloatSlider(value=rate, min=0.0, max=0.9, step=0.1, description="loss rate")
    orders_slider = widgets.IntSlider(value=orders, min=5, max=60, step=5, description="orders")
    button = widgets.Button(description="run")
    result = widgets.Output()

    def on_run(_: Any) -> None:
        with result:
            result.clear_output()
            display(pd.DataFrame([run(rate_slider.value, orders_slider.value)]))

    button.on_click(on_run)
    return widgets.VBox([widgets.HBox([rate_slider, orders_slider, button]), result])
