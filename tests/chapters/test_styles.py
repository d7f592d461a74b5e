"""chapters.styles: orders, the per-tick gate, the four senders through run_style, workers side by side, redrive."""

from __future__ import annotations

import pytest

from helpers.aws.resources import Resources, Target
from helpers.chapters import styles
from helpers.instruments import ticks
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services.messaging import Receiver, queue_depth


@pytest.fixture
def resources(backend):  # type: ignore[no-untyped-def]
    res = Resources("t-sty", backend)
    res.teardown()
    yield res
    res.teardown()


@pytest.fixture
def receiver(resources: Resources):  # type: ignore[no-untyped-def]
    with Receiver(Ledger(resources)) as r:
        yield r


def test_steady_orders_take_turns_and_ids_are_unique_per_batch() -> None:
    orders = styles.steady(5, per_tick=2, tenants=["A", "B"], batch="x")
    assert [(o.id, o.tick) for o in orders] == [
        ("x-A-001", 1), ("x-B-001", 1), ("x-A-002", 2), ("x-B-002", 2), ("x-A-003", 3),
    ]  # fmt: skip
    assert styles.Order(7, "C", 1.0, 1).id == "C-007"
    with pytest.raises(ValueError, match="at least one tenant"):
        styles.steady(3, per_tick=1, tenants=[])
    with pytest.raises(ValueError, match="arrival rate"):
        styles.steady(3, per_tick=-2)


def test_tick_gate_accepts_capacity_per_tick_then_429() -> None:
    gate = styles.TickGate(2)
    gate.at(1)
    assert [gate.next_status() for _ in range(3)] == [None, None, 429]
    gate.at(2)
    assert gate.next_status() is None and gate.refused == 1
    gate.queue_status(503)  # an injected fault still comes first
    assert gate.next_status() == 503
    assert styles.TickGate(None).next_status() is None
    with pytest.raises(ValueError, match="at least 1 call"):
        styles.TickGate(0)


def test_bad_sender_and_worker_settings_are_refused(receiver: Receiver) -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        styles.SyncSender(receiver.url, attempts=0)
    with pytest.raises(ValueError, match="at least 1 message"):
        styles.Worker(None, "url", receiver.url, capacity=0)


def test_sync_loses_what_arrives_while_the_receiver_is_down(receiver: Receiver) -> None:
    trace = Trace("sync")
    run = styles.run_style(
        styles.SyncSender(receiver.url, attempts=2, trace=trace),
        styles.steady(6, per_tick=2, batch="s"),
        receiver=receiver,
        schedule=ticks.Schedule(down=((2, 2),)),
    )
    assert (run.lost, run.client_errors, run.retries, run.http_calls, run.answers) == (2, 2, 2, 8, 4)
    assert receiver.up, "the driver leaves the receiver running"
    assert trace.count(kind="call") == 8 and trace.count(kind="error") == 4 and trace.count(kind="reply") == 4


@pytest.mark.parametrize("style", ["queue", "router", "bus"])
def test_async_styles_lose_nothing_and_recover(backend, resources, receiver, style) -> None:  # type: ignore[no-untyped-def]
    sqs, events = backend.client("sqs"), backend.client("events")
    queue = resources.ensure_queue(style)
    if style == "queue":
        sender = styles.QueueSender(sqs, queue.url)
    elif style == "router":
        sender = styles.RouterSender(sqs, {"p": queue.url}, route=lambda order: ["p"])
    else:
        bus = resources.ensure_bus("bus")
        rule = resources.ensure_rule("r", bus=bus, pattern={"source": ["com.t"]}, targets=[Target("q", queue.arn)])
        resources.allow_send_from(queue, rule, "events.amazonaws.com")
        sender = styles.BusSender(events, bus, source="com.t")
    worker = styles.Worker(sqs, queue.url, receiver.url, capacity=4)
    schedule = ticks.Schedule(down=((2, 3),), capacity=4)
    run = styles.run_style(
        sender, styles.steady(8, per_tick=2, batch=style), receiver=receiver, schedule=schedule, worker=worker,
        watch=sqs,
    )  # fmt: skip
    assert (run.lost, run.client_errors, run.max_backlog) == (0, 0, 4)
    assert run.recovered_at(3) == 5 and run.backlog.values("backlog") == [0, 2, 4, 2, 0]


def test_fifo_groups_let_a_second_worker_serve_another_tenant(backend, resources, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = resources.ensure_queue("f", fifo=True, content_based_dedup=True)
    sender = styles.QueueSender(sqs, queue.url)
    for order in [*styles.steady(6, per_tick=6, tenants=["A"], batch="f"), styles.Order(1, "B", 5.0, 1, "f")]:
        sender.send(order)
    workers = [styles.Worker(sqs, queue.url, receiver.url, capacity=3) for _ in range(2)]
    assert styles.step_together(workers, 1) == 4
    assert sorted(workers[1].handled) == ["f-B-001"]
    assert styles.step_together(workers, 2) == 3 and queue_depth(sqs, queue.url) == 0


def test_poison_goes_to_the_dlq_and_redrive_by_hand_brings_it_back(backend, resources, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue, dlq = resources.ensure_queue_with_dlq("p", max_receive_count=2)
    styles.QueueSender(sqs, queue.url).send(styles.Order(1, "A", 0.0, 1, "poison"))
    worker = styles.Worker(sqs, queue.url, receiver.url, capacity=1)
    for tick in range(1, 4):
        worker.step(tick)
    assert (worker.failures, queue_depth(sqs, queue.url), queue_depth(sqs, dlq.url)) == (2, 0, 1)
    assert styles.redrive(sqs, dlq, queue, supported=False) == "receive, send, delete"
    assert (queue_depth(sqs, queue.url), queue_depth(sqs, dlq.url)) == (1, 0)
