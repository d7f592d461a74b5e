"""chapters.duplicates: each of notebook 06's duplicate sources, run on the backend, counted in the ledger."""

from __future__ import annotations

import json

import pytest

from helpers.aws.resources import Resources, Target
from helpers.chapters import duplicates as dup
from helpers.instruments.faults import FaultPlan
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services.messaging import drain, queue_depth

VISIBILITY_S = 1


PREFIX = "t-dup"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


@pytest.fixture
def shop(backend, res: Resources) -> dup.Shop:  # type: ignore[no-untyped-def]
    return dup.Shop(Ledger(res), Trace("t"), backend.client("sqs"))


# -- 1 · transmission ----------------------------------------------------------------------------------------------
def test_a_lost_response_is_retried_and_charges_twice(shop: dup.Shop) -> None:
    plan = FaultPlan.script({"lose_response": {"o-1": [1]}})
    lost = shop.place_order("o-1", 5, plan, scenario="lost")
    clean = shop.place_order("o-2", 5, plan, scenario="lost")
    assert (lost.attempts, lost.ok, clean.attempts) == (2, True, 1)
    assert shop.ledger.charges_per_order() == {"o-1": 2, "o-2": 1}
    assert shop.trace.count(kind="lost", key="o-1") == 1 and shop.scenario_of == {"o-1": "lost", "o-2": "lost"}


def test_a_retry_after_nothing_was_done_charges_once(shop: dup.Shop) -> None:
    plan = FaultPlan.script({"receiver_down": {"o-1": [1]}, "throttle": {"o-2": [1, 2]}})
    down, throttled = shop.place_order("o-1", 5, plan, scenario="s"), shop.place_order("o-2", 5, plan, scenario="s")
    assert (down.attempts, throttled.attempts) == (2, 3) and down.ok and throttled.ok
    assert shop.ledger.charges_per_order() == {"o-1": 1, "o-2": 1}
    given_up = shop.place_order("o-3", 5, FaultPlan.script({"throttle": {"o-3": True}}), scenario="s")
    assert given_up.gave_up and "o-3" not in shop.ledger.charges_per_order()


def test_the_sweep_is_seeded_and_its_arithmetic_holds(res: Resources) -> None:
    ledger = Ledger(res, name="sweep")
    rows = [dup.flaky_network(ledger, rate, 20, seed=2) for rate in (0.0, 0.2, 0.5)]
    assert [r["double charges"] for r in rows] == [0, 4, 15] and [r["client gave up"] for r in rows] == [0, 0, 1]
    for seed in (1, 7):
        for rate in (0.3, 0.9):
            row = dup.flaky_network(ledger, rate, 10, seed=seed)
            assert row["double charges"] == row["responses lost"] - row["client gave up"]
            assert row["charges"] == row["orders"] + row["double charges"] == ledger.count()  # cleared each run
    assert dup.flaky_network(ledger, 0.5, 20, seed=2) == rows[2]


def test_the_sweep_widget_runs_what_it_is_given() -> None:
    calls: list[tuple[float, int]] = []
    box = dup.sweep_controls(lambda rate, orders: calls.append((rate, orders)) or {"rate": rate})
    rate_slider, orders_slider, button = box.children[0].children
    assert (rate_slider.value, orders_slider.value) == (0.3, 20) and calls == []  # headless: shown, not run
    rate_slider.value, orders_slider.value = 0.5, 10
    button.click()
    assert calls == [(0.5, 10)]


# -- 2 · receiver --------------------------------------------------------------------------------------------------
def test_a_crash_after_the_charge_is_redelivered_and_charged_again(shop: dup.Shop, res: Resources) -> None:
    queue = res.ensure_queue("orders", visibility_timeout=VISIBILITY_S)
    for oid in ("o-1", "o-2"):
        shop.send_order(queue, oid, 5, scenario="crash")
    plan = FaultPlan.script({"crash_after_effect": {"o-1": [1]}})
    assert shop.work_through(queue, plan, orders=2, wait_s=VISIBILITY_S + 1) == 1
    assert shop.ledger.charges_per_order() == {"o-1": 2, "o-2": 1}
    assert queue_depth(shop.sqs, queue.url) == 0
    replies = [s.label for s in shop.trace.steps if s.kind == "reply" and s.key == "o-1"]
    assert replies == ["o-1, receive count 1", "o-1, receive count 2"]


def test_a_crashed_message_that_never_comes_back_is_an_error_not_a_hang(shop: dup.Shop, res: Resources) -> None:
    queue = res.ensure_queue("hidden", visibility_timeout=60)
    shop.send_order(queue, "o-1", 5, scenario="crash")
    with pytest.raises(TimeoutError, match="must come back"):
        shop.work_through(queue, FaultPlan.script({"crash_after_effect": True}), orders=1, wait_s=0)


def test_a_worker_slower_than_the_visibility_timeout_lets_a_second_worker_charge(
    shop: dup.Shop, res: Resources
) -> None:
    queue = res.ensure_queue("slow", visibility_timeout=VISIBILITY_S)
    shop.send_order(queue, "o-1", 5, scenario="slow")
    plan = FaultPlan.script({"exceed_visibility": {"o-1": [1]}})
    a = shop.receive(queue, "worker-A")
    assert a is not None and dup.receive_count(a) == 1
    shop.pay("o-1", 5, actor="worker-A")
    assert shop.slow_part("worker-A", "o-1", plan, work_s=1.5, visibility_s=VISIBILITY_S)
    b = shop.receive(queue, "worker-B", wait_s=VISIBILITY_S + 1)
    assert b is not None and dup.receive_count(b) == 2 and b["MessageId"] == a["MessageId"]
    assert not shop.slow_part("worker-B", "o-1", plan, work_s=1.5, visibility_s=VISIBILITY_S)  # only once
    shop.delete(queue, "worker-B", b)
    assert shop.receive(queue, "worker-C") is None


# -- 3 · service -----------------------------------------------------------------------------------------------------
def test_lambda_async_retries_a_function_that_fails_after_charging(shop: dup.Shop) -> None:
    plan = FaultPlan.script({"crash_after_effect": {"o-1": [1]}})
    once = shop.invoke_async(dup.order_created("o-1", 5), plan, scenario="lambda")
    assert (once.attempts, once.ok) == (2, True) and shop.ledger.charges_per_order() == {"o-1": 2}
    always = FaultPlan.script({"crash_after_effect": True})
    spent = shop.invoke_async(dup.order_created("o-2", 5), always, scenario="lambda")
    assert (spent.attempts, spent.gave_up) == (3, True)  # Lambda's default: two retries, three attempts
    assert shop.ledger.charges_per_order()["o-2"] == 3


@pytest.fixture
def inbox(backend, res: Resources):  # type: ignore[no-untyped-def]
    bus = res.ensure_bus("orders")
    queue = res.ensure_queue("inbox", visibility_timeout=VISIBILITY_S)
    rule = res.ensure_rule("r", bus=bus, pattern={"source": ["com.orders"]}, targets=[Target("q", queue.arn)])
    res.allow_send_from(queue, rule, "events.amazonaws.com")
    return bus, queue


def test_a_delete_that_misses_a_copy_brings_the_same_message_back(shop: dup.Shop, backend, inbox) -> None:  # type: ignore[no-untyped-def]
    bus, queue = inbox
    shop.put_order_events(backend.client("events"), bus, {"o-1": 5, "o-2": 7}, scenario="bus")
    plan = FaultPlan.script({"deliver_twice": {"o-2": [1]}})
    deliveries = shop.consume_bus_queue(queue, plan, expect=3, wait_s=VISIBILITY_S + 1)
    assert drain(shop.sqs, queue.url, settle_s=0.2) == []
    copies = [d for d in deliveries if d.order_id == "o-2"]
    assert len(copies) == 2 and [d.deleted for d in copies] == [False, True]
    assert copies[0].event_id == copies[1].event_id and copies[0].message_id == copies[1].message_id
    assert [d.receive_count for d in copies] == [1, 2] and copies[0].receipt_handle != copies[1].receipt_handle
    assert shop.ledger.charges_per_order() == {"o-1": 1, "o-2": 2}
    assert shop.trace.count(kind="lost", key="o-2") == 1 and shop.trace.count(src="EventBridge", key="o-2") == 1


def test_without_the_lost_delete_the_queue_delivers_each_event_once(shop: dup.Shop, backend, inbox) -> None:  # type: ignore[no-untyped-def]
    """The wrong version of the demo counted a copy the queue never delivered: here a third receive cannot happen."""
    bus, queue = inbox
    shop.put_order_events(backend.client("events"), bus, {"o-1": 5, "o-2": 7}, scenario="bus")
    with pytest.raises(TimeoutError, match="only 2 of 3 receives"):
        shop.consume_bus_queue(queue, FaultPlan.none(), expect=3, wait_s=1, timeout_s=2.5)
    assert shop.ledger.charges_per_order() == {"o-1": 1, "o-2": 1}


def test_order_of_reads_a_queued_order_and_an_event() -> None:
    assert dup.order_of({"Body": json.dumps({"orderId": "o-1", "amount": 5})}) == "o-1"
    assert dup.order_of({"Body": json.dumps(dup.order_created("o-2", 5))}) == "o-2"
    assert dup.order_created("o-2", 5)["detail"]["metadata"] == {}  # no client key: nothing to deduplicate on


def test_damage_counts_orders_charges_and_double_charges_per_scenario(shop: dup.Shop) -> None:
    plan = FaultPlan.script({"lose_response": {"o-1": [1]}})
    shop.place_order("o-1", 5, plan, scenario="lost")
    shop.place_order("o-2", 5, plan, scenario="lost")
    shop.place_order("o-3", 5, plan, scenario="clean")
    table = shop.damage()
    assert {s: tuple(int(v) for v in row) for s, row in table.iterrows()} == {"lost": (2, 3, 1), "clean": (1, 1, 0)}
