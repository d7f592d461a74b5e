"""Framework-neutral HTTP glue for the IETF ``Idempotency-Key`` header.

``handle_http(idem, method, path, headers, body, handler)`` returns an :class:`HttpResponse` (status, headers,
body bytes), so any server (stdlib ``http.server``, WSGI, a test) can use it. Semantics, following the IETF draft
and Stripe:

- POST and PATCH (configurable) need the header: missing or malformed -> 400; other methods pass straight through;
- the request fingerprint is method + path + body, the body parsed first when it is JSON (whitespace and key order
  do not matter); the same key with another fingerprint -> 422;
- the same key while the first request runs -> 409 with ``Retry-After``;
- a repeat of a finished request gets the first response again (status, headers, body byte for byte) plus
  ``Idempotent-Replayed: true``. 2xx-4xx responses are stored; a 5xx response or an exception releases the key so
  the client's retry runs again; a raised :class:`TerminalError` is stored and replayed with its status;
- store unreachable -> 503 with ``Retry-After``.
Error bodies are RFC 9457 problem details (``application/problem+json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from helpers.idempotency.errors import (
    IdempotencyError,
    InProgress,
    InvalidKey,
    LeaseLost,
    MalformedPayload,
    PayloadMismatch,
    StoreUnavailable,
    TerminalError,
)
from helpers.idempotency.keys import header_value, validate_token

if TYPE_CHECKING:
    from helpers.idempotency.config import WaitPolicy
    from helpers.idempotency.core import Idempotency

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
PROTECTED_METHODS = ("POST", "PATCH")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        value = header_value(self.headers, name)
        return None if value is None else str(value)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def replayed(self) -> bool:
        return header_value(self.headers, REPLAYED_HEADER) == "true"

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def as_tuple(self) -> tuple[int, dict[str, str], bytes]:
        return self.status, dict(self.headers), self.body

    def _stored(self) -> dict[str, Any]:
        try:
            return {"status": self.status, "headers": self.headers, "text": self.body.decode("utf-8")}
        except UnicodeDecodeError:
            return {"status": self.status, "headers": self.headers, "base64": base64.b64encode(self.body).decode()}

    @classmethod
    def _from_stored(cls, data: Mapping[str, Any]) -> HttpResponse:
        body = data["text"].encode("utf-8") if "text" in data else base64.b64decode(data.get("base64", ""))
        return cls(int(data["status"]), dict(data.get("headers") or {}), body)


def problem(status: int, code: str, title: str, detail: str, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """An RFC 9457 problem response."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code})
    return HttpResponse(status, {"Content-Type": "application/problem+json", **(headers or {})}, body.encode())


def to_response(result: Any) -> HttpResponse:
    """Accept what handlers naturally return: an HttpResponse, (status, headers, body) or (status, body)."""
    if isinstance(result, HttpResponse):
        return result
    if isinstance(result, tuple) and len(result) in (2, 3):
        status, headers, body = (result[0], {}, result[1]) if len(result) == 2 else result
        headers = dict(headers or {})
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        return HttpResponse(int(status), headers, data)
    raise TypeError(f"a handler returns HttpResponse or (status, headers, body); got {type(result).__name__}")


class _RetryableResponse(Exception):
    """A 5xx response: give the key back so the client's retry runs again (not stored)."""

    never_terminal = True

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def _read_key(headers: Mapping[str, Any], name: str, max_length: int) -> str | None:
    raw = header_value(headers, name)
    if isinstance(raw, (list, tuple)):
        if len(raw) != 1:
            raise InvalidKey(f"send exactly one {name} header (got {len(raw)})")
        raw = raw[0]
    if raw is None:
        return None
    text = str(raw).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':  # RFC 8941 sf-string form: "key"
        text = text[1:-1]
    return validate_token(text, max_length=max_length, source=f"header {name}")


def _content(headers: Mapping[str, Any], body: bytes) -> Any:
    if not body:
        return None
    ctype = str(header_value(headers, "Content-Type") or "").lower()
    looks_json = body.lstrip()[:1] in (b"{", b"[")
    if "json" in ctype or (not ctype and looks_json):
        try:
            return {"json": json.loads(body)}
        except ValueError as exc:
            if "json" in ctype:
                raise MalformedPayload(f"the body is declared as JSON but does not parse: {exc}") from None
    return {"sha256": hashlib.sha256(body).hexdigest()}


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def handle_http(
    idem: Idempotency,
    method: str,
    path: str,
    headers: Mapping[str, Any] | None,
    body: bytes | str | None,
    handler: Callable[[HttpRequest], Any],
    *,
    key_header: str = KEY_HEADER,
    require_key: bool = True,
    methods: tuple[str, ...] = PROTECTED_METHODS,
    worker: str | None = None,
    wait: WaitPolicy | bool | None = None,
) -> HttpResponse:
    """Serve one request through ``handler(HttpRequest)`` with Idempotency-Key semantics; never raises for
    request or store problems (they become 4xx/5xx responses); a SimulatedCrash still propagates."""
    headers = dict(headers or {})
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    request = HttpRequest(method.upper(), path, headers, data)

    def call_handler() -> HttpResponse:
        return to_response(handler(request))

    if request.method not in methods:
        return call_handler()
    try:
        key = _read_key(headers, key_header, idem.config.max_token_length)
        if key is None:
            if require_key:
                return problem(
                    400,
                    "idempotency_key_missing",
                    f"{key_header} is missing",
                    f"{request.method} {path} needs an {key_header} header: a unique value (a UUID) the client "
                    "generates once per operation and sends again on every retry.",
                )
            return call_handler()
        content = _content(headers, data)
    except (InvalidKey, MalformedPayload) as exc:
        code = "idempotency_key_invalid" if isinstance(exc, InvalidKey) else "malformed_body"
        return problem(400, code, "Bad request", str(exc))

    fingerprint_source = {"method": request.method, "path": path, "content": content}

    def action() -> dict[str, Any]:
        response = call_handler()
        if response.status >= 500:
            raise _RetryableResponse(response)
        return response._stored()

    try:
        outcome = idem.execute(
            {"method": request.method, "path": path, "headers": headers},
            action,
            token=key,
            worker=worker,
            wait=wait,
            fingerprint_of=fingerprint_source,
        )
    except _RetryableResponse as exc:
        return exc.response
    except InProgress as exc:
        return problem(
            409,
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still being processed",
            str(exc),
            {"Retry-After": _retry_after(exc.retry_after)},
        )
    except PayloadMismatch as exc:
        return problem(422, "idempotency_key_reused", "Idempotency-Key reused with a different request", str(exc))
    except TerminalError as exc:
        extra = {REPLAYED_HEADER: "true"} if exc.replayed else {}
        return problem(exc.http_status, exc.code, "Request failed", exc.message, extra)
    except (StoreUnavailable, LeaseLost) as exc:
        return problem(
            503,
            "idempotency_store_unavailable" if isinstance(exc, StoreUnavailable) else "lease_lost",
            "Try again with the same Idempotency-Key",
            str(exc),
            {"Retry-After": "1"},
        )
    except IdempotencyError as exc:
        return problem(exc.http_status, type(exc).__name__, "Idempotency error", str(exc))
    except Exception as exc:
        return problem(
            500,
            "internal_error",
            "Internal error",
            f"{type(exc).__name__}: the request was not completed and its key was released; retry with the same "
            f"{key_header}.",
        )
    response = HttpResponse._from_stored(outcome.value)
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
