"""The capstone path end to end on the backend (chapters.capstone): a few orders, every live duplication source on."""

from __future__ import annotations

import uuid

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import capstone as cs
from helpers.chapters import pipeline as p


@pytest.fixture(scope="module")
def live(backend):
    resources = Resources("tcap", backend)
    resources.teardown()
    system = cs.LiveSystem(resources, seed=5)
    yield system
    system.stop()
    resources.teardown()
    assert not resources.inventory()


def _key() -> str:
    return str(uuid.uuid4())  # a new key per order, as a client makes it (faults are drawn per order id)


def test_baseline_one_attempt_and_one_effect_per_hop(live):
    live.reset_counts()
    live.order(_key(), {"orderId": "t-0", "amount": 10})
    assert live.charges_for("t-0") == 1
    assert set(live.attempts.values()) == {1} and not live.absorbed


def test_end_to_end_chaos_runs_on_the_emulator_lose_nothing_and_double_nothing(live):
    """Proves on the emulator what the 1000-run fast path proves in memory: four orders, each with every live
    duplication source striking (rate 1 on the first attempt, or 0.5 seeded), end in exactly one charge each, and
    each duplicate is absorbed by a real service or a real idempotency record (DynamoDB)."""
    plans = [p.Chaos(seed=s, rates=dict.fromkeys(cs.LIVE_SOURCES, 1.0), first_attempt_only=True) for s in (1, 2)]
    plans += [p.Chaos(seed=s, rates=dict.fromkeys(cs.LIVE_SOURCES, 0.5)) for s in (3, 4)]
    live.reset_counts()
    for n, chaos in enumerate(plans, 1):
        live.order(_key(), {"orderId": f"t-{n}", "amount": 10}, chaos)
        assert live.charges_for(f"t-{n}") == 1, n
    assert set(live.injected) == set(cs.LIVE_SOURCES)
    assert live.absorbed["orders-api"] >= 2 and live.absorbed["workflow"] >= 2 and live.absorbed["payments-api"] >= 2
    assert live.ledger.duplicates() == 0


def test_a_broken_link_charges_twice_on_the_emulator(live):
    """Proves the failure is real, not a model artefact: the consumer keyed on the event id turns a PutEvents retry
    into two executions and two charges."""
    live.reset_counts()
    live.event_id_as_key = True
    try:
        live.order(_key(), {"orderId": "t-broken", "amount": 10}, p.Chaos.only("putevents_retry"))
    finally:
        live.event_id_as_key = False
    assert live.effects["workflow"] == 2 and live.charges_for("t-broken") == 2


def test_fifo_content_dedup_keeps_a_putevents_retry(live):
    """Proves the FIFO trap on the backend: two PutEvents of one order reach a content-deduplicated FIFO queue twice."""
    bodies = cs.fifo_trap(live.resources, "fifo-trap", _key())
    assert len(bodies) == 2 and bodies[0]["detail"] == bodies[1]["detail"] and bodies[0]["id"] != bodies[1]["id"]
