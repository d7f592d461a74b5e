"""helpers.services.messaging: a receiver that stops and comes back on the same port, calls that count refusals, queue
helpers, and request-reply with Return Address and Correlation Identifier."""

from __future__ import annotations

import json

import pytest

from helpers.aws.resources import Resources, Target
from helpers.instruments.ledger import Ledger
from helpers.services import messaging
from helpers.services.messaging import (
    Receiver,
    drain,
    drain_many,
    post_charge,
    put_orders,
    queue_depth,
    receive,
    release,
    request,
    respond,
    take_reply,
)
from tests.net import listening

PREFIX = "t-msg"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


def test_receiver_stops_and_comes_back_on_the_same_port(res: Resources) -> None:
    ledger = Ledger(res)
    with Receiver(ledger) as receiver:
        assert receiver.up and post_charge(receiver.url, "o-1", 10).status == 201
        receiver.stop()
        refused = post_charge(receiver.url, "o-2", 10)
        assert (refused.status, refused.error, refused.ok) == (None, "connection refused", False)
        assert not listening("127.0.0.1", receiver.port)
        receiver.start()
        assert post_charge(receiver.url, "o-2", 10).ok and receiver.stops == 1
    assert not listening("127.0.0.1", receiver.port)
    assert ledger.charges_per_order() == {"o-1": 1, "o-2": 1}


def test_receiver_stopped_twice_or_started_twice_is_an_error(res: Resources) -> None:
    receiver = Receiver(Ledger(res))
    try:
        with pytest.raises(RuntimeError, match="already running"):
            receiver.start()
        receiver.stop()
        with pytest.raises(RuntimeError, match="already stopped"):
            receiver.stop()
        assert not receiver.up and not listening("127.0.0.1", receiver.port)
    finally:
        receiver.close()
        receiver.close()  # close never raises
    assert not listening("127.0.0.1", receiver.port)


def test_queue_helpers_count_and_drain(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("q")
    for n in range(12):
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"n": n}))
    assert queue_depth(sqs, queue.url) == 12
    first = receive(sqs, queue.url)
    assert len(first) == 10 and queue_depth(sqs, queue.url) == 12  # received, in flight, still counted
    with pytest.raises(ValueError, match="1 to 10"):
        receive(sqs, queue.url, max_messages=11)
    rest = drain(sqs, queue.url, expect=2, timeout_s=5)
    assert sorted(b["n"] for b in rest) == sorted({*range(12)} - {json.loads(m["Body"])["n"] for m in first})
    with pytest.raises(TimeoutError, match="0 of 1 messages"):
        drain(sqs, queue.url, expect=1, timeout_s=0.5)
    with pytest.raises(ValueError, match="cannot be negative"):
        drain(sqs, queue.url, settle_s=-1)


def test_release_hands_a_message_back_with_the_same_message_id(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    """A released message is the same message received again (a redelivery), not a new one."""
    sqs = backend.client("sqs")
    queue = res.ensure_queue("release", visibility_timeout=300)
    sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"n": 1}))
    first = receive(sqs, queue.url)
    assert receive(sqs, queue.url) == []  # in flight: hidden for its visibility timeout
    release(sqs, queue.url, first)
    again = receive(sqs, queue.url)
    assert [m["MessageId"] for m in again] == [first[0]["MessageId"]]
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    with pytest.raises(ValueError, match="0 to 43200"):
        release(sqs, queue.url, again, after_s=-1)


def test_drain_many_waits_once_for_several_queues(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    a, b = res.ensure_queue("a"), res.ensure_queue("b")
    sqs.send_message(QueueUrl=a.url, MessageBody=json.dumps({"q": "a"}))
    got = drain_many(sqs, [a.url, b.url], settle_s=0.2)
    assert got == {a.url: [{"q": "a"}], b.url: []}


def test_put_orders_reaches_a_rule_target(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs, events = backend.client("sqs"), backend.client("events")
    bus = res.ensure_bus("bus")
    queue = res.ensure_queue("target")
    rule = res.ensure_rule("r", bus=bus, pattern={"source": ["com.t"]}, targets=[Target("q", queue.arn)])
    res.allow_send_from(queue, rule, "events.amazonaws.com")
    assert put_orders(events, bus, [{"n": n} for n in range(12)], source="com.t") == 0
    got = drain(sqs, queue.url, expect=12)
    assert sorted(e["detail"]["n"] for e in got) == list(range(12))


def test_request_reply_with_return_address_and_correlation_id(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    requests_q, replies = res.ensure_queue("req"), res.ensure_queue("rep")
    request(sqs, requests_q.url, {"x": 2}, reply_to=replies.url, correlation_id="c-1")
    seen = []
    answered = respond(sqs, requests_q.url, lambda b: {"y": b["x"] * 2}, on_answer=lambda *a: seen.append(a))
    assert answered == 1 and seen == [({"y": 4}, replies.url, "c-1")]
    assert take_reply(sqs, replies.url) == ({"y": 4}, "c-1")
    assert take_reply(sqs, replies.url, wait_s=0) is None
    request(sqs, requests_q.url, {"x": 1})  # no ReplyTo and no default: refused, not dropped
    with pytest.raises(ValueError, match="nowhere to answer"):
        respond(sqs, requests_q.url, lambda b: b)


def test_receive_asks_for_system_attributes_and_sees_a_redelivery(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("redeliver", visibility_timeout=0)  # not deleted: receivable again at once
    sqs.send_message(QueueUrl=queue.url, MessageBody="{}")
    first = receive(sqs, queue.url, max_messages=1, system_attributes=["ApproximateReceiveCount"])
    again = receive(sqs, queue.url, max_messages=1, system_attributes=["ApproximateReceiveCount"])
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in (*first, *again)] == ["1", "2"]
    assert first[0]["MessageId"] == again[0]["MessageId"] and first[0]["ReceiptHandle"] != again[0]["ReceiptHandle"]
    assert "Attributes" not in receive(sqs, queue.url, max_messages=1)[0]  # none asked, none given


def test_receive_until_yields_each_receive_redeliveries_included(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("until", visibility_timeout=1)
    sqs.send_message(QueueUrl=queue.url, MessageBody="{}")
    counts = []
    for message in messaging.receive_until(sqs, queue.url, 2, wait_s=2, system_attributes=["ApproximateReceiveCount"]):
        counts.append(message["Attributes"]["ApproximateReceiveCount"])  # not deleted: it comes back
    assert counts == ["1", "2"]
    once = res.ensure_queue("once")
    sqs.send_message(QueueUrl=once.url, MessageBody="{}")
    with pytest.raises(TimeoutError, match="only 1 of 2 receives"):
        for message in messaging.receive_until(sqs, once.url, 2, wait_s=0, timeout_s=0.5):
            messaging.delete(
                sqs, once.url, [message]
            )  # deleted: it never comes back, so a second receive cannot happen
