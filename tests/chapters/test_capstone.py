"""The capstone path end to end on the backend (chapters.capstone): every live duplication source, each broken link."""

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


def test_live_sources_are_every_source_where_the_backend_replays(live):
    replays = live.backend.supports("eventbridge_replay")
    assert set(cs.live_sources(live.backend)) == set(p.SOURCES) - (set() if replays else {"archive_replay"})
    with pytest.raises(ValueError, match="cannot be injected live"):
        live.order(_key(), {"orderId": "t-x", "amount": 1}, _bad(live))


def _bad(live):
    """A chaos plan naming a source this backend cannot inject (or, where it can inject all, a fake one)."""
    chaos = p.Chaos.only("archive_replay")
    if "archive_replay" in live.sources:
        chaos.rates["not-a-source"] = 1.0  # bypasses Chaos's own check: the live system must refuse it too
    return chaos


@pytest.mark.parametrize("source", list(p.SOURCES))
def test_each_source_alone_is_absorbed_live_where_the_model_says(live, source):
    """Each source striking once, live: one charge, absorbed by the mechanism the model names (a stale delete on
    moto removes what AWS may leave, so the visibility overrun's later replay shows only where the backend keeps it)."""
    if source not in live.sources:
        pytest.skip(f"{live.backend.name} cannot run {source} live ({live.backend.explain('eventbridge_replay')})")
    live.reset_counts()
    order_id = f"t-{source}"
    live.order(_key(), {"orderId": order_id, "amount": 10}, p.Chaos.only(source, seed=5))
    assert live.charges_for(order_id) == 1
    assert live.injected[source] >= 1
    model = {r["scenario"]: set(r["absorbed by"].split(", ")) for r in p.each_source()}[source]
    seen = set(live.absorbed)
    if source == "exceed_visibility":
        assert "consumer-in-progress" in seen and seen <= model
    else:
        assert seen == model, (source, seen, model)


def test_end_to_end_chaos_runs_on_the_emulator_lose_nothing_and_double_nothing(live):
    """Proves on the emulator what the 1000-run fast path proves in memory: four orders, each with every live
    duplication source striking (rate 1 on the first attempt, or 0.5 seeded), end in exactly one charge each, and
    each duplicate is absorbed by a real service or a real idempotency record (DynamoDB)."""
    plans = [p.Chaos(seed=s, rates=dict.fromkeys(live.sources, 1.0), first_attempt_only=True) for s in (1, 2)]
    plans += [p.Chaos(seed=s, rates=dict.fromkeys(live.sources, 0.5)) for s in (3, 4)]
    live.reset_counts()
    for n, chaos in enumerate(plans, 1):
        live.order(_key(), {"orderId": f"t-{n}", "amount": 10}, chaos)
        assert live.charges_for(f"t-{n}") == 1, n
    assert set(live.injected) == set(live.sources)
    assert live.absorbed["orders-api"] >= 2 and live.absorbed["workflow"] >= 2 and live.absorbed["payments-api"] >= 2
    assert live.ledger.duplicates() == 0


@pytest.mark.parametrize(
    ("link", "source", "executions", "charges"),
    [
        ("client_new_key_on_retry", "client_retry", 2, 2),
        ("orders_api_regenerates", "putevents_retry", 2, 2),
        ("event_id_as_key", "putevents_retry", 2, 2),
        ("random_execution_name", "crash_after_effect", 2, 1),
    ],
)
def test_each_broken_link_on_the_emulator(live, link, source, executions, charges):
    """Proves the failures are real, not a model artefact: each broken link, with the source that exposes it."""
    live.reset_counts()
    order_id = f"t-{link}"
    live.link = link
    try:
        live.order(_key(), {"orderId": order_id, "amount": 10}, p.Chaos.only(source, seed=5))
    finally:
        live.link = "intact"
    assert (live.effects["workflow"], live.charges_for(order_id)) == (executions, charges)


def test_fifo_content_dedup_keeps_a_putevents_retry_and_the_stable_body_fixes_it(live):
    """The FIFO trap on the backend: two PutEvents of one order reach a content-deduplicated FIFO queue twice; with
    the quoted-placeholder InputTransformer (which both emulators apply) they hash alike and arrive once."""
    bodies = cs.fifo_trap(live.resources, "fifo-trap", _key())
    assert len(bodies) == 2 and bodies[0]["detail"] == bodies[1]["detail"] and bodies[0]["id"] != bodies[1]["id"]
    assert live.backend.supports("eventbridge_input_transformer")
    fixed = cs.fifo_trap(live.resources, "fifo-fixed", _key(), stable_body=True)
    assert len(fixed) == 1 and set(fixed[0]) == {"idempotency-key", "order-id"}
