"""chapters.coupling: the scorecard, two senders through a queue move, what the bus says it routes, content rules."""

from __future__ import annotations

import pytest

from helpers.chapters import coupling
from helpers.chapters.coupling import Rule
from helpers.services.messaging import drain

PREFIX = "t-coupling"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


# -- pure parts -----------------------------------------------------------------------------------------------------
def test_the_scorecard_counts_facets_and_silent_breakages() -> None:
    card = coupling.Scorecard()
    card.add("temporal", "call", "down", "refused", 10, 10)
    card.add("temporal", "queue", "down", "nothing", 0, 0)
    card.add("semantic", "rule", "AU -> AUD", "no match", 4, 0)
    assert card.facets() == ["temporal", "semantic"]
    assert [row["coupling"] for row in card.silent()] == ["rule"]
    assert card.frame()["messages affected"].tolist() == [10, 0, 4]
    with pytest.raises(ValueError, match="errors <= affected"):
        card.add("x", "y", "z", "w", 1, 2)


def test_routing_changes_name_what_changed_and_nothing_else() -> None:
    to_a = Rule({"source": ["s"]}, ("q-a",))
    before = {"pay": to_a, "audit": Rule({"source": ["s"]}, ("q-audit",)), "old": to_a}
    after = {
        "pay": Rule({"source": ["s"]}, ("q-b",)),
        "audit": before["audit"],
        "fraud": Rule({"detail": {"amount": [{"numeric": [">", 500]}]}}, ("q-f",)),
    }
    assert coupling.routing_changes(before, after) == {
        "fraud": 'added: pattern {"detail": {"amount": [{"numeric": [">", 500]}]}}, target q-f',
        "old": "removed",
        "pay": "target q-a -> q-b",
    }
    assert coupling.routing_changes(after, after) == {}
    moved = {"pay": Rule({"source": ["t"]}, ("q-a",))}
    assert coupling.routing_changes({"pay": to_a}, moved) == {"pay": 'pattern {"source": ["s"]} -> {"source": ["t"]}'}


def test_order_created_is_the_talks_envelope_and_gst_needs_a_number() -> None:
    detail = coupling.order_created("ord-1", price=10.0, currency="AU")
    assert detail == {"metadata": {}, "data": {"order-id": "ord-1", "price": 10.0, "currency": "AU"}}
    assert coupling.with_gst(detail) == 11.0
    with pytest.raises(TypeError):
        coupling.with_gst(coupling.order_created("ord-2", price="10.0"))


# -- against the backend --------------------------------------------------------------------------------------------
def test_a_queue_move_breaks_the_hard_coded_sender_and_one_rule_changes(backend, res) -> None:  # type: ignore[no-untyped-def]
    sqs, events = backend.client("sqs"), backend.client("events")
    old, bus = res.ensure_queue("inbox"), res.ensure_bus("orders")
    hard, via_bus = coupling.HardCodedSender(sqs, old.url), coupling.BusSender(events, bus, source="com.t")
    coupling.route(res, bus, old, rule="to-pay", source="com.t")
    assert hard.send("h-1") and via_bus.send("b-1")
    assert sorted(str(m.get("orderId") or m["detail"]["data"]["order-id"]) for m in drain(sqs, old.url, expect=2)) == [
        "b-1", "h-1",
    ]  # fmt: skip
    before = coupling.routing(events, bus)
    assert before == {res.name("to-pay"): Rule({"source": ["com.t"]}, (old.name,))}

    new = res.ensure_queue("inbox-v2")
    coupling.route(res, bus, new, rule="to-pay", source="com.t")
    sqs.delete_queue(QueueUrl=old.url)
    assert coupling.routing_changes(before, coupling.routing(events, bus)) == {
        res.name("to-pay"): f"target {old.name} -> {new.name}"
    }
    assert (hard.send("h-2"), via_bus.send("b-2")) == (False, True)
    assert [e["detail"]["data"]["order-id"] for e in drain(sqs, new.url, expect=1)] == ["b-2"]


def test_remove_rule_puts_the_bus_back_and_is_safe_twice(backend, res) -> None:  # type: ignore[no-untyped-def]
    events = backend.client("events")
    queue, bus = res.ensure_queue("q"), res.ensure_bus("orders")
    coupling.route(res, bus, queue, rule="extra", source="com.t")
    assert set(coupling.routing(events, bus)) == {res.name("extra")}
    assert coupling.remove_rule(res, events, bus, "extra") is True
    assert coupling.routing(events, bus) == {}
    assert coupling.remove_rule(res, events, bus, "extra") is False


def test_content_rules_count_what_types_and_meanings_do_to_matching(backend, res) -> None:  # type: ignore[no-untyped-def]
    bus = res.ensure_bus("orders")
    rules = coupling.ContentRules(
        res,
        bus,
        {"anz": {"currency": ["AU", "NZ"]}, "billing": {"price": [{"numeric": [">", 0]}]}},
        sqs=backend.client("sqs"),
        events=backend.client("events"),
        consumers={"anz": coupling.with_gst},
    )
    v1 = rules.publish([coupling.order_created(f"o-{n}", price=5.0, currency=c) for n, c in enumerate(["AU", "NZ"])])
    assert v1 == (0, {"anz": 2, "billing": 2}, 0)
    v2 = rules.publish([coupling.order_created("o-3", price="5.0", currency="AU")])
    assert v2 == (0, {"anz": 1, "billing": 0}, 1)  # a string price: no numeric match, and the consumer fails
    v3 = rules.publish([coupling.order_created("o-4", price=5.0, currency="AUD")])
    assert v3 == (0, {"anz": 0, "billing": 1}, 0)
