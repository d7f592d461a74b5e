"""A small payments API: a real HTTP server on 127.0.0.1 that charges cards into the ledger, idempotently.

``POST /charges`` with an ``Idempotency-Key`` header follows the IETF draft through ``helpers.idempotency``:
400 without the key, 409 while the first request with that key is still running, 422 when the key comes back with
another payload, and the first response replayed with ``Idempotent-Replayed: true``. Keys are kept for
``expires_after`` seconds (24 hours by default, like Stripe); after that the same key is a new request.

The body is a charge ``{"orderId": "o-1", "amount": 25}``, or an EventBridge event whose ``detail`` holds one (what
an API destination sends), flat or in the talk's envelope (``detail.data`` with ``order-id`` and ``amount``).
Faults for the demos (slow, 5xx, 429, a lost response) are set on ``api.faults``.

It is a real server, so bad requests get real answers (this helper's limits, not AWS's): a body of at most
``MAX_BODY_BYTES`` (else 413), sent as JSON (another declared type: 415; no type: read as JSON), framed by a valid
``Content-Length`` (else 400; none with a body: 411), to a route that allows the method (else 405 with ``Allow``).
A client that stops sending mid-request is timed out after ``request_timeout`` seconds (408), and the listen
backlog (``services.http.BACKLOG``) holds a burst of connections, so hundreds of concurrent clients are served at once.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from typing import Any

from helpers.idempotency import (
    DynamoDBStore,
    HttpRequest,
    HttpResponse,
    Idempotency,
    IdempotencyConfig,
    InvalidKey,
    handle_http,
)
from helpers.idempotency.http import parse_sf_string, problem
from helpers.instruments.ledger import Ledger
from helpers.services.http import LoopbackServer, send

DAY_S = 24 * 3600.0
#: The largest request body this helper reads (a charge is ~100 bytes; an EventBridge event a few KB).
MAX_BODY_BYTES = 64 * 1024
ROUTES: dict[str, tuple[str, ...]] = {"/charges": ("POST",), "/health": ("GET", "HEAD")}


class _Reject(Exception):
    """A request refused before it reaches the idempotency layer, with its response."""

    def __init__(self, response: HttpResponse, note: str, *, close: bool = True) -> None:
        super().__init__(note)
        self.response = response
        self.note = note
        self.close = close


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


class PaymentsApi(LoopbackServer):
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
        request_timeout: float = 10.0,
    ) -> None:
        """``api_key=(header, value)``: requests to /charges must carry it (what an EventBridge connection with
        API-key auth sends); the value is kept in memory only and never logged. ``request_timeout``: seconds a
        client may take to send its request (a half-sent request is answered 408 and closed)."""
        super().__init__(port=port, request_timeout=request_timeout)
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

    thread_name = "payments-api"
    label = "the payments API"

    def reset_log(self) -> None:
        with self._served_lock:
            self.served.clear()

    def log_frame(self) -> Any:
        import pandas as pd

        with self._served_lock:
            rows = [s.__dict__ for s in self.served]
        return pd.DataFrame(rows, columns=["n", "method", "path", "key", "status", "replayed", "note"])

    # -- request handling -----------------------------------------------------------------------------------------
    def _read_body(self, http: BaseHTTPRequestHandler) -> bytes:
        """The body, framed by a valid Content-Length of at most MAX_BODY_BYTES; _Reject otherwise."""
        if http.headers.get("Transfer-Encoding"):
            raise _Reject(
                problem(411, "length_required", "Length required", "send the body with a Content-Length"),
                "rejected: no Content-Length",
                close=True,
            )
        lengths = http.headers.get_all("Content-Length") or []
        if not lengths:
            if http.command == "POST":
                detail = "send a Content-Length (0 for an empty body)"
                raise _Reject(problem(411, "length_required", "Length required", detail), "rejected: no length")
            return b""
        text = lengths[0].strip()
        if len(set(lengths)) != 1 or not text.isascii() or not text.isdigit():
            detail = f"Content-Length must be one non-negative whole number, got {', '.join(lengths)!r}"
            raise _Reject(problem(400, "bad_content_length", "Bad request", detail), "rejected: bad length", close=True)
        length = int(text)
        if length > MAX_BODY_BYTES:
            detail = f"the body is {length} bytes; this API accepts at most {MAX_BODY_BYTES}"
            raise _Reject(
                problem(413, "body_too_large", "Content too large", detail), "rejected: too large", close=True
            )
        try:
            body = http.rfile.read(length) if length else b""
        except TimeoutError:
            body = b""
        if len(body) < length:
            detail = f"the body stopped after {len(body)} of {length} bytes (timeout {self.request_timeout}s)"
            raise _Reject(problem(408, "request_timeout", "Request timeout", detail), "rejected: timeout", close=True)
        return body

    def _check_route(self, http: BaseHTTPRequestHandler) -> None:
        path = http.path.split("?", 1)[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            detail = f"{http.command} {http.path}: use POST /charges"
            raise _Reject(problem(404, "not_found", "Not found", detail), "rejected: no such route")
        if http.command not in allowed:
            detail = f"{path} allows {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
            raise _Reject(problem(405, "method_not_allowed", "Method not allowed", detail, headers), "rejected: method")
        if path == "/charges":
            ctype = (http.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype and ctype != "application/json" and not ctype.endswith("+json"):
                detail = f"send the charge as application/json, not {ctype!r}"
                raise _Reject(
                    problem(415, "unsupported_media_type", "Unsupported media type", detail), "rejected: type"
                )

    def _authorised(self, http: BaseHTTPRequestHandler) -> bool:
        if self._api_key is None:
            return True
        sent = http.headers.get(self._api_key[0], "")
        # bytes, so a non-ASCII header value compares (and fails) instead of raising TypeError
        return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), self._api_key[1].encode("utf-8"))

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        key = http.headers.get("Idempotency-Key")
        note = ""
        try:
            self._check_route(http)
            body = self._read_body(http)
            response, note = self._respond(http, body, key)
        except _Reject as rejected:
            response, note = rejected.response, rejected.note
            if rejected.close:
                http.close_connection = True
                response.headers["Connection"] = "close"
        except Exception as exc:  # the promise: every request gets an answer
            response = problem(500, "internal_error", "Internal error", f"{type(exc).__name__} while serving")
            note = "error: " + type(exc).__name__
        if response is None:  # the lost-response fault: the connection was dropped on purpose
            return
        self._record(http, key, response, note)
        send(http, response)

    def _respond(self, http: BaseHTTPRequestHandler, body: bytes, key: str | None) -> tuple[Any, str]:
        if http.path.split("?", 1)[0] == "/health":
            return HttpResponse(200, {"Content-Type": "application/json"}, b'{"status":"ok"}'), ""
        if not self._authorised(http):
            detail = f"send the API key in the {self._api_key[0] if self._api_key else ''} header"
            return problem(401, "unauthorized", "Unauthorized", detail), "rejected: missing or wrong API key"
        if key is not None and key.strip().startswith("$."):
            # An API destination whose header value was sent literally (an emulator that does not resolve JSONPath):
            # every event would share this one "key". Refusing it keeps charges correct and says what went wrong.
            return problem(
                400,
                "idempotency_key_unresolved",
                "Idempotency-Key is an unresolved JSONPath",
                f"Idempotency-Key is {key!r}: the sender did not resolve it from the event. Send the event's value.",
            ), "rejected: unresolved JSONPath as key"
        if (status := self.faults.next_status()) is not None:
            headers_out = {"Retry-After": "1"} if status in (429, 503) else {}
            response = problem(status, "injected_fault", "Injected fault", f"the demo answers {status}", headers_out)
            return response, "fault: injected before charging"
        headers: dict[str, Any] = dict(http.headers.items())
        keys = http.headers.get_all("Idempotency-Key") or []
        if len(keys) > 1:
            headers["Idempotency-Key"] = keys  # the glue answers 400: one request, one key
        response = handle_http(self.idempotency, http.command, http.path, headers, body, self._charge)
        if response.status < 500 and self.faults.take_lost_response():
            self._record(http, key, response, "fault: charged, response lost")
            http.close_connection = True
            http.connection.shutdown(socket.SHUT_RDWR)  # the client sees the connection drop, never the response
            return None, ""
        return response, _describe(response)

    def _record(self, http: BaseHTTPRequestHandler, key: str | None, response: HttpResponse, note: str) -> None:
        with self._served_lock:
            self.served.append(
                Served(len(self.served) + 1, http.command, http.path, key, response.status, response.replayed, note)
            )

    def _charge(self, request: HttpRequest) -> HttpResponse:
        """The side effect: one ledger row. Runs only for the first request with a key (or after a release)."""
        try:
            body = request.json()
        except ValueError as exc:  # bad JSON, bad UTF-8, nesting too deep (MalformedPayload is a ValueError)
            return problem(400, "malformed_body", "Bad request", f"the body must be JSON: {exc}")
        charge = body.get("detail") if isinstance(body, dict) and isinstance(body.get("detail"), dict) else body
        if isinstance(charge, dict) and isinstance(charge.get("data"), dict):  # the talk's envelope (notebook 12)
            charge = {"orderId": charge["data"].get("order-id"), "amount": charge["data"].get("amount")}
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
        key = _ledger_key(request.header("Idempotency-Key") or "")
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


def _ledger_key(raw: str) -> str:
    """The key as the client meant it (the sf-string's content), to tag the ledger row."""
    try:
        return parse_sf_string(raw) if raw.strip().startswith('"') else raw.strip()
    except InvalidKey:
        return raw
