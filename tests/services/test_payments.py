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

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger
from helpers.services.payments import PaymentsApi


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


# ---------------------------------------------------------------- a real server under load and bad input (issue 10)


def raw_request(api: PaymentsApi, data: bytes, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library to fix them up) and read one response."""
    import http.client

    with socket.create_connection(("127.0.0.1", api.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def charge_request(body: bytes, *, headers: dict[str, str] | None = None, length: str | None = None) -> bytes:
    lines = ["POST /charges HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Idempotency-Key: k-raw"]
    for name, value in (headers or {}).items():
        lines = [line for line in lines if not line.lower().startswith(name.lower() + ":")] + [f"{name}: {value}"]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (charge_request(b'{"orderId":"o","amount":1}', length="-5"), 400),
        (charge_request(b'{"orderId":"o","amount":1}', length="abc"), 400),
        (charge_request(b'{"orderId":"o","amount":1}', length="1e3"), 400),
        (charge_request(b"x" * 70_000), 413),
        (charge_request(b"[" * 20_000 + b"]" * 20_000), 400),
        (charge_request(b'{"orderId":"o\xff\xfe","amount":1}'), 400),
        (charge_request(b"orderId=o&amount=1", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (charge_request(b"{}", headers={"Idempotency-Key": '"unterminated'}), 400),
        (charge_request(b"{}", headers={"Idempotency-Key": '"a", "b"'}), 400),
        (charge_request(b"{}", headers={"Idempotency-Key": "caf\u00e9"}), 400),
        (b"POST /charges HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\n\r\n", 411),
        (b"POST /charges HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    ],
    ids=[
        "negative-length",
        "text-length",
        "float-length",
        "too-large",
        "deep-json",
        "not-utf8",
        "form-body",
        "unterminated-key",
        "two-keys",
        "non-ascii-key",
        "no-length",
        "chunked",
    ],
)
def test_every_malformed_request_gets_its_status(api: PaymentsApi, data: bytes, status: int) -> None:
    got, headers, body = raw_request(api, data)
    assert got == status, body
    assert headers["Content-Type"] == "application/problem+json"
    assert api.ledger.count() == 0


def test_a_method_the_route_does_not_allow_is_405_with_allow(api: PaymentsApi) -> None:
    got, headers, _ = raw_request(api, b"PUT /charges HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert got == 405 and headers["Allow"] == "POST"
    got, headers, _ = raw_request(api, b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got == 405 and headers["Allow"] == "GET, HEAD"
    assert raw_request(api, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404


def test_a_non_ascii_api_key_is_401_not_a_crash(backend) -> None:  # type: ignore[no-untyped-def]
    import secrets

    resources = Resources("t-pay4", backend)
    resources.teardown()
    with PaymentsApi(Ledger(resources), api_key=("x-api-key", secrets.token_urlsafe(16))) as api:
        data = charge_request(b'{"orderId":"o","amount":1}', headers={"x-api-key": "cl\u00e9-\u00ff"})
        assert raw_request(api, data)[0] == 401
        assert api.ledger.count() == 0
    resources.teardown()


def test_an_sf_string_key_is_the_same_key_as_its_content(api: PaymentsApi) -> None:
    first = post(api.url, {"orderId": "o-sf", "amount": 2}, '"k-sf"')
    again = post(api.url, {"orderId": "o-sf", "amount": 2}, "k-sf")
    assert first[0] == again[0] == 201 and again[1]["Idempotent-Replayed"] == "true"
    assert api.ledger.charges_per_order() == {"o-sf": 1}


def test_a_half_sent_request_is_timed_out_and_frees_its_thread(backend) -> None:  # type: ignore[no-untyped-def]
    resources = Resources("t-pay5", backend)
    resources.teardown()
    with PaymentsApi(Ledger(resources), request_timeout=0.5) as api:
        started = time.monotonic()
        half_body = charge_request(b'{"orderId":"o","amount":1}', length="100")
        status, _, _ = raw_request(api, half_body, timeout=5)
        assert status == 408 and time.monotonic() - started < 4
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
            sock.sendall(b"POST /charges HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            assert sock.recv(1024) == b""  # the server gave up and closed
        assert time.monotonic() - started < 6
        assert api.ledger.count() == 0
        with urllib.request.urlopen(api.url + "/health", timeout=5) as response:
            assert response.status == 200
    resources.teardown()


def test_a_burst_of_hundreds_of_clients_is_served_promptly(api: PaymentsApi) -> None:
    """300 connections at once: with the stdlib's listen backlog of 5 many would wait for SYN retries (1 s, 3 s,
    7 s...); with the deeper backlog every one is answered within seconds."""
    clients = 300
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            status = raw_request(api, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=30)[0]
            assert status == 200
        except BaseException as exc:  # collected and asserted below
            with lock:
                errors.append(exc)
            return
        with lock:
            latencies.append(time.monotonic() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(latencies) == clients and max(latencies) < 5.0, sorted(latencies)[-5:]
