"""A small payments API: a real HTTP server on 127.0.0.1 that charges cards into the ledger, idempotently.

``POST /charges`` with an ``Idempotency-Key`` header follows the IETF draft through ``helpers.idempotency``:
400 without the key, 409 while the first request with that key is still running, 422 when the key comes back with
another payload, and the first response replayed with ``Idempotent-Replayed: true``. Keys are kept for
``expires_after`` seconds (24 hours by default, like Stripe); after that the same key is a new request.

The body is a charge ``{"orderId": "o-1", "amount": 25}``, or an EventBridge event whose ``detail`` holds one (what
an API destination sends). Faults for the demos (slow, 5xx, 429, a lost response) are set on ``api.faults``.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from helpers.idempotency import DynamoDBStore, HttpRequest, HttpResponse, Idempotency, IdempotencyConfig, handle_http
from helpers.idempotency.http import problem
from helpers.ledger import Ledger

HOST = "127.0.0.1"
DAY_S = 24 * 3600.0


@dataclass
class ApiFaults:
    """Faults the next requests meet, in order; deterministic so a notebook can say exactly what happens.

    ``queue_status(503, 503)`` answers the next two requests with those statuses before anything is charged (a
    transient outage); ``always_status = 500`` fails every request (a permanent outage); ``lose_responses(1)``
    charges but drops the connection before the response leaves (the client sees a network error);
    ``delay_s`` makes each charge take that long (a slow downstream, so duplicates arrive while it runs).
    """

    delay_s: float = 0.0
    always_status: int | None = None
    _statuses: deque[int] = field(default_factory=deque)
    _lose: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def queue_status(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def lose_responses(self, count: int = 1) -> None:
        with self._lock:
            self._lose += count

    def clear(self) -> None:
        with self._lock:
            self._statuses.clear()
            self._lose = 0
            self.always_status = None
            self.delay_s = 0.0

    def next_status(self) -> int | None:
        with self._lock:
            if self._statuses:
                return self._statuses.popleft()
            return self.always_status

    def take_lost_response(self) -> bool:
        with self._lock:
            if self._lose:
                self._lose -= 1
                return True
            return False


@dataclass(frozen=True)
class Served:
    """One request as the server saw it, for tables and sequence diagrams (no ids, no timestamps)."""

    n: int
    method: str
    path: str
    key: str | None
    status: int
    replayed: bool
    note: str


class PaymentsApi:
    """The payments service. ``with PaymentsApi(ledger) as api: requests.post(api.url + "/charges", ...)``."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        expires_after: float = DAY_S,
        lease_duration: float = 10.0,
        table: str = "payments-idempotency",
        port: int = 0,
        api_key: tuple[str, str] | None = None,
    ) -> None:
        """``api_key=(header, value)``: requests to /charges must carry it (what an EventBridge connection with
        API-key auth sends); the value is kept in memory only and never logged."""
        self.ledger = ledger
        self._api_key = api_key
        self.faults = ApiFaults()
        self.expires_after = expires_after
        resources = ledger.resources
        self.store = DynamoDBStore(resources.name(table), client=resources.backend.client("dynamodb"))
        self.store.create_table()
        config = IdempotencyConfig(
            scope="payments-api.charges",
            token_header="Idempotency-Key",  # noqa: S106 - a header name, not a secret
            expires_after=expires_after,
            lease_duration=lease_duration,
        )
        self.idempotency = Idempotency(config, store=self.store, worker="payments-api")
        self.served: list[Served] = []
        self._served_lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> PaymentsApi:
        if self._server is not None:
            return self
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                api._serve(self)

            def do_GET(self) -> None:
                api._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: request logs on stderr would leak into notebook outputs."""

        self._server = ThreadingHTTPServer((HOST, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="payments-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> PaymentsApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the payments API is not running: call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def reset_log(self) -> None:
        with self._served_lock:
            self.served.clear()

    def log_frame(self) -> Any:
        import pandas as pd

        with self._served_lock:
            rows = [s.__dict__ for s in self.served]
        return pd.DataFrame(rows, columns=["n", "method", "path", "key", "status", "replayed", "note"])

    # -- request handling -----------------------------------------------------------------------------------------
    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        headers = {k: v for k, v in http.headers.items()}
        key = http.headers.get("Idempotency-Key")
        note = ""
        if http.path == "/health":
            response = HttpResponse(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')
        elif http.path != "/charges" or http.command != "POST":
            response = problem(404, "not_found", "Not found", f"{http.command} {http.path}: use POST /charges")
        elif self._api_key is not None and not hmac.compare_digest(
            http.headers.get(self._api_key[0], ""), self._api_key[1]
        ):
            note = "rejected: missing or wrong API key"
            detail = f"send the API key in the {self._api_key[0]} header"
            response = problem(401, "unauthorized", "Unauthorized", detail)
        elif key is not None and key.strip().startswith("$."):
            # An API destination whose header value was sent literally (an emulator that does not resolve JSONPath):
            # every event would share this one "key". Refusing it keeps charges correct and says what went wrong.
            note = "rejected: unresolved JSONPath as key"
            response = problem(
                400,
                "idempotency_key_unresolved",
                "Idempotency-Key is an unresolved JSONPath",
                f"Idempotency-Key is {key!r}: the sender did not resolve it from the event. Send the event's value.",
            )
        elif (status := self.faults.next_status()) is not None:
            note = "fault: injected before charging"
            headers_out = {"Retry-After": "1"} if status in (429, 503) else {}
            response = problem(status, "injected_fault", "Injected fault", f"the demo answers {status}", headers_out)
        else:
            response = handle_http(self.idempotency, http.command, http.path, headers, body, self._charge)
            note = _describe(response)
            if response.status < 500 and self.faults.take_lost_response():
                self._record(http, key, response, "fault: charged, response lost")
                http.close_connection = True
                http.connection.shutdown(2)  # the client sees the connection drop, never the response
                return
        self._record(http, key, response, note)
        http.send_response(response.status)
        for name, value in response.headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(response.body)))
        http.end_headers()
        http.wfile.write(response.body)

    def _record(self, http: BaseHTTPRequestHandler, key: str | None, response: HttpResponse, note: str) -> None:
        with self._served_lock:
            self.served.append(
                Served(len(self.served) + 1, http.command, http.path, key, response.status, response.replayed, note)
            )

    def _charge(self, request: HttpRequest) -> HttpResponse:
        """The side effect: one ledger row. Runs only for the first request with a key (or after a release)."""
        try:
            body = request.json()
        except ValueError:
            return problem(400, "malformed_body", "Bad request", "the body must be JSON")
        charge = body.get("detail") if isinstance(body, dict) and isinstance(body.get("detail"), dict) else body
        if not isinstance(charge, dict):
            return problem(400, "malformed_body", "Bad request", 'send {"orderId": "...", "amount": 25}')
        order_id = charge.get("orderId") or charge.get("customID")
        try:
            amount = Decimal(str(charge.get("amount")))
        except InvalidOperation:
            amount = None
        if not order_id or amount is None or amount <= 0:
            return problem(400, "invalid_charge", "Bad request", "a charge needs an orderId and a positive amount")
        if self.faults.delay_s:
            time.sleep(self.faults.delay_s)
        key = request.header("Idempotency-Key") or ""
        charge_id = self.ledger.charge(order_id, amount, by="payments-api", key=key)
        result = {"chargeId": charge_id, "orderId": order_id, "amount": float(amount), "status": "succeeded"}
        return HttpResponse(201, {"Content-Type": "application/json"}, json.dumps(result).encode())


def _describe(response: HttpResponse) -> str:
    if response.replayed:
        return "replayed the first response"
    return {
        201: "charged",
        400: "rejected: bad request or missing key",
        409: "rejected: first request still in progress",
        422: "rejected: key reused with another payload",
    }.get(response.status, "")
