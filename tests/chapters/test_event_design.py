"""chapters.event_design: callbacks are counted by a real server, sizes follow the user guide, claim checks verify."""

from __future__ import annotations

import json

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import event_design as ed
from helpers.chapters.routing import Router
from helpers.instruments.trace import Trace


@pytest.fixture
def res(backend) -> Resources:  # type: ignore[no-untyped-def]
    resources = Resources("t-design", backend)
    resources.teardown()
    ed.delete_buckets(resources)
    yield resources
    ed.delete_buckets(resources)
    resources.teardown()
    assert resources.inventory() == []


@pytest.fixture
def api() -> ed.OrdersApi:
    server = ed.OrdersApi().start()
    yield server
    server.stop()


# -- pure parts -----------------------------------------------------------------------------------------------------
def test_orders_api_serves_counts_and_stops(api: ed.OrdersApi) -> None:
    api.put({"order-id": "o-1", "status": "Open"})
    assert ed.fetch_order(api.url, "o-1", "shipping") == {"order-id": "o-1", "status": "Open", "version": 1}
    assert api.update("o-1", status="Cancelled")["version"] == 2
    assert ed.fetch_order(api.url, "o-1", "billing")["version"] == 2
    with pytest.raises(ed.OrdersApiDown, match="404"):
        ed.fetch_order(api.url, "nope", "billing")
    assert [(c.consumer, c.version) for c in api.calls] == [("shipping", 1), ("billing", 2), ("billing", None)]
    assert api.read("o-1")["status"] == "Cancelled" and api.count("producer") == 1
    url = api.url
    api.stop()
    with pytest.raises(ed.OrdersApiDown, match="unreachable"):
        ed.fetch_order(url, "o-1", "shipping")
    with pytest.raises(ed.OrdersApiDown):
        _ = api.url
    assert api.start().url == url  # a restart keeps the port, so consumers' URLs stay valid


def test_sparse_and_full_events_share_the_envelope() -> None:
    order = {"order-id": "o-1", "status": "Open", "total": 5, "version": 1}
    sparse, full = ed.sparse_event(order, "k"), ed.full_event(order, "k")
    assert sparse["detail"] == {
        "metadata": {"idempotency-key": "k", "shape": "sparse"},
        "data": {"order-id": "o-1", "version": 1},
    }
    assert full["detail"]["data"] == order and full["detail"]["metadata"]["shape"] == "full"


def test_entry_size_follows_the_user_guide() -> None:
    entry = {"Source": "com.orders", "DetailType": "OrderCreated", "Detail": json.dumps({"a": "é"})}
    assert ed.entry_size(entry) == 10 + 12 + len(json.dumps({"a": "é"}).encode())
    assert ed.entry_size({**entry, "Time": "now", "Resources": ["arn:x", None]}) == ed.entry_size(entry) + 14 + 5
    big = {**entry, "Detail": "x" * ed.PUT_EVENTS_ENTRY_LIMIT}
    with pytest.raises(ed.EventTooLarge, match="claim check"):
        ed.check_entry_size(big)
    assert ed.check_entry_size(entry) == ed.entry_size(entry)


def test_compatibility_errors_name_the_missing_field() -> None:
    schema = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}
    assert ed.compatibility_errors(schema, [{"total": 1, "channel": "web"}]) == []
    assert ed.compatibility_errors(schema, [{"amount": 1}, {"total": "1"}]) == [
        "sample 1: 'total' is a required property",
        "sample 2: '1' is not of type 'number'",
    ]


# -- against the backend --------------------------------------------------------------------------------------------
def test_sparse_consumers_call_back_and_fail_when_the_api_is_down(res: Resources, api: ed.OrdersApi) -> None:
    bus = Router(res, "b")
    bus.add_rules({c: {"source": ["com.orders"]} for c in ("a", "b")})
    orders = [api.put({"order-id": f"o-{n}", "status": "Open"}) for n in (1, 2)]
    bus.put({o["order-id"]: ed.sparse_event(o, "k") for o in orders})
    api.update("o-2", status="Cancelled")
    trace = Trace()
    reports = ed.consume_all(bus, ("a", "b"), api, trace=trace)
    assert [(r.received, r.callbacks, r.stale, r.failed) for r in reports] == [(2, 2, 1, 0), (2, 2, 1, 0)]
    assert trace.count(kind="call", dst="orders API") == 4
    api.stop()
    bus.put({o["order-id"]: ed.sparse_event(o, "k") for o in orders})
    bus.put({o["order-id"]: ed.full_event(o, "k") for o in orders})
    down = ed.consume_all(bus, ("a",), api, trace=trace)[0]
    assert (down.received, down.failed, down.processed) == (4, 2, 2)
    assert trace.count(kind="lost") == 2
    bus.drain("b")


def test_claim_check_round_trip_and_tamper_detection(res: Resources) -> None:
    claims = ed.ClaimCheck(res)
    assert ed.ClaimCheck(res).bucket == claims.bucket  # a second one reuses the bucket
    ref = claims.check_in("o.json", {"lines": list(range(10))})
    assert claims.check_out(ref) == {"lines": list(range(10))} and claims.gets == 1
    with pytest.raises(ValueError, match="does not match"):
        claims.check_out({**ref, "sha256": "0" * 64})
    assert ed.delete_buckets(res) == 1
