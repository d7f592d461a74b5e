"""The capstone path on the emulator: one client key through real services, every hop counted and traced.

The same path as :mod:`helpers.chapters.pipeline` (which runs it in memory for 1000-run chaos tests), built from real
resources: an orders API (``helpers.idempotency.handle_http`` on a DynamoDB store), an EventBridge bus and rule,
an SQS queue, an idempotent consumer (DynamoDB store), a Step Functions state machine that waits for a task token
and then calls ``events:putEvents``, an API destination delivered by :mod:`~.delivery` (notebook 11), the
payments API (:mod:`helpers.services.payments`) and the ledger. Keys below the client are derived with
:func:`helpers.chapters.pipeline.derive_key`, never made again.

Duplication sources are injected where they arise (a response dropped, a message copied, a call repeated), from a
:class:`helpers.chapters.pipeline.Chaos`. Time that would pass on AWS (a visibility timeout, a lease) passes on a
:class:`helpers.idempotency.ManualClock` for the idempotency records, and for SQS by ``ChangeMessageVisibility(0)``
on the messages whose timeout the demo lets run out.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Resources, Target
from helpers.chapters.pipeline import (
    COUNTED_HOPS,
    HOPS,
    KEY_FIELD,
    KEY_PATH,
    SOURCES,
    Chaos,
    Windows,
    derive_key,
    order_detail,
    workflow_input,
)
from helpers.chapters.routing import replay
from helpers.idempotency import DynamoDBStore, HttpResponse, Idempotency, InProgress, ManualClock, handle_http
from helpers.instruments.faults import WorkerCrashed
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services import delivery as dl
from helpers.services.messaging import queue_depth
from helpers.services.payments import PaymentsApi
from helpers.services.stepfunctions import WorkflowTimeout, load, poll_until_done
from helpers.services.stepfunctions.runner import POLL_SECONDS

ORDERS_SOURCE = "capstone.orders"
WORKFLOW_SOURCE = "capstone.workflow"
API_KEY_HEADER = "x-api-key"
#: The orders queue's visibility timeout (the course's choice; SQS's default is 30 s too).
VISIBILITY_TIMEOUT_S = 30
#: The live system's actors are the capstone's hops (one vocabulary with the model, :data:`pipeline.HOPS`).
ACTORS = HOPS


#: The sources whose live result depends on the backend, shown apart from the others in notebook 12: an archive
#: replay (LocalStack 4.14 cannot replay) and a visibility timeout overrun (moto deletes a message with the first
#: consumer's stale receipt handle; AWS documents that such a delete may leave it, and then it comes back).
BACKEND_DEPENDENT = ("archive_replay", "exceed_visibility")


def live_sources(backend: Any) -> tuple[str, ...]:
    """The duplication sources this backend can inject live: all nine where it replays archives (moto), else eight
    (LocalStack 4.14's StartReplay fails: ``eventbridge_replay``); the model runs every one."""
    return tuple(s for s in SOURCES if s != "archive_replay" or backend.supports("eventbridge_replay"))


def workflow_definition(tasks_queue_url: str, bus_name: str) -> dict[str, Any]:
    """Wait for an authorisation (a task token on a queue), then ask for the payment on the bus."""
    return load("capstone_payment", TasksQueueUrl=tasks_queue_url, BusName=bus_name, Source=WORKFLOW_SOURCE)


@dataclass
class Counts:
    attempts: Counter
    effects: Counter
    absorbed: Counter
    injected: Counter


def hop_table(counts: Counts) -> Any:
    """Attempts and effects per counted hop, as a table (hops as columns, in path order)."""
    import pandas as pd

    rows = {
        "attempts": [counts.attempts[h] for h in COUNTED_HOPS],
        "effects": [counts.effects[h] for h in COUNTED_HOPS],
    }
    return pd.DataFrame(rows, index=list(COUNTED_HOPS)).T


class LiveSystem:
    """Build once per notebook (idempotent ``ensure_*`` calls); :meth:`order` sends one order through every hop.

    ``link`` breaks one link of the chain for the next orders (:data:`pipeline.LINKS`), as the model does.
    """

    def __init__(self, resources: Resources, *, seed: int = 12, wait_s: float = 10.0, windows: Windows | None = None):
        self.resources = resources
        self.backend = resources.backend
        self.wait_s = wait_s
        self.seed = seed
        self.windows = windows or Windows()
        self.clock = ManualClock()
        self.trace = Trace("capstone", actors=ACTORS)
        self.attempts: Counter = Counter()
        self.effects: Counter = Counter()
        self.absorbed: Counter = Counter()
        self.injected: Counter = Counter()
        self._asked: Counter = Counter()
        self._names: set[str] = set()  # execution names this system started (a repeat gets the same ARN back)
        self._chaos = Chaos()
        self.link = "intact"
        self.sources = live_sources(self.backend)
        self._subjects: dict[str, str] = {}  # client key -> order id, what the fault draws are keyed by
        self._left: list[dict[str, Any]] = []  # messages a second consumer received and left (visibility overrun)
        self.refusals: list[str] = []  # error codes the backend gave a repeated SendTaskSuccess
        self.stale_deletes = 0  # deletes with a receipt handle older than the latest receive
        self.events = self.backend.client("events")
        self.sqs = self.backend.client("sqs")
        self.sfn = self.backend.client("stepfunctions")
        ddb = self.backend.client("dynamodb")

        self.ledger = Ledger(resources)
        api_key = secrets.token_urlsafe(32)  # generated here, handed to the connection, never printed
        self.api = PaymentsApi(self.ledger, api_key=(API_KEY_HEADER, api_key), expires_after=self.windows.payments_api)
        self.api.start()
        self.bus = resources.ensure_bus("bus")
        self.bus_name = self.bus.rsplit("/", 1)[-1]
        self.queue = resources.ensure_queue("orders", visibility_timeout=VISIBILITY_TIMEOUT_S)
        self.tasks = resources.ensure_queue("tasks")
        rule_arn = resources.ensure_rule(
            "orders", bus=self.bus, pattern={"source": [ORDERS_SOURCE]}, targets=[Target("queue", self.queue.arn)]
        )
        resources.allow_send_from(self.queue, rule_arn, "events.amazonaws.com")
        self._archives = 0  # one archive per replayed order (moto replays a whole archive, whatever the window)
        connection = dl.ensure_connection(resources, "payments", api_key=(API_KEY_HEADER, api_key))
        destination = resources.ensure_api_destination(
            "payments",
            connection_arn=connection,
            endpoint=f"{self.api.url}/charges",
            method="POST",
            rate_limit_per_second=10,
        )
        self.dlq = resources.ensure_queue("payments-dlq")
        self.route = dl.ensure_route(
            resources,
            "payments",
            bus=self.bus,
            pattern={"source": [WORKFLOW_SOURCE]},
            api_destination_arn=destination,
            header_parameters={"Idempotency-Key": f"$.detail.metadata.{KEY_FIELD}"},
            retry_policy=dl.RetryPolicy(maximum_retry_attempts=3),
            dead_letter_queue=self.dlq,
            tap=True,
        )
        self.machine = resources.ensure_state_machine("workflow", workflow_definition(self.tasks.url, self.bus_name))

        def guard(table: str, scope: str, expires: float, lease: float, worker: str, **where: Any) -> Idempotency:
            store = DynamoDBStore(resources.name(table), client=ddb)
            store.create_table()
            return Idempotency(
                store=store,
                clock=self.clock,
                scope=scope,
                expires_after=expires,
                lease_duration=lease,
                local_cache=False,
                worker=worker,
                **where,
            )

        self.orders_guard = guard(
            "orders-idem",
            "orders-api",
            self.windows.orders_api,
            10.0,
            "orders-api",
            token_header="Idempotency-Key",  # noqa: S106 - a header name
        )
        consumer = {"token_field": KEY_PATH}
        self.consumer_guard = guard("consumer-idem", "consumer", self.windows.consumer, 60.0, "consumer-a", **consumer)
        # a second consumer process on the same queue and the same records (the visibility timeout overrun)
        self.second_consumer = guard("consumer-idem", "consumer", self.windows.consumer, 60.0, "consumer-b", **consumer)

    def stop(self) -> None:
        self.api.stop()

    def counts(self) -> Counts:
        return Counts(self.attempts.copy(), self.effects.copy(), self.absorbed.copy(), self.injected.copy())

    def reset_counts(self) -> None:
        for counter in (self.attempts, self.effects, self.absorbed, self.injected, self._asked):
            counter.clear()
        self.stale_deletes = 0

    # -- one order ------------------------------------------------------------------------------------------------
    def order(self, key: str, order: dict[str, Any], chaos: Chaos | None = None) -> None:
        """Send one order with client key ``key`` through every hop, injecting what ``chaos`` says.

        Use a new random key per order, as a client would: execution names derived from a key are taken for 90 days
        (and an emulator may keep them after the state machine is deleted), so a key reused across runs would meet
        ``ExecutionAlreadyExists`` and never charge. The faults are drawn per ``orderId``, so they repeat anyway."""
        unknown = set((chaos or Chaos()).rates) - set(self.sources)
        if unknown:
            raise ValueError(f"{sorted(unknown)} cannot be injected live on {self.backend.name}: {self.sources}")
        self._chaos = chaos or Chaos()
        self._subjects[key] = str(order.get("orderId", key))
        archive = self._archive_for_replay() if self._hit("archive_replay", key) else ""
        window_start = datetime.now(UTC) - timedelta(minutes=1)
        published, started = self.effects["bus"], self.effects["workflow"]
        self._client(key, order)
        self._consume_all(key, self.effects["bus"] - published)
        if archive:
            self._replay(key, archive, window_start, self.effects["bus"] - published)
        self._drain_payments(key, self.effects["workflow"] - started)

    def _hit(self, source: str, key: str) -> bool:
        """Does ``source`` strike now? Drawn for the order (not its random key), so a seed gives the same faults."""
        if source not in self.sources:
            return False
        subject = self._subjects.get(key, key)
        self._asked[(source, subject)] += 1
        if self._chaos.hits(source, subject, self._asked[(source, subject)]):
            self.injected[source] += 1
            return True
        return False

    def _absorb(self, where: str, key: str, how: str) -> None:
        """Count a duplicate stopped at ``where`` (a hop, or ``consumer-in-progress``) and note it in the trace."""
        self.absorbed[where] += 1
        self.trace.note(where.removesuffix("-in-progress"), f"duplicate absorbed: {how}", key=key)

    # -- client -> orders API -> bus ------------------------------------------------------------------------------
    def _client(self, key: str, order: dict[str, Any]) -> None:
        body = json.dumps(order).encode()
        lose = self._hit("client_retry", key)
        for attempt in (1, 2) if lose else (1,):
            sent = key if attempt == 1 or self.link != "client_new_key_on_retry" else str(uuid.uuid4())
            self.attempts["client"] += 1
            self.trace.record("client", "orders-api", f"POST /orders attempt {attempt}", key=key)
            self.attempts["orders-api"] += 1
            response = handle_http(
                self.orders_guard,
                "POST",
                "/orders",
                {"Idempotency-Key": sent},
                body,
                functools.partial(self._publish, sent, key),
            )
            if response.replayed:
                self._absorb("orders-api", key, "Idempotency-Key record, first response replayed")
            if attempt == 1 and lose:
                self.trace.lost("orders-api", "client", f"{response.status} lost", key=key)
            else:
                self.trace.reply("orders-api", "client", str(response.status), key=key)
        self.effects["client"] += 1

    def _publish(self, sent: str, key: str, request: Any) -> HttpResponse:
        self.effects["orders-api"] += 1
        order = request.json()
        for attempt in (1, 2) if self._hit("putevents_retry", key) else (1,):
            carried = str(uuid.uuid4()) if self.link == "orders_api_regenerates" else sent
            entry = {
                "Source": ORDERS_SOURCE,
                "DetailType": "OrderPlaced",
                "Detail": json.dumps(order_detail(carried, order)),
                "EventBusName": self.bus_name,
            }
            self.attempts["bus"] += 1
            answer = self.events.put_events(Entries=[entry])
            assert answer["FailedEntryCount"] == 0, answer
            self.effects["bus"] += 1
            self.trace.send("orders-api", "bus", f"PutEvents attempt {attempt} (a new event)", key=key)
        return HttpResponse(202, {"Content-Type": "application/json"}, json.dumps({"accepted": sent}).encode())

    def _archive_for_replay(self) -> str:
        """An archive of this order's events only: created just before it, deleted after its replay. (moto's
        StartReplay replays the whole archive, whatever the time window: capability ``eventbridge_replay``.)"""
        self._archives += 1
        return self.resources.ensure_archive(f"replay-{self._archives}", self.bus, {"source": [ORDERS_SOURCE]})

    def _replay(self, key: str, archive: str, start: datetime, events: int) -> None:
        """Replay the order's archived events (the bus sends them again, to every rule), and consume them."""
        self.attempts["bus"] += events
        self.trace.record("bus", "bus", "StartReplay of the archive", key=key)
        state = replay(self.resources, archive, self.bus, start, datetime.now(UTC), timeout_s=self.wait_s)
        assert state["State"] == "COMPLETED", state
        self.events.delete_archive(ArchiveName=archive.rsplit("/", 1)[-1])
        self.effects["bus"] += events
        self.trace.send("bus", "queue", f"archive replay: {events} event(s) again, with replay-name", key=key)
        self._consume_all(key, events)

    # -- queue -> consumer -> StartExecution ------------------------------------------------------------------
    def _receive(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )

    def _consume_all(self, key: str, expected: int) -> None:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.wait_s
        while len(got) < expected and time.monotonic() < deadline:  # LocalStack routes in the background
            got += self._receive()
            if len(got) < expected:
                time.sleep(0.05)
        assert len(got) == expected, f"the rule routed {len(got)} events to the queue, expected {expected}"
        for message in got:
            self.trace.send("bus", "queue", "rule matched: SendMessage", key=key)
            self.effects["queue"] += 1
            if self._hit("deliver_twice", key):  # SQS at-least-once: the same body delivered again
                self.sqs.send_message(QueueUrl=self.queue.url, MessageBody=message["Body"])
        pending = list(got)
        waiting: list[dict[str, Any]] = []  # received, not deleted: back when their visibility timeout ends
        rounds = 0
        while pending or waiting:
            rounds += 1
            assert rounds < 20, "the consumer did not finish"
            for message in pending:
                if self._consume(message, key):
                    self._delete(message)
                else:
                    waiting.append(message)
            waiting += self._left
            self._left = []
            pending = self._receive()
            if not pending and waiting:  # let the visibility timeout (and the consumer's lease) run out
                self.clock.advance(VISIBILITY_TIMEOUT_S + 1.0)  # the consumer's lease (60 s) may still run
                for message in waiting:
                    with contextlib.suppress(ClientError):  # deleted meanwhile (a stale handle deleted it)
                        self.sqs.change_message_visibility(
                            QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                waiting = []
                pending = self._receive()

    def _delete(self, message: dict[str, Any]) -> None:
        if message.get("stale"):
            self.stale_deletes += 1  # AWS: a delete with an older receipt handle may leave the message
        self.sqs.delete_message(QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"])

    def _consume(self, message: dict[str, Any], key: str) -> bool:
        """One receive. True when the message may be deleted."""
        self.attempts["consumer"] += 1
        event = json.loads(message["Body"])
        self.trace.send("queue", "consumer", "ReceiveMessage", key=key)
        try:
            token = event["id"] if self.link == "event_id_as_key" else None  # the broken link: a key made by the bus
            outcome = self.consumer_guard.execute(
                event["detail"], lambda: self._start(event["detail"], key, message, token), token=token
            )
        except InProgress:
            self._absorb("consumer-in-progress", key, "record IN_PROGRESS (409): left for later")
            return False
        except WorkerCrashed:
            self.trace.crash("consumer", "crashed before DeleteMessage", key=key)
            return False
        if outcome.replayed:
            self._absorb("consumer", key, "idempotency record, stored result replayed")
        return True

    def _start(self, detail: dict[str, Any], key: str, message: dict[str, Any], token: str | None = None) -> str:
        self.effects["consumer"] += 1
        carried = token or detail["metadata"][KEY_FIELD]
        name = str(uuid.uuid4()) if self.link == "random_execution_name" else derive_key(carried, "execution")
        payload = workflow_input(carried, detail)
        retry = self._hit("startexecution_retry", key)
        new = False
        for attempt in (1, 2) if retry else (1,):
            self.attempts["workflow"] += 1
            said = "a random name" if self.link == "random_execution_name" else "name=derive_key(K)"
            self.trace.record("consumer", "workflow", f"StartExecution {said} attempt {attempt}", key=key)
            try:
                self.sfn.start_execution(stateMachineArn=self.machine, name=name, input=json.dumps(payload))
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                    raise
                self._absorb("workflow", key, "ExecutionAlreadyExists (name used before)")
                self.trace.error("workflow", "consumer", "ExecutionAlreadyExists", key=key)
                break
            if name in self._names:  # AWS answered with the running execution's ARN: nothing new started
                self._absorb("workflow", key, "same name, same input: same execution")
            else:
                self._names.add(name)
                self.effects["workflow"] += 1
                new = True
            if attempt == 1 and retry:
                self.trace.lost("workflow", "consumer", "response lost", key=key)
            else:
                self.trace.reply("workflow", "consumer", "executionArn", key=key)
        if new:
            self._run_workflow(name, key)
        if self._hit("exceed_visibility", key):
            self._overrun(message, detail, key)
        if self._hit("crash_after_effect", key):
            raise WorkerCrashed(key)
        return name

    def _overrun(self, first: dict[str, Any], detail: dict[str, Any], key: str) -> None:
        """The work outlasts the visibility timeout: the message is visible again while this consumer still works,
        and a second consumer receives it. Its record says IN_PROGRESS, so it leaves the message alone."""
        self.trace.note("consumer", "still working: the visibility timeout ran out", key=key)
        self.sqs.change_message_visibility(
            QueueUrl=self.queue.url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
        )  # what the timeout running out does, without waiting 30 s
        deadline = time.monotonic() + self.wait_s
        again: list[dict[str, Any]] = []
        while not again and time.monotonic() < deadline:
            again = [m for m in self._receive() if m["MessageId"] == first["MessageId"]]
        assert again, "the message did not come back after its visibility timeout"
        first["stale"] = True  # the first consumer's handle is now older than the latest receive
        self.attempts["consumer"] += 1
        self.trace.send("queue", "consumer", "ReceiveMessage (a second consumer, while the first still works)", key=key)
        try:
            self.second_consumer.execute(detail, lambda: self._start(detail, key, again[0]))
        except InProgress:
            self._absorb("consumer-in-progress", key, "record IN_PROGRESS (409): the first consumer still works")
        self._left.append(again[0])  # not deleted: back after the second consumer's visibility timeout

    # -- workflow: the task token, then putEvents -----------------------------------------------------------------
    def _run_workflow(self, name: str, key: str) -> None:
        arn = self.machine.replace(":stateMachine:", ":execution:") + f":{name}"
        deadline = time.monotonic() + self.wait_s
        tasks: list[dict[str, Any]] = []
        while not tasks and time.monotonic() < deadline:
            tasks = self.sqs.receive_message(QueueUrl=self.tasks.url, WaitTimeSeconds=1).get("Messages", [])
        assert tasks, "the workflow never asked for its authorisation"
        token = json.loads(tasks[0]["Body"])["token"]
        self.sqs.delete_message(QueueUrl=self.tasks.url, ReceiptHandle=tasks[0]["ReceiptHandle"])
        self.trace.send("workflow", "task-worker", "waitForTaskToken", key=key)
        self._task_success(token, key, 1)
        status = self._wait_done(arn, deadline)
        self.trace.send("workflow", "bus", "events:putEvents PaymentRequested", key=key)
        if self._hit("second_task_success", key):
            # The worker never saw its first answer acknowledged and sends it again (after the workflow moved on).
            self._task_success(token, key, 2)
        assert status == "SUCCEEDED", f"the workflow ended {status}"

    def _task_success(self, token: str, key: str, attempt: int) -> None:
        self.attempts["task-worker"] += 1
        self.trace.record("task-worker", "workflow", f"SendTaskSuccess attempt {attempt}", key=key)
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps({"authorised": True}))
        except ClientError as exc:  # the task is closed: AWS answers TaskTimedOut, moto InvalidToken
            self.refusals.append(exc.response["Error"]["Code"])
            self._absorb("task-worker", key, "the token was already answered")
            self.trace.error("workflow", "task-worker", "refused: token already answered", key=key)
            return
        self.effects["task-worker"] += 1
        self.trace.reply("workflow", "task-worker", "accepted", key=key)

    def _wait_done(self, arn: str, deadline: float) -> str:
        try:
            described, _ = poll_until_done(
                self.sfn, arn, poll_seconds=POLL_SECONDS, timeout=max(0.0, deadline - time.monotonic())
            )
        except WorkflowTimeout:
            return "RUNNING"
        return str(described["status"])

    # -- API destination -> payments API -> ledger ------------------------------------------------------------
    def _drain_payments(self, key: str, expected: int = 1) -> None:
        if self._hit("apidest_retry", key):
            self.api.faults.lose_responses(1)
        deadline = time.monotonic() + self.wait_s
        assert self.route.tap is not None, "the route feeds the dispatcher through its tap queue"
        while time.monotonic() < deadline and queue_depth(self.sqs, self.route.tap.url) < expected:
            time.sleep(0.05)
        dispatcher = dl.ApiDestinationDispatcher.for_route(
            self.backend, self.route, clock=dl.ManualClock(), seed=self.seed, backoff_base=1.0
        )
        self.trace.send("bus", "api-destination", "rule matched PaymentRequested", key=key)
        before = len(self.api.served)
        delivered = dispatcher.drain(wait_seconds=0)
        served = [s for s in self.api.served[before:] if s.key and not s.key.startswith("$.")]  # not LocalStack's own
        for attempt, s in enumerate(served, 1):
            self.attempts["api-destination"] += 1
            self.attempts["payments-api"] += 1
            self.trace.record("api-destination", "payments-api", f"POST /charges attempt {attempt}", key=key)
            if s.replayed:
                self._absorb("payments-api", key, "Idempotency-Key record, first response replayed")
            elif s.status == 201:
                self.effects["payments-api"] += 1
                self.trace.effect("payments-api", "ledger", "charge", key=key)
            if "lost" in s.note:
                self.trace.lost("payments-api", "api-destination", "response lost", key=key)
            else:
                self.trace.reply("payments-api", "api-destination", str(s.status), key=key)
        self.effects["api-destination"] += len(delivered)

    def charges_for(self, order_id: str) -> int:
        return self.ledger.charges_per_order().get(order_id, 0)


# -- the FIFO trap ----------------------------------------------------------------------------------------------------
FIFO_SOURCE = "capstone.fifo"
#: The fix: send only the operation's stable fields, so the body (and its SHA-256) is the same on every PutEvents.
STABLE_BODY = {
    "InputPathsMap": {"key": f"$.detail.metadata.{KEY_FIELD}", "order": "$.detail.data.order-id"},
    "InputTemplate": f'{{"{KEY_FIELD}": "<key>", "order-id": "<order>"}}',
}


def ensure_fifo_target(resources: Resources, name: str, *, stable_body: bool = False) -> tuple[str, Any]:
    """A rule on the bus whose target is an SQS FIFO queue with content-based deduplication (the trap), or, with
    ``stable_body``, the same target sending only the stable fields (the fix). Returns (bus name, queue)."""
    bus = resources.ensure_bus("bus")
    queue = resources.ensure_queue(name, fifo=True, content_based_dedup=True)
    extra: dict[str, Any] = {"SqsParameters": {"MessageGroupId": "orders"}}
    if stable_body:
        extra["InputTransformer"] = STABLE_BODY
    pattern = {"source": [FIFO_SOURCE], "detail-type": [name]}
    rule = resources.ensure_rule(name, bus=bus, pattern=pattern, targets=[Target("fifo", queue.arn, extra)])
    resources.allow_send_from(queue, rule, "events.amazonaws.com")
    return bus.rsplit("/", 1)[-1], queue


def fifo_trap(
    resources: Resources, name: str, key: str, *, stable_body: bool = False, wait_s: float = 10.0
) -> list[dict[str, Any]]:
    """Publish one order twice (a PutEvents retry) through :func:`ensure_fifo_target`; return the bodies the FIFO
    queue delivered."""
    events, sqs = resources.backend.client("events"), resources.backend.client("sqs")
    bus_name, queue = ensure_fifo_target(resources, name, stable_body=stable_body)
    detail = json.dumps(order_detail(key, {"orderId": "o-fifo", "amount": 25}))
    entry = {"Source": FIFO_SOURCE, "DetailType": name, "Detail": detail, "EventBusName": bus_name}
    for _ in range(2):
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    while len(bodies) < 2 and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
        if bodies and not got:
            break  # one arrived and nothing more within a second: the copy was deduplicated
    return bodies
