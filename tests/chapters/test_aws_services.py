"""chapters.aws_services: notebook 08's scenarios run live on the backend and counted, and the API-model lookups."""

from __future__ import annotations

import json

import pytest

from helpers.aws.resources import Resources, Target
from helpers.chapters import aws_services as svc
from helpers.instruments.tokens import SeededTokens
from helpers.services.messaging import drain
from helpers.services.stepfunctions import load, poll_until_done

V2 = ("eventbridgev2", "PutEvents")
GOOD_ARN = "arn:aws:events:us-east-1:111122223333:event-busv2/orders/exampleeventbusid00000000"


PREFIX = "t-svc"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


def test_seeded_tokens_repeat_per_seed_and_are_version_4() -> None:
    a, b = SeededTokens(8), SeededTokens(8)
    first = [a.new() for _ in range(3)]
    assert first == [b() for _ in range(3)] and len(set(first)) == 3
    assert all(t[14] == "4" for t in first) and SeededTokens(9).new() != first[0]


def test_a_fifo_retry_with_the_same_token_is_accepted_and_not_delivered(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs, queue = backend.client("sqs"), res.ensure_queue("fifo", fifo=True)
    sends = [("o-1", "t-1"), ("o-1", "t-1"), ("o-2", "t-2")]  # the second is the retry
    answers = [svc.send_order(sqs, queue.url, order_id, token) for order_id, token in sends]
    assert all("MessageId" in a for a in answers)
    got = drain(sqs, queue.url, expect=2, settle_s=svc.settle_s(backend.name))
    assert [b["order-id"] for b in got] == ["o-1", "o-2"]


def test_an_execution_name_answers_twice_then_refuses(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sfn = backend.client("stepfunctions")
    machine = res.ensure_state_machine("hold", load("hold_then_charge"))
    payload, other = {"orderId": "o-1", "holdSeconds": 1}, {"orderId": "o-2", "holdSeconds": 1}
    attempts = [svc.start_named(sfn, machine, "n-1", payload, "first")]
    attempts.append(svc.start_named(sfn, machine, "n-1", payload, "same input while running"))
    attempts.append(svc.start_named(sfn, machine, "n-1", other, "other input"))
    final, _ = poll_until_done(sfn, attempts[0]["arn"], poll_seconds=0.1, timeout=20)
    attempts.append(svc.start_named(sfn, machine, "n-1", payload, "after it finished"))
    table = svc.name_attempts(attempts)
    assert final["status"] == "SUCCEEDED" and json.loads(final["output"]) == {"orderId": "o-1", "charged": True}
    assert table["answer"].tolist() == ["executionArn"] * 2 + ["ExecutionAlreadyExists"] * 2
    assert table["same execution as the first"].tolist() == [True, True, False, False]


def test_put_events_twice_makes_two_events_and_only_the_client_key_dedups(backend, res: Resources) -> None:  # type: ignore[no-untyped-def]
    sqs, events, ddb = backend.client("sqs"), backend.client("events"), backend.client("dynamodb")
    bus, inbox = res.ensure_bus("bus"), res.ensure_queue("inbox")
    rule = res.ensure_rule("r", bus=bus, pattern={"source": ["com.orders"]}, targets=[Target("inbox", inbox.arn)])
    res.allow_send_from(inbox, rule, "events.amazonaws.com")
    entry = svc.order_created(bus, "o-1", "key-1")
    assert json.loads(entry["Detail"]) == {
        "metadata": {"idempotency-key": "key-1"},
        "data": {"order-id": "o-1", "price": 24.62, "currency": "AU"},
    }
    ids = [events.put_events(Entries=[entry])["Entries"][0]["EventId"] for _ in range(2)]
    delivered = drain(sqs, inbox.url, expect=2, settle_s=svc.settle_s(backend.name))
    assert len(set(ids)) == 2 and sorted(e["id"] for e in delivered) == sorted(ids)
    claims = svc.KeyClaims(ddb, res.ensure_table("seen", partition_key="pk"))
    by_event_id = [claims.first_time(f"id:{e['id']}") for e in delivered]
    by_client_key = [claims.first_time(f"key:{e['detail']['metadata']['idempotency-key']}") for e in delivered]
    assert by_event_id == [True, True] and by_client_key == [True, False]


def test_key_claims_raise_what_is_not_a_failed_condition(backend) -> None:  # type: ignore[no-untyped-def]
    claims = svc.KeyClaims(backend.client("dynamodb"), "t-svc-no-such-table")
    with pytest.raises(Exception, match=r"ResourceNotFound|non-existent|not found"):
        claims.first_time("k")


def test_botocore_checks_required_members_but_not_patterns() -> None:
    good = {"EventBusArn": GOOD_ARN, "Entries": [{"Source": "com.orders", "DetailType": "OrderCreated"}]}
    bad_arn = GOOD_ARN.rsplit("/", 1)[0] + "/EXAMPLE"
    assert svc.botocore_refusal(*V2, good) is None and svc.matches_pattern(*V2, "EventBusArn", GOOD_ARN)
    assert svc.botocore_refusal(*V2, {**good, "EventBusArn": bad_arn}) is None  # botocore does not check patterns
    assert not svc.matches_pattern(*V2, "EventBusArn", bad_arn)
    refused = svc.botocore_refusal(*V2, {**good, "Entries": [{"Source": "com.orders"}]})
    assert refused is not None and "DetailType" in refused
    assert svc.answers_of(*V2, "Entries", "SuccessCode") == ["PUBLISHED", "DEDUPLICATED"]


def test_the_names_table_looks_every_aws_name_up_and_would_catch_a_misspelling() -> None:
    names = svc.names_table()
    aws = names["in the AWS API model"].dropna()
    assert len(aws) == 7 and aws.all()
    assert names.loc["Lambda durable functions Invoke", "idempotency identifier"] == "DurableExecutionName"
    assert not svc._has_path("sqs", "SendMessage", "MessageDedupId")
    assert not svc._has_path("eventbridgev2", "PutEvents", "SystemMetadata.DedupId")


def test_the_durations_table_reads_what_it_can_and_labels_the_rest() -> None:
    table = svc.durations_table(sqs_window=(1, 2))
    assert table.loc["Powertools idempotency (default)", "idempotency duration"] == "1 hour"
    sqs_source = table.loc["Amazon SQS (FIFO) SendMessage", "where the value comes from"]
    assert "1 message after 4:59, 2 after 5:01" in sqs_source
    assert table["where the value comes from"].str.contains("AWS documentation").sum() == 3


def test_settle_is_short_on_moto_and_safe_elsewhere() -> None:
    assert svc.settle_s("embedded") < svc.settle_s("localstack") <= svc.settle_s("aws") == svc.settle_s("other")
