"""The talk's four integration models, run side by side over the real services, in logical ticks.

- synchronous request-response (:class:`SyncSender`: ``POST /charges`` with immediate retries);
- an asynchronous queue, point to point (:class:`QueueSender`: ``SendMessage`` to the payments queue);
- a router: the sender picks the queue(s) in its own code (:class:`RouterSender`);
- a bus: the sender publishes, EventBridge rules pick the targets (:class:`BusSender`).

A :class:`Worker` is the payments side of the three asynchronous models: each tick it takes at most ``capacity``
messages (its own rate) and charges them through the payments HTTP API. :func:`run_style` drives one model through
a :class:`~.ticks.Schedule` (receiver down, receiver throttled) and measures what the comparison needs. The
numbers (capacities, windows, retry counts) are the demo's choices, not AWS's.

Around them, what notebook 02 runs beside its lessons: :class:`Models` builds each model with its own instrumented
clients (so its calls per order are measured) and names the resources it needs; :func:`flood` runs the multi-tenant
fairness test; :func:`compete` runs several workers on one queue (competing consumers); :func:`changed_lines`
measures a change in code. A bus event is the talk's envelope (``detail.data["order-id"]``), as everywhere.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws import capabilities as caps
from helpers.aws.resources import Resources, Target
from helpers.chapters.coupling import order_created
from helpers.instruments import ticks
from helpers.instruments.trace import Trace
from helpers.services.messaging import CallResult, Receiver, delete, post_charge, put_orders, queue_depth, receive
from helpers.services.payments import ApiFaults

MESSAGE_MOVE_TASK = caps.BY_NAME["sqs_message_move_task"]
FAIR_QUEUES = caps.BY_NAME["sqs_fair_queues"]


@dataclass(frozen=True)
class Order:
    """One order: ``n`` numbers it within its tenant; it is placed at ``tick``."""

    n: int
    tenant: str
    amount: float
    tick: int
    batch: str = ""

    @property
    def id(self) -> str:
        """``<batch>-<tenant>-<n>``: unique across runs, so the payments API never replays one run's charge."""
        return f"{self.batch}-{self.tenant}-{self.n:03d}" if self.batch else f"{self.tenant}-{self.n:03d}"

    def body(self) -> dict[str, Any]:
        return {"orderId": self.id, "tenant": self.tenant, "amount": self.amount, "tick": self.tick}


def steady(
    count: int, *, per_tick: int, tenants: Iterable[str] = ("A", "B", "C"), amount: float = 24.62, batch: str = ""
) -> list[Order]:
    """``count`` orders, ``per_tick`` of them each tick from tick 1, tenants taking turns."""
    names = list(tenants)
    if not names:
        raise ValueError("at least one tenant is needed")
    orders: list[Order] = []
    made: dict[str, int] = {}
    for tick, numbers in ticks.arrivals(count, per_tick=per_tick).items():
        for k in numbers:
            tenant = names[(k - 1) % len(names)]
            made[tenant] = made.get(tenant, 0) + 1
            orders.append(Order(made[tenant], tenant, amount, tick, batch))
    return orders


class TickGate(ApiFaults):
    """Install as ``receiver.api.faults``: the payments API accepts ``capacity`` charges per tick, 429 beyond."""

    def __init__(self, capacity: int | None) -> None:
        super().__init__()
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity={capacity}: the receiver accepts at least 1 call per tick (or None)")
        self.capacity = capacity
        self.tick = 0
        self.used = 0
        self.refused = 0
        self._gate = threading.Lock()

    def at(self, tick: int) -> None:
        with self._gate:
            if tick != self.tick:
                self.tick, self.used = tick, 0

    def next_status(self) -> int | None:
        injected = super().next_status()
        if injected is not None:
            return injected
        with self._gate:
            if self.capacity is not None and self.used >= self.capacity:
                self.refused += 1
                return 429
            self.used += 1
            return None


# -- senders ----------------------------------------------------------------------------------------------------------
class SyncSender:
    """Calls the payments API for each order and retries at once (``attempts`` in all) what fails."""

    style = "sync"

    def __init__(self, url: str, *, attempts: int = 3, trace: Trace | None = None) -> None:
        if attempts < 1:
            raise ValueError(f"attempts={attempts}: a sender makes at least one attempt")
        self.url, self.attempts, self.trace = url, attempts, trace
        self.calls = self.refused = self.retries = self.answers = self.outcomes = 0
        self.charged: list[str] = []

    def send(self, order: Order) -> bool:
        """One order: True when charged. Either way the sender learns the outcome within the call."""
        self.outcomes += 1
        for attempt in range(1, self.attempts + 1):
            self.retries += attempt > 1
            result: CallResult = _traced_post(self.trace, "sender", self.url, order)
            self.calls += 1
            if result.ok:
                self.answers += 1
                self.charged.append(order.id)
                return True
            self.refused += 1
        return False


class QueueSender:
    """Sends each order to one queue it knows by URL (point to point)."""

    style = "queue"

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url

    def send(self, order: Order) -> bool:
        params: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": json.dumps(order.body())}
        if self.url.endswith(".fifo"):  # one message group per tenant (the queue deduplicates by content)
            params["MessageGroupId"] = order.tenant
        self.sqs.send_message(**params)
        return True


class RouterSender:
    """Picks the queue(s) itself: ``route(order)`` names them, ``queues`` maps a name to its URL."""

    style = "router"

    def __init__(self, sqs: Any, queues: Mapping[str, str], route: Callable[[Order], list[str]]) -> None:
        self.sqs, self.queues, self.route = sqs, dict(queues), route

    def send(self, order: Order) -> bool:
        for name in self.route(order):
            self.sqs.send_message(QueueUrl=self.queues[name], MessageBody=json.dumps(order.body()))
        return True


class BusSender:
    """Publishes each order to a bus; it knows no queue and no receiver."""

    style = "bus"

    def __init__(self, events: Any, bus: str, *, source: str = "com.orders") -> None:
        self.events, self.bus, self.source = events, bus, source

    def send(self, order: Order) -> bool:
        return put_orders(self.events, self.bus, [event_detail(order)], source=self.source) == 0


def event_detail(order: Order) -> dict[str, Any]:
    """An order as an ``OrderCreated`` event's detail, in the talk's envelope (``data["order-id"]``)."""
    return order_created(order.id, tenant=order.tenant, amount=order.amount, tick=order.tick)


def charge_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The charge a message asks for: a queue carries the JSON body of ``POST /charges`` (``orderId``), a bus the
    EventBridge envelope (``detail.data["order-id"]``)."""
    if "detail" in body:
        data = body["detail"]["data"]
        return {"orderId": data["order-id"], "amount": data["amount"]}
    return {"orderId": body["orderId"], "amount": body["amount"]}


def _traced_post(trace: Trace | None, actor: str, url: str, order: Order | Mapping[str, Any]) -> CallResult:
    """POST /charges, recorded in ``trace`` (when given) as a call and its answer."""
    order_id, amount = (order.id, order.amount) if isinstance(order, Order) else (order["orderId"], order["amount"])
    if trace is not None:
        trace.record(actor, "payments API", f"POST /charges {order_id}", key=order_id)
    result = post_charge(url, order_id, amount)
    if trace is not None:
        answer = str(result.status) if result.status is not None else result.error
        trace.record("payments API", actor, answer, kind="reply" if result.ok else "error", key=order_id)
    return result


# -- the payments side of the asynchronous models ---------------------------------------------------------------------
@dataclass
class Worker:
    """Takes at most ``capacity`` messages per tick from ``url`` and charges each through the payments API.

    A charge the API refuses (a poison message: 4xx) is made visible again at once, so SQS counts another receive
    and, past the queue's maxReceiveCount, moves it to the dead-letter queue. ``handled`` maps order id to the tick
    it was charged.
    """

    sqs: Any
    url: str
    api_url: str
    capacity: int
    handled: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    http_calls: int = 0
    trace: Trace | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity={self.capacity}: a worker takes at least 1 message per tick")

    def take(self) -> list[dict[str, Any]]:
        """Receive this tick's share (at most ``capacity``) without handling it yet."""
        taken: list[dict[str, Any]] = []
        while len(taken) < self.capacity:
            got = receive(self.sqs, self.url, max_messages=min(10, self.capacity - len(taken)))
            if not got:
                break
            taken += got
        return taken

    def finish(self, tick: int, messages: list[dict[str, Any]]) -> int:
        """Charge what :meth:`take` received, delete what was charged; returns how many were deleted."""
        done = []
        for message in messages:
            order = charge_of(json.loads(message["Body"]))
            self.http_calls += 1
            if _traced_post(self.trace, "worker", self.api_url, order).ok:
                self.handled[order["orderId"]] = tick
                done.append(message)
            else:
                self.failures += 1
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        delete(self.sqs, self.url, done)
        return len(done)

    def step(self, tick: int) -> int:
        """One tick of work alone; returns how many messages it charged and deleted."""
        return self.finish(tick, self.take())


def step_together(workers: list[Worker], tick: int) -> int:
    """Workers running at the same time: all receive before any deletes (so on a FIFO queue a message group
    held by one worker is blocked for the others). Returns how many messages were deleted."""
    taken = [w.take() for w in workers]
    return sum(w.finish(tick, got) for w, got in zip(workers, taken, strict=True))


@dataclass
class Run:
    """What one model did with one batch of orders, in the units of the comparison table."""

    style: str
    orders: int
    charged: int
    client_errors: int
    retries: int
    http_calls: int
    aws_calls: int
    answers: int
    backlog: ticks.Series
    last_tick: int
    outcomes: int = 0
    waits: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.orders - self.charged

    @property
    def max_backlog(self) -> int:
        return int(self.backlog.peak("backlog"))

    def recovered_at(self, after: int) -> int | None:
        """The first tick after ``after`` at which the backlog was empty (None: it never was)."""
        for tick, depth in zip(self.backlog.ticks("backlog"), self.backlog.values("backlog"), strict=True):
            if tick > after and depth == 0:
                return tick
        return None

    @property
    def calls_per_order(self) -> float:
        return (self.http_calls + self.aws_calls) / self.orders if self.orders else 0.0

    @property
    def longest_wait(self) -> int | None:
        """The most ticks an order waited between being placed and being charged (None: nothing was charged)."""
        return max(self.waits.values(), default=None)


def run_style(
    sender: Any,
    orders: list[Order],
    *,
    receiver: Receiver,
    schedule: ticks.Schedule,
    worker: Worker | None = None,
    watch: Any = None,
    aws_calls: Callable[[], int] = lambda: 0,
    max_ticks: int = 200,
    settle_timeout_s: float = 10.0,
) -> Run:
    """Drive one model tick by tick: the receiver follows ``schedule`` (down: stopped; ``capacity``: 429 beyond it,
    enforced by a :class:`TickGate` on the API), orders are sent at their tick, the worker (if any) takes its share.

    ``watch`` is an SQS client for the backlog reading (kept apart from the instrumented clients, so measuring does
    not count as cost); ``aws_calls()`` reads how many SQS/EventBridge calls the model made. After each tick's
    sends the driver waits until the queue holds them (EventBridge delivers asynchronously on LocalStack and AWS),
    so a worker never misses a message by a few milliseconds and every run is the same.
    """
    gate = TickGate(schedule.capacity)
    receiver.api.faults = gate
    by_tick: dict[int, list[Order]] = {}
    for order in orders:
        by_tick.setdefault(order.tick, []).append(order)
    last_arrival = max(by_tick, default=0)
    series = ticks.Series()
    errors = 0
    expected = 0

    def step(tick: int) -> None:
        nonlocal errors, expected
        schedule.follow(receiver, tick)
        gate.at(tick)
        for order in by_tick.get(tick, []):
            if not sender.send(order):
                errors += 1
        if worker is not None:
            expected += len(by_tick.get(tick, []))
            _wait_for_depth(watch, worker.url, expected, settle_timeout_s)
            if receiver.up:
                expected -= worker.step(tick)
            series.add("backlog", tick, queue_depth(watch, worker.url))

    def done(tick: int) -> bool:
        return tick >= last_arrival and (worker is None or series.values("backlog")[-1] == 0)

    last = ticks.run(step, until=done, max_ticks=max_ticks)
    if not receiver.up:
        receiver.start()
    charged = len(worker.handled) if worker is not None else getattr(sender, "answers", 0)
    http = worker.http_calls if worker is not None else getattr(sender, "calls", 0)
    placed = {order.id: order.tick for order in orders}
    if worker is not None:
        waits = {oid: tick - placed[oid] for oid, tick in worker.handled.items() if oid in placed}
    else:  # a synchronous call charges within the call, at the tick the order is placed
        waits = {oid: 0 for oid in getattr(sender, "charged", []) if oid in placed}
    return Run(
        style=sender.style,
        orders=len(orders),
        charged=charged,
        client_errors=errors,
        retries=getattr(sender, "retries", 0),
        http_calls=http,
        aws_calls=aws_calls(),
        answers=getattr(sender, "answers", 0),
        backlog=series,
        last_tick=last,
        outcomes=getattr(sender, "outcomes", 0),
        waits=waits,
    )


def _wait_for_depth(sqs: Any, url: str, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while queue_depth(sqs, url) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the queue did not reach {expected} messages within {timeout_s} s")
        time.sleep(0.02)


def redrive(sqs: Any, dlq: Any, source: Any, *, supported: bool) -> str:
    """Move a DLQ's messages back to their source queue: ``StartMessageMoveTask`` where the backend has it, else
    receive, send and delete by hand (what the move task does for you). Returns which way it went."""
    if supported:
        sqs.start_message_move_task(SourceArn=dlq.arn, DestinationArn=source.arn)
        return "StartMessageMoveTask"
    while got := receive(sqs, dlq.url):
        for message in got:
            sqs.send_message(QueueUrl=source.url, MessageBody=message["Body"])
        delete(sqs, dlq.url, got)
    return "receive, send, delete"


# -- what notebook 02 runs beside its lessons -------------------------------------------------------------------------
STYLES = ("sync", "queue", "router", "bus")


@dataclass
class Model:
    """One model, built for one run: its sender, its worker (None for sync), the trace that counts its SQS and
    EventBridge calls, and the resources it needs as ``(kind, name)`` in the form of ``Resources.inventory()``."""

    style: str
    sender: Any
    worker: Worker | None
    calls: Trace
    needs: list[tuple[str, str]]


class Models:
    """The four models over one payments receiver, each built with boto3 clients of its own.

    ``client(service, **config)`` makes a fresh client (``wb.client``). A model's sender and worker clients are
    instrumented into the model's :class:`Trace`, so ``calls.count(kind="call")`` is what the model cost in SQS
    and EventBridge calls; the backlog is read with a client of its own (``watch``), so measuring costs nothing.
    Runs reuse a style's queue (each run ends with it empty). The worker polls once per tick and takes at most
    ``worker_capacity`` messages, by default the receiver's capacity: that rate is this helper's configuration,
    not something a queue does by itself.
    """

    def __init__(
        self,
        resources: Resources,
        client: Callable[..., Any],
        receiver: Receiver,
        *,
        bus: str = "orders",
        source: str = "com.orders.styles",
    ) -> None:
        self.resources, self.client, self.receiver = resources, client, receiver
        self.bus, self.source = bus, source
        self.watch = client("sqs")

    def build(self, style: str, run: str, capacity: int, *, http_too: bool = False) -> Model:
        """The sender, worker and call counter of ``style`` for ``run``; ``http_too`` also records the HTTP calls
        to payments in the same trace (for diagrams)."""
        if style not in STYLES:
            raise ValueError(f"style={style!r}: one of {', '.join(STYLES)}")
        calls = Trace(f"{style}-{run}")
        http = calls if http_too else None
        sender_sqs, sender_events, worker_sqs = (self.client(s, connect_timeout=2) for s in ("sqs", "events", "sqs"))
        for client, actor in ((sender_sqs, "sender"), (sender_events, "sender"), (worker_sqs, "worker")):
            calls.instrument(client, actor)
        if style == "sync":
            return Model(style, SyncSender(self.receiver.url, attempts=3, trace=http), None, calls, [])
        queue = self.resources.ensure_queue(style)
        needs = [("sqs", queue.name)]
        sender: QueueSender | RouterSender | BusSender
        if style == "queue":
            sender = QueueSender(sender_sqs, queue.url)
        elif style == "router":
            sender = RouterSender(sender_sqs, {"payments": queue.url}, route=lambda order: ["payments"])
        else:
            bus = self.resources.ensure_bus(self.bus)
            target = [Target("payments", queue.arn)]
            rule = self.resources.ensure_rule("payments", bus=bus, pattern={"source": [self.source]}, targets=target)
            self.resources.allow_send_from(queue, rule, "events.amazonaws.com")
            sender = BusSender(sender_events, bus, source=self.source)
            needs = [("events:bus", bus.rsplit("/", 1)[-1]), ("events:rule", self.resources.name("payments")), *needs]
        worker = Worker(worker_sqs, queue.url, self.receiver.url, capacity=capacity, trace=http)
        return Model(style, sender, worker, calls, needs)

    def run(
        self,
        run: str,
        schedule: ticks.Schedule,
        traffic: Mapping[str, Any],
        *,
        styles: Iterable[str] = STYLES,
        worker_capacity: int | None = None,
    ) -> dict[str, Run]:
        """Each style through ``schedule`` with the orders ``steady(**traffic)`` makes; results by style."""
        capacity = worker_capacity if worker_capacity is not None else schedule.capacity
        if capacity is None:
            raise ValueError("the schedule sets no capacity: give worker_capacity, the messages a worker takes")
        results: dict[str, Run] = {}
        for style in styles:
            model = self.build(style, run, capacity)
            orders = steady(**traffic, batch=f"{run}-{style}")
            results[style] = run_style(model.sender, orders, receiver=self.receiver, schedule=schedule,
                                       worker=model.worker, watch=self.watch,
                                       aws_calls=functools.partial(model.calls.count, kind="call"))  # fmt: skip
            model.calls.uninstrument()
        return results


def flood(
    resources: Resources,
    sqs: Any,
    receiver: Receiver,
    name: str,
    *,
    fifo: bool,
    noisy: int = 18,
    quiet: int = 3,
    workers: int = 2,
    capacity: int = 3,
) -> dict[str, Any]:
    """Tenant A sends ``noisy`` orders at once, tenant B ``quiet`` just after; ``workers`` workers side by side take
    ``capacity`` each per tick. On a FIFO queue each tenant is a message group. The receiver takes every call (no
    per-tick limit). Returns the tick each tenant's last order was charged."""
    receiver.api.faults = TickGate(None)
    queue = resources.ensure_queue(name, fifo=fifo, content_based_dedup=fifo)
    sender = QueueSender(sqs, queue.url)
    for order in [*steady(noisy, per_tick=noisy, tenants=["A"], batch=name),
                  *steady(quiet, per_tick=quiet, tenants=["B"], batch=name)]:  # fmt: skip
        sender.send(order)
    crew = [Worker(sqs, queue.url, receiver.url, capacity=capacity) for _ in range(workers)]
    ticks.run(lambda tick: step_together(crew, tick), until=lambda tick: queue_depth(sqs, queue.url) == 0,
              max_ticks=100)  # fmt: skip
    handled = {oid: tick for w in crew for oid, tick in w.handled.items()}
    last = {t: max(tick for oid, tick in handled.items() if f"-{t}-" in oid) for t in "AB"}
    return {"queue": "FIFO, group per tenant" if fifo else "standard", "orders": len(handled),
            "B's last order (tick)": last["B"], "A's last order (tick)": last["A"]}  # fmt: skip


@dataclass
class Competition:
    """Several workers on one queue: the orders each charged, the ``POST /charges`` each made, ticks taken."""

    taken: list[set[str]]
    posts: list[int]
    ticks: int

    @property
    def per_worker(self) -> list[int]:
        return [len(t) for t in self.taken]

    @property
    def shared(self) -> set[str]:
        """Orders that more than one worker charged (a message that reached two consumers)."""
        seen: set[str] = set()
        twice: set[str] = set()
        for taken in self.taken:
            twice |= seen & taken
            seen |= taken
        return twice


def compete(sqs: Any, url: str, receiver: Receiver, orders: list[Order], *, workers: int, capacity: int) -> Competition:
    """Competing consumers: send ``orders`` to one queue, then run ``workers`` workers side by side (all receive
    before any deletes, as concurrent consumers would) until the queue is empty. The receiver takes every call."""
    if workers < 1:
        raise ValueError(f"workers={workers}: at least one worker")
    receiver.api.faults = TickGate(None)
    sender = QueueSender(sqs, url)
    for order in orders:
        sender.send(order)
    crew = [Worker(sqs, url, receiver.url, capacity=capacity) for _ in range(workers)]
    last = ticks.run(lambda tick: step_together(crew, tick), until=lambda tick: queue_depth(sqs, url) == 0,
                     max_ticks=100)  # fmt: skip
    return Competition([set(w.handled) for w in crew], [w.http_calls for w in crew], last)


def changed_lines(old: Callable[..., Any] | str, new: Callable[..., Any] | str) -> int:
    """Lines added or removed between two versions of some code: source text, or two functions (their ``def``
    lines aside, so a renamed version counts only what its body changed)."""

    def body(code: Callable[..., Any] | str) -> list[str]:
        return code.splitlines() if isinstance(code, str) else inspect.getsource(code).split("\n", 1)[1].splitlines()

    return sum(1 for line in difflib.ndiff(body(old), body(new)) if line.startswith(("+ ", "- ")))
