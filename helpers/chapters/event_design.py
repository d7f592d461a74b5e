"""Event design, measured: sparse events vs full state, schema evolution, entry sizes and a claim check.

Notebook 04's machinery:

- :class:`OrdersApi`: a real HTTP server on 127.0.0.1 holding orders; every ``GET /orders/<id>`` is counted per
  caller (the ``X-Consumer`` header) with the order version it served, so "3 consumers x N sparse events = 3N
  callbacks" and "the callback read a newer version than the event described" are counts, not claims.
- :func:`consume`: drains a consumer's queue and handles each event the way a sparse or a full-state consumer must.
- :func:`entry_size` follows the user guide's "Calculating PutEvents event entry size"; :func:`check_entry_size`
  refuses an entry over :data:`PUT_EVENTS_ENTRY_LIMIT` before sending it, because moto does not (it accepted a
  300 KB entry here; LocalStack 4.14 refuses anything over the old 256 KB limit with ValidationException).
- :class:`ClaimCheck`: a large payload goes to S3 and the event carries a reference (bucket, key, size, SHA-256).
- :func:`compatibility_errors`: does an event produced by a new schema still satisfy the old consumers' JSON Schema?

Values this module makes up (the consumer names, the ``X-Consumer`` header, the claim-check field names) are the
helper's own choices, not AWS conventions.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Resources
from helpers.chapters.routing import Router, order_event
from helpers.idempotency import HttpResponse
from helpers.services.http import HOST, LoopbackServer, send

#: The PutEvents entry limit on AWS: 1 MB since 2026-01-29 (AWS Compute Blog, "More room to build: serverless
#: services now support payloads up to 1 MB"; 256 KB before, which LocalStack 4.14 still enforces), measured as the
#: user guide's entry-size calculation (Time 14 bytes; Source, DetailType, Detail and each Resource as UTF-8 bytes).
PUT_EVENTS_ENTRY_LIMIT = 1024 * 1024
CALLBACK_TIMEOUT_S = 2.0


class OrdersApiDown(RuntimeError):
    """The orders API did not answer: a sparse consumer cannot finish its work."""


class EventTooLarge(ValueError):
    """A PutEvents entry over the limit; AWS rejects it, moto does not, so the helper does."""


# -- the orders API -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Callback:
    consumer: str
    order_id: str
    version: int | None  # the version served, None for a 404


class OrdersApi(LoopbackServer):
    """Orders by id over HTTP (``GET /orders/<id>``), each call recorded; ``stop()`` makes it unreachable."""

    methods = ("GET",)
    thread_name = "orders-api"
    label = "the orders API"

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[Callback] = []
        self._lock = threading.Lock()

    # -- data ---------------------------------------------------------------------------------------------------
    def put(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order (version 1) and return a copy."""
        with self._lock:
            stored = {**dict(order), "version": 1}
            self.orders[str(order["order-id"])] = stored
            return dict(stored)

    def update(self, order_id: str, **changes: Any) -> dict[str, Any]:
        """Change an order; its version goes up by one."""
        with self._lock:
            order = self.orders[order_id]
            order.update(changes)
            order["version"] += 1
            return dict(order)

    def read(self, order_id: str) -> dict[str, Any]:
        """The producer's own read (not over HTTP, but counted as a read of the order store)."""
        with self._lock:
            self.calls.append(Callback("producer", order_id, self.orders[order_id]["version"]))
            return dict(self.orders[order_id])

    def count(self, consumer: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if consumer is None or c.consumer == consumer)

    # -- server ---------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The address consumers call back; the same after a restart. OrdersApiDown while it is stopped."""
        if not self.running:
            raise OrdersApiDown("the orders API is not running")
        return super().url

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        parts = http.path.strip("/").split("/")
        consumer = http.headers.get("X-Consumer", "anonymous")
        with self._lock:
            order = self.orders.get(parts[1]) if len(parts) == 2 and parts[0] == "orders" else None
            self.calls.append(Callback(consumer, parts[-1], order["version"] if order else None))
            body = json.dumps(order if order else {"error": "not found"}).encode()
        send(http, HttpResponse(200 if order else 404, {"Content-Type": "application/json"}, body))


def fetch_order(url: str, order_id: str, consumer: str, *, timeout: float = CALLBACK_TIMEOUT_S) -> dict[str, Any]:
    """The sparse consumer's callback: GET the order; OrdersApiDown when the API does not answer."""
    request = urllib.request.Request(f"{url}/orders/{order_id}", headers={"X-Consumer": consumer})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise OrdersApiDown(f"orders API answered {exc.code} for {order_id}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OrdersApiDown(f"orders API unreachable ({type(exc).__name__})") from None


# -- events ---------------------------------------------------------------------------------------------------------
SPARSE_FIELDS = ("order-id", "version")


def sparse_event(order: Mapping[str, Any], key: str, *, detail_type: str = "OrderCreated") -> dict[str, Any]:
    """Event notification: what happened and to which order; consumers call back for the rest."""
    data = {f: order[f] for f in SPARSE_FIELDS if f in order}
    return order_event(data, metadata={"idempotency-key": key, "shape": "sparse"}, detail_type=detail_type)


def full_event(order: Mapping[str, Any], key: str, *, detail_type: str = "OrderCreated") -> dict[str, Any]:
    """Event-carried state transfer: the order as it was when the event happened."""
    return order_event(dict(order), metadata={"idempotency-key": key, "shape": "full"}, detail_type=detail_type)


@dataclass
class ConsumerReport:
    """What one consumer did with the events in its queue."""

    consumer: str
    received: int = 0
    processed: int = 0
    callbacks: int = 0
    failed: int = 0
    stale: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "received": self.received,
            "processed": self.processed,
            "callbacks": self.callbacks,
            "failed": self.failed,
            "newer than the event": self.stale,
        }


def consume(
    router: Router,
    consumer: str,
    api: OrdersApi,
    *,
    handle: Callable[[dict[str, Any]], Any] | None = None,
    trace: Any = None,
) -> ConsumerReport:
    """Drain ``consumer``'s queue; a sparse event costs a callback (and fails when the API is down).

    ``stale`` counts callbacks that served a newer order version than the one the event announced.
    ``handle(order)`` is the consumer's own work; an exception from it counts as a failure. With a
    :class:`helpers.instruments.trace.Trace`, each callback and its answer (or failure) is recorded, keyed by order id.
    """
    report = ConsumerReport(consumer)
    for body in router.drain(consumer):
        report.received += 1
        detail = body["detail"]
        order = detail["data"]
        try:
            if detail["metadata"].get("shape") == "sparse":
                report.callbacks += 1
                url = f"http://{HOST}:{api.port}"  # the consumer's configured URL, whether or not the API is up
                oid = order["order-id"]
                if trace is not None:
                    trace.record(consumer, "orders API", f"GET /orders/{oid}", key=oid)
                try:
                    current = fetch_order(url, oid, consumer)
                except OrdersApiDown:
                    if trace is not None:
                        trace.lost("orders API", consumer, "no answer", key=oid)
                    raise
                if trace is not None:
                    trace.reply("orders API", consumer, f"{oid} v{current.get('version')}", key=oid)
                if current.get("version", 0) > order.get("version", 0):
                    report.stale += 1
                order = current
            if handle is not None:
                handle(order)
        except Exception:  # the count is the lesson; the message would vary
            report.failed += 1
            continue
        report.processed += 1
        report.seen.append(order)
    return report


def consume_all(router: Router, consumers: Iterable[str], api: OrdersApi, *, trace: Any = None) -> list[ConsumerReport]:
    """Wait once for the bus to deliver (``router.settle_s``), then let each consumer drain its queue."""
    if router.settle_s:
        time.sleep(router.settle_s)
    return [consume(router, consumer, api, trace=trace) for consumer in consumers]


# -- size -----------------------------------------------------------------------------------------------------------
def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as the user guide calculates it (bytes)."""
    size = 14 if entry.get("Time") is not None else 0
    size += len(str(entry["Source"]).encode()) + len(str(entry["DetailType"]).encode())
    if entry.get("Detail") is not None:
        size += len(str(entry["Detail"]).encode())
    size += sum(len(str(r).encode()) for r in entry.get("Resources") or [] if r is not None)
    return size


def check_entry_size(entry: Mapping[str, Any], limit: int = PUT_EVENTS_ENTRY_LIMIT) -> int:
    """The entry's size, or EventTooLarge when AWS would reject it (moto would not)."""
    size = entry_size(entry)
    if size > limit:
        raise EventTooLarge(
            f"PutEvents entry is {size} bytes, over the {limit}-byte limit: AWS rejects it (LocalStack 4.14 too, from "
            "256 KB; moto accepts it). Put the payload in S3 and send a reference (a claim check) instead."
        )
    return size


# -- claim check ----------------------------------------------------------------------------------------------------
class ClaimCheck:
    """Large payloads go to an S3 bucket; the event carries where they are and how to verify them."""

    def __init__(self, resources: Resources, bucket: str = "claim-checks") -> None:
        self.s3 = resources.backend.client("s3")
        self.bucket = resources.name(bucket)
        self.gets = 0
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def check_in(self, key: str, payload: Any) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return {"bucket": self.bucket, "key": key, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    def check_out(self, ref: Mapping[str, Any]) -> Any:
        self.gets += 1
        body = self.s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
        if hashlib.sha256(body).hexdigest() != ref["sha256"]:
            raise ValueError(f"claim check {ref['key']}: the stored payload does not match the event's hash")
        return json.loads(body)


def delete_buckets(resources: Resources) -> int:
    """Empty and delete the buckets under the prefix (helpers.aws.resources does not manage S3)."""
    s3 = resources.backend.client("s3")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith(resources.prefix + "-")]
    for name in names:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in keys]})
        s3.delete_bucket(Bucket=name)
    return len(names)


# -- schema evolution -----------------------------------------------------------------------------------------------
def compatibility_errors(old_schema: Mapping[str, Any], samples: Iterable[Mapping[str, Any]]) -> list[str]:
    """Validate events written under a new schema against the schema the existing consumers rely on.

    Backward compatible (for these consumers) means: no errors. Each error names the sample and the field.
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(dict(old_schema))
    errors = []
    for n, sample in enumerate(samples, 1):
        for error in sorted(validator.iter_errors(dict(sample)), key=lambda e: e.json_path):
            errors.append(f"sample {n}: {error.message}")
    return errors
