"""Idempotency tokens, tried: notebook 07's payments service, its client, and the ways to break a well-behaved token.

Notebook 07 breaks each property of a well-behaved token on purpose and counts the damage in a
:class:`~helpers.instruments.ledger.Ledger`. This module is the machinery its experiments share, kept here so the
notebook's cells show the experiment (the wrong place to find a key, the wrong way to make one) and its counts:

- :class:`TokenStore`: a DynamoDB table keyed by the idempotency key. :meth:`TokenStore.claim` is the whole dedup
  store in one conditional write: ``PutItem`` with ``attribute_not_exists``, and on a repeat the stored receipt from
  the item DynamoDB hands back (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), in the same round trip. It is
  deliberately simple: a crash between the claim and the charge would lose the charge (notebook 09 replaces it with
  :mod:`helpers.idempotency`).
- :class:`Payments`: charges a card at most once per key, and once per request when ``key_of`` finds no key.
  ``key_of`` is where the service looks for the token: :func:`by_dedicated_field` (``metadata.idempotency-key``)
  and :func:`by_message_id` (SQS's ``MessageId``) are here; the notebook writes the wrong ones itself.
- :class:`Orders`: the client. :meth:`Orders.checkout` calls payments directly, :meth:`Orders.send` through an SQS
  queue; both retry a lost answer, with a token made once per message, once per attempt, or not at all.
- :func:`consume`: the payments consumer on that queue, which may crash after charging and before deleting.
- :func:`damage_table`: double and missing charges per experiment, read back from the ledger.

The request shape (``metadata`` + ``data``, the talk's envelope) and the receipt strings are the course's choices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Queue, Resources
from helpers.instruments.faults import FaultPlan, RetryOutcome, WorkerCrashed, retry
from helpers.instruments.ledger import Ledger
from helpers.instruments.tokens import SeededTokens
from helpers.instruments.trace import Trace
from helpers.services import messaging

KEY_ATTRIBUTE = "idempotency_key"
RECEIVE_COUNT = "ApproximateReceiveCount"
#: How a client can make its token: once per message (well-behaved), once per attempt (rule 2 broken), not at all.
KEYING = ("once", "per-attempt", "none")

Request = Mapping[str, Any]
KeyOf = Callable[[Request], "str | None"]


def short(token: str | None) -> str:
    """A token as a diagram shows it: its first 8 characters."""
    return token[:8] if token else "none"


def order(order_id: str, amount: float = 24.62, customer: str = "c-456", item: str = "coffee") -> dict[str, Any]:
    """An order's business fields, as ``data`` of a request (the talk's envelope spells the id ``order-id``)."""
    return {"order-id": order_id, "customer": customer, "item": item, "amount": amount, "currency": "AU"}


def by_dedicated_field(request: Request) -> str | None:
    """The well-behaved place: the client's token in ``metadata.idempotency-key``, beside the business data."""
    return request["metadata"].get("idempotency-key")


def by_message_id(request: Request) -> str | None:
    """SQS's ``MessageId`` of the message the request came in (set by :func:`consume`): made by the queue per send."""
    return request.get("sqs", {}).get("MessageId")


class TokenStore:
    """The token store: a DynamoDB table keyed by the idempotency key, written through payments' own client, which
    the trace records (claim and condition failure show up in the notebook's sequence diagrams)."""

    def __init__(self, resources: Resources, trace: Trace, *, name: str = "tokens") -> None:
        self.table = resources.ensure_table(name, partition_key=KEY_ATTRIBUTE)
        self.ddb = resources.backend.client("dynamodb", retries={"max_attempts": 1})
        self.trace = trace
        trace.instrument(
            self.ddb,
            "payments",
            target="token store",
            label=lambda op, p: (
                f"PutItem key {short(p['Item'][KEY_ATTRIBUTE]['S'])} if new" if op == "PutItem" else None
            ),
            reply=lambda op, parsed: "claimed" if op == "PutItem" else None,
        )

    def claim(self, key: str, receipt: str) -> str | None:
        """Claim ``key`` for this request: None when the claim is new, else the receipt stored by the first claim."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                ConditionExpression=f"attribute_not_exists({KEY_ATTRIBUTE})",
                Item={KEY_ATTRIBUTE: {"S": key}, "receipt": {"S": receipt}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return str(exc.response["Item"]["receipt"]["S"])
        return None

    def close(self) -> None:
        """Stop recording payments' DynamoDB calls."""
        self.trace.uninstrument(self.ddb)


@dataclass
class Payments:
    """Charges a card at most once per idempotency key (and once per request when ``key_of`` finds no key)."""

    key_of: KeyOf
    store: TokenStore
    ledger: Ledger
    trace: Trace

    def handle(self, request: Request) -> str:
        data = request["data"]
        receipt = f"receipt {data['order-id']}"
        key = self.key_of(request)
        if key is not None:
            stored = self.store.claim(key, receipt)
            if stored is not None:
                return f"{stored} (replayed)"
        self.trace.effect("payments", "ledger", f"charge {data['order-id']}", key=data["order-id"])
        self.ledger.charge(data["order-id"], data["amount"], by="payments", key=key or "")
        return receipt


def _request(data: Mapping[str, Any], key: str | None, field: str) -> dict[str, Any]:
    request: dict[str, Any] = {"metadata": {}, "data": dict(data)}
    if key and field == "metadata":
        request["metadata"]["idempotency-key"] = key
    elif key:
        request["data"]["reference"] = key
    return request


@dataclass
class Orders:
    """The orders service: makes the request (and its token), sends it, retries a lost answer."""

    trace: Trace
    tokens: SeededTokens

    def _keys(self, key: str) -> Callable[[], str | None]:
        if key not in KEYING:
            raise ValueError(f"key={key!r}: one of {', '.join(map(repr, KEYING))}")
        made_once = self.tokens.new() if key == "once" else None
        return self.tokens.new if key == "per-attempt" else (lambda: made_once)

    def checkout(
        self,
        data: Mapping[str, Any],
        plan: FaultPlan,
        payments: Payments,
        *,
        key: str = "once",
        field: str = "metadata",
        via: Callable[[Request], Request] = lambda request: request,
    ) -> RetryOutcome:
        """Call payments (through ``via``, an intermediary) under ``plan``'s faults, retrying a lost answer.

        ``key``: the token is made "once" (and reused on retry), "per-attempt" (a new one each try) or "none";
        ``field``: "metadata" (a dedicated field) or "data" (inside the business payload, as ``data.reference``).
        """
        oid = data["order-id"]
        key_for_attempt = self._keys(key)

        def attempt(n: int) -> str:
            key = key_for_attempt()
            request = _request(data, key, field)
            with self.trace.exchange(
                "orders", "payments", f"charge {oid}, attempt {n}, key {short(key)}", key=oid
            ) as ex:
                ex.reply = plan.call(oid, payments.handle, via(request))
            return ex.reply

        return retry(attempt)

    def send(
        self, sqs: Any, queue: Queue, data: Mapping[str, Any], plan: FaultPlan, *, key: str = "once"
    ) -> RetryOutcome:
        """SendMessage the request to ``queue`` under ``plan``'s faults, retrying a lost answer (a new send)."""
        oid = data["order-id"]
        key_for_attempt = self._keys(key)

        def attempt(n: int) -> str:
            body = json.dumps(_request(data, key_for_attempt(), "metadata"))
            with self.trace.exchange("orders", "payments queue", f"SendMessage {oid}, attempt {n}", key=oid) as ex:
                ex.reply = "sent"
                plan.call(oid, sqs.send_message, QueueUrl=queue.url, MessageBody=body)
            return ex.reply

        return retry(attempt)


@dataclass(frozen=True)
class Received:
    """One message the payments consumer received: its order, SQS's MessageId and receive count, and the answer."""

    order_id: str
    message_id: str
    receive_count: int
    answer: str | None  # None when the consumer crashed after charging


def consume(
    sqs: Any,
    queue: Queue,
    payments: Payments,
    plan: FaultPlan,
    *,
    expect: int,
    wait_s: int,
    timeout_s: float = 15.0,
) -> list[Received]:
    """The payments consumer: receive one message, hand payments the request (with ``sqs.MessageId``), delete it.

    Where ``plan`` says ``crash_after_effect`` for an order, the consumer dies after payments answered and before
    the delete, so SQS delivers the same message again once its visibility timeout ends. ``expect`` receives in
    all, redeliveries included; each is returned as a :class:`Received`.
    """
    received: list[Received] = []
    arriving = messaging.receive_until(
        sqs, queue.url, expect, wait_s=wait_s, timeout_s=timeout_s, system_attributes=[RECEIVE_COUNT]
    )
    for message in arriving:
        body = json.loads(message["Body"])
        request = {**body, "sqs": {"MessageId": message["MessageId"]}}
        answer: str | None = payments.handle(request)
        oid = str(body["data"]["order-id"])
        try:
            plan.after_effect(oid)
        except WorkerCrashed:
            payments.trace.crash("payments", "crashed before DeleteMessage", key=oid)
            answer = None
        else:
            messaging.delete(sqs, queue.url, [message])
        received.append(Received(oid, message["MessageId"], int(message["Attributes"][RECEIVE_COUNT]), answer))
    return received


def damage_table(ledger: Ledger, experiments: Mapping[str, list[str]]) -> Any:
    """One row per experiment (its orders), read back from the ledger: orders, charges, double and missing charges."""
    import pandas as pd

    charged = ledger.charges_per_order()
    rows = []
    for name, orders in experiments.items():
        counts = [charged.get(oid, 0) for oid in orders]
        rows.append(
            {
                "experiment": name,
                "orders": len(orders),
                "charges": sum(counts),
                "double charges": sum(max(n - 1, 0) for n in counts),
                "missing charges": sum(1 for n in counts if n == 0),
            }
        )
    return pd.DataFrame(rows).set_index("experiment")
