"""Notebook 09's harness: a payments consumer on DynamoDB, the scenarios it meets, and the lease takeover.

Why a module: notebook 09 shows a consumer that charges once per client token whatever the queue hands it. Its cells
keep the calls, the counts and the asserts; what they stand on lives here, tested live on the embedded backend
(``tests/chapters/test_consumer.py``):

- :class:`Bench`: what every consumer of the notebook shares (one record table, one clock, one transition log, one
  ledger, one DynamoDB client whose calls are counted per record), and each consumer process made from it;
- :class:`CardGateway`: the side effect (it may throttle, it declines above a card limit, every charge a ledger row);
- :func:`publish` and :func:`consume`: the orders service's sends, and a consumer's receive loop over
  ``helpers.services.messaging`` in which a scripted ``exceed_visibility`` makes SQS redeliver a message for real;
- :class:`NaiveConsumer` and :class:`BatchConsumer`: the two batch handlers the loop drives;
- :func:`outcomes_by_order`, :data:`RECORD_MACHINE`, :func:`path_of`, :func:`record_diagram`: reading what happened;
- :func:`race` and :func:`race_widget`: N workers on one message;
- :func:`ledger_effect`: a charge as a transactional effect;
- :func:`lease_takeover`: worker A stalls past its lease and B takes over, for Powertools and three forms of ours, as
  one plain function (:class:`TakeoverStage` in, :class:`TakeoverResult` out, no printing) that the benchmark can
  call too.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from helpers.aws.resources import Resources
from helpers.idempotency import (
    BatchReport,
    Clock,
    DynamoDBStore,
    Effect,
    EffectContext,
    Idempotency,
    IdempotencyConfig,
    InProgress,
    LeaseLost,
    ManualClock,
    RecordResult,
    TerminalError,
    TransitionLog,
    process_sqs_batch,
)
from helpers.idempotency.sqs_batch import DONE
from helpers.instruments import viz
from helpers.instruments.faults import EXCEED_VISIBILITY, FaultPlan, ResponseLost, Throttled, retry
from helpers.instruments.ledger import Ledger
from helpers.instruments.tokens import SeededTokens
from helpers.instruments.trace import Trace
from helpers.services.messaging import delete, receive, release
from helpers.services.powertools import powertools_function

CARD_LIMIT = 1000.0  # the course's gateway declines a charge above this: a terminal error, stored and replayed
DECLINED_STATUS = 402  # the HTTP status the course gives a decline (its choice; card networks have their own codes)


# -- the bench -------------------------------------------------------------------------------------------------------
class Bench:
    """What every consumer of notebook 09 shares: the record table, the clock, the transition log, the ledger.

    ``ddb`` is the consumers' DynamoDB client (many threads share it); every call it makes is recorded in ``calls``
    and tagged with the idempotency record it touches, so round trips are counted per record. The clock is a
    :class:`ManualClock` starting at the real time (so the records' TTL attribute is never already in the past),
    moved by hand instead of slept.
    """

    def __init__(self, resources: Resources, config: IdempotencyConfig, *, clock: ManualClock | None = None) -> None:
        self.resources, self.config = resources, config
        self.backend = resources.backend
        self.sqs = self.backend.client("sqs")
        self.ddb = self.backend.client("dynamodb", max_pool_connections=32)
        self.store = DynamoDBStore(resources.name("idempotency"), self.ddb)
        self.store.create_table()
        self.calls = Trace("DynamoDB calls of the consumers")
        self.calls.instrument(self.ddb, "consumers", key=self._record_key)
        self.ledger = Ledger(resources)
        self.clock = clock if clock is not None else ManualClock(start=float(int(time.time())))
        self.log = TransitionLog()
        self._keys = Idempotency(config, store=self.store, clock=self.clock, worker="keys")

    def _record_key(self, operation: str, params: dict[str, Any], parsed: Any) -> str:
        if operation == "TransactWriteItems":
            params = next(iter(params["TransactItems"][0].values()))
        item = params.get("Key") or params.get("Item") or {}
        return str(item.get(self.store.key_attr, {}).get("S", ""))

    def consumer(self, worker: str, **options: Any) -> Idempotency:
        """One consumer process: its own local cache and fault hooks; the store, the clock and the log are shared."""
        return Idempotency(self.config, store=self.store, clock=self.clock, log=self.log, worker=worker, **options)

    def key_of(self, payload: Any) -> str:
        """The idempotency key of a payload (computed, no I/O)."""
        identity = self._keys.identify(payload)
        if identity is None:
            raise ValueError("this payload has no idempotency key")
        return identity.key

    def round_trips(self) -> int:
        """DynamoDB calls the consumers have made so far."""
        return self.calls.count(kind="call")

    def counted(self, fn: Callable[[], Any]) -> int:
        """How many DynamoDB calls ``fn()`` made through the consumers' client."""
        before = self.round_trips()
        fn()
        return self.round_trips() - before

    def traced_client(self, trace: Trace, actor: str, *, label: Callable[..., str | None] | None = None) -> Any:
        """A DynamoDB client of its own (one "container"), its calls drawn on ``trace`` as ``actor``."""
        client = self.backend.client("dynamodb", max_pool_connections=4)
        trace.instrument(client, actor, target="DynamoDB", label=label)
        return client

    def powertools_consumer(
        self,
        actor: str,
        body: Callable[..., Any],
        *,
        table: str,
        prefix: str = "payments.charge",
        lease_s: float | None = None,
        trace: Trace | None = None,
        label: Callable[..., str | None] | None = None,
    ) -> Callable[..., Any]:
        """One Powertools "container": ``body`` under Powertools' ``idempotent_function``, with the same key, payload
        validation and lease as ours (``helpers.services.powertools`` gives it the lease through a stand-in Lambda
        context) and a client of its own, instrumented on ``trace`` (default: the consumers' call count)."""
        token_field = self.config.token_field
        if token_field is None:
            raise ValueError("Powertools needs the key's JMESPath: give the config a token_field")
        return powertools_function(
            body,
            client=self.traced_client(trace if trace is not None else self.calls, actor, label=label),
            table=table,
            key=token_field,
            validation=self.config.fingerprint_expression,
            lease_s=self.config.lease_duration if lease_s is None else lease_s,
            expires_after_s=int(self.config.expires_after),
            prefix=prefix,
            data_argument="message",
            function_name=f"{self.resources.prefix}-payments",
        )

    def close(self) -> None:
        self.calls.uninstrument()


# -- the side effect -------------------------------------------------------------------------------------------------
@dataclass
class CardGateway:
    """The payment gateway the consumers charge through.

    ``faults`` may throttle a charge before any work (retryable); an amount above ``limit`` is declined, a
    :class:`TerminalError` with the course's status 402; every charge made is one row in the ledger (``book``).
    """

    ledger: Ledger
    faults: FaultPlan = field(default_factory=FaultPlan.none)
    limit: float = CARD_LIMIT

    def charge(self, order: Mapping[str, Any], *, by: str, key: str = "", book: Ledger | None = None) -> dict[str, Any]:
        self.faults.check("throttle", order["order_id"])
        if order["amount"] > self.limit:
            raise TerminalError(
                f"card declined for {order['order_id']}", code="card_declined", http_status=DECLINED_STATUS
            )
        (book or self.ledger).charge(order["order_id"], order["amount"], by=by, key=key)
        return {"order_id": order["order_id"], "charged": order["amount"]}


def ledger_effect(
    ledger: Ledger, order: Mapping[str, Any], *, by: str | None = None
) -> Callable[[EffectContext], Effect]:
    """The charge as a transactional effect: its ledger row commits with the record or not at all.

    Building it has no side effect of its own (it may be built for a request that turns out to be a duplicate).
    The row is tagged with the worker (or ``by``) and the client's token.
    """

    def build(ctx: EffectContext) -> Effect:
        put = ledger.put_item_request(order["order_id"], order["amount"], by=by or ctx.worker, key=ctx.token or "")
        return Effect(result={"order_id": order["order_id"], "charged": order["amount"]}, writes=[put])

    return build


# -- the queue -------------------------------------------------------------------------------------------------------
def envelope(message: Mapping[str, Any]) -> dict[str, Any]:
    """The payload the consumer protects: the client's token from its dedicated attribute, and the order."""
    attribute = message.get("MessageAttributes", {}).get("idempotency-key", {})
    return {"key": attribute.get("StringValue"), "order": json.loads(message["Body"])}


def order_of(message: Mapping[str, Any]) -> str:
    return str(json.loads(message["Body"])["order_id"])


def _send(sqs: Any, queue_url: str, order: Mapping[str, Any], token: str | None) -> dict[str, Any]:
    attributes = {"idempotency-key": {"DataType": "String", "StringValue": token}} if token else {}
    answer: dict[str, Any] = sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(order), MessageAttributes=attributes
    )
    return answer


def _every_attempt(send: Callable[[], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    return lambda attempt: send()


def publish(
    sqs: Any, queue_url: str, orders: Iterable[Mapping[str, Any]], tokens: Mapping[str, str], network: FaultPlan
) -> list[dict[str, Any]]:
    """The orders service: one SendMessage per order, its token in the message attribute ``idempotency-key`` (an
    order missing from ``tokens`` is sent without one). An answer ``network`` loses is retried with the same token:
    a second message, with a new ``MessageId``. Returns one row per message SQS stored."""
    network.reset()
    sent: list[dict[str, Any]] = []
    for order in orders:
        oid = order["order_id"]
        send = functools.partial(network.call, oid, _send, sqs, queue_url, order, tokens.get(oid))
        outcome = retry(_every_attempt(send))  # the same message, the same token, on every attempt
        for error in outcome.errors:  # the call that reached SQS but whose answer was lost still stored a message
            if isinstance(error, ResponseLost):
                sent.append({"order_id": oid, "MessageId": error.result["MessageId"], "answer": "lost"})
        if outcome.ok:
            sent.append({"order_id": oid, "MessageId": outcome.result["MessageId"], "answer": "received"})
    return sent


BatchHandler = Callable[[list[dict[str, Any]]], tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]], dict]]


@dataclass
class Consumption:
    """What :func:`consume` did: one row per receive, and every delivery (which message, which receive)."""

    rounds: Any  # a pandas DataFrame indexed by receive
    deliveries: list[dict[str, Any]]

    def per_order(self) -> Any:
        """Per order: messages delivered and how many different ``MessageId`` they carried (a new send gets a new
        one; a redelivery keeps its message's)."""
        import pandas as pd

        frame = pd.DataFrame(self.deliveries)
        table = frame.groupby("order_id").agg(deliveries=("MessageId", "size"), MessageIds=("MessageId", "nunique"))
        table.index.name = "order"
        return table


def consume(
    sqs: Any, queue_url: str, handle_batch: BatchHandler, *, lapses: FaultPlan | None = None, max_rounds: int = 5
) -> Consumption:
    """Receive up to 10 messages at a time until a receive finds none; ``handle_batch(messages)`` returns
    ``(done, retry, row)``. Done messages are deleted; retry messages are released at once (``ChangeMessageVisibility``
    0 instead of waiting out their visibility timeout).

    A done message that ``lapses`` strikes with ``exceed_visibility`` is not deleted in time: its visibility timeout
    runs out first (released at once here, instead of waited for), so SQS delivers the **same message** again, a
    redelivery with the same ``MessageId``.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for n in range(1, max_rounds + 1):
        got = receive(sqs, queue_url)
        if not got:
            break
        deliveries += [{"receive": n, "order_id": order_of(m), "MessageId": m["MessageId"]} for m in got]
        done, again, row = handle_batch(got)
        lapsed = [m for m in done if lapses is not None and lapses.should(EXCEED_VISIBILITY, order_of(m))]
        delete(sqs, queue_url, [m for m in done if not any(m is x for x in lapsed)])
        release(sqs, queue_url, [*again, *lapsed])
        rows.append({"receive": n, "messages": len(got), **row, "not deleted in time": len(lapsed)})
    return Consumption(pd.DataFrame(rows).set_index("receive"), deliveries)


class NaiveConsumer:
    """Charges every message it receives: a throttled charge goes back to the queue, a declined card is dropped."""

    def __init__(self, gateway: CardGateway, book: Ledger) -> None:
        self.gateway, self.book = gateway, book

    def __call__(self, messages: list[dict[str, Any]]) -> tuple[list[dict], list[dict], dict[str, int]]:
        done, again = [], []
        before = self.book.count()
        for m in messages:
            try:
                self.gateway.charge(json.loads(m["Body"]), by="naive", book=self.book)
            except Throttled:
                again.append(m)  # retryable: let SQS deliver it again
            except TerminalError:
                done.append(m)  # declined: nothing to retry
            else:
                done.append(m)
        return done, again, {"charges": self.book.count() - before}


class BatchConsumer:
    """``process_sqs_batch`` over each receive; keeps every batch report with the DynamoDB calls it made."""

    def __init__(self, idem: Idempotency, calls: Trace, action: Callable[[dict[str, Any]], Any]) -> None:
        self.idem, self.calls, self.action = idem, calls, action
        self.reports: list[tuple[BatchReport, Trace]] = []

    def __call__(self, messages: list[dict[str, Any]]) -> tuple[list[Any], list[Any], dict[str, int]]:
        mark = self.calls.mark()
        report = process_sqs_batch(self.idem, messages, self.action, payload=envelope)
        seen = self.calls.view(since=mark)
        self.reports.append((report, seen))
        counts = report.counts()
        row = {status: counts.get(status, 0) for status in DONE}
        row["reported (batchItemFailures)"] = len(report.response["batchItemFailures"])
        row["round trips"] = seen.count(kind="call")
        return list(report.done), list(report.retry), row

    def results(self) -> list[RecordResult]:
        return [r for report, _ in self.reports for r in report.results]


# -- reading what happened -------------------------------------------------------------------------------------------
def outcome_label(result: RecordResult) -> str:
    """``processed (executed)``, ``replayed (cache)``, ``terminal: TerminalError card_declined``, ``failed: ...``."""
    if result.outcome is not None:
        return f"{result.status} ({result.outcome.source})"
    err = result.error
    code = f" {err.code}" if isinstance(err, TerminalError) else ""
    return f"{result.status}: {type(err).__name__}{code}"


def outcomes_by_order(consumer: BatchConsumer, key_of: Callable[[str], str | None]) -> Any:
    """One row per order over every receive: deliveries, what each did, how many were reported, round trips (the
    DynamoDB calls tagged with the order's record; ``key_of(order_id)`` is None for an order without a key)."""
    import pandas as pd

    by_order: dict[str, list[RecordResult]] = defaultdict(list)
    for r in consumer.results():
        by_order[order_of(r.record)].append(r)
    rows = []
    for oid, results in sorted(by_order.items()):
        key = key_of(oid)
        trips = sum(seen.count(kind="call", key=key) for _, seen in consumer.reports) if key else 0
        rows.append(
            {
                "order": oid,
                "deliveries": len(results),
                "outcomes": ", ".join(outcome_label(r) for r in results),
                "reported": sum(r.retried for r in results),
                "round trips": trips,
            }
        )
    return pd.DataFrame(rows).set_index("order")


#: The record's state machine (helpers/idempotency/record.py), as (from, to, event).
RECORD_MACHINE: tuple[tuple[str, str, str], ...] = (
    ("ABSENT", "IN_PROGRESS", "claim"),
    ("IN_PROGRESS", "COMPLETED", "complete"),
    ("IN_PROGRESS", "FAILED", "fail"),
    ("IN_PROGRESS", "ABSENT", "release"),
    ("IN_PROGRESS", "IN_PROGRESS", "conflict"),
    ("IN_PROGRESS", "IN_PROGRESS", "takeover"),
    ("COMPLETED", "COMPLETED", "replay"),
    ("FAILED", "FAILED", "replay_error"),
    ("COMPLETED", "EXPIRED", "expiry"),
    ("EXPIRED", "IN_PROGRESS", "claim"),
)


def path_of(log: TransitionLog, key: str) -> list[tuple[str, str, str]]:
    """The (from, to, event) steps one key took, in order, from the shared transition log."""
    return [(e["from"], e["to"], e["event"]) for e in log.entries(key)]


def record_diagram(log: TransitionLog, key: str, title: str) -> viz.Mermaid:
    """The whole state machine, with the path this key took highlighted (green states, "step N" on its edges)."""
    return viz.state_diagram(RECORD_MACHINE, path=path_of(log, key), title=title)


# -- N workers, one message ------------------------------------------------------------------------------------------
def race_message(tokens: SeededTokens, number: int, *, amount: float = 42.00) -> dict[str, Any]:
    """The message of race ``number``: order-92NN with a fresh client token."""
    return {"key": tokens.new(), "order": {"order_id": f"order-92{number:02d}", "amount": amount, "customer": "c-20"}}


def race(
    bench: Bench, gateway: CardGateway, n_workers: int, message: Mapping[str, Any], *, book: Ledger | None = None
) -> dict[str, Any]:
    """``n_workers`` consumers (threads) process one message at once; then the refused ones retry.

    The winner holds its lease (it waits inside the charge) until every other worker has been answered, so the
    race ends the same way every run; the losers then retry, as SQS would redeliver their copies.
    """
    book = book or bench.ledger
    order = message["order"]
    workers = [bench.consumer(f"racer-{i}") for i in range(n_workers)]
    first_try: dict[Idempotency, Any] = {}
    lock, all_answered, start = threading.Lock(), threading.Event(), threading.Barrier(n_workers)
    if n_workers == 1:
        all_answered.set()

    def hold_then_charge(worker: str) -> dict[str, Any]:
        all_answered.wait(timeout=10)  # the winner keeps its lease until every other worker was answered
        return gateway.charge(order, by=worker, key=message["key"], book=book)

    def run(worker: Idempotency) -> None:
        start.wait()
        try:
            result: Any = worker.execute(message, lambda: hold_then_charge(worker.worker))
        except Exception as exc:  # InProgress expected; anything else is counted, not hidden
            result = exc
        with lock:
            first_try[worker] = result
            if sum(isinstance(r, Exception) for r in first_try.values()) == n_workers - 1:
                all_answered.set()

    before = bench.round_trips()
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    refused = [w for w, r in first_try.items() if isinstance(r, InProgress)]
    retries = [
        w.execute(message, lambda: gateway.charge(order, by="late", key=message["key"], book=book)) for w in refused
    ]
    return {
        "workers": n_workers,
        "charged": sum(1 for r in first_try.values() if getattr(r, "source", None) == "executed"),
        "refused, 409 in progress": len(refused),
        "other errors": sum(
            1 for r in first_try.values() if isinstance(r, Exception) and not isinstance(r, InProgress)
        ),
        "replayed on retry": sum(1 for r in retries if r.replayed and r.source == "store"),
        "ledger rows": book.charges_per_order().get(order["order_id"], 0),
        "round trips": bench.round_trips() - before,
    }


def race_widget(run: Callable[[int], Mapping[str, Any]], *, default: int, maximum: int = 16) -> Any:
    """A slider and a button that run another race and show its row (it needs a live JupyterLab: nothing runs until
    the button is pressed, so a headless run shows the controls only)."""
    import ipywidgets as widgets
    import pandas as pd
    from IPython.display import display

    slider = widgets.IntSlider(value=default, min=1, max=maximum, description="workers")
    button = widgets.Button(description="race again")
    output = widgets.Output()

    def on_click(_: Any) -> None:
        with output:
            output.clear_output()
            display(pd.DataFrame([run(slider.value)]).set_index("workers"))

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([slider, button]), output])


# -- the lease takeover ----------------------------------------------------------------------------------------------
A, B = "worker A", "worker B"
TAKEOVER_VARIANTS = ("Powertools", "ours, unfenced", "ours, fenced (2 round trips)", "ours, single round trip")


class Charges(Protocol):
    """The side effect of a takeover run, wherever its rows live (notebook 09's ledger, the benchmark's table)."""

    def charge(self, by: str) -> dict[str, Any]:
        """Charge now; returns the result to store (it must carry ``charged_by``)."""
        ...

    def effect(self, by: str) -> Effect:
        """The same charge as a transactional effect (its writes commit with the record), same result."""
        ...

    def made_by(self) -> list[str]:
        """Who has charged so far, in any order."""
        ...


@dataclass
class LedgerCharges:
    """:class:`Charges` for one order in a course :class:`Ledger`; each charge is drawn on ``trace`` if given."""

    ledger: Ledger
    order: Mapping[str, Any]
    key: str = ""
    trace: Trace | None = None

    def result(self, by: str) -> dict[str, Any]:
        return {"order_id": self.order["order_id"], "charged": self.order["amount"], "charged_by": by}

    def charge(self, by: str) -> dict[str, Any]:
        if self.trace is not None:
            self.trace.effect(by, "ledger", f"charge {self.order['order_id']}")
        self.ledger.charge(self.order["order_id"], self.order["amount"], by=by, key=self.key)
        return self.result(by)

    def effect(self, by: str) -> Effect:
        put = self.ledger.put_item_request(self.order["order_id"], self.order["amount"], by=by, key=self.key)
        return Effect(result=self.result(by), writes=[put])

    def made_by(self) -> list[str]:
        return [c["by"] for c in self.ledger.charges() if c["order_id"] == self.order["order_id"]]


@dataclass(frozen=True)
class TakeoverStage:
    """Everything a takeover run needs that differs between notebook 09 and the benchmark.

    ``client(worker)`` gives each worker its own DynamoDB client (instrument it to draw the run); ``reader`` reads
    the outcome afterwards (not drawn). Ours runs on ``config`` (key, fingerprint, lease) over ``table`` with
    ``clock``: a :class:`ManualClock` is moved past the lease, any other clock is slept past it. Powertools reads the
    wall clock, so its worker A really sleeps past ``powertools_lease_s``. ``on_stall(worker)`` is told when A's
    lease has run out (to draw it).
    """

    client: Callable[[str], Any]
    reader: Any
    config: IdempotencyConfig
    table: str
    clock: Clock
    powertools_table: str | None = None
    powertools_lease_s: float = 0.1
    powertools_prefix: str = "takeover"
    log: TransitionLog | None = None
    on_stall: Callable[[str], None] | None = None


@dataclass(frozen=True)
class TakeoverResult:
    """How one takeover run ended: who charged, what the stalled worker A was told, whose result the record holds."""

    variant: str
    charged_by: tuple[str, ...]
    told: str
    record_holds: str | None
    a_result: Any = field(default=None, repr=False, compare=False)  # what A's call returned, or the error it raised

    @property
    def charges(self) -> int:
        return len(self.charged_by)

    def row(self) -> dict[str, Any]:
        return {
            "charges": self.charges,
            "what A was told": self.told,
            "record ends with the result of": self.record_holds,
        }


def told(result: Any) -> str:
    """What worker A learnt from its call, in a word or a sentence."""
    if isinstance(result, LeaseLost):
        return f"LeaseLost: {result.during} refused (its own result kept on the error)"
    if isinstance(result, BaseException):
        return type(result).__name__
    if getattr(result, "replayed", False):
        return "replayed B's result"
    return "nothing: returned normally"


def _sleep_past(lease_s: float) -> None:
    time.sleep(lease_s + max(0.05, lease_s / 2))


def _let_lease_pass(stage: TakeoverStage, worker: str) -> None:
    lease = stage.config.lease_duration
    if isinstance(stage.clock, ManualClock):
        stage.clock.advance(lease + 1)
    else:
        _sleep_past(lease)
    if stage.on_stall is not None:
        stage.on_stall(worker)


def _ours(stage: TakeoverStage, worker: str) -> Idempotency:
    store = DynamoDBStore(stage.table, stage.client(worker))
    return Idempotency(stage.config, store=store, clock=stage.clock, log=stage.log, worker=worker, local_cache=False)


def _ours_record_holds(stage: TakeoverStage, message: Mapping[str, Any]) -> str | None:
    reader = Idempotency(stage.config, store=DynamoDBStore(stage.table, stage.reader), clock=stage.clock)
    record = reader.lookup(message)
    value = record.value() if record is not None and record.response else None
    return value.get("charged_by") if isinstance(value, Mapping) else None


def _powertools(stage: TakeoverStage, message: Mapping[str, Any], charges: Charges) -> tuple[Any, str | None]:
    if stage.powertools_table is None or stage.config.token_field is None:
        raise ValueError("the Powertools variant needs powertools_table and a config with token_field")
    prefix = f"{stage.powertools_prefix}.{secrets.token_hex(4)}"  # this run's records, and only them

    def build(worker: str, body: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        return powertools_function(
            body,
            client=stage.client(worker),
            table=str(stage.powertools_table),
            key=str(stage.config.token_field),
            validation=stage.config.fingerprint_expression,
            lease_s=stage.powertools_lease_s,
            expires_after_s=int(stage.config.expires_after),
            prefix=prefix,
            data_argument="message",
        )

    worker_b = build(B, lambda message: charges.charge(B))

    def a_body(message: dict[str, Any]) -> Any:
        _sleep_past(stage.powertools_lease_s)  # A stalls past its lease: Powertools reads the wall clock
        if stage.on_stall is not None:
            stage.on_stall(A)
        worker_b(message=message)  # meanwhile, the redelivered message reaches worker B
        return charges.charge(A)

    try:
        a_result: Any = build(A, a_body)(message=dict(message))
    except Exception as exc:  # what A is told is the point of the scenario
        a_result = exc
    items = stage.reader.scan(
        TableName=stage.powertools_table,
        ConsistentRead=True,
        FilterExpression="begins_with(#id, :p)",
        ExpressionAttributeNames={"#id": "id"},
        ExpressionAttributeValues={":p": {"S": prefix + "#"}},
    )["Items"]
    holds = json.loads(items[0]["data"]["S"]).get("charged_by") if len(items) == 1 and "data" in items[0] else None
    return a_result, holds


def _unfenced(stage: TakeoverStage, message: Mapping[str, Any], charges: Charges) -> Any:
    a, b = _ours(stage, A), _ours(stage, B)

    def a_stalls(ctx: Any) -> None:  # right after A's claim: its lease runs out, B takes over and charges
        _let_lease_pass(stage, A)
        b.execute(message, lambda: charges.charge(B))

    a.hooks.add("after_claim", a_stalls, times=1)
    return a.execute(message, lambda: charges.charge(A))


def _fenced(stage: TakeoverStage, message: Mapping[str, Any], charges: Charges) -> Any:
    a, b = _ours(stage, A), _ours(stage, B)
    guard = a.guard(message)  # A claims...
    _let_lease_pass(stage, A)  # ...and stalls past its lease; B takes over and commits
    b.guard(message).commit(charges.effect(B))
    return guard.commit(charges.effect(A))  # A's charge is written only if A still owns the record


def _single(stage: TakeoverStage, message: Mapping[str, Any], charges: Charges) -> Any:
    a, b = _ours(stage, A), _ours(stage, B)

    def b_meanwhile(ctx: Any) -> None:  # A stalls just before its single write
        _let_lease_pass(stage, A)
        b.execute_transactional(message, lambda ctx: charges.effect(B))

    a.hooks.add("before_completion", b_meanwhile, times=1)
    return a.execute_transactional(message, lambda ctx: charges.effect(A))


_OURS = {"ours, unfenced": _unfenced, "ours, fenced (2 round trips)": _fenced, "ours, single round trip": _single}


def lease_takeover(variant: str, stage: TakeoverStage, message: Mapping[str, Any], charges: Charges) -> TakeoverResult:
    """Worker A claims ``message``'s key and stalls past its lease; worker B receives the redelivered message, takes
    the key over and charges; then A wakes up and carries on. Returns who charged, what A was told and whose result
    the record ends with. B runs inside A's stall, in the same thread, so the interleaving is exact.

    Variants (:data:`TAKEOVER_VARIANTS`): ``Powertools`` (its ``idempotent_function``); ``ours, unfenced``
    (``execute``, the charge between claim and completion); ``ours, fenced (2 round trips)`` (``guard`` claims,
    ``commit`` writes charge and completion in one transaction only while A owns the record); ``ours, single round
    trip`` (``execute_transactional``: no claim before the work, so no lease to lose).
    """
    if variant == "Powertools":
        a_result, holds = _powertools(stage, message, charges)
    elif variant in _OURS:
        try:
            a_result = _OURS[variant](stage, message, charges)
        except LeaseLost as lost:
            a_result = lost
        holds = _ours_record_holds(stage, message)
    else:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(TAKEOVER_VARIANTS)}")
    return TakeoverResult(variant, tuple(sorted(charges.made_by())), told(a_result), holds, a_result)


def describe_write(operation: str, params: Mapping[str, Any]) -> str | None:
    """Name a DynamoDB write by its condition (the point of the takeover diagrams); None keeps the default label."""
    condition = params.get("ConditionExpression", "")
    if operation == "TransactWriteItems":
        return "TransactWriteItems: record + charge"
    if not condition and operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return f"{operation}, unconditional"
    if "attribute_not_exists" in condition:
        return "conditional write: if the key is free or its lease expired"
    if ":own" in condition:
        return "conditional write: if still the owner"
    return None
