"""chapters.consumer: notebook 09's scenarios run live on the backend and counted, the lease takeover in every variant
(on the notebook's manual clock and on the real clock the benchmark uses)."""

from __future__ import annotations

import itertools

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import consumer as ch
from helpers.idempotency import IdempotencyConfig, LeaseLost, SimulatedCrash, SystemClock, TerminalError
from helpers.instruments.faults import FaultPlan, Throttled
from helpers.instruments.ledger import Ledger
from helpers.instruments.tokens import SeededTokens
from helpers.instruments.trace import Trace
from helpers.services.messaging import queue_depth

CONFIG = IdempotencyConfig(
    scope="payments.charge", token_field="key", fingerprint_expression="order", lease_duration=30, expires_after=3600
)
ORDERS = [
    {"order_id": "o-1", "amount": 10.0, "customer": "c"},
    {"order_id": "o-2", "amount": 20.0, "customer": "c"},
    {"order_id": "o-3", "amount": 5000.0, "customer": "c"},  # declined
    {"order_id": "o-4", "amount": 1.0, "customer": "c"},  # no token
]


PREFIX = "t-consumer"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


@pytest.fixture
def bench(res: Resources):  # type: ignore[no-untyped-def]
    b = ch.Bench(res, CONFIG)
    yield b
    b.close()


def _message(tokens: SeededTokens, order_id: str, amount: float = 30.0) -> dict:
    return {"key": tokens.new(), "order": {"order_id": order_id, "amount": amount, "customer": "c"}}


def test_the_gateway_throttles_declines_and_charges(bench: ch.Bench) -> None:
    gateway = ch.CardGateway(bench.ledger, FaultPlan.script({"throttle": {"o-1": [1]}}))
    with pytest.raises(Throttled):
        gateway.charge(ORDERS[0], by="t")
    assert gateway.charge(ORDERS[0], by="t") == {"order_id": "o-1", "charged": 10.0}
    with pytest.raises(TerminalError) as declined:
        gateway.charge(ORDERS[2], by="t")
    assert (declined.value.code, declined.value.http_status) == ("card_declined", ch.DECLINED_STATUS)
    assert bench.ledger.charges_per_order() == {"o-1": 1}


def test_a_lost_answer_is_a_new_message_and_a_late_delete_a_redelivery(res: Resources, bench: ch.Bench) -> None:
    """The two duplicates of section 1, told apart by MessageId; the naive consumer charges both twice."""
    tokens = SeededTokens(1)
    queue, _ = res.ensure_queue_with_dlq("naive", max_receive_count=2)
    sent = ch.publish(bench.sqs, queue.url, ORDERS[:2], {"o-1": tokens.new(), "o-2": tokens.new()},
                      FaultPlan.script({"lose_response": {"o-1": [1]}}))  # fmt: skip
    assert [(s["order_id"], s["answer"]) for s in sent] == [("o-1", "lost"), ("o-1", "received"), ("o-2", "received")]
    book = Ledger(res, name="naive-ledger")
    slow = FaultPlan.script({"exceed_visibility": {"o-2": [1]}})
    run = ch.consume(bench.sqs, queue.url, ch.NaiveConsumer(ch.CardGateway(bench.ledger), book), lapses=slow)
    assert run.rounds.to_dict("list") == {"messages": [3, 1], "charges": [3, 1], "not deleted in time": [1, 0]}
    assert run.per_order().to_dict("index") == {
        "o-1": {"deliveries": 2, "MessageIds": 2},
        "o-2": {"deliveries": 2, "MessageIds": 1},
    }
    assert book.charges_per_order() == {"o-1": 2, "o-2": 2} and queue_depth(bench.sqs, queue.url) == 0


def test_the_idempotent_batch_charges_once_reports_the_rest_and_dead_letters_the_keyless(
    res: Resources, bench: ch.Bench
) -> None:
    tokens = SeededTokens(2)
    queue, dlq = res.ensure_queue_with_dlq("ours", max_receive_count=2)
    token_of = {o["order_id"]: tokens.new() for o in ORDERS[:3]}
    ch.publish(bench.sqs, queue.url, ORDERS, token_of, FaultPlan.script({"lose_response": {"o-1": [1]}}))
    gateway = ch.CardGateway(bench.ledger, FaultPlan.script({"throttle": {"o-2": [1]}}))
    ours = ch.BatchConsumer(
        bench.consumer("c-1"), bench.calls, lambda p: gateway.charge(p["order"], by="c-1", key=p["key"])
    )
    slow = FaultPlan.script({"exceed_visibility": {"o-1": [1]}})
    run = ch.consume(bench.sqs, queue.url, ours, lapses=slow)
    assert run.rounds["messages"].tolist() == [5, 3]  # o-1 twice (a new message), o-2, o-3, o-4; then o-1, o-2, o-4
    assert run.rounds["processed"].tolist() == [1, 1] and run.rounds["replayed"].tolist() == [1, 1]
    assert run.rounds["terminal"].tolist() == [1, 0] and run.rounds["reported (batchItemFailures)"].tolist() == [2, 1]
    assert bench.ledger.charges_per_order() == {"o-1": 1, "o-2": 1}
    assert queue_depth(bench.sqs, queue.url) == 0 and queue_depth(bench.sqs, dlq.url) == 1
    keys = {oid: bench.key_of({"key": token, "order": next(o for o in ORDERS if o["order_id"] == oid)})
            for oid, token in token_of.items()}  # fmt: skip
    table = ch.outcomes_by_order(ours, keys.get)
    assert table["deliveries"].tolist() == [3, 2, 1, 2]
    assert table.loc["o-1", "outcomes"] == "processed (executed), replayed (cache), replayed (cache)"
    assert (
        table["round trips"].tolist() == [2, 4, 2, 0] and table["round trips"].sum() == run.rounds["round trips"].sum()
    )
    assert [e for _, _, e in ch.path_of(bench.log, keys["o-2"])] == ["claim", "release", "claim", "complete"]
    assert "step 4" in ch.record_diagram(bench.log, keys["o-2"], "o-2").source


def test_a_race_of_n_workers_charges_once_and_replays_to_the_rest(bench: ch.Bench) -> None:
    tokens = SeededTokens(3)
    result = ch.race(bench, ch.CardGateway(bench.ledger), 5, ch.race_message(tokens, 1))
    assert result == {
        "workers": 5,
        "charged": 1,
        "refused, 409 in progress": 4,
        "other errors": 0,
        "replayed on retry": 4,
        "ledger rows": 1,
        "round trips": 10,
    }
    assert ch.race(bench, ch.CardGateway(bench.ledger), 1, ch.race_message(tokens, 2))["charged"] == 1
    assert ch.race_widget(lambda n: {"workers": n}, default=3).children[0].children[0].value == 3


def test_one_transaction_leaves_neither_or_both(bench: ch.Bench) -> None:
    message = _message(SeededTokens(4), "o-9")
    effect = ch.ledger_effect(bench.ledger, message["order"])
    crashing = bench.consumer("A")
    crashing.hooks.crash("before_completion", times=1)
    with pytest.raises(SimulatedCrash):
        crashing.execute_transactional(message, effect)
    assert bench.store.get(bench.key_of(message)) is None and bench.ledger.count() == 0
    paid = bench.consumer("B")
    trips = [bench.counted(lambda: paid.execute_transactional(message, effect)) for _ in range(2)]
    assert trips == [1, 0] and [c["by"] for c in bench.ledger.charges()] == ["B"]


@pytest.fixture
def stage(res: Resources, bench: ch.Bench):  # type: ignore[no-untyped-def]
    trace = Trace("t", actors=[ch.A, ch.B, "DynamoDB", "ledger"])
    pt_table = res.ensure_table("powertools", partition_key="id", ttl_attribute="expiration")
    yield ch.TakeoverStage(
        client=lambda worker: bench.traced_client(trace, worker, label=ch.describe_write),
        reader=res.backend.client("dynamodb"),
        config=CONFIG,
        table=bench.store.table_name,
        clock=bench.clock,
        log=bench.log,
        powertools_table=pt_table,
        powertools_lease_s=0.1,
        on_stall=lambda worker: trace.note(worker, "stalled"),
    )
    trace.uninstrument()


def test_the_lease_takeover_in_every_variant(bench: ch.Bench, stage: ch.TakeoverStage) -> None:
    tokens, numbers = SeededTokens(5), itertools.count(1)
    results = {}
    for variant in ch.TAKEOVER_VARIANTS:
        message = _message(tokens, f"t-{next(numbers)}")
        results[variant] = ch.lease_takeover(variant, stage, message, ch.LedgerCharges(bench.ledger, message["order"]))
    assert {v: r.charged_by for v, r in results.items()} == {
        "Powertools": ("worker A", "worker B"),
        "ours, unfenced": ("worker A", "worker B"),
        "ours, fenced (2 round trips)": ("worker B",),
        "ours, single round trip": ("worker B",),
    }
    assert [r.record_holds for r in results.values()] == ["worker A", "worker B", "worker B", "worker B"]
    assert [r.told for r in results.values()] == [
        "nothing: returned normally",
        "LeaseLost: completion refused (its own result kept on the error)",
        "LeaseLost: fenced commit refused (its own result kept on the error)",
        "replayed B's result",
    ]
    unfenced = results["ours, unfenced"]
    assert isinstance(unfenced.a_result, LeaseLost) and unfenced.a_result.value["charged_by"] == "worker A"
    assert unfenced.row() == {
        "charges": 2,
        "what A was told": unfenced.told,
        "record ends with the result of": "worker B",
    }
    with pytest.raises(ValueError, match="unknown variant"):
        ch.lease_takeover("ours, hopeful", stage, _message(tokens, "t-x"), ch.LedgerCharges(bench.ledger, {}))


def test_the_takeover_runs_on_the_real_clock_too(bench: ch.Bench, stage: ch.TakeoverStage) -> None:
    """The benchmark's setting: a SystemClock and a short lease that A really sleeps past."""
    from dataclasses import replace

    real = replace(stage, clock=SystemClock(), config=replace(CONFIG, lease_duration=0.2), log=None)
    message = _message(SeededTokens(6), "t-real")
    result = ch.lease_takeover(
        "ours, fenced (2 round trips)", real, message, ch.LedgerCharges(bench.ledger, message["order"])
    )
    assert (result.charged_by, result.record_holds) == (("worker B",), "worker B")
    assert result.told.startswith("LeaseLost: fenced commit refused")


def test_writes_are_named_by_their_condition() -> None:
    assert ch.describe_write("PutItem", {"ConditionExpression": "attribute_not_exists(pk) OR lease < :now"}).startswith(
        "conditional write: if the key is free"
    )
    assert (
        ch.describe_write("UpdateItem", {"ConditionExpression": "#o = :own"}) == "conditional write: if still the owner"
    )
    assert ch.describe_write("UpdateItem", {}) == "UpdateItem, unconditional"
    assert ch.describe_write("TransactWriteItems", {}) == "TransactWriteItems: record + charge"
    assert ch.describe_write("GetItem", {}) is None
