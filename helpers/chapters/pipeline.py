"""The capstone system: one idempotency key from the client to the ledger, through every hop of notebooks 06-11.

The path (each arrow a hop that can duplicate what it carries)::

    client --Idempotency-Key--> orders API --PutEvents, detail.metadata--> bus --rule--> SQS queue
      --> idempotent consumer --StartExecution, name = derive_key(key, "execution")--> workflow (task token)
      --events:putEvents--> API destination --Idempotency-Key = derive_key(key, "payment")--> payments API --> ledger

This module is the **fast path**: every hop runs the same dedup logic as the live services, in memory and on a
:class:`helpers.idempotency.ManualClock`, so a test can run 1000 seeded chaos runs in seconds. The HTTP APIs and the
consumer are protected by the course's own :class:`helpers.idempotency.Idempotency` (on a ``MemoryStore``); the AWS
hops follow their documented rules: PutEvents gives every call a new event ``id``, SQS standard delivers at least
once and redelivers after the visibility timeout, StartExecution returns the same execution for the same name and
input while it runs and ``ExecutionAlreadyExists`` after, for 90 days, a task token accepts one SendTaskSuccess, an
API destination resends the same event on retry. :mod:`helpers.chapters.capstone` runs the same path on the emulator.

Counters: per hop, ``attempts`` (requests or messages received) and ``effects`` (the hop's own work done: a publish,
a new execution, a charge); ``absorbed`` says which mechanism stopped each duplicate.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.idempotency import Idempotency, InProgress, ManualClock, MemoryStore
from helpers.instruments.faults import WorkerCrashed, draw
from helpers.instruments.trace import Trace

# -- the key derivation -----------------------------------------------------------------------------------------------
#: The namespace of every derived key (a fixed UUID chosen by this course; any fixed UUID works, it must never change).
KEY_NAMESPACE = uuid.UUID("6f1c2a52-5d3e-4c8a-9a61-12c0ffee0012")


def derive_key(upstream: str, hop: str) -> str:
    """The key a hop sends downstream: a name-based UUID (RFC 9562 section 5.5, UUIDv5) of ``upstream/hop``.

    Why this derivation: the same upstream key always gives the same downstream key (so a retry anywhere upstream
    reaches the next service with the key it saw before), different hops get different keys (a payment key is never
    an execution name), nothing needs storing, and the result (36 characters of ``[0-9a-f-]``) is a valid
    Step Functions execution name (1-80 characters; only letters, digits, ``-`` and ``_`` if CloudWatch Logs is to
    work; StartExecution API reference) and a valid ``Idempotency-Key`` value. Never ``uuid4()`` here: a key made
    again is a new operation.
    """
    if not upstream or not isinstance(upstream, str):
        raise ValueError("derive_key needs the upstream key (a non-empty string); never derive from nothing")
    if not hop or "/" in hop:
        raise ValueError(f"hop {hop!r}: a non-empty name without '/'")
    return str(uuid.uuid5(KEY_NAMESPACE, f"{upstream}/{hop}"))


# -- the messages each hop sends: one shape for the model and the live system --------------------------------------
#: The envelope field that carries an event's idempotency key (the talk's name; notebooks 03-11 use it too).
KEY_FIELD = "idempotency-key"
#: The same field as a JMESPath for the idempotency library's ``token_field`` (a hyphenated name is quoted).
KEY_PATH = f'metadata."{KEY_FIELD}"'


def order_detail(key: str, order: Mapping[str, Any]) -> dict[str, Any]:
    """An order event's ``detail`` in the talk's envelope: the client's key in ``metadata``, the order in ``data``
    (``orderId`` in the HTTP body becomes ``order-id`` in the event, as the talk spells it)."""
    return {"metadata": {KEY_FIELD: key}, "data": {"order-id": order["orderId"], "amount": order["amount"]}}


def workflow_input(key: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """What the consumer starts the workflow with (Step Functions input: JSON names), the payment key derived."""
    data = detail["data"]
    return {
        "idempotencyKey": key,
        "paymentKey": derive_key(key, "payment"),
        "orderId": data["order-id"],
        "amount": data["amount"],
    }


def payment_detail(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow's PaymentRequested event: its own idempotency key is the payment key derived from the client's."""
    return {
        "metadata": {KEY_FIELD: payload["paymentKey"]},
        "data": {"order-id": payload["orderId"], "amount": payload["amount"]},
    }


# -- the system's vocabulary: one list of hops for the model, the live system and the notebook ------------------------
HOPS: tuple[str, ...] = (
    "client",
    "orders-api",
    "bus",
    "queue",
    "consumer",
    "workflow",
    "task-worker",
    "api-destination",
    "payments-api",
    "ledger",
)
#: The hops a table of attempts and effects shows (the queue and the ledger only carry and record).
COUNTED_HOPS: tuple[str, ...] = tuple(h for h in HOPS if h not in ("queue", "ledger"))

#: Every duplication source: the hop where it strikes, and what happens.
SOURCES: dict[str, tuple[str, str]] = {
    "client_retry": ("client", "the orders API's response is lost; the client retries with the same key"),
    "putevents_retry": ("orders-api", "PutEvents' response is lost; the orders API publishes again: a new event id"),
    "deliver_twice": ("queue", "SQS standard delivers the message twice (at-least-once delivery)"),
    "crash_after_effect": ("consumer", "the consumer started the execution, then crashed before deleting the message"),
    "exceed_visibility": ("consumer", "the work outlasts the visibility timeout: a second consumer gets the message"),
    "archive_replay": (
        "bus",
        "an archive replay sends the event again with a replay-name field (whether it keeps its id is undocumented)",
    ),
    "startexecution_retry": ("consumer", "StartExecution's response is lost; the SDK retries with the same name"),
    "second_task_success": ("task-worker", "the task worker's answer is lost; it sends SendTaskSuccess again"),
    "apidest_retry": ("api-destination", "the payments API's response is lost; EventBridge retries the same event"),
}

#: The mechanism that stops a duplicate, by where it stopped.
MECHANISMS: dict[str, str] = {
    "orders-api": "orders API: Idempotency-Key record (replays the first response)",
    "consumer": f"consumer: idempotency record on detail.metadata.{KEY_FIELD}",
    "consumer-in-progress": "consumer: record IN_PROGRESS (409), message returns after the visibility timeout",
    "workflow": "StartExecution: execution name (same execution, or ExecutionAlreadyExists)",
    "task-worker": "task token: a second SendTaskSuccess is refused (AWS: TaskTimedOut, the task is closed)",
    "payments-api": "payments API: Idempotency-Key record (replays the first response)",
}

#: Ways to break the chain: one link drops the key (see :class:`System`).
LINKS: dict[str, str] = {
    "intact": "the key is carried, or derived with derive_key, at every hop",
    "client_new_key_on_retry": "the client makes a new uuid4() when it retries",
    "orders_api_regenerates": "the orders API puts a new uuid4() in detail.metadata on each publish",
    "event_id_as_key": "the consumer uses the event's `id` as its idempotency key",
    "random_execution_name": "the consumer starts the execution with a uuid4() name",
}


@dataclass(frozen=True)
class Windows:
    """How long each hop remembers a key, in seconds, and where each value comes from."""

    orders_api: float = (
        86_400.0  # this course's choice, like helpers.services.payments.DAY_S (Stripe keeps keys >= 24 h)
    )
    consumer: float = 3_600.0  # helpers.idempotency IdempotencyConfig.expires_after default (Powertools: 1 hour)
    execution_name: float = 90 * 86_400.0  # Step Functions: names unique for 90 days (StartExecution API reference)
    payments_api: float = 86_400.0  # helpers.services.payments.PaymentsApi(expires_after=DAY_S)
    sqs_fifo_dedup: float = 300.0  # SQS FIFO deduplication interval, 5 minutes (SQS developer guide)
    eventbridge_retry: float = (
        86_400.0  # MaximumEventAgeInSeconds default, 24 h (helpers.services.delivery.DEFAULT_EVENT_AGE_S)
    )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "hop": "orders API record",
                "window s": self.orders_api,
                "set by": "helpers.chapters.pipeline.Windows (the course)",
            },
            {"hop": "consumer record", "window s": self.consumer, "set by": "IdempotencyConfig.expires_after"},
            {"hop": "execution name", "window s": self.execution_name, "set by": "AWS: StartExecution, 90 days"},
            {
                "hop": "payments API record",
                "window s": self.payments_api,
                "set by": "helpers.services.payments.DAY_S (the course)",
            },
            {"hop": "SQS FIFO dedup id", "window s": self.sqs_fifo_dedup, "set by": "AWS: SQS FIFO, 5 minutes"},
            {"hop": "EventBridge retries", "window s": self.eventbridge_retry, "set by": "AWS: 24 h event age"},
        ]


@dataclass(frozen=True)
class Timing:
    """The system's timing, in seconds of the simulated clock (this course's choices, not AWS's)."""

    visibility_timeout: float = 30.0  # the consumer queue's VisibilityTimeout
    consumer_lease: float = 60.0  # the consumer's lease: longer than the work, so a live worker keeps its claim
    work: float = 1.0  # what one consumer run takes
    slow_work: float = 45.0  # a run that outlasts the visibility timeout (exceed_visibility)
    replay_after: float = 600.0  # when an archive replay re-sends the event
    retry_after: float = 1.0  # a client, SDK or EventBridge retry after a lost response
    execution_runs: float = 2.0  # from StartExecution to the workflow's putEvents
    retention: float = 4 * 86_400.0  # SQS MessageRetentionPeriod default, 4 days (SQS API reference)


@dataclass
class Chaos:
    """Which duplication sources strike: seeded rates (``faults.draw``), or all-or-nothing per source."""

    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    first_attempt_only: bool = False

    def __post_init__(self) -> None:
        for name, rate in self.rates.items():
            if name not in SOURCES:
                raise ValueError(f"unknown duplication source {name!r}; known: {', '.join(SOURCES)}")
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name}={rate!r}: a rate is a probability between 0 and 1")

    @classmethod
    def only(cls, source: str, *, seed: int = 0) -> Chaos:
        """One source, striking once per key: on the first attempt (so every retry it causes succeeds)."""
        return cls(seed, {source: 1.0}, first_attempt_only=True)

    @classmethod
    def every_source(cls, rate: float, *, seed: int = 0) -> Chaos:
        return cls(seed, {name: rate for name in SOURCES})

    def hits(self, source: str, key: str, attempt: int = 1) -> bool:
        rate = self.rates.get(source, 0.0)
        if self.first_attempt_only and attempt != 1:
            return False
        return rate > 0 and draw(self.seed, source, key, attempt) < rate


# -- the fast-path system ---------------------------------------------------------------------------------------------
class ExecutionAlreadyExists(Exception):
    """StartExecution with a name in use (closed, or another input) within the name's window."""


class InvalidToken(Exception):
    """SendTaskSuccess for a token that was already answered."""


@dataclass
class Message:
    body: dict[str, Any]
    sent_at: float = 0.0
    receipt: int = 0
    receives: int = 0


@dataclass
class Execution:
    name: str
    input: str
    started_at: float
    closed_at: float | None = None


@dataclass
class Result:
    """One run: orders submitted, per-hop counters, absorbed duplicates, ledger rows per client key."""

    keys: list[str]
    attempts: Counter
    effects: Counter
    absorbed: Counter
    injected: Counter
    charges: Counter

    @property
    def lost(self) -> int:
        return sum(1 for k in self.keys if self.charges[k] == 0)

    @property
    def doubled(self) -> int:
        return sum(self.charges[k] - 1 for k in self.keys if self.charges[k] > 1)

    def hop_rows(self) -> list[dict[str, Any]]:
        return [{"hop": h, "attempts": self.attempts[h], "effects": self.effects[h]} for h in HOPS]


class System:
    """The whole path on one simulated clock. ``System(chaos).run(n)`` submits ``n`` orders and drains everything.

    ``link`` breaks one link (:data:`LINKS`); ``windows``/``timing`` change the clock-driven behaviour; ``trace``
    records every message for a sequence diagram. ``replay_keeps_id`` chooses what an archive replay does with the
    event id, which AWS does not document (both emulators give a new one): the path must charge once either way.
    """

    def __init__(
        self,
        chaos: Chaos | None = None,
        *,
        link: str = "intact",
        windows: Windows | None = None,
        timing: Timing | None = None,
        trace: Trace | None = None,
        seed: int = 0,
        max_retries: int = 3,
        replay_keeps_id: bool = False,
    ) -> None:
        if link not in LINKS:
            raise ValueError(f"unknown link variant {link!r}; known: {', '.join(LINKS)}")
        self.chaos = chaos or Chaos()
        self.link = link
        self.windows = windows or Windows()
        self.timing = timing or Timing()
        self.trace = trace
        self.max_retries = max_retries
        self.replay_keeps_id = replay_keeps_id  # AWS does not document it; the design must not depend on it
        self.clock = ManualClock()
        self._rng = random.Random(seed)  # client keys and uuid4() stand-ins: reproducible
        self._seq = itertools.count(1)
        self._agenda: list[tuple[float, int, Callable[[], None]]] = []
        self.attempts: Counter = Counter()
        self.effects: Counter = Counter()
        self.absorbed: Counter = Counter()
        self.injected: Counter = Counter()
        self.charges: Counter = Counter()
        self.executions: dict[str, Execution] = {}
        self._tokens: set[str] = set()
        self._messages: dict[int, Message] = {}
        self.keys: list[str] = []
        self.dead_lettered = 0

        def guard(scope: str, expires: float, lease: float, **where: Any) -> Idempotency:
            return Idempotency(
                store=MemoryStore(),
                clock=self.clock,
                scope=scope,
                **where,
                expires_after=expires,
                lease_duration=lease,
                local_cache=False,
                worker=scope,
            )

        header = {"token_header": "Idempotency-Key"}
        self.orders_guard = guard("orders-api", self.windows.orders_api, 10.0, **header)
        self.consumer_guard = guard(
            "consumer",
            self.windows.consumer,
            self.timing.consumer_lease,
            token_field=KEY_PATH,
        )
        self.payments_guard = guard("payments-api", self.windows.payments_api, 10.0, **header)

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (self.clock.now() + delay, next(self._seq), action))

    def _hit(self, source: str, key: str, attempt: int = 1) -> bool:
        if self.chaos.hits(source, key, attempt):
            self.injected[source] += 1
            return True
        return False

    def _note(self, src: str, dst: str, label: str, kind: str, key: str) -> None:
        if self.trace is not None:
            self.trace.record(src, dst, label, kind=kind, key=key)

    def _absorb(self, where: str, key: str) -> None:
        self.absorbed[where] += 1
        hop = where if where in HOPS else "consumer"
        self._note(hop, hop, f"absorbed by {MECHANISMS[where].split(':')[1].strip()}", "note", key)

    # -- running ----------------------------------------------------------------------------------------------------
    def run(self, orders: int = 1, *, amount: int = 25) -> Result:
        """Submit ``orders`` orders (one client key each), then run until nothing is left to do."""
        for n in range(orders):
            key = self._new_uuid()
            self.keys.append(key)
            self._at(0.0, functools.partial(self._client, key, {"orderId": f"o-{n + 1}", "amount": amount}))
        self.drain()
        return self.result()

    def drain(self, *, until: float | None = None) -> None:
        while self._agenda and (until is None or self._agenda[0][0] <= until):
            when, _, action = heapq.heappop(self._agenda)
            if when > self.clock.now():
                self.clock.set(when)
            action()

    def result(self) -> Result:
        return Result(
            list(self.keys),
            self.attempts.copy(),
            self.effects.copy(),
            self.absorbed.copy(),
            self.injected.copy(),
            self.charges.copy(),
        )

    # -- hop 1: the client ------------------------------------------------------------------------------------------
    def _client(self, key: str, order: dict[str, Any], attempt: int = 1) -> None:
        self.attempts["client"] += 1
        if attempt == 1:
            self.effects["client"] += 1
        sent_key = key if attempt == 1 or self.link != "client_new_key_on_retry" else self._new_uuid()
        self._note("client", "orders-api", f"POST /orders (attempt {attempt})", "call", key)
        self._orders_api(sent_key, key, order)
        if attempt < self.max_retries and self._hit("client_retry", key, attempt):
            self._note("orders-api", "client", "response lost", "lost", key)
            self._at(self.timing.retry_after, lambda: self._client(key, order, attempt + 1))
        else:
            self._note("orders-api", "client", "202 accepted", "reply", key)

    # -- hop 2: the orders API (HTTP, Idempotency-Key) ---------------------------------------------------------------
    def _orders_api(self, header_key: str, client_key: str, order: dict[str, Any]) -> None:
        self.attempts["orders-api"] += 1
        request = {"headers": {"Idempotency-Key": header_key}, "body": order}
        outcome = self.orders_guard.execute(
            request, lambda: self._publish(header_key, client_key, order), token=header_key
        )
        if outcome.replayed:
            self._absorb("orders-api", client_key)

    def _publish(self, header_key: str, client_key: str, order: dict[str, Any]) -> str:
        self.effects["orders-api"] += 1
        for attempt in range(1, self.max_retries + 1):
            carried = self._new_uuid() if self.link == "orders_api_regenerates" else header_key
            detail = order_detail(carried, order)
            self._bus(detail, client_key)
            if not self._hit("putevents_retry", client_key, attempt):
                break
            self._note("bus", "orders-api", "PutEvents response lost", "lost", client_key)
        return "accepted"

    # -- hop 3: the bus and its rule ---------------------------------------------------------------------------------
    def _bus(self, detail: dict[str, Any], client_key: str, *, replay: str = "", original_id: str = "") -> None:
        self.attempts["bus"] += 1
        self.effects["bus"] += 1
        event: dict[str, Any] = {
            "id": original_id if replay and self.replay_keeps_id else self._new_uuid(),
            "source": "orders",
            "detail-type": "OrderPlaced",
            "detail": detail,
        }
        if replay:
            event["replay-name"] = replay
        self._note(
            "orders-api" if not replay else "bus",
            "bus",
            "PutEvents" if not replay else "archive replay",
            "send",
            client_key,
        )
        self._note("bus", "queue", f"rule: event {event['id'][:8]}", "send", client_key)
        copies = 2 if self._hit("deliver_twice", event["id"]) else 1
        for _ in range(copies):
            self._enqueue(event, client_key)
        if not replay and self._hit("archive_replay", event["id"]):
            original = event["id"]
            self._at(
                self.timing.replay_after, lambda: self._bus(detail, client_key, replay="replay-1", original_id=original)
            )

    # -- hop 4: the queue ---------------------------------------------------------------------------------------------
    def _enqueue(self, event: dict[str, Any], client_key: str) -> None:
        self.attempts["queue"] += 1
        self.effects["queue"] += 1
        message = Message({"event": event, "client_key": client_key}, sent_at=self.clock.now())
        mid = next(self._seq)
        self._messages[mid] = message
        self._at(0.0, lambda: self._receive(mid, 0))

    def _receive(self, mid: int, expected: int) -> None:
        """Receive the message if it is still there and nobody received it since this wake-up was planned."""
        message = self._messages.get(mid)
        if message is None or message.receipt != expected:
            return
        if self.clock.now() - message.sent_at > self.timing.retention:
            del self._messages[mid]  # MessageRetentionPeriod passed: SQS deletes it (a lost order)
            return
        message.receives += 1
        message.receipt += 1
        receipt = message.receipt
        self._at(self.timing.visibility_timeout, lambda: self._receive(mid, receipt))  # visible again unless deleted
        self._consume(mid, message, receipt)

    def _delete(self, mid: int, receipt: int) -> None:
        """DeleteMessage: only the latest receipt handle deletes (SQS: an older one may leave the message)."""
        message = self._messages.get(mid)
        if message is not None and message.receipt == receipt:
            del self._messages[mid]

    # -- hop 5: the idempotent consumer -------------------------------------------------------------------------------
    def _consume(self, mid: int, message: Message, receipt: int) -> None:
        self.attempts["consumer"] += 1
        event, client_key = message.body["event"], message.body["client_key"]
        token = event["id"] if self.link == "event_id_as_key" else event["detail"]["metadata"][KEY_FIELD]
        self._note("queue", "consumer", f"receive #{message.receives}", "send", client_key)
        slow = self._hit("exceed_visibility", f"{client_key}/{event['id']}", message.receives)
        try:
            outcome = self.consumer_guard.execute(
                event["detail"], lambda: self._consumer_work(event, token, client_key, message, mid, slow), token=token
            )
        except InProgress:
            self._absorb("consumer-in-progress", client_key)
            return  # not deleted: back after the visibility timeout
        except WorkerCrashed:
            self._note("consumer", "consumer", "crashed before DeleteMessage", "crash", client_key)
            return
        if outcome.replayed:
            self._absorb("consumer", client_key)
        self._delete(mid, receipt)

    def _consumer_work(
        self, event: dict[str, Any], token: str, client_key: str, message: Message, mid: int, slow: bool
    ) -> str:
        self.effects["consumer"] += 1
        name = self._new_uuid() if self.link == "random_execution_name" else derive_key(token, "execution")
        payload = workflow_input(token, event["detail"])
        for attempt in range(1, self.max_retries + 1):
            self._note("consumer", "workflow", f"StartExecution name={name[:8]}", "call", client_key)
            try:
                self._start_execution(name, payload, client_key)
            except ExecutionAlreadyExists:
                self._note("workflow", "consumer", "ExecutionAlreadyExists: done before", "error", client_key)
                break
            if not self._hit("startexecution_retry", client_key, attempt):
                self._note("workflow", "consumer", "executionArn", "reply", client_key)
                break
            self._note("workflow", "consumer", "response lost", "lost", client_key)
        if slow:  # the message becomes visible again and a second consumer receives it while this one still works
            self.clock.advance(self.timing.slow_work)
            self._receive(mid, message.receipt)
        else:
            self.clock.advance(self.timing.work)
        if self._hit("crash_after_effect", f"{client_key}/{event['id']}", message.receives):
            raise WorkerCrashed(client_key)
        return name

    # -- hop 6: the workflow (StartExecution name, then a task token) ----------------------------------------------
    def _start_execution(self, name: str, payload: dict[str, Any], client_key: str) -> None:
        self.attempts["workflow"] += 1
        text = json.dumps(payload, sort_keys=True)
        now = self.clock.now()
        existing = self.executions.get(name)
        if existing is not None and now - existing.started_at < self.windows.execution_name:
            self._absorb("workflow", client_key)
            if existing.closed_at is None and existing.input == text:
                return  # the same execution's ARN
            raise ExecutionAlreadyExists(name)
        self.effects["workflow"] += 1
        self.executions[name] = Execution(name, text, now)
        self._at(self.timing.execution_runs, lambda: self._run_execution(name, payload, client_key))

    def _run_execution(self, name: str, payload: dict[str, Any], client_key: str) -> None:
        token = f"{name}/task"
        self._tokens.add(token)
        self._note("workflow", "task-worker", "waitForTaskToken", "send", client_key)
        for attempt in (1, 2):
            self._send_task_success(token, client_key)
            if not self._hit("second_task_success", client_key, attempt):
                break
        detail = payment_detail(payload)
        self._note("workflow", "api-destination", "events:putEvents PaymentRequested", "send", client_key)
        self.executions[name].closed_at = self.clock.now()
        self._api_destination({"id": self._new_uuid(), "detail": detail}, client_key)

    def _send_task_success(self, token: str, client_key: str) -> None:
        self.attempts["task-worker"] += 1
        self._note("task-worker", "workflow", "SendTaskSuccess", "reply", client_key)
        if token not in self._tokens:
            self._absorb("task-worker", client_key)
            return  # InvalidToken
        self._tokens.discard(token)
        self.effects["task-worker"] += 1

    # -- hop 7-9: API destination, payments API, ledger ---------------------------------------------------------------
    def _api_destination(self, event: dict[str, Any], client_key: str, attempt: int = 1) -> None:
        self.attempts["api-destination"] += 1
        if attempt == 1:
            self.effects["api-destination"] += 1
        key = event["detail"]["metadata"][KEY_FIELD]
        self._note("api-destination", "payments-api", f"POST /charges (attempt {attempt})", "call", client_key)
        self._payments_api(key, event, client_key)
        if attempt <= self.max_retries and self._hit("apidest_retry", client_key, attempt):
            self._note("payments-api", "api-destination", "response lost", "lost", client_key)
            if attempt * self.timing.retry_after > self.windows.eventbridge_retry:
                self.dead_lettered += 1  # older than MaximumEventAgeInSeconds: EventBridge stops retrying
                return
            self._at(self.timing.retry_after, lambda: self._api_destination(event, client_key, attempt + 1))
        else:
            self._note("payments-api", "api-destination", "201", "reply", client_key)

    def _payments_api(self, key: str, event: dict[str, Any], client_key: str) -> None:
        self.attempts["payments-api"] += 1
        request = {"headers": {"Idempotency-Key": key}, "body": event["detail"]}
        outcome = self.payments_guard.execute(request, lambda: self._charge(client_key, key), token=key)
        if outcome.replayed:
            self._absorb("payments-api", client_key)

    def _charge(self, client_key: str, payment_key: str) -> str:
        self.effects["payments-api"] += 1
        self.attempts["ledger"] += 1
        self.effects["ledger"] += 1
        self.charges[client_key] += 1
        self._note("payments-api", "ledger", "charge", "effect", client_key)
        return f"ch-{payment_key[:8]}"


# -- scenarios ---------------------------------------------------------------------------------------------------------
def each_source(*, orders: int = 1, seed: int = 0) -> list[dict[str, Any]]:
    """One row per duplication source switched on alone: attempts per hop, charges, and what absorbed it."""
    rows = []
    for source, (hop, _what) in SOURCES.items():
        result = System(Chaos.only(source, seed=seed), seed=seed).run(orders)
        rows.append(_row(source, result) | {"strikes at": hop})
    return rows


def _row(label: str, result: Result) -> dict[str, Any]:
    row: dict[str, Any] = {"scenario": label}
    row |= {f"{h} attempts": result.attempts[h] for h in HOPS if h not in ("ledger",)}
    row["charges"] = sum(result.charges.values())
    row["absorbed by"] = ", ".join(sorted(result.absorbed)) or "-"
    return row


def break_each_link(chaos: Chaos, *, orders: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """Every link variant under the same chaos: orders, charges, lost and doubled."""
    rows = []
    for link in LINKS:
        result = System(chaos, link=link, seed=seed).run(orders)
        rows.append(
            {
                "link": link,
                "what breaks": LINKS[link],
                "orders": len(result.keys),
                "executions": result.effects["workflow"],
                "charges": sum(result.charges.values()),
                "lost": result.lost,
                "doubled": result.doubled,
            }
        )
    return rows


@dataclass(frozen=True)
class ChaosSummary:
    runs: int
    orders: int
    charges: int
    lost: int
    doubled: int
    injected: Mapping[str, int]
    absorbed: Mapping[str, int]


def chaos_runs(
    runs: int,
    *,
    rate: float = 0.3,
    orders: int = 1,
    first_seed: int = 0,
    link: str = "intact",
    timing: Timing | None = None,
) -> ChaosSummary:
    """``runs`` seeded runs with every source on at ``rate``: totals of lost and doubled charges."""
    injected: Counter = Counter()
    absorbed: Counter = Counter()
    charges = lost = doubled = total_orders = 0
    for seed in range(first_seed, first_seed + runs):
        result = System(Chaos.every_source(rate, seed=seed), link=link, seed=seed, timing=timing).run(orders)
        injected.update(result.injected)
        absorbed.update(result.absorbed)
        charges += sum(result.charges.values())
        lost += result.lost
        doubled += result.doubled
        total_orders += len(result.keys)
    return ChaosSummary(runs, total_orders, charges, lost, doubled, dict(injected), dict(absorbed))


def content_dedup_id(body: Mapping[str, Any]) -> str:
    """What an SQS FIFO queue with ContentBasedDeduplication uses: the SHA-256 of the message body."""
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def late_duplicate(source: str, after_s: float, *, windows: Windows | None = None) -> Result:
    """One order and one duplicate from ``source`` that arrives ``after_s`` seconds after the original.

    ``archive_replay`` replays the event that long after; ``client_retry``, ``apidest_retry`` (and the other
    lost-response sources) retry that long after. Which hops still remember the key decides the charges.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown duplication source {source!r}; known: {', '.join(SOURCES)}")
    if after_s < 0:
        raise ValueError("after_s: a duplicate arrives after the original (seconds >= 0)")
    timing = Timing(replay_after=after_s) if source == "archive_replay" else Timing(retry_after=after_s)
    return System(Chaos.only(source), windows=windows, timing=timing).run(1)
