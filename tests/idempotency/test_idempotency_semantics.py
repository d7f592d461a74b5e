"""The record state machine, on both stores (memory and DynamoDB on the embedded backend).

Every test drives time with a ManualClock and crashes or stalls workers with fault hooks: nothing sleeps.
"""

from __future__ import annotations

import warnings

import pytest

from helpers.idempotency import (
    ABSENT,
    DynamoDBStore,
    InProgress,
    KeyMissing,
    LeaseLost,
    PayloadMismatch,
    ResponseNotStorable,
    SimulatedCrash,
    Status,
    TerminalError,
    UnprotectedCall,
    WaitPolicy,
    idempotent,
    last_outcome,
)

ORDER = {"idempotency_key": "order-1", "amount": 100, "currency": "EUR"}


class Ledger:
    """The side effect under test: every charge is appended, so duplicates are counted, not assumed."""

    def __init__(self) -> None:
        self.charges: list[dict] = []

    def charge(self, order: dict, by: str = "?") -> dict:
        self.charges.append({"order": order["idempotency_key"], "by": by})
        return {"charge_id": f"ch_{len(self.charges)}", "amount": order["amount"], "by": by}


def expected_api_calls(store, n: int) -> int:
    return n if isinstance(store, DynamoDBStore) else 0


def test_first_call_duplicate_and_cached_round_trips(make_idem, store, api_calls):
    ledger = Ledger()
    w1, w2 = make_idem("w1"), make_idem("w2")

    first = w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    assert (first.replayed, first.source, first.round_trips) == (False, "executed", 2)
    assert api_calls.total == expected_api_calls(store, 2)

    api_calls.reset()
    dup = w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2"))  # another process: no cache
    assert (dup.replayed, dup.source, dup.round_trips) == (True, "store", 1)
    assert api_calls.total == expected_api_calls(store, 1)

    api_calls.reset()
    cached = w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    assert (cached.replayed, cached.source, cached.round_trips) == (True, "cache", 0)
    assert api_calls.total == 0

    assert len(ledger.charges) == 1
    assert first.value == dup.value == cached.value == {"charge_id": "ch_1", "amount": 100, "by": "w1"}
    assert w1.stats["round_trips"] == 2 and w2.stats["round_trips"] == 1


def test_the_first_caller_gets_the_stored_form_too(make_idem):
    # a tuple becomes a list in JSON: the first caller sees exactly what every replay will see
    w1, w2 = make_idem("w1"), make_idem("w2")
    assert w1.execute(ORDER, lambda: (1, "a")).value == [1, "a"] == w2.execute(ORDER, lambda: None).value


def test_payload_mismatch_on_every_path(make_idem, clock):
    w1, w2, w3 = make_idem("w1"), make_idem("w2"), make_idem("w3", wait=WaitPolicy(max_wait=1, interval=0.5))
    other = {**ORDER, "amount": 999}

    # 1. the claim is refused by an IN_PROGRESS record with another fingerprint
    guard = w1.guard(ORDER)
    with pytest.raises(PayloadMismatch) as info:
        w2.execute(other, lambda: pytest.fail("must not run"))
    assert (info.value.http_status, info.value.source, info.value.round_trips) == (422, "store", 1)
    guard.complete({"ok": 1})

    # 2. the item returned by the failed conditional write (ALL_OLD) of a COMPLETED record
    with pytest.raises(PayloadMismatch) as info:
        w2.execute(other, lambda: pytest.fail("must not run"))
    assert (info.value.source, info.value.round_trips) == ("store", 1)

    # 3. the local cache
    with pytest.raises(PayloadMismatch) as info:
        w1.execute(other, lambda: pytest.fail("must not run"))
    assert (info.value.source, info.value.round_trips) == ("cache", 0)

    # 4. a waiter that polls the claim
    with pytest.raises(PayloadMismatch):
        w3.execute(other, lambda: pytest.fail("must not run"))

    # the original payload still replays everywhere, and the record was not touched
    assert w2.execute(ORDER, lambda: None).value == {"ok": 1}
    assert w2.lookup(ORDER).fingerprint == w1.identify(ORDER).fingerprint

    # after the expiry window the key starts a new lifetime and may carry a new payload
    clock.advance(3601)
    assert w2.execute(other, lambda: {"ok": 2}).value == {"ok": 2}


def test_mismatch_beats_a_stored_terminal_error(make_idem):
    w1 = make_idem("w1")
    with pytest.raises(TerminalError):
        w1.execute(ORDER, lambda: (_ for _ in ()).throw(TerminalError("declined")))
    with pytest.raises(PayloadMismatch):
        make_idem("w2").execute({**ORDER, "amount": 1}, lambda: None)


def test_concurrent_duplicate_is_409_with_a_retry_hint(make_idem, clock):
    w1, w2 = make_idem("w1"), make_idem("w2", retry_after_cap=5.0)
    guard = w1.guard(ORDER)
    clock.advance(28)
    with pytest.raises(InProgress) as info:
        w2.execute(ORDER, lambda: pytest.fail("must not run"))
    err = info.value
    assert err.http_status == 409
    assert err.holder == "w1"
    assert err.lease_expires_in == pytest.approx(2.0)
    assert err.retry_after == pytest.approx(2.0)  # min(lease left, cap)
    assert "Retry with the same key" in str(err)
    guard.complete("done")
    assert w2.execute(ORDER, lambda: None).value == "done"


def test_wait_returns_the_first_attempts_result(make_idem, store, clock):
    ledger = Ledger()
    w1 = make_idem("w1")
    w2 = make_idem("w2", wait=WaitPolicy(max_wait=10, interval=0.5, max_interval=2))
    guard = w1.guard(ORDER)
    # the first attempt finishes while w2 sleeps between polls (the hook runs on w2's clock sleep)
    polls = []

    def on_poll(ctx):
        polls.append(ctx.worker)

    w2.hooks.add("before_claim", on_poll)
    original_sleep = clock.sleep

    def sleep_then_finish(seconds):
        original_sleep(seconds)
        if not guard.finished:
            guard.complete(ledger.charge(ORDER, "w1"))

    clock.sleep = sleep_then_finish
    out = w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2"))
    assert out.replayed and out.value["by"] == "w1"
    assert out.waited == pytest.approx(0.5)
    assert out.round_trips == 2  # two claim attempts
    assert len(ledger.charges) == 1


def test_wait_is_bounded(make_idem):
    w1 = make_idem("w1")
    w2 = make_idem("w2", wait=WaitPolicy(max_wait=3, interval=0.5, max_interval=1, backoff=2))
    w1.guard(ORDER)  # never finishes
    with pytest.raises(InProgress) as info:
        w2.execute(ORDER, lambda: pytest.fail("must not run"))
    # polls at t=0, 0.5, 1.5, 2.5, 3.0 -> 5 claims, then gives up
    assert info.value.round_trips == 5


def test_wait_takes_over_an_abandoned_attempt(make_idem):
    w1 = make_idem("w1", lease_duration=5)
    w2 = make_idem("w2", lease_duration=5, wait=WaitPolicy(max_wait=10, interval=1, max_interval=1))
    w1.guard(ORDER)  # the owner dies silently
    out = w2.execute(ORDER, lambda: "w2 did it")
    assert (out.replayed, out.value, out.waited) == (False, "w2 did it", pytest.approx(5.0))
    assert "takeover" in w2.log.events(out.key)


def test_crash_after_the_effect_then_lease_expiry_allows_a_safe_retry(make_idem, clock, log):
    ledger = Ledger()
    w1, w2 = make_idem("w1"), make_idem("w2")
    w1.hooks.crash("after_effect")
    with pytest.raises(SimulatedCrash):
        w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    record = w1.lookup(ORDER)
    assert record.status is Status.IN_PROGRESS and record.worker == "w1"  # a crash runs no clean-up

    with pytest.raises(InProgress):  # before the lease ends the retry is refused, not run
        w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2"))
    clock.advance(30)
    retry = w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2"))
    assert not retry.replayed and retry.value["by"] == "w2"
    # the unfenced effect ran twice: that is what a crash between effect and completion costs, and it is counted
    assert [c["by"] for c in ledger.charges] == ["w1", "w2"]
    assert make_idem("w3").execute(ORDER, lambda: ledger.charge(ORDER, "w3")).replayed
    assert len(ledger.charges) == 2
    assert log.events(retry.key) == ["claim", "conflict", "takeover", "complete", "replay"]


def test_lease_takeover_refuses_the_stale_completion_and_loses_nothing(make_idem, clock, log):
    ledger = Ledger()
    w1, w2 = make_idem("w1"), make_idem("w2")
    newer = {}

    def stall_past_lease_while_w2_runs(ctx):
        clock.advance(31)
        newer["outcome"] = w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2"))

    w1.hooks.add("before_completion", stall_past_lease_while_w2_runs)
    with pytest.raises(LeaseLost) as info:
        w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    lost = info.value
    assert lost.during == "completion"
    assert lost.value == {"charge_id": "ch_1", "amount": 100, "by": "w1"}  # w1's own result is handed back
    assert lost.current.status is Status.COMPLETED and lost.current.worker == "w2"
    assert "was refused" in str(lost) and "retry the request with the same key" in str(lost)
    # the newer record is intact and is what every duplicate gets
    stored = w1.lookup(ORDER)
    assert stored.worker == "w2" and stored.value() == newer["outcome"].value
    assert make_idem("w3").execute(ORDER, lambda: None).value["by"] == "w2"
    key = newer["outcome"].key
    assert log.events(key) == ["claim", "takeover", "complete", "lease_lost", "replay"]
    assert log.entries(key)[3]["from"] == log.entries(key)[3]["to"] == "COMPLETED"


def test_a_stale_owner_cannot_complete_over_a_newer_in_progress_owner(make_idem, clock):
    # the failure this prevents: in Powertools for AWS Lambda (Python), persistence/dynamodb.py `_update_record` writes
    # the completion as an UpdateItem with no ConditionExpression (and `_delete_record` deletes with none), so a stale
    # owner's completion overwrites the record a newer worker is still working on
    w1, w2 = make_idem("w1"), make_idem("w2")
    holder = {}

    def stall_past_lease_then_w2_claims(ctx):
        clock.advance(31)
        holder["guard"] = w2.guard(ORDER)

    w1.hooks.add("before_completion", stall_past_lease_then_w2_claims)
    with pytest.raises(LeaseLost) as info:
        w1.execute(ORDER, lambda: "w1 result")
    assert info.value.current.status is Status.IN_PROGRESS and info.value.current.worker == "w2"
    record = w1.lookup(ORDER)
    assert (record.status, record.worker, record.response) == (Status.IN_PROGRESS, "w2", None)
    assert holder["guard"].complete("w2 result").value == "w2 result"
    assert make_idem("w3").execute(ORDER, lambda: None).value == "w2 result"


@pytest.mark.parametrize("error", [RuntimeError("timeout"), TerminalError("declined")])
def test_lease_takeover_refuses_the_stale_release_or_failure(make_idem, clock, error):
    w1, w2 = make_idem("w1"), make_idem("w2")

    def taken_over(ctx):
        clock.advance(31)
        w2.guard(ORDER)  # w2 holds the key now

    w1.hooks.add("after_claim", taken_over)

    def boom():
        raise error

    with pytest.raises(LeaseLost) as info:
        w1.execute(ORDER, boom)
    assert info.value.__cause__ is error  # the original failure is kept
    assert info.value.during == ("failure" if isinstance(error, TerminalError) else "release")
    record = w1.lookup(ORDER)
    assert record.status is Status.IN_PROGRESS and record.worker == "w2"


def test_expiry_is_decided_in_code(make_idem, clock, log):
    ledger = Ledger()
    w1, w2 = make_idem("w1", expires_after=60), make_idem("w2", expires_after=60)
    w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    clock.advance(59)
    assert w2.execute(ORDER, lambda: ledger.charge(ORDER, "w2")).replayed
    assert w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1")).source == "cache"
    clock.advance(1)  # the window is over; the TTL sweeper has not run (it never does on moto)
    assert w1.lookup(ORDER) is not None
    again = w1.execute(ORDER, lambda: ledger.charge(ORDER, "w1"))
    assert not again.replayed and again.round_trips == 2  # the cache entry expired too
    assert len(ledger.charges) == 2
    assert log.entries(again.key)[-2]["from"] == "EXPIRED"


def test_terminal_errors_are_stored_and_replayed(make_idem):
    w1, w2 = make_idem("w1"), make_idem("w2")
    runs = []

    class CardDeclined(TerminalError):
        http_status = 402

    def decline():
        runs.append(1)
        raise CardDeclined("card declined", details={"decline_code": "insufficient_funds"})

    with pytest.raises(CardDeclined) as first:
        w1.execute(ORDER, decline)
    assert not first.value.replayed
    for worker in (w1, w2):
        with pytest.raises(TerminalError) as replay:
            worker.execute(ORDER, decline)
        err = replay.value
        assert err.replayed and err.original_type == "CardDeclined"
        assert (err.code, err.message, err.http_status) == ("CardDeclined", "card declined", 402)
        assert err.details == {"decline_code": "insufficient_funds"}
    assert len(runs) == 1
    assert w1.lookup(ORDER).status is Status.FAILED


def test_configured_terminal_exceptions_are_replayed_as_terminal_errors(make_idem):
    w1 = make_idem("w1", terminal_errors=(ValueError,))
    with pytest.raises(ValueError, match="bad iban"):
        w1.execute(ORDER, lambda: (_ for _ in ()).throw(ValueError("bad iban")))
    with pytest.raises(TerminalError) as info:
        make_idem("w2").execute(ORDER, lambda: None)
    assert info.value.original_type == "ValueError" and info.value.message == "bad iban"


def test_retryable_errors_release_the_lease(make_idem, log):
    w1, w2 = make_idem("w1"), make_idem("w2")
    with pytest.raises(RuntimeError):
        w1.execute(ORDER, lambda: (_ for _ in ()).throw(RuntimeError("gateway timeout")))
    assert w1.lookup(ORDER) is None
    out = w2.execute(ORDER, lambda: "second try")
    assert not out.replayed and out.value == "second try"
    assert log.events(out.key) == ["claim", "release", "claim", "complete"]
    assert log.entries(out.key)[1]["to"] == ABSENT


def test_a_result_that_cannot_be_stored_is_recorded_as_failed_not_rerun(make_idem):
    runs = []
    w1 = make_idem("w1")
    with pytest.raises(ResponseNotStorable, match="JSON-serialisable"):
        w1.execute(ORDER, lambda: runs.append(1) or {1, 2})
    with pytest.raises(TerminalError) as info:
        make_idem("w2").execute(ORDER, lambda: runs.append(1))
    assert info.value.code == "response_not_storable"
    assert runs == [1]


def test_missing_key_is_an_error_before_any_round_trip(make_idem, api_calls):
    w1 = make_idem("w1")
    with pytest.raises(KeyMissing) as info:
        w1.execute({"amount": 1}, lambda: pytest.fail("must not run"))
    assert info.value.http_status == 400 and api_calls.total == 0


def test_missing_key_can_run_unprotected_with_a_warning(make_idem, api_calls):
    w1 = make_idem("w1", on_missing_key="warn")
    with pytest.warns(UnprotectedCall, match="WITHOUT protection"):
        out = w1.execute({"amount": 1}, lambda: "ran")
    assert (out.value, out.source, out.key, api_calls.total) == ("ran", "unprotected", None, 0)


def test_decorator_returns_the_plain_value_and_exposes_replays(make_idem):
    ledger = Ledger()
    idem = make_idem("w1", local_cache=False)

    @idempotent(idem, payload_arg="order")
    def charge(customer: str, order: dict) -> dict:
        return ledger.charge(order, customer)

    first = charge("alice", order=ORDER)
    assert last_outcome().replayed is False
    assert charge("alice", ORDER) == first
    assert last_outcome().replayed is True and last_outcome().round_trips == 1
    outcome = charge.outcome("alice", ORDER)
    assert outcome.replayed and outcome.value == first
    assert len(ledger.charges) == 1

    @idem.idempotent(payload_arg=0, token_arg="key", return_outcome=True)
    def refund(order: dict, key: str) -> str:
        return "refunded"

    assert refund({"amount": 1}, key="r-1").value == "refunded"
    assert refund({"amount": 1}, key="r-1").replayed


def test_guard_context_manager(make_idem):
    ledger = Ledger()
    w1, w2 = make_idem("w1"), make_idem("w2")
    with w1.guard(ORDER) as g:
        assert not g.replayed and g.owner
        g.complete(ledger.charge(ORDER, "w1"))
    with w2.guard(ORDER) as g2:
        assert g2.replayed
    assert g2.value == g.value and len(ledger.charges) == 1

    other = {**ORDER, "idempotency_key": "order-2"}
    with pytest.raises(RuntimeError), w1.guard(other):
        raise RuntimeError("retryable")
    assert w1.lookup(other) is None  # released

    with pytest.raises(SimulatedCrash), w1.guard(other):
        raise SimulatedCrash("inside the block")
    assert w1.lookup(other).status is Status.IN_PROGRESS  # a crash leaves the lease to expire

    third = {**ORDER, "idempotency_key": "order-3"}
    with w1.guard(third) as g3:
        pass  # leaving normally completes with None
    assert g3.value is None and w1.lookup(third).status is Status.COMPLETED


def test_hooks_fire_in_protocol_order(make_idem):
    w1 = make_idem("w1")
    w1.execute(ORDER, lambda: "ok")
    with pytest.raises(RuntimeError):
        w1.execute({**ORDER, "idempotency_key": "x"}, lambda: (_ for _ in ()).throw(RuntimeError()))
    points = [h["point"] for h in w1.hooks.history]
    assert points == []  # nothing registered: nothing recorded

    seen = []
    for point in ("before_claim", "after_claim", "after_effect", "before_completion", "before_release"):
        w1.hooks.add(point, lambda ctx: seen.append((ctx.point, ctx.worker, bool(ctx.owner))))
    w1.execute({**ORDER, "idempotency_key": "y"}, lambda: "ok")
    with pytest.raises(RuntimeError):
        w1.execute({**ORDER, "idempotency_key": "z"}, lambda: (_ for _ in ()).throw(RuntimeError()))
    assert seen == [
        ("before_claim", "w1", False),
        ("after_claim", "w1", True),
        ("after_effect", "w1", True),
        ("before_completion", "w1", True),
        ("before_claim", "w1", False),
        ("after_claim", "w1", True),
        ("before_release", "w1", True),
    ]


def test_transition_log_is_drawable(make_idem, clock, log):
    w1, w2 = make_idem("w1"), make_idem("w2")
    w1.hooks.crash("after_effect")
    with pytest.raises(SimulatedCrash):
        w1.execute(ORDER, lambda: "w1")
    clock.advance(31)
    w2.execute(ORDER, lambda: "w2")
    rows = log.entries()
    assert all(set(r) == {"key", "from", "to", "worker", "at", "reason", "event"} for r in rows)
    assert [(r["from"], r["to"], r["worker"], r["at"]) for r in rows] == [
        ("ABSENT", "IN_PROGRESS", "w1", 2_000_000_000.0),
        ("IN_PROGRESS", "IN_PROGRESS", "w2", 2_000_000_031.0),
        ("IN_PROGRESS", "COMPLETED", "w2", 2_000_000_031.0),
    ]
    diagram = log.to_mermaid()
    assert diagram.splitlines()[0] == "stateDiagram-v2"
    assert "ABSENT --> IN_PROGRESS: claim" in diagram
    assert "IN_PROGRESS --> IN_PROGRESS: takeover" in diagram
    assert "IN_PROGRESS --> COMPLETED: complete" in diagram


def test_forget_frees_a_key(make_idem):
    w1 = make_idem("w1")
    w1.execute(ORDER, lambda: 1)
    w1.forget(ORDER)
    assert w1.lookup(ORDER) is None
    assert not w1.execute(ORDER, lambda: 2).replayed


def test_unprotected_warning_is_not_raised_for_keyed_calls(make_idem):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_idem("w1", on_missing_key="warn").execute(ORDER, lambda: 1)


def test_a_store_that_contradicts_the_rules_cannot_make_the_library_spin(clock):
    from helpers.idempotency import Idempotency, MemoryStore, StoreError
    from helpers.idempotency.store.base import ClaimResult

    class Contrary(MemoryStore):
        def claim(self, record, *, now):  # refuses, yet shows a record that is free
            return ClaimResult(False, record.with_changes(lease_expires_at=now - 1))

    idem = Idempotency(store=Contrary(), clock=clock, token_field="idempotency_key")
    with pytest.raises(StoreError, match="disagree") as info:
        idem.execute(ORDER, lambda: pytest.fail("must not run"))
    assert info.value.round_trips == 4


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"idempotency_key": "k", "tags": {"a", "b"}}, "PayloadNotSerializable"),
        ({"idempotency_key": "k", "body": "{not json"}, "MalformedPayload"),
        ({"idempotency_key": "x" * 300}, "InvalidKey"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(make_idem, api_calls, store, payload, error):
    idem = make_idem("w1")
    with pytest.raises(Exception) as info:
        idem.execute(payload, lambda: pytest.fail("must not run"))
    assert type(info.value).__name__ == error and info.value.http_status == 400
    assert api_calls.total == 0 and idem.stats["round_trips"] == 0
    if hasattr(store, "records"):
        assert store.records() == {}


def test_hook_stall_moves_a_manual_clock_instantly(make_idem, clock):
    w1, w2 = make_idem("w1"), make_idem("w2")
    w1.hooks.stall("before_completion", seconds=45)  # a 45 s GC pause, in no time
    w1.hooks.add("before_completion", lambda ctx: w2.execute(ORDER, lambda: "w2"))  # meanwhile w2 takes over
    with pytest.raises(LeaseLost):
        w1.execute(ORDER, lambda: "w1")
    assert clock.now() == 2_000_000_045.0
    assert [h["point"] for h in w1.hooks.history] == ["before_completion", "before_completion"]
