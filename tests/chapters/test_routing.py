"""chapters.routing: matrices come from real delivery, emulator traps are refused with a reason, cleanup is total."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import routing
from helpers.chapters.routing import Explorer, Matrix, Router, order_event
from helpers.instruments.trace import Trace

APAC = {"detail": {"data": {"currency": ["AU", "NZ"]}}}


PREFIX = "t-routing"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


# -- pure parts -----------------------------------------------------------------------------------------------------
def test_order_event_uses_the_talks_envelope() -> None:
    event = order_event({"order-id": "1"}, metadata={"idempotency-key": "k"})
    assert event == {
        "source": "com.orders",
        "detail-type": "OrderCreated",
        "detail": {"metadata": {"idempotency-key": "k"}, "data": {"order-id": "1"}},
    }
    assert json.loads(routing.entry(event, "bus")["Detail"]) == event["detail"]
    with pytest.raises(ValueError, match="missing"):
        routing.entry({"source": "x"}, "bus")


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail": {"price": [{"numeric": [">", "10"]}]}},
        {"detail": {"price": [{"numeric": [">", 0, "<=", "100"]}]}},
        {"$or": [{"a": [1]}, {"b": [{"numeric": ["=", "3"]}]}]},
        {"x": [{"numeric": ["<", True]}]},
    ],
)
def test_a_numeric_bound_given_as_text_is_refused_with_the_fix(pattern: dict) -> None:
    with pytest.raises(routing.PatternRefused, match=r"not a JSON number.*Write"):
        routing.check_pattern(pattern)


def test_valid_patterns_pass_the_check() -> None:
    for pattern in (APAC, {"detail": {"price": [{"numeric": [">", 0, "<=", 1.5]}]}}, {"a": [None, ""]}):
        routing.check_pattern(pattern)


def test_arrays_of_objects_are_detected_only_where_a_pattern_looks() -> None:
    event = order_event({"lines": [{"sku": "B1"}], "items": ["pen"]})
    assert routing.array_of_object_paths(event) == {("detail", "data", "lines")}
    assert routing.crosses_array_of_objects({"detail": {"data": {"lines": {"sku": ["B1"]}}}}, event)
    assert not routing.crosses_array_of_objects({"detail": {"data": {"items": ["pen"]}}}, event)
    assert routing.pattern_paths({"$or": [{"a": [1]}, {"b": {"c": [2]}}]}) == {("a",), ("b", "c")}


def test_slug_and_its_refusal() -> None:
    assert routing.slug("anything-but AU, NZ") == "anything-but-au-nz"
    with pytest.raises(ValueError, match="no letters"):
        routing.slug("** ")


def test_matrix_frame_and_counts() -> None:
    m = Matrix(["r1", "r2"], ["e1", "e2"], [routing.Delivered("r1", "e2", {}), routing.Delivered("r1", "e2", {})])
    assert m.matches == {"r1": ["e2"], "r2": []}
    assert m.counts() == {"r1": 2, "r2": 0}
    assert m.frame().loc["r1"].tolist() == ["-", "match"]


def test_the_notebooks_gaps_are_rows_of_the_one_capability_table() -> None:
    from helpers.aws import capabilities

    for name in ("eventbridge_replay", "eventbridge_bare_value_refused", "eventbridge_pattern_array_of_objects"):
        assert capabilities.get(name).aws, name
    assert capabilities.get("eventbridge_replay").supported_on("embedded")
    assert not capabilities.get("eventbridge_replay").supported_on("localstack")


# -- against the backend --------------------------------------------------------------------------------------------
def test_matrix_comes_from_what_each_queue_received(res: Resources) -> None:
    trace = Trace()
    router = Router(res, "m", trace=trace)
    events = {"AU": order_event({"currency": "AU"}), "US": order_event({"currency": "US"})}
    m = router.matrix({"apac": APAC, "all": {"source": ["com.orders"]}}, events)
    assert m.matches == {"apac": ["AU"], "all": ["AU", "US"]}
    assert trace.count(kind="send", dst="apac queue") == 1
    # Every queue was read to the end: a second sweep finds nothing.
    assert router.drain("apac") == [] and router.drain("all") == []


def test_more_than_ten_events_go_in_batches(res: Resources) -> None:
    router = Router(res, "b")
    events = {f"e{n:02d}": order_event({"n": n}) for n in range(23)}
    m = router.matrix({"all": {"source": ["com.orders"]}}, events)
    assert m.counts() == {"all": 23}


def test_refusals_reach_the_learner_as_messages(res: Resources, backend) -> None:  # type: ignore[no-untyped-def]
    router = Router(res, "x")
    with pytest.raises(routing.PatternRefused):
        router.add_rule("bad", {"p": [{"numeric": [">", "1"]}]})
    with pytest.raises(ValueError, match="share the resource name"):
        router.matrix({"a b": APAC, "a-b": APAC}, {"AU": order_event({"currency": "AU"})})
    refusal = routing.put_rule_error(res, "x", {"detail": {"currency": "AU"}})
    if backend.supports("eventbridge_bare_value_refused"):
        assert refusal and refusal.startswith("InvalidEventPatternException")
    else:
        assert refusal is None


def test_array_of_objects_pattern_is_guarded_or_routed(res: Resources, backend) -> None:  # type: ignore[no-untyped-def]
    events = {"B1": order_event({"lines": [{"sku": "B1"}]}), "C3": order_event({"lines": [{"sku": "C3"}]})}
    rules = {"sku": {"detail": {"data": {"lines": {"sku": ["B1"]}}}}}
    if backend.supports("eventbridge_pattern_array_of_objects"):
        assert Router(res, "l").matrix(rules, events).matches == {"sku": ["B1"]}
    else:
        with pytest.raises(routing.EmulatorGap, match="any element"):
            Router(res, "l").matrix(rules, events)


def test_explorer_reports_every_rule_or_the_refusal(res: Resources) -> None:
    router = Router(res, "e")
    router.add_rules({"apac": APAC})
    explorer = Explorer(router, {"AU": order_event({"currency": "AU"}), "US": order_event({"currency": "US"})})
    assert explorer.run("US", {"source": ["com.orders"]}) == {"apac": "-", "yours": "delivered"}
    assert explorer.run("AU", json.dumps(APAC)) == {"apac": "delivered", "yours": "delivered"}
    assert "error" in explorer.run("AU", "{not json")
    assert "error" in explorer.run("AU", "[1]")
    assert "not a JSON number" in explorer.run("AU", {"p": [{"numeric": [">", "1"]}]})["error"]
    assert "unknown event" in explorer.run("EU", APAC)["error"]


def test_sns_filter_policies_route_like_the_rules(res: Resources) -> None:
    events = {"AU": order_event({"currency": "AU", "price": 5}), "NZ": order_event({"currency": "NZ", "price": 2000})}
    m = routing.sns_matrix(
        res, "topic", {"apac": APAC, "big": {"detail": {"data": {"price": [{"numeric": [">", 100]}]}}}}, events
    )
    assert m.matches == {"apac": ["AU", "NZ"], "big": ["NZ"]}


def test_an_archive_is_ensured_counted_and_replayed(res: Resources, backend) -> None:  # type: ignore[no-untyped-def]
    router = Router(res, "r")
    router.add_rules({"all": {"source": ["com.orders"]}})
    arn = res.ensure_archive("arch", router.bus_arn, {"source": ["com.orders"]})
    assert res.ensure_archive("arch", router.bus_arn, {"source": ["com.orders"]}) == arn
    assert ("events:archive", "t-routing-arch") in res.inventory()
    start = datetime.now(UTC) - timedelta(minutes=1)
    ids = router.put({"o1": order_event({"order-id": "o1"}, metadata={"idempotency-key": "k1"})})
    assert len(router.collect(["all"], ids)) == 1
    assert routing.wait_until_archived(res, "arch", 1, timeout_s=5, poll_s=0.1) == 1
    if backend.supports("eventbridge_replay"):
        assert routing.replay(res, arn, router.bus_arn, start, datetime.now(UTC))["State"] == "COMPLETED"
        again = router.collect(["all"], ids)
        assert [d.event for d in again] == [None]
        assert again[0].body["detail"]["metadata"] == {"idempotency-key": "k1"} and again[0].body.get("replay-name")
    res.teardown()
    assert res.inventory() == [], "teardown deletes the archive too"
