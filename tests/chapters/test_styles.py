"""chapters.styles: orders, the per-tick gate, the four senders through run_style, workers side by side, redrive."""

from __future__ import annotations

import pytest

from helpers.aws.resources import Resources, Target
from helpers.chapters import styles
from helpers.instruments import ticks
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services.messaging import Receiver, queue_depth

PREFIX = "t-sty"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


@pytest.fixture
def receiver(res: Resources):  # type: ignore[no-untyped-def]
    with Receiver(Ledger(res)) as r:
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
def test_async_styles_lose_nothing_and_recover(backend, res, receiver, style) -> None:  # type: ignore[no-untyped-def]
    sqs, events = backend.client("sqs"), backend.client("events")
    queue = res.ensure_queue(style)
    if style == "queue":
        sender = styles.QueueSender(sqs, queue.url)
    elif style == "router":
        sender = styles.RouterSender(sqs, {"p": queue.url}, route=lambda order: ["p"])
    else:
        bus = res.ensure_bus("bus")
        rule = res.ensure_rule("r", bus=bus, pattern={"source": ["com.t"]}, targets=[Target("q", queue.arn)])
        res.allow_send_from(queue, rule, "events.amazonaws.com")
        sender = styles.BusSender(events, bus, source="com.t")
    worker = styles.Worker(sqs, queue.url, receiver.url, capacity=4)
    schedule = ticks.Schedule(down=((2, 3),), capacity=4)
    run = styles.run_style(
        sender, styles.steady(8, per_tick=2, batch=style), receiver=receiver, schedule=schedule, worker=worker,
        watch=sqs,
    )  # fmt: skip
    assert (run.lost, run.client_errors, run.max_backlog) == (0, 0, 4)
    assert run.recovered_at(3) == 5 and run.backlog.values("backlog") == [0, 2, 4, 2, 0]


def test_fifo_groups_let_a_second_worker_serve_another_tenant(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("f", fifo=True, content_based_dedup=True)
    sender = styles.QueueSender(sqs, queue.url)
    for order in [*styles.steady(6, per_tick=6, tenants=["A"], batch="f"), styles.Order(1, "B", 5.0, 1, "f")]:
        sender.send(order)
    workers = [styles.Worker(sqs, queue.url, receiver.url, capacity=3) for _ in range(2)]
    assert styles.step_together(workers, 1) == 4
    assert sorted(workers[1].handled) == ["f-B-001"]
    assert styles.step_together(workers, 2) == 3 and queue_depth(sqs, queue.url) == 0


def test_poison_goes_to_the_dlq_and_redrive_by_hand_brings_it_back(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue, dlq = res.ensure_queue_with_dlq("p", max_receive_count=2)
    styles.QueueSender(sqs, queue.url).send(styles.Order(1, "A", 0.0, 1, "poison"))
    worker = styles.Worker(sqs, queue.url, receiver.url, capacity=1)
    for tick in range(1, 4):
        worker.step(tick)
    assert (worker.failures, queue_depth(sqs, queue.url), queue_depth(sqs, dlq.url)) == (2, 0, 1)
    assert styles.redrive(sqs, dlq, queue, supported=False) == "receive, send, delete"
    assert (queue_depth(sqs, queue.url), queue_depth(sqs, dlq.url)) == (1, 0)


# -- what notebook 02 runs beside its lessons -------------------------------------------------------------------------
def test_a_bus_event_is_the_talks_envelope_and_the_worker_reads_both_shapes() -> None:
    order = styles.Order(2, "B", 7.5, 3, "e")
    detail = styles.event_detail(order)
    assert detail == {"metadata": {}, "data": {"order-id": "e-B-002", "tenant": "B", "amount": 7.5, "tick": 3}}
    assert styles.charge_of({"detail": detail}) == styles.charge_of(order.body()) == {"orderId": "e-B-002",
                                                                                      "amount": 7.5}  # fmt: skip


def test_sync_tells_every_outcome_and_waits_nothing(receiver: Receiver) -> None:
    run = styles.run_style(
        styles.SyncSender(receiver.url, attempts=1), styles.steady(4, per_tick=2, batch="o"), receiver=receiver,
        schedule=ticks.Schedule(down=((2, 2),)),
    )  # fmt: skip
    assert (run.outcomes, run.answers, run.client_errors) == (4, 2, 2)
    assert run.waits == {"o-A-001": 0, "o-B-001": 0} and run.longest_wait == 0


def test_models_build_each_style_with_the_resources_it_needs(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    models = styles.Models(res, backend.client, receiver)
    built = {s: models.build(s, "t", 2) for s in styles.STYLES}
    found = set(res.inventory())
    assert {s: len(m.needs) for s, m in built.items()} == {"sync": 0, "queue": 1, "router": 1, "bus": 3}
    assert all(set(m.needs) <= found for m in built.values()) and built["sync"].worker is None
    for model in built.values():
        model.calls.uninstrument()
    with pytest.raises(ValueError, match="one of sync"):
        models.build("carrier pigeon", "t", 2)
    with pytest.raises(ValueError, match="give worker_capacity"):
        models.run("t", ticks.Schedule(), {"count": 1, "per_tick": 1})


def test_a_worker_above_the_receivers_rate_hears_429_and_loses_nothing(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    models = styles.Models(res, backend.client, receiver)
    traffic = {"count": 6, "per_tick": 3}
    paced = models.run("paced", ticks.Schedule(capacity=2), traffic, styles=["queue", "bus"])
    eager = models.run("eager", ticks.Schedule(capacity=2), traffic, styles=["queue"], worker_capacity=3)["queue"]
    assert all(r.lost == 0 and r.http_calls == r.charged == 6 for r in paced.values())
    assert eager.lost == 0 and eager.http_calls - eager.charged > 0  # 429s, and the messages came back
    assert paced["bus"].backlog.values("backlog") == paced["queue"].backlog.values("backlog")
    assert paced["queue"].longest_wait == max(paced["queue"].waits.values()) >= 1


def test_competing_consumers_each_message_to_one_worker(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("crew")
    crew = styles.compete(sqs, queue.url, receiver, styles.steady(9, per_tick=9, batch="c"), workers=3, capacity=2)
    assert crew.per_worker == [4, 3, 2]  # two ticks: 2 + 2 + 2, then 2 + 1 + 0
    assert sum(crew.posts) == 9 and not crew.shared and crew.ticks == 2
    with pytest.raises(ValueError, match="at least one worker"):
        styles.compete(sqs, queue.url, receiver, [], workers=0, capacity=1)


def test_without_a_visibility_timeout_consumers_share_messages(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    """The wrong configuration: a received message stays visible, so every worker receives it and charges it."""
    sqs = backend.client("sqs")
    queue = res.ensure_queue("leaky", visibility_timeout=0)
    crew = styles.compete(sqs, queue.url, receiver, styles.steady(4, per_tick=4, batch="l"), workers=2, capacity=4)
    assert crew.shared and sum(crew.posts) > 4


def test_flood_a_fifo_group_per_tenant_protects_the_quiet_one(backend, res, receiver) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    std = styles.flood(res, sqs, receiver, "fs", fifo=False, noisy=6, quiet=1, capacity=2)
    fifo = styles.flood(res, sqs, receiver, "ff", fifo=True, noisy=6, quiet=1, capacity=2)
    assert std["orders"] == fifo["orders"] == 7
    assert fifo["B's last order (tick)"] < std["B's last order (tick)"]
    assert fifo["A's last order (tick)"] > std["A's last order (tick)"]


def test_changed_lines_counts_a_body_not_its_name() -> None:
    def before(x):  # type: ignore[no-untyped-def]
        return [x]

    def after(x):  # type: ignore[no-untyped-def]
        out = [x]
        out.append(x)
        return out

    assert styles.changed_lines(before, after) == 4
    assert styles.changed_lines(before, before) == 0
    assert styles.changed_lines("a\nb", "a\nc") == 2
