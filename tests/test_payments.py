"""The payments API: each IETF status code, the replay header, concurrent duplicates, faults, clean shutdown."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from helpers.ledger import Ledger
from helpers.payments import PaymentsApi
from helpers.resources import Resources


def post(url: str, body: object, key: str | None = None, raw: bytes | None = None) -> tuple[int, dict, object]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url + "/charges", data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.fixture
def api(backend):  # type: ignore[no-untyped-def]
    resources = Resources("t-pay", backend)
    resources.teardown()
    ledger = Ledger(resources)
    with PaymentsApi(ledger, lease_duration=5) as server:
        yield server
    resources.teardown()


def test_binds_loopback_and_answers_health(api: PaymentsApi) -> None:
    assert api.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(api.url + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def test_first_request_charges_and_a_retry_replays_it_byte_for_byte(api: PaymentsApi) -> None:
    key = str(uuid.uuid4())
    first = post(api.url, {"orderId": "o-1", "amount": 25}, key)
    again = post(api.url, {"amount": 25, "orderId": "o-1"}, key)  # same JSON, other key order
    assert first[0] == again[0] == 201
    assert first[2] == again[2]
    assert "Idempotent-Replayed" not in first[1]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert api.ledger.charges_per_order() == {"o-1": 1}
    assert [s.note for s in api.served] == ["charged", "replayed the first response"]


def test_missing_key_is_400_and_charges_nothing(api: PaymentsApi) -> None:
    status, headers, body = post(api.url, {"orderId": "o-2", "amount": 5})
    assert status == 400 and "Idempotency-Key" in body["detail"]
    assert headers["Content-Type"] == "application/problem+json"
    assert api.ledger.count() == 0


def test_key_reused_with_another_payload_is_422(api: PaymentsApi) -> None:
    key = str(uuid.uuid4())
    assert post(api.url, {"orderId": "o-3", "amount": 5}, key)[0] == 201
    status, _, body = post(api.url, {"orderId": "o-3", "amount": 500}, key)
    assert status == 422, body
    assert api.ledger.charges_per_order() == {"o-3": 1}


def test_concurrent_duplicates_get_409_while_the_first_runs(api: PaymentsApi) -> None:
    api.faults.delay_s = 0.5
    key = str(uuid.uuid4())
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(post(api.url, {"orderId": "o-4", "amount": 9}, key)[0]))
    first.start()
    ddb, deadline = api.ledger.resources.backend.client("dynamodb"), time.monotonic() + 10
    while not ddb.scan(TableName=api.store.table_name)["Items"]:  # until the first request has claimed the key
        assert time.monotonic() < deadline, "the first request never claimed its key"
        time.sleep(0.01)
    status, headers, _ = post(api.url, {"orderId": "o-4", "amount": 9}, key)
    first.join()
    assert status == 409 and int(headers["Retry-After"]) >= 1
    assert results == [201]
    assert api.ledger.charges_per_order() == {"o-4": 1}


def test_many_concurrent_duplicates_charge_once(api: PaymentsApi) -> None:
    api.faults.delay_s = 0.2
    key = str(uuid.uuid4())
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = post(api.url, {"orderId": "o-5", "amount": 1}, key)[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert api.ledger.charges_per_order() == {"o-5": 1}


def test_transient_5xx_and_429_charge_nothing_and_the_retry_charges_once(api: PaymentsApi) -> None:
    api.faults.queue_status(503, 429)
    key = str(uuid.uuid4())
    charge = {"orderId": "o-6", "amount": 3}
    assert post(api.url, charge, key)[0] == 503
    status, headers, _ = post(api.url, charge, key)
    assert status == 429 and headers["Retry-After"] == "1"
    assert api.ledger.count() == 0
    assert post(api.url, charge, key)[0] == 201
    assert post(api.url, charge, key)[1]["Idempotent-Replayed"] == "true"
    assert api.ledger.charges_per_order() == {"o-6": 1}


def test_a_lost_response_is_replayed_on_retry(api: PaymentsApi) -> None:
    api.faults.lose_responses(1)
    key = str(uuid.uuid4())
    with pytest.raises((urllib.error.URLError, ConnectionError, http_client_errors())):
        post(api.url, {"orderId": "o-7", "amount": 4}, key)
    status, headers, body = post(api.url, {"orderId": "o-7", "amount": 4}, key)
    assert status == 201 and headers["Idempotent-Replayed"] == "true" and body["orderId"] == "o-7"
    assert api.ledger.charges_per_order() == {"o-7": 1}


def http_client_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def test_an_event_body_charges_its_detail_and_bad_bodies_are_400(api: PaymentsApi) -> None:
    event = {"detail-type": "OrderCreated", "source": "com.orders", "detail": {"customID": "c-1", "amount": 7}}
    assert post(api.url, event, "k-event")[0] == 201
    assert api.ledger.charges_per_order() == {"c-1": 1}
    assert post(api.url, None, "k-bad", raw=b"{not json")[0] == 400
    assert post(api.url, {"orderId": "o-8"}, "k-no-amount")[0] == 400
    assert api.ledger.count() == 1


def test_stop_releases_the_port(backend) -> None:  # type: ignore[no-untyped-def]
    resources = Resources("t-pay2", backend)
    api = PaymentsApi(Ledger(resources)).start()
    port = api.port
    api.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    resources.teardown()


def test_an_unresolved_jsonpath_key_is_refused(api: PaymentsApi) -> None:
    """What an emulator that sends `$.detail.customID` literally would do to every event: share one key."""
    status, _, body = post(api.url, {"orderId": "o-9", "amount": 2}, "$.detail.customID")
    assert status == 400 and body["code"] == "idempotency_key_unresolved"
    assert api.ledger.count() == 0
    assert api.served[-1].note == "rejected: unresolved JSONPath as key"


def test_a_republished_event_is_another_payload_but_its_detail_alone_replays(api: PaymentsApi) -> None:
    """PutEvents twice gives two envelopes (new id): as a body that is a 422; the detail alone is a replay."""
    detail = {"customID": str(uuid.uuid4()), "message": "hello world!", "orderId": "o-10", "amount": 6}
    envelope = {"source": "http.idempotency.demo.app", "detail-type": "http.idempotency.demo.event.v0"}
    envelope["detail"] = detail
    key = detail["customID"]
    assert post(api.url, {**envelope, "id": "event-1"}, key)[0] == 201
    status, _, body = post(api.url, {**envelope, "id": "event-2"}, key)
    assert status == 422 and body["code"] == "idempotency_key_reused"
    assert api.ledger.charges_per_order() == {"o-10": 1}

    detail2 = dict(detail, customID=str(uuid.uuid4()), orderId="o-11")
    first = post(api.url, detail2, detail2["customID"])
    again = post(api.url, detail2, detail2["customID"])
    assert first[0] == again[0] == 201 and again[1]["Idempotent-Replayed"] == "true" and again[2] == first[2]
    assert api.ledger.charges_per_order() == {"o-10": 1, "o-11": 1}


def test_an_api_key_is_required_when_configured(backend) -> None:  # type: ignore[no-untyped-def]
    import secrets

    resources = Resources("t-pay3", backend)
    resources.teardown()
    value = secrets.token_urlsafe(16)
    with PaymentsApi(Ledger(resources), api_key=("x-api-key", value)) as api:
        assert post(api.url, {"orderId": "o-1", "amount": 1}, "k-1")[0] == 401
        request = urllib.request.Request(
            api.url + "/charges",
            data=json.dumps({"orderId": "o-1", "amount": 1}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "k-1", "x-api-key": value},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        assert api.ledger.charges_per_order() == {"o-1": 1}
        assert value not in repr(api.served)
    resources.teardown()
