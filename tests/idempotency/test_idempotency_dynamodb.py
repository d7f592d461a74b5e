"""DynamoDB specifics on the embedded backend: concurrency, transactions, table layout, an unreachable store."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from helpers.idempotency import (
    DynamoDBStore,
    Effect,
    EffectFailed,
    Idempotency,
    InProgress,
    LeaseLost,
    ManualClock,
    PayloadMismatch,
    Status,
    StoreError,
    StoreUnavailable,
    SystemClock,
    WaitPolicy,
)

ORDER = {"idempotency_key": "order-1", "amount": 100}


def make(store, worker, clock=None, **options):
    options.setdefault("scope", "ddb")
    options.setdefault("token_field", "idempotency_key")
    return Idempotency(store=store, clock=clock or ManualClock(), worker=worker, **options)


def charges(ddb, table, order="order-1"):
    items = ddb.query(
        TableName=table,
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "order"},
        ExpressionAttributeValues={":o": {"S": order}},
        ConsistentRead=True,
    )["Items"]
    return [i["charge"]["S"] for i in items]


def charge_effect(table, order, charge_id, result=None, *, unique=False):
    put = {"TableName": table, "Item": {"order": {"S": order}, "charge": {"S": charge_id}}}
    if unique:  # the business rule of the effect itself: one charge id once
        put["ConditionExpression"] = "attribute_not_exists(charge)"
    return Effect(result=result if result is not None else {"charge": charge_id}, writes=[{"Put": put}])


def test_create_table_is_idempotent_and_enables_ttl(ddb, table_name):
    store = DynamoDBStore(table_name("fresh"), ddb)
    try:
        assert store.create_table() is True
        assert store.create_table() is False
        table = ddb.describe_table(TableName=store.table_name)["Table"]
        assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = ddb.describe_time_to_live(TableName=store.table_name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    finally:
        store.delete_table()


def test_item_layout(ddb_store, ddb):
    clock = ManualClock(1_700_000_000.25)
    make(ddb_store, "w1", clock, expires_after=100).execute(ORDER, lambda: {"ok": True})
    item = ddb.get_item(TableName=ddb_store.table_name, Key={"pk": {"S": "ddb#tok#order-1"}})["Item"]
    assert item["status"] == {"S": "COMPLETED"}
    assert float(item["expires_at"]["N"]) == 1_700_000_100.25
    assert item["ttl"] == {"N": "1700000101"}  # integer seconds, rounded up: it only cleans up
    assert item["response"] == {"S": '{"ok":true}'}
    assert item["fingerprint"]["S"].startswith("sha256:")
    assert "lease_expires_at" not in item and item["worker"] == {"S": "w1"}


def test_missing_table_says_how_to_create_it(ddb):
    idem = make(DynamoDBStore("no-such-table", ddb), "w1")
    with pytest.raises(StoreError, match=r"create_table\(\)"):
        idem.execute(ORDER, lambda: pytest.fail("must not run"))


def test_32_concurrent_calls_one_side_effect(backend, ddb_store):
    client = backend.client("dynamodb", max_pool_connections=48)
    store = DynamoDBStore(ddb_store.table_name, client)
    effects: list[str] = []
    answered = threading.Semaphore(0)
    results: dict[str, str] = {}
    barrier = threading.Barrier(32)

    def charge(worker):
        effects.append(worker)
        # hold the lease until all 31 others have been answered: every one of them meets IN_PROGRESS
        for _ in range(31):
            assert answered.acquire(timeout=20), "the other workers did not answer in time"
        return {"charged_by": worker}

    def run(i):
        worker = f"t{i:02d}"
        idem = make(store, worker, SystemClock())
        barrier.wait(timeout=20)
        try:
            out = idem.execute(ORDER, lambda: charge(worker))
            results[worker] = "replayed" if out.replayed else "executed"
        except InProgress:
            results[worker] = "in_progress"
            answered.release()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 32
    assert len(effects) == 1
    assert Counter(results.values()) == {"executed": 1, "in_progress": 31}

    # a second wave after completion: 32 replays of the same response, still one effect
    replays: list = []
    barrier2 = threading.Barrier(32)

    def rerun(i):
        idem = make(store, f"r{i:02d}", SystemClock())
        barrier2.wait(timeout=20)
        replays.append(idem.execute(ORDER, lambda: effects.append("again")))

    threads = [threading.Thread(target=rerun, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(effects) == 1 and len(replays) == 32
    assert all(o.replayed and o.value == {"charged_by": effects[0]} and o.round_trips == 1 for o in replays)


def test_a_real_time_waiter_gets_the_result(ddb_store):
    go = threading.Event()
    w1 = make(ddb_store, "w1", SystemClock())
    w2 = make(ddb_store, "w2", SystemClock(), wait=WaitPolicy(max_wait=5, interval=0.01, max_interval=0.05))
    first = {}
    t = threading.Thread(target=lambda: first.setdefault("out", w1.execute(ORDER, lambda: go.wait(5) and "w1")))
    claimed = threading.Event()
    w1.hooks.add("after_claim", lambda ctx: claimed.set())
    t.start()
    assert claimed.wait(5)
    w2.hooks.add("before_claim", lambda ctx: go.set())  # release w1 once w2 has started waiting
    out = w2.execute(ORDER, lambda: pytest.fail("must not run"))
    t.join(5)
    assert out.replayed and out.value == "w1" == first["out"].value


def test_single_round_trip_transaction(ddb_store, ddb, ledger_table, api_calls):
    w1, w2 = make(ddb_store, "w1"), make(ddb_store, "w2")

    def effect(ctx):
        return charge_effect(ledger_table, "order-1", f"ch-{ctx.worker}", unique=True)

    api_calls.reset()
    first = w1.execute_transactional(ORDER, effect)
    assert (first.replayed, first.round_trips, first.value) == (False, 1, {"charge": "ch-w1"})
    assert api_calls.calls == {"TransactWriteItems": 1}

    api_calls.reset()
    dup = w2.execute_transactional(ORDER, effect)
    assert (dup.replayed, dup.source, dup.round_trips, dup.value) == (True, "store", 1, {"charge": "ch-w1"})
    assert api_calls.total == 1
    assert w1.execute_transactional(ORDER, effect).source == "cache"
    # a plain execute of the same key sees the same record
    assert make(ddb_store, "w3").execute(ORDER, lambda: pytest.fail("must not run")).value == {"charge": "ch-w1"}
    assert charges(ddb, ledger_table) == ["ch-w1"]

    # the returned item (CancellationReasons[0].Item) is checked for the fingerprint too
    with pytest.raises(PayloadMismatch) as info:
        make(ddb_store, "w4").execute_transactional({**ORDER, "amount": 5}, effect)
    assert (info.value.source, info.value.round_trips) == ("store", 1)
    with pytest.raises(PayloadMismatch) as info:
        w2.execute_transactional({**ORDER, "amount": 5}, effect)
    assert (info.value.source, info.value.round_trips) == ("cache", 0)
    assert charges(ddb, ledger_table) == ["ch-w1"]


def test_transaction_waits_for_nobody_but_refuses_a_live_lease(ddb_store, ledger_table, ddb):
    clock = ManualClock()
    w1, w2 = make(ddb_store, "w1", clock), make(ddb_store, "w2", clock)
    w1.guard(ORDER)  # an unfenced attempt holds the lease
    with pytest.raises(InProgress):
        w2.execute_transactional(ORDER, lambda ctx: charge_effect(ledger_table, "order-1", "ch-w2"))
    clock.advance(31)  # abandoned: the transaction may take the key over
    assert w2.execute_transactional(ORDER, lambda ctx: charge_effect(ledger_table, "order-1", "ch-w2")).value
    assert charges(ddb, ledger_table) == ["ch-w2"]


def test_effect_failure_writes_nothing_and_frees_the_key(ddb_store, ddb, ledger_table):
    w1 = make(ddb_store, "w1")
    ddb.put_item(TableName=ledger_table, Item={"order": {"S": "order-1"}, "charge": {"S": "ch-dup"}})
    with pytest.raises(EffectFailed) as info:
        w1.execute_transactional(ORDER, charge_effect(ledger_table, "order-1", "ch-dup", unique=True))
    assert [r["Code"] for r in info.value.reasons] == ["None", "ConditionalCheckFailed"]
    assert w1.lookup(ORDER) is None
    assert w1.execute_transactional(ORDER, charge_effect(ledger_table, "order-1", "ch-ok", unique=True)).value
    assert sorted(charges(ddb, ledger_table)) == ["ch-dup", "ch-ok"]


def test_crash_before_the_transaction_leaves_nothing_behind(ddb_store, ddb, ledger_table):
    from helpers.idempotency import SimulatedCrash

    w1, w2 = make(ddb_store, "w1"), make(ddb_store, "w2")
    w1.hooks.crash("before_completion")
    with pytest.raises(SimulatedCrash):
        w1.execute_transactional(ORDER, charge_effect(ledger_table, "order-1", "ch-w1"))
    assert w1.lookup(ORDER) is None and charges(ddb, ledger_table) == []
    # no lease to wait for: the retry runs at once, exactly once
    assert not w2.execute_transactional(ORDER, charge_effect(ledger_table, "order-1", "ch-w2")).replayed
    assert charges(ddb, ledger_table) == ["ch-w2"]


def test_fenced_commit_after_takeover_applies_no_effect(ddb_store, ddb, ledger_table):
    clock = ManualClock()
    w1, w2 = make(ddb_store, "w1", clock), make(ddb_store, "w2", clock)
    stale = w1.guard(ORDER)
    clock.advance(31)
    newer = w2.guard(ORDER)
    assert newer.commit(charge_effect(ledger_table, "order-1", "ch-w2")).value == {"charge": "ch-w2"}
    with pytest.raises(LeaseLost) as info:
        stale.commit(charge_effect(ledger_table, "order-1", "ch-w1"))
    assert info.value.during == "fenced commit" and info.value.current.worker == "w2"
    assert charges(ddb, ledger_table) == ["ch-w2"]  # the stale worker's charge was never written
    assert w1.lookup(ORDER).status is Status.COMPLETED


def test_unreachable_store_is_a_typed_error_and_nothing_runs(dead_ddb_client):
    idem = make(DynamoDBStore("any", dead_ddb_client), "w1")
    with pytest.raises(StoreUnavailable) as info:
        idem.execute(ORDER, lambda: pytest.fail("must not run"))
    message = str(info.value)
    assert info.value.http_status == 503
    assert "did not answer" in message and "endpoint answers" in message and "nothing was written" in message
    assert "Retrying with the same key is safe" in message and info.value.maybe_applied is False
    with pytest.raises(StoreUnavailable):
        idem.execute_transactional(ORDER, Effect(result=1, writes=[{"Put": {"TableName": "x", "Item": {}}}]))


def test_store_lost_between_effect_and_completion_says_what_it_means(dead_ddb_client, ddb_store, ddb):
    store = DynamoDBStore(ddb_store.table_name, ddb)
    idem = make(store, "w1")

    def cut_the_network(ctx):
        store._client = dead_ddb_client

    idem.hooks.add("before_completion", cut_the_network)
    with pytest.raises(StoreUnavailable, match="The action RAN but its result is not recorded"):
        idem.execute(ORDER, lambda: "charged")
    assert ddb_store.get("ddb#tok#order-1").status is Status.IN_PROGRESS  # the lease will expire


@pytest.mark.parametrize(
    ("change", "field", "found"),
    [
        ({"status": {"S": "INPROGRESS"}}, "status", "INPROGRESS"),  # what Powertools writes
        ({"status": {"S": "EXPIRED"}}, "status", "EXPIRED"),
        ({"status": None}, "status", None),  # no status at all
    ],
)
def test_a_record_this_library_did_not_write_is_a_typed_store_error(ddb_store, ddb, change, field, found):
    # before: an untyped ValueError from Status(...), which an SQS batch reported as an ordinary failure
    idem = make(ddb_store, "w1")
    key = idem.identify(ORDER).key
    item = {"pk": {"S": key}, "status": {"S": "COMPLETED"}, "fingerprint": {"S": "x"}, "expires_at": {"N": "1e12"}}
    ddb.put_item(TableName=ddb_store.table_name, Item={k: v for k, v in (item | change).items() if v is not None})
    runs = []
    for attempt in (lambda: idem.execute(ORDER, lambda: runs.append(1)), lambda: idem.lookup(ORDER)):
        with pytest.raises(StoreError) as info:
            attempt()
        err = info.value
        assert type(err).__name__ == "InvalidRecord" and (err.key, err.field, err.found) == (key, field, found)
        assert repr(key) in str(err) and repr(found) in str(err) and "Nothing was changed" in str(err)
    assert runs == []


def test_an_item_with_a_field_of_the_wrong_type_names_the_field():
    store = DynamoDBStore("unused", client=object())
    item = {"pk": {"S": "k"}, "status": {"S": "COMPLETED"}, "expires_at": {"S": "soon"}}
    with pytest.raises(StoreError, match=r"expires_at=\{'S': 'soon'\}.*expected a number") as info:
        store.from_item(item)
    assert info.value.key == "k"
    with pytest.raises(StoreError, match="expected a string key"):
        store.from_item({"pk": {"N": "1"}, "status": {"S": "COMPLETED"}})
