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

from .errors import (
    IdempotencyError,
    InProgress,
    InvalidKey,
    LeaseLost,
    MalformedPayload,
    PayloadMismatch,
    PayloadNotSerializable,
    ResponseNotStorable,
    StoreUnavailable,
    TerminalError,
)
from .keys import header_value, loads, validate_token
from .record import ABSENT, Status

if TYPE_CHECKING:
    from .config import WaitPolicy
    from .core import Idempotency

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
        """The body as JSON (None if empty); MalformedPayload (a ValueError too) for bad JSON, bad UTF-8 or
        nesting too deep to read."""
        return loads(self.body, "the request body") if self.body else None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def replayed(self) -> bool:
        return bool(header_value(self.headers, REPLAYED_HEADER) == "true")

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


def parse_sf_string(value: str, *, name: str = KEY_HEADER) -> str:
    """An RFC 8941 sf-string (``"..."``: printable ASCII, only ``\\"`` and ``\\\\`` escaped), as the IETF
    Idempotency-Key draft defines the header; InvalidKey says what is wrong."""
    text = value.strip(" \t")
    if len(text) < 2 or text[0] != '"':
        raise InvalidKey(f'{name} must be a structured-field string: "..." in double quotes')
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in '"\\':
                raise InvalidKey(f'{name}: a backslash may only escape " or \\ (position {i})')
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            if i != len(text) - 1:
                raise InvalidKey(f"{name} has characters after its closing quote (one key per request)")
            return "".join(out)
        if not 0x20 <= ord(c) <= 0x7E:
            raise InvalidKey(f"{name} may hold only printable ASCII (found {c!r} at position {i})")
        out.append(c)
        i += 1
    raise InvalidKey(f"{name} has no closing double quote")


def _read_key(headers: Mapping[str, Any], name: str, max_length: int) -> str | None:
    """The key from the header: an RFC 8941 sf-string (the draft's form); a bare value of visible ASCII without
    quotes, commas or backslashes is also accepted (many clients, and EventBridge API destinations, send one)."""
    raw = header_value(headers, name)
    if isinstance(raw, (list, tuple)):
        if len(raw) != 1:
            raise InvalidKey(f"send exactly one {name} header (got {len(raw)})")
        raw = raw[0]
    if raw is None:
        return None
    text = str(raw).strip(" \t")
    if text.startswith('"'):
        text = parse_sf_string(text, name=name)
    elif any(not 0x21 <= ord(c) <= 0x7E or c in '",\\' for c in text):
        raise InvalidKey(
            f'{name} must be a structured-field string ("...", printable ASCII) or one bare token of visible ASCII '
            "without quotes, commas or backslashes"
        )
    return validate_token(text, max_length=max_length, source=f"header {name}")


def _content(headers: Mapping[str, Any], body: bytes) -> Any:
    if not body:
        return None
    ctype = str(header_value(headers, "Content-Type") or "").lower()
    looks_json = body.lstrip()[:1] in (b"{", b"[")
    if "json" in ctype or (not ctype and looks_json):
        try:
            return {"json": loads(body, "the body")}
        except MalformedPayload as exc:
            if "json" in ctype:
                raise MalformedPayload(f"{exc}; it is declared as JSON") from None
    return {"sha256": hashlib.sha256(body).hexdigest()}


def _terminal(exc: TerminalError) -> HttpResponse:
    """The answer to a terminal error: the same status, code and message on the first answer and every replay."""
    extra = {REPLAYED_HEADER: "true"} if exc.replayed else {}
    return problem(exc.http_status, exc.code, "Request failed", exc.message, extra)


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
    request, handler or store problems (they become 4xx/5xx responses); a SimulatedCrash still propagates."""
    try:
        return _handle(idem, method, path, headers, body, handler, key_header, require_key, methods, worker, wait)
    except Exception as exc:  # the promise: a response, whatever the request held
        return problem(500, "internal_error", "Internal error", f"{type(exc).__name__} while serving {method} {path}")


def _handle(
    idem: Idempotency,
    method: str,
    path: str,
    headers: Mapping[str, Any] | None,
    body: bytes | str | None,
    handler: Callable[[HttpRequest], Any],
    key_header: str,
    require_key: bool,
    methods: tuple[str, ...],
    worker: str | None,
    wait: WaitPolicy | bool | None,
) -> HttpResponse:
    headers = dict(headers or {})
    try:
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    except UnicodeEncodeError:
        return problem(400, "malformed_body", "Bad request", "the body is text that has no UTF-8 form")
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
    except (InvalidKey, MalformedPayload, PayloadNotSerializable) as exc:
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
        return _terminal(exc)
    except (StoreUnavailable, LeaseLost) as exc:
        return problem(
            503,
            "idempotency_store_unavailable" if isinstance(exc, StoreUnavailable) else "lease_lost",
            "Try again with the same Idempotency-Key",
            str(exc),
            {"Retry-After": "1"},
        )
    except (InvalidKey, MalformedPayload, PayloadNotSerializable) as exc:
        return problem(400, "malformed_body", "Bad request", str(exc))
    except ResponseNotStorable as exc:  # stored as FAILED: the replay answers the same status
        return _terminal(TerminalError(str(exc), code="response_not_storable", http_status=500))
    except IdempotencyError as exc:
        return problem(exc.http_status, type(exc).__name__, "Idempotency error", str(exc))
    except Exception as exc:
        state = getattr(exc, "idempotency_state", None)
        if state == Status.FAILED.value:  # a class listed in terminal_errors: stored, answered as its replays are
            return _terminal(TerminalError.from_exception(exc))
        if state == ABSENT:
            fate = "its key was released; retry with the same " + key_header
        else:
            fate = f"its key could not be released: it is locked until its lease ends; then retry with {key_header}"
        detail = f"{type(exc).__name__}: the request was not completed and {fate}."
        return problem(500, "internal_error", "Internal error", detail)
    response = HttpResponse._from_stored(outcome.value)
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
