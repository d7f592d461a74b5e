"""The HTTP request EventBridge sends for an event, one call to the endpoint, and which answers it retries."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.services.delivery.jsonpath import MISSING, jsonpath, resolve_value
from helpers.services.delivery.target import DeliveryTarget

USER_AGENT = "Amazon/EventBridge/ApiDestinations"
CONTENT_TYPE = "application/json; charset=utf-8"
# Headers EventBridge adds to every API destination request (User Guide, "Headers in requests to API destinations").
STANDARD_HEADERS = {"Range": "bytes=0-1048575", "Accept-Encoding": "gzip,deflate", "Connection": "close"}
REQUEST_TIMEOUT_S = 5.0
RETRYABLE_4XX = frozenset({401, 407, 409, 429})
# ERROR_CODE / ERROR_MESSAGE for the three ways a call fails. The prefix and the two transport messages are those
# real DLQ records carry; the code for an HTTP error status is not documented (see the package docstring).
HTTP_ERROR_CODE = "SDK_CLIENT_ERROR"
UNREACHABLE_ERROR_CODE = "SDK_CLIENT_ERROR"
TIMEOUT_ERROR_CODE = "UNKNOWN"
MESSAGE_PREFIX = "Unable to invoke ApiDestination endpoint: "
REDACTED = "<redacted>"


def is_retryable(status: int | None) -> bool:
    """True for what EventBridge retries: no response (timeout, refused), 401, 407, 409, 429 and every 5xx."""
    return status is None or status >= 500 or status in RETRYABLE_4XX


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    secret_headers: frozenset[str] = frozenset()

    def redacted_headers(self) -> dict[str, str]:
        return {k: (REDACTED if k.lower() in self.secret_headers else v) for k, v in self.headers.items()}


def build_request(target: DeliveryTarget, event: Mapping[str, Any]) -> Request:
    """The HTTP request EventBridge would send for this event (step 2 in the docstring of helpers.services.delivery)."""
    if target.input is not None:
        body = target.input.encode()
    else:
        selected = event if target.input_path is None else jsonpath(event, target.input_path)
        body = json.dumps(None if selected is MISSING else selected, separators=(",", ":")).encode()
    url = target.endpoint
    for value in target.path_parameter_values:
        resolved = resolve_value(value, event)
        if "*" in url:
            url = url.replace("*", urllib.parse.quote(resolved or "", safe=""), 1)
    headers: dict[str, str] = {}
    for name, template in target.header_parameters.items():
        resolved = resolve_value(template, event)
        if resolved is not None:
            headers[name] = resolved
    query: dict[str, str] = {}
    for name, template in target.query_string_parameters.items():
        resolved = resolve_value(template, event)
        if resolved is not None:
            query[name] = resolved
    # The connection's parameters take precedence over the target's (API reference, HttpParameters).
    for name, value in target.auth.headers:
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    query.update(dict(target.auth.query))
    headers.setdefault("Content-Type", CONTENT_TYPE)
    for name in [k for k in headers if k.lower() in {"user-agent", *(h.lower() for h in STANDARD_HEADERS)}]:
        del headers[name]  # EventBridge removes these and sets its own
    headers["User-Agent"] = USER_AGENT
    headers.update(STANDARD_HEADERS)
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    return Request(target.http_method, url, headers, body, target.auth.secret_headers)


@dataclass(frozen=True)
class Response:
    status: int | None
    retry_after: float | None = None
    error_code: str = ""
    error_message: str = ""


def send(request: Request, timeout: float = REQUEST_TIMEOUT_S) -> Response:
    """One HTTP call, redirects not followed (a 3xx is a failure that is not retried, like any non-2xx)."""
    parts = urllib.parse.urlsplit(request.url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = conn_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request(request.method, path, body=request.body, headers=request.headers)
        raw = connection.getresponse()
        raw.read()
        status = raw.status
        retry_after = _retry_after(raw.getheader("Retry-After"))
    except TimeoutError:
        return Response(
            None, None, TIMEOUT_ERROR_CODE, MESSAGE_PREFIX + "Timeout calling endpoint for API Destination."
        )
    except OSError:
        return Response(
            None, None, UNREACHABLE_ERROR_CODE, MESSAGE_PREFIX + "API destination endpoint cannot be reached."
        )
    finally:
        connection.close()
    if 200 <= status < 300:
        return Response(status, retry_after)
    reason = http.client.responses.get(status, "")
    message = f"{MESSAGE_PREFIX}The endpoint responded with HTTP {status} {reason}".rstrip() + "."
    return Response(status, retry_after, HTTP_ERROR_CODE, message)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
