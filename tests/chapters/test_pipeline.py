"""The capstone path in memory (chapters.pipeline): key derivation, each source, chaos at scale, links, windows."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from helpers.chapters import pipeline as p

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # Step Functions execution names (StartExecution API reference)


def test_derive_key_is_stable_per_hop_and_a_valid_execution_name():
    key = "5f0c7b7e-8a35-4c42-9d0e-3f1c2a2b9d10"
    assert p.derive_key(key, "execution") == p.derive_key(key, "execution")
    assert p.derive_key(key, "execution") != p.derive_key(key, "payment")
    assert p.derive_key(key, "payment") != p.derive_key(key + "x", "payment")
    assert NAME.match(p.derive_key(key, "execution"))
    assert uuid.UUID(p.derive_key(key, "payment")).version == 5
    with pytest.raises(ValueError, match="never derive from nothing"):
        p.derive_key("", "payment")
    with pytest.raises(ValueError, match="without '/'"):
        p.derive_key(key, "a/b")


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="unknown duplication source"):
        p.Chaos(rates={"gremlins": 0.5})
    with pytest.raises(ValueError, match="probability"):
        p.Chaos(rates={"deliver_twice": 2})
    with pytest.raises(ValueError, match="unknown link variant"):
        p.System(link="scissors")
    with pytest.raises(ValueError, match="after the original"):
        p.late_duplicate("client_retry", -1)


def test_baseline_one_attempt_and_one_effect_per_hop():
    result = p.System().run(1)
    assert all(result.attempts[h] == 1 and result.effects[h] == 1 for h in p.HOPS)
    assert result.charges[result.keys[0]] == 1 and not result.absorbed


EXPECTED_ABSORBER = {
    "client_retry": {"orders-api"},
    "putevents_retry": {"consumer"},
    "deliver_twice": {"consumer"},
    "crash_after_effect": {"consumer-in-progress", "workflow"},
    "exceed_visibility": {"consumer", "consumer-in-progress"},
    "archive_replay": {"consumer"},
    "startexecution_retry": {"workflow"},
    "second_task_success": {"task-worker"},
    "apidest_retry": {"payments-api"},
}


def test_each_source_alone_is_absorbed_where_the_course_says():
    rows = {r["scenario"]: r for r in p.each_source()}
    assert set(rows) == set(p.SOURCES)
    for source, absorbers in EXPECTED_ABSORBER.items():
        assert rows[source]["charges"] == 1, source
        assert set(rows[source]["absorbed by"].split(", ")) == absorbers, source


def test_1000_seeded_chaos_runs_every_source_on_lose_nothing_and_double_nothing(capsys, record_property):
    """Proves: with the key carried end to end, 1000 seeded runs with all nine duplication sources on at 30% give
    exactly one charge per order (0 lost, 0 doubled), and every source really fired. This is the in-memory fast path
    (same idempotency library, same AWS rules); tests/chapters/test_capstone.py:
    runs the path end to end on the emulator."""
    started = time.perf_counter()
    summary = p.chaos_runs(1000, rate=0.3)
    elapsed = time.perf_counter() - started
    record_property("chaos_runs_seconds", round(elapsed, 2))
    with capsys.disabled():  # reported in `make test` output even without -s
        print(
            f"\n[capstone] 1000 seeded chaos runs, every source on: {summary.charges} charges for "
            f"{summary.orders} orders, {summary.lost} lost, {summary.doubled} doubled, in {elapsed:.2f} s"
        )
    assert summary.orders == summary.charges == 1000
    assert summary.lost == 0 and summary.doubled == 0
    assert set(summary.injected) == set(p.SOURCES) and min(summary.injected.values()) > 100
    assert sum(summary.absorbed.values()) > 3000
    assert elapsed < 30, f"the chaos test took {elapsed:.1f} s; keep it lean"


def test_a_replay_is_absorbed_whether_or_not_it_keeps_the_event_id():
    """AWS does not document whether a replayed event keeps its id: the path must not depend on it."""
    for keeps in (False, True):
        result = p.System(p.Chaos.only("archive_replay"), replay_keeps_id=keeps).run(1)
        assert sum(result.charges.values()) == 1 and dict(result.absorbed) == {"consumer": 1}, keeps
    broken = p.System(p.Chaos.only("archive_replay"), link="event_id_as_key", replay_keeps_id=False).run(1)
    assert sum(broken.charges.values()) == 2, "keyed on the id, a replay with a new id charges again"


def test_one_vocabulary_of_hops_and_one_envelope():
    assert tuple(h for h in p.HOPS if h not in ("queue", "ledger")) == p.COUNTED_HOPS
    assert set(p.MECHANISMS) - {"consumer-in-progress"} <= set(p.HOPS)
    assert {hop for hop, _ in p.SOURCES.values()} <= set(p.HOPS)
    detail = p.order_detail("K", {"orderId": "o-1", "amount": 25})
    assert detail == {"metadata": {"idempotency-key": "K"}, "data": {"order-id": "o-1", "amount": 25}}
    payload = p.workflow_input("K", detail)
    assert payload["paymentKey"] == p.derive_key("K", "payment") and payload["orderId"] == "o-1"
    assert p.payment_detail(payload)["metadata"] == {"idempotency-key": p.derive_key("K", "payment")}


def test_same_seed_same_run():
    a = p.System(p.Chaos.every_source(0.5, seed=3), seed=3).run(5)
    b = p.System(p.Chaos.every_source(0.5, seed=3), seed=3).run(5)
    assert (a.attempts, a.absorbed, a.injected, a.charges) == (b.attempts, b.absorbed, b.injected, b.charges)


def test_each_broken_link_lets_its_duplicates_through():
    rows = {r["link"]: r for r in p.break_each_link(p.Chaos.every_source(0.3, seed=1), orders=20)}
    assert rows["intact"]["doubled"] == 0 and rows["intact"]["executions"] == 20
    for link in ("client_new_key_on_retry", "orders_api_regenerates", "event_id_as_key"):
        assert rows[link]["doubled"] > 0, link
    # a random execution name starts extra executions; the payment key, still derived, stops the extra charges
    assert rows["random_execution_name"]["executions"] > 20 and rows["random_execution_name"]["doubled"] == 0
    assert all(r["lost"] == 0 for r in rows.values())


def test_a_duplicate_outliving_every_window_is_charged_again():
    day = 86_400
    replay_2h = p.late_duplicate("archive_replay", 2 * 3600)
    assert sum(replay_2h.charges.values()) == 1 and dict(replay_2h.absorbed) == {"workflow": 1}
    replay_91d = p.late_duplicate("archive_replay", 91 * day)
    assert sum(replay_91d.charges.values()) == 2
    short = p.late_duplicate("apidest_retry", 2 * 3600, windows=p.Windows(payments_api=3600))
    assert sum(short.charges.values()) == 2
    assert sum(p.late_duplicate("apidest_retry", 2 * 3600).charges.values()) == 1


def test_content_based_dedup_id_differs_when_only_the_envelope_differs():
    detail = p.order_detail("k", {"orderId": "o-1", "amount": 25})
    first = {"id": "a", "time": "t1", "detail": detail}
    retry = {"id": "b", "time": "t1", "detail": detail}
    assert p.content_dedup_id(first) != p.content_dedup_id(retry)
    assert p.content_dedup_id(first["detail"]) == p.content_dedup_id(retry["detail"])
