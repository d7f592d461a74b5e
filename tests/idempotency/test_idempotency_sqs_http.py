"""The SQS batch helper and the HTTP glue."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.idempotency import (
    DynamoDBStore,
    HttpResponse,
    Idempotency,
    ManualClock,
    MemoryStore,
    SimulatedCrash,
    TerminalError,
    handle_http,
    process_sqs_batch,
)


def sqs_record(mid, body, arn="arn:aws:sqs:us-east-1:000000000000:orders"):
    text = body if isinstance(body, str) else json.dumps(body)
    return {"messageId": mid, "body": text, "eventSourceARN": arn, "attributes": {"ApproximateReceiveCount": "1"}}


def order(key, amount=10, **extra):
    return {"idempotency_key": key, "amount": amount, **extra}


@pytest.fixture
def consumer():
    return Idempotency(store=MemoryStore(), clock=ManualClock(), scope="orders", token_field="idempotency_key")


def test_sqs_batch_reports_only_what_must_come_back(consumer):
    other_worker = Idempotency(
        store=consumer.store, clock=consumer.clock, scope="orders", token_field="idempotency_key", worker="other"
    )
    other_worker.guard(order("busy"))  # someone else is processing "busy" right now
    charged = []

    def handle(payload):
        if payload.get("fail") == "retryable":
            raise RuntimeError("downstream timeout")
        if payload.get("fail") == "terminal":
            raise TerminalError("card declined")
        charged.append(payload["idempotency_key"])
        return {"charged": payload["idempotency_key"]}

    event = {
        "Records": [
            sqs_record("m1", order("a")),
            sqs_record("m2", order("a")),  # duplicate delivery
            sqs_record("m3", order("b", fail="retryable")),
            sqs_record("m4", order("busy")),
            sqs_record("m5", order("c", fail="terminal")),
            sqs_record("m6", "not json"),
            sqs_record("m7", {"amount": 1}),  # no key
            sqs_record("m8", order("a", amount=99)),  # key reused with another payload
            sqs_record("m9", order("d")),
        ]
    }
    report = process_sqs_batch(consumer, event, handle)
    assert report.response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m3", "m4", "m6", "m7", "m8")]}
    assert [r.status for r in report.results] == [
        "processed", "replayed", "failed", "failed", "terminal", "failed", "failed", "failed", "processed",
    ]  # fmt: skip
    assert charged == ["a", "d"]
    assert type(report.results[3].error).__name__ == "InProgress"
    assert type(report.results[7].error).__name__ == "PayloadMismatch"
    assert report.counts() == {"failed": 5, "processed": 2, "replayed": 1, "terminal": 1}
    assert [m["messageId"] for m in report.done] == ["m1", "m2", "m5", "m9"]

    # redelivery of the whole batch: the done ones replay (or re-raise their terminal error), nothing charges twice
    again = process_sqs_batch(consumer, event, handle)
    assert [r.status for r in again.results][:2] == ["replayed", "replayed"]
    assert again.results[4].status == "terminal" and again.results[4].error.replayed
    assert charged == ["a", "d"]


def test_sqs_token_from_a_message_attribute(consumer):
    def record(mid, key, amount):
        rec = sqs_record(mid, {"amount": amount})
        rec["messageAttributes"] = {"idempotency_key": {"stringValue": key, "dataType": "String"}}
        return rec

    charged = []
    report = process_sqs_batch(
        consumer,
        [record("m1", "k1", 5), record("m2", "k1", 5), record("m3", "k2", 5)],
        lambda p: charged.append(p["amount"]),
        token=lambda r: r["messageAttributes"]["idempotency_key"]["stringValue"],
    )
    assert [r.status for r in report.results] == ["processed", "replayed", "processed"] and charged == [5, 5]


def test_sqs_fifo_stops_at_the_first_failure(consumer):
    arn = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
    records = [
        sqs_record("m1", order("a"), arn),
        sqs_record("m2", order("b", x=1), arn),
        sqs_record("m3", order("c"), arn),
    ]

    def handle(payload):
        if payload.get("x"):
            raise RuntimeError("boom")
        return "ok"

    report = process_sqs_batch(consumer, records, handle)
    assert [r.status for r in report.results] == ["processed", "failed", "skipped"]
    assert report.failed_ids == ["m2", "m3"]


def test_sqs_unreachable_store_skips_the_rest(dead_ddb_client):
    idem = Idempotency(store=DynamoDBStore("t", dead_ddb_client), scope="orders", token_field="idempotency_key")
    calls = []
    report = process_sqs_batch(idem, [sqs_record(f"m{i}", order(str(i))) for i in range(4)], calls.append)
    assert [r.status for r in report.results] == ["failed", "skipped", "skipped", "skipped"]
    assert len(report.response["batchItemFailures"]) == 4 and calls == []


def test_sqs_crash_kills_the_worker_midway(consumer):
    consumer.hooks.crash("after_effect", key="orders#tok#b")
    seen = []
    with pytest.raises(SimulatedCrash):
        process_sqs_batch(consumer, [sqs_record("m1", order("a")), sqs_record("m2", order("b"))], seen.append)
    assert len(seen) == 2  # b's effect happened, its completion did not


def test_sqs_with_boto3_messages(backend, consumer):
    sqs = backend.client("sqs")
    url = sqs.create_queue(QueueName="idem-test-orders")["QueueUrl"]
    try:
        for body in (order("a"), order("a"), order("b")):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
        charged = []
        report = process_sqs_batch(consumer, messages, lambda p: charged.append(p["idempotency_key"]))
        for message in report.done:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert sorted(charged) == ["a", "b"] and report.counts() == {"processed": 2, "replayed": 1}
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    finally:
        sqs.delete_queue(QueueUrl=url)


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def api():
    idem = Idempotency(store=MemoryStore(), clock=ManualClock(), scope="payments", token_header="Idempotency-Key")
    calls = []

    def handler(request):
        calls.append(request)
        body = request.json() or {}
        if body.get("mode") == "5xx":
            return 503, {"Content-Type": "text/plain"}, "try later"
        if body.get("mode") == "raise":
            raise RuntimeError("bug")
        if body.get("mode") == "declined":
            raise TerminalError("card declined", code="card_declined", http_status=402)
        return 201, {"Content-Type": "application/json", "Location": f"/payments/{len(calls)}"}, {"id": len(calls)}

    def post(body, key="k-1", path="/payments", headers=None):
        h = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            h["Idempotency-Key"] = key
        return handle_http(idem, "POST", path, h, body, handler)

    return idem, calls, post


def test_http_first_response_then_identical_replay(api):
    _, calls, post = api
    first = post('{"amount": 10, "currency": "EUR"}')
    assert first.status == 201 and first.json() == {"id": 1} and not first.replayed
    again = post('{\n "currency": "EUR",\n "amount": 10\n}')  # same JSON, other whitespace and key order
    assert again.status == 201 and again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == "/payments/1"
    assert len(calls) == 1
    assert post('{"amount": 10, "currency": "EUR"}', key='"k-1"').replayed  # sf-string form of the same key


def test_http_missing_and_invalid_keys_are_400(api):
    _, calls, post = api
    missing = post('{"amount": 1}', key=None)
    assert missing.status == 400 and missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["code"] == "idempotency_key_missing" and "UUID" in missing.json()["detail"]
    assert post('{"amount": 1}', key="x" * 300).status == 400
    assert post("{not json", key="k-bad").json()["code"] == "malformed_body"
    assert calls == []


def test_http_key_reused_with_another_body_is_422(api):
    _, calls, post = api
    post('{"amount": 10}')
    mismatch = post('{"amount": 11}')
    assert mismatch.status == 422 and mismatch.json()["code"] == "idempotency_key_reused"
    assert post('{"amount": 10}', path="/refunds").status == 422  # same key, other endpoint
    assert len(calls) == 1


def test_http_concurrent_request_is_409_with_retry_after(api):
    idem, _, post = api
    inner = {}
    idem.hooks.add("after_claim", lambda ctx: inner.setdefault("resp", post('{"amount": 10}')), times=1)
    first = post('{"amount": 10}')
    assert first.status == 201
    busy = inner["resp"]
    assert busy.status == 409 and busy.headers["Retry-After"] == "1"
    assert busy.json()["code"] == "idempotency_request_in_progress"


def test_http_5xx_and_exceptions_are_not_stored(api):
    _, calls, post = api
    assert post('{"mode": "5xx"}', key="k-5").status == 503
    assert post('{"mode": "5xx"}', key="k-5").status == 503
    crashed = post('{"mode": "raise"}', key="k-r")
    assert crashed.status == 500 and "retry with the same" in crashed.json()["detail"]
    assert post('{"mode": "raise"}', key="k-r").status == 500
    assert len(calls) == 4  # every retry ran again: nothing was stored


def test_http_terminal_errors_are_replayed(api):
    _, calls, post = api
    first = post('{"mode": "declined"}', key="k-d")
    assert (
        first.status == 402 and first.json()["code"] == "card_declined" and "Idempotent-Replayed" not in first.headers
    )
    again = post('{"mode": "declined"}', key="k-d")
    assert again.status == 402 and again.headers["Idempotent-Replayed"] == "true"
    assert len(calls) == 1


def test_http_safe_methods_pass_through(api):
    idem, _, _ = api
    for _ in range(2):
        assert handle_http(idem, "GET", "/payments/1", {}, b"", lambda r: (200, {}, b"ok")).status == 200


def test_http_store_unavailable_is_503(dead_ddb_client):
    idem = Idempotency(store=DynamoDBStore("t", dead_ddb_client), scope="p", token_header="Idempotency-Key")
    resp = handle_http(idem, "POST", "/p", {"Idempotency-Key": "k"}, b"{}", lambda r: (201, {}, b"x"))
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"


def test_http_glue_behind_a_stdlib_server(api):
    idem, _, _ = api

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            resp: HttpResponse = handle_http(
                idem, "POST", self.path, dict(self.headers), body, lambda r: (201, {}, {"paid": True})
            )
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = []
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
            conn.request("POST", "/pay", body=b'{"a": 1}', headers={"Idempotency-Key": "srv-1"})
            r = conn.getresponse()
            answers.append((r.status, r.getheader("Idempotent-Replayed"), r.read()))
            conn.close()
        assert answers == [(201, None, b'{"paid":true}'), (201, "true", b'{"paid":true}')]
    finally:
        server.shutdown()
        server.server_close()


def test_a_handlers_own_retryable_error_still_reports_its_round_trips() -> None:
    """Claim + release are two store calls even when the handler's own exception propagates."""
    from helpers.idempotency import Idempotency, MemoryStore

    class Busy(Exception):
        pass

    idem = Idempotency(store=MemoryStore(), scope="t", token_field="key")

    def fail() -> None:
        raise Busy("downstream throttled")

    try:
        idem.execute({"key": "k-1"}, fail)
    except Busy as exc:
        assert exc.round_trips == 2
    else:
        raise AssertionError("the handler's exception must propagate")
