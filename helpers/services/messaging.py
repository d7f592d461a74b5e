"""The moving parts of the coupling and integration-style demos, over the real services (no simulation here).

- :class:`Receiver`: the payments HTTP API (``services.payments``) on one fixed 127.0.0.1 port that a demo stops and
  starts again, so a caller meets a refused connection exactly while it is down;
- :func:`post_charge`: one synchronous call to it, answered or refused, never raising;
- :func:`queue_depth`, :func:`receive`, :func:`delete`, :func:`release`, :func:`drain`, :func:`drain_many`: an SQS
  consumer's side of queues;
- :func:`put_orders`: a producer's side of an EventBridge bus;
- :func:`request` and :func:`respond`: request-reply over queues, with the EIP *Return Address* and *Correlation
  Identifier* carried as SQS message attributes (``ReplyTo``, ``CorrelationId``: the course's names, not AWS's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from helpers.instruments.ledger import Ledger
from helpers.services.http import HOST, free_port
from helpers.services.payments import PaymentsApi

CALL_TIMEOUT_S = 5.0


class Receiver:
    """The payments API as a receiver that can be taken down and brought back on the same address.

    ``stop()`` on a stopped receiver and ``start()`` on a running one raise: a demo that thinks the receiver is down
    when it is not would count the wrong thing. ``close()`` stops it if it runs and never raises (for cleanup).
    """

    def __init__(self, ledger: Ledger, *, port: int | None = None, **api_kwargs: Any) -> None:
        self.port = port if port is not None else free_port()
        self.api = PaymentsApi(ledger, port=self.port, **api_kwargs)
        self.api.start()
        self.stops = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def up(self) -> bool:
        return self.api.running

    def stop(self) -> None:
        if not self.up:
            raise RuntimeError("the receiver is already stopped: start() it before stopping it again")
        self.api.stop()
        self.stops += 1

    def start(self) -> None:
        if self.up:
            raise RuntimeError("the receiver is already running: stop() it before starting it again")
        self.api.start()

    def close(self) -> None:
        if self.up:
            self.api.stop()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class CallResult:
    """What a synchronous caller saw: an HTTP status, or no answer at all (``status`` None, ``error`` says why)."""

    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post_charge(url: str, order_id: str, amount: float, *, timeout: float = CALL_TIMEOUT_S) -> CallResult:
    """``POST /charges`` for one order (its id is the Idempotency-Key); a refused connection is a result, not an
    exception, because counting failures is the point of the demos."""
    body: dict[str, Any] = {"orderId": order_id, "amount": amount}
    try:
        response = requests.post(f"{url}/charges", json=body, headers={"Idempotency-Key": order_id}, timeout=timeout)
    except requests.ConnectionError:
        return CallResult(None, "connection refused")
    except requests.Timeout:
        return CallResult(None, "timed out")
    return CallResult(response.status_code)


# -- SQS ------------------------------------------------------------------------------------------------------------
def queue_depth(sqs: Any, url: str) -> int:
    """Messages in the queue, visible or in flight (the two approximate counters SQS keeps, added)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def receive(
    sqs: Any, url: str, *, max_messages: int = 10, wait_s: int = 0, system_attributes: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One ReceiveMessage call (at most 10 messages: the API's limit), with all message attributes.

    ``system_attributes`` asks for SQS's own attributes too (``ApproximateReceiveCount``, ``SentTimestamp``...),
    found under each message's ``Attributes``: how a consumer tells a redelivery from a first delivery.
    """
    if not 1 <= max_messages <= 10:
        raise ValueError(f"max_messages={max_messages}: SQS returns 1 to 10 messages per ReceiveMessage")
    params: dict[str, Any] = {
        "QueueUrl": url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_s,
        "MessageAttributeNames": ["All"],
    }
    if names := list(system_attributes):
        params["MessageSystemAttributeNames"] = names
    return sqs.receive_message(**params).get("Messages", [])


def delete(sqs: Any, url: str, messages: Iterable[Mapping[str, Any]]) -> None:
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def release(sqs: Any, url: str, messages: Iterable[Mapping[str, Any]], *, after_s: int = 0) -> None:
    """Hand received messages back (ChangeMessageVisibility): receivable again after ``after_s`` seconds, 0 = at once.

    What a consumer does with a message it could not finish, instead of waiting out the visibility timeout; the
    receive it came from already counted toward the queue's ``maxReceiveCount``.
    """
    if not 0 <= after_s <= 43_200:
        raise ValueError(f"after_s={after_s}: a visibility timeout is 0 to 43200 seconds (12 hours)")
    for m in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=after_s)


def drain(
    sqs: Any, url: str, *, expect: int | None = None, timeout_s: float = 10.0, settle_s: float = 0.5
) -> list[dict[str, Any]]:
    """Receive and delete the messages of one queue; see :func:`drain_many`. Returns the parsed JSON bodies."""
    return drain_many(sqs, [url], expect=None if expect is None else {url: expect}, timeout_s=timeout_s,
                      settle_s=settle_s)[url]  # fmt: skip


def drain_many(
    sqs: Any,
    urls: Iterable[str],
    *,
    expect: Mapping[str, int] | None = None,
    timeout_s: float = 10.0,
    settle_s: float = 0.5,
) -> dict[str, list[dict[str, Any]]]:
    """Receive and delete messages from several queues at once until none has had anything new for ``settle_s``
    (and each queue in ``expect`` has at least that many). Returns the parsed JSON bodies per queue URL.

    Deliveries through EventBridge are asynchronous on AWS and LocalStack, so "nothing arrived" is only believed
    after a quiet period; the queues share it, so checking two queues costs one wait, not two. ``timeout_s``
    bounds the wait for expected messages, and the error names what was missing. The polls are short (on AWS a
    short poll samples servers and can miss a message: give it a longer ``settle_s`` there).
    """
    if settle_s < 0 or timeout_s < 0:
        raise ValueError("settle_s and timeout_s are durations: they cannot be negative")
    urls = list(urls)
    bodies: dict[str, list[dict[str, Any]]] = {url: [] for url in urls}
    wanted = dict(expect or {})
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while True:
        new = 0
        for url in urls:
            got = receive(sqs, url)
            bodies[url] += [json.loads(m["Body"]) for m in got]
            delete(sqs, url, got)
            new += len(got)
        now = time.monotonic()
        if new:
            quiet_since = now
            continue
        missing = {u: n for u, n in wanted.items() if len(bodies.get(u, [])) < n}
        if missing and now > deadline:
            said = ", ".join(f"{len(bodies.get(u, []))} of {n} messages at {u}" for u, n in missing.items())
            raise TimeoutError(f"within {timeout_s} s only {said} arrived")
        if not missing and now - quiet_since >= settle_s:
            return bodies
        time.sleep(0.05)


def receive_until(
    sqs: Any, url: str, count: int, *, wait_s: int = 1, timeout_s: float = 10.0, system_attributes: Iterable[str] = ()
) -> Iterator[dict[str, Any]]:
    """Yield received messages one at a time until ``count`` have come; the caller deletes each one, or does not.

    A consumer's loop when the demo is what happens to each receive (a message not deleted comes back after its
    visibility timeout and is yielded again: give ``timeout_s`` room for that). Fewer than ``count`` within
    ``timeout_s`` is a :class:`TimeoutError` that says how many came, never a silent short count.
    """
    names = list(system_attributes)
    deadline = time.monotonic() + timeout_s
    received = 0
    while received < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"within {timeout_s} s only {received} of {count} receives at {url}")
        for message in receive(sqs, url, max_messages=1, wait_s=wait_s, system_attributes=names):
            received += 1
            yield message


# -- EventBridge ----------------------------------------------------------------------------------------------------
def put_orders(
    events: Any,
    bus: str,
    details: Iterable[Mapping[str, Any]],
    *,
    source: str = "com.orders",
    detail_type: str = "OrderCreated",
) -> int:
    """PutEvents, one entry per detail (in batches of 10, the API's limit); returns FailedEntryCount summed."""
    entries = [
        {"Source": source, "DetailType": detail_type, "Detail": json.dumps(d), "EventBusName": bus} for d in details
    ]
    failed = 0
    for i in range(0, len(entries), 10):
        failed += events.put_events(Entries=entries[i : i + 10]).get("FailedEntryCount", 0)
    return failed


# -- request-reply ----------------------------------------------------------------------------------------------------
def request(
    sqs: Any,
    url: str,
    body: Mapping[str, Any],
    *,
    reply_to: str | None = None,
    correlation_id: str | None = None,
    group: str | None = None,
) -> None:
    """Send a request; ``reply_to`` (Return Address) and ``correlation_id`` travel as message attributes."""
    attributes = {}
    if reply_to:
        attributes["ReplyTo"] = {"DataType": "String", "StringValue": reply_to}
    if correlation_id:
        attributes["CorrelationId"] = {"DataType": "String", "StringValue": correlation_id}
    params: dict[str, Any] = {"QueueUrl": url, "MessageBody": json.dumps(body), "MessageAttributes": attributes}
    if group is not None:  # a FIFO queue (with content-based deduplication): one group keeps the order fixed
        params["MessageGroupId"] = group
    sqs.send_message(**params)


def attribute(message: Mapping[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return value["StringValue"] if value else None


def respond(
    sqs: Any,
    url: str,
    answer: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    default_reply_to: str | None = None,
    group: str | None = None,
    on_answer: Callable[[dict[str, Any], str, str | None], None] | None = None,
) -> int:
    """The responder: answer every request waiting in ``url``, in arrival order; returns how many it answered.

    The reply goes to the request's ``ReplyTo`` when it has one, else to ``default_reply_to``; a ``CorrelationId``
    is copied onto the reply. A request with neither return address is an error, not a silent drop.
    ``on_answer(reply, reply_to, correlation_id)`` sees each reply as it is sent (to record it in a trace).
    """
    answered = 0
    while got := receive(sqs, url):
        for message in got:
            reply_to = attribute(message, "ReplyTo") or default_reply_to
            if reply_to is None:
                raise ValueError("a request without ReplyTo, and no default reply queue: nowhere to answer")
            reply, correlation_id = answer(json.loads(message["Body"])), attribute(message, "CorrelationId")
            request(sqs, reply_to, reply, correlation_id=correlation_id, group=group)
            if on_answer is not None:
                on_answer(reply, reply_to, correlation_id)
            answered += 1
        delete(sqs, url, got)
    return answered


def take_reply(sqs: Any, url: str, *, wait_s: int = 1) -> tuple[dict[str, Any], str | None] | None:
    """Take one reply from ``url``: (body, CorrelationId) or None when none came within ``wait_s``."""
    got = receive(sqs, url, max_messages=1, wait_s=wait_s)
    if not got:
        return None
    delete(sqs, url, got)
    return json.loads(got[0]["Body"]), attribute(got[0], "CorrelationId")
