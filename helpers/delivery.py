"""EventBridge API destination delivery that behaves like AWS where the emulator does not.

Who does what
-------------
**AWS EventBridge**, for a rule whose target is an API destination, does all of this itself:

1. matches the event against the rule's pattern;
2. builds the request: the event as a JSON body; the target's ``HttpParameters`` (``HeaderParameters``,
   ``QueryStringParameters``, ``PathParameterValues``), each value either static or a JSONPath such as
   ``$.detail.customID``; the connection's authorization (API key or basic auth, read from the connection's
   Secrets Manager secret) and the connection's own ``InvocationHttpParameters``, which win over the target's;
3. sends it no faster than the destination's ``InvocationRateLimitPerSecond``, with a 5 s timeout;
4. retries 401, 407, 409, 429, 5xx and timeouts with exponential backoff and jitter, honouring ``Retry-After``,
   until the target's ``RetryPolicy`` (``MaximumRetryAttempts``, ``MaximumEventAgeInSeconds``) runs out; other
   statuses (1xx, 2xx, 3xx and the remaining 4xx) are not retried;
5. puts what failed on the target's ``DeadLetterConfig`` queue: the event as the body and the message attributes
   ``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``
   (``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds``, only when a retry limit ended the delivery) and
   ``RETRY_ATTEMPTS``.

Sources: EventBridge User Guide, "API destinations as targets" (headers, 5 s timeout, error codes: the current page
lists 401, 407, 409, 429 and 5xx as retried; older versions listed only 429 and 5xx) and "Using dead-letter queues
to process undelivered events" (attribute names); API reference ``HttpParameters`` (connection values take
precedence). The ``ERROR_CODE`` / ``ERROR_MESSAGE`` pairs for an unreachable endpoint (``SDK_CLIENT_ERROR``,
"Unable to invoke ApiDestination endpoint: API destination endpoint cannot be reached.") and a timeout (``UNKNOWN``)
follow DLQ records from real accounts; which code AWS gives an HTTP error status is not documented, and this module
uses ``SDK_CLIENT_ERROR`` for it.

**The emulators** (``helpers.capabilities``: ``api_destination_http``, ``api_destination_jsonpath_headers``,
``api_destination_retries_dlq``) store all of that configuration but do not act on most of it: moto makes no call
(or, with ``MOTO_EVENTS_INVOKE_HTTP=true``, a POST without body or auth); LocalStack calls with the event and the
auth header but copies header values literally and never retries or dead-letters.

**Here**, the backend keeps doing what it does faithfully: it stores the rule, its targets, the connection and its
secret, and its own pattern matching decides which events go, because the rule gets a second target, an SQS "tap"
queue (``ensure_route``). This module does steps 2-5: :class:`ApiDestinationDispatcher` drains the tap and delivers
each event by the configuration it reads back from the backend (``ListTargetsByRule``, ``DescribeApiDestination``,
``DescribeConnection`` and ``GetSecretValue`` on the connection's ``SecretArn``), so changing the rule changes what
happens. Every attempt is recorded (``attempts``, ``frame()``, ``sequence_diagram()``); secret header values are
redacted in every record. Clock and sleep are injectable (:class:`ManualClock`) so a day of retries runs in
milliseconds, and the backoff jitter is seeded.

On LocalStack the backend's own call also reaches the endpoint (with the literal header value); only the calls
made here carry the resolved values, the retries and the DLQ.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import http.client
import itertools
import json
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from helpers import backend as backend_mod
from helpers import viz
from helpers.resources import Queue, Resources, Target

USER_AGENT = "Amazon/EventBridge/ApiDestinations"
CONTENT_TYPE = "application/json; charset=utf-8"
# Headers EventBridge adds to every API destination request (User Guide, "Headers in requests to API destinations").
STANDARD_HEADERS = {"Range": "bytes=0-1048575", "Accept-Encoding": "gzip,deflate", "Connection": "close"}
REQUEST_TIMEOUT_S = 5.0
RETRYABLE_4XX = frozenset({401, 407, 409, 429})
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE_S = 86_400
# ERROR_CODE / ERROR_MESSAGE for the three ways a call fails. The prefix and the two transport messages are those
# real DLQ records carry; the code for an HTTP error status is not documented (see the module docstring).
HTTP_ERROR_CODE = "SDK_CLIENT_ERROR"
UNREACHABLE_ERROR_CODE = "SDK_CLIENT_ERROR"
TIMEOUT_ERROR_CODE = "UNKNOWN"
_MESSAGE_PREFIX = "Unable to invoke ApiDestination endpoint: "
REDACTED = "<redacted>"


def is_retryable(status: int | None) -> bool:
    """True for what EventBridge retries: no response (timeout, refused), 401, 407, 409, 429 and every 5xx."""
    return status is None or status >= 500 or status in RETRYABLE_4XX


# -- JSONPath ---------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.([A-Za-z0-9_$@-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_MISSING = object()


def jsonpath(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$.detail.customID``, ``$.items[0].id``, ``$['odd key']``).

    Returns ``_MISSING`` when a step does not exist. Filters and wildcards are not supported: EventBridge parameter
    values name one field.
    """
    if path == "$":
        return document
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSONPath (it must start with '$')")
    position, value = 1, document
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise ValueError(f"unsupported JSONPath {path!r} at {path[position:]!r}")
        name, index, quoted1, quoted2 = match.groups()
        key: Any = int(index) if index is not None else (name or quoted1 or quoted2 or "")
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and -len(value) <= key < len(value) else _MISSING
        else:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return _MISSING
        position = match.end()
    return value


def resolve_value(template: str, event: Mapping[str, Any]) -> str | None:
    """A parameter value as EventBridge sends it: static text as is, ``$...`` looked up in the event.

    A JSONPath that finds nothing gives ``None`` (the parameter is left out: AWS does not document this case).
    Objects and arrays are sent as compact JSON, strings as they are, other scalars as JSON text (``true``, ``12``).
    """
    if not template.startswith("$"):
        return template
    value = jsonpath(event, template)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


# -- time -------------------------------------------------------------------------------------------------------
class ManualClock:
    """A clock for tests and notebooks: ``sleep`` moves time forward at once and remembers each sleep."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


class TokenBucket:
    """At most ``rate_per_second`` requests per second: ``burst`` tokens, refilled continuously.

    With the default ``burst=1`` requests are spaced ``1/rate`` seconds apart, so no one-second window ever holds
    more than ``rate`` of them. ``acquire`` sleeps (through the injected ``sleep``) until a token is free and
    returns how long it waited.
    """

    def __init__(
        self,
        rate_per_second: float | None,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive (or None for no limit)")
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = float(self.burst)
        self.updated = clock()

    def wait_needed(self) -> float:
        """How long ``acquire`` would wait now (without taking a token)."""
        if self.rate is None:
            return 0.0
        tokens = min(self.burst, self.tokens + (self.clock() - self.updated) * self.rate)
        return 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate

    def acquire(self) -> float:
        if self.rate is None:
            return 0.0
        waited = 0.0
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1 - 1e-9:
                self.tokens -= 1
                return waited
            pause = (1 - self.tokens) / self.rate
            self.sleep(pause)
            waited += pause


# -- configuration read back from the backend --------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """A target's RetryPolicy; AWS's defaults are 185 retries and 24 hours."""

    maximum_retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = DEFAULT_EVENT_AGE_S

    def as_api(self) -> dict[str, int]:
        return {
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": self.maximum_event_age_seconds,
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> RetryPolicy:
        data = data or {}
        return cls(
            int(data.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
            int(data.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE_S)),
        )


@dataclass(frozen=True)
class ConnectionAuth:
    """What a connection adds to every request. Secret values never appear in ``repr`` or in records."""

    authorization_type: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret_headers: frozenset[str] = frozenset()
    secret_query: frozenset[str] = frozenset()

    @classmethod
    def from_secret(cls, authorization_type: str, secret: Mapping[str, Any]) -> ConnectionAuth:
        """Build from the connection's secret (AWS and moto store it with snake_case keys; CamelCase accepted)."""
        s = {_snake(k): v for k, v in secret.items()}
        headers: list[tuple[str, str]] = []
        secret_headers: set[str] = set()
        secret_query: set[str] = set()
        if authorization_type == "API_KEY":
            name, value = s.get("api_key_name"), s.get("api_key_value")
            if not name or value is None:
                raise ValueError("the connection's secret has no api_key_name / api_key_value")
            headers.append((str(name), str(value)))
            secret_headers.add(str(name).lower())
        elif authorization_type == "BASIC":
            user, password = s.get("username"), s.get("password")
            if user is None or password is None:
                raise ValueError("the connection's secret has no username / password")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
            secret_headers.add("authorization")
        else:
            raise NotImplementedError(
                f"connection authorization {authorization_type!r} is not delivered here (API_KEY and BASIC are); "
                "OAuth needs a token endpoint the course does not run"
            )
        extra = s.get("invocation_http_parameters") or {}
        extra = {_snake(k): v for k, v in extra.items()}
        if extra.get("body_parameters"):
            raise NotImplementedError("connection BodyParameters are not delivered here; use header or query values")
        query: list[tuple[str, str]] = []
        for kind, target, secrets_set in (("header", headers, secret_headers), ("query_string", query, secret_query)):
            for p in extra.get(f"{kind}_parameters") or []:
                p = {_snake(k): v for k, v in p.items()}
                target.append((str(p["key"]), str(p.get("value", ""))))
                if p.get("is_value_secret"):
                    secrets_set.add(str(p["key"]).lower())
        return cls(authorization_type, tuple(headers), tuple(query), frozenset(secret_headers), frozenset(secret_query))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if any(c.isupper() for c in name) else name


@dataclass(frozen=True)
class DeliveryTarget:
    """One rule target of type API destination, as the backend describes it."""

    rule_arn: str
    rule_name: str
    bus_name: str
    target_id: str
    target_arn: str
    endpoint: str
    http_method: str
    rate_limit_per_second: int | None
    header_parameters: dict[str, str]
    query_string_parameters: dict[str, str]
    path_parameter_values: tuple[str, ...]
    retry_policy: RetryPolicy
    dead_letter_arn: str | None
    input: str | None = None
    input_path: str | None = None
    auth: ConnectionAuth = field(default=ConnectionAuth("NONE"), repr=False)

    def summary(self) -> dict[str, Any]:
        """The configuration a notebook shows: everything but the secret and the volatile ARNs."""
        return {
            "method": self.http_method,
            "endpoint path": urllib.parse.urlsplit(self.endpoint).path,
            "rate limit / s": self.rate_limit_per_second,
            "headers": dict(self.header_parameters),
            "query": dict(self.query_string_parameters),
            "path values": list(self.path_parameter_values),
            "auth": self.auth.authorization_type,
            "max retries": self.retry_policy.maximum_retry_attempts,
            "max event age s": self.retry_policy.maximum_event_age_seconds,
            "dead-letter queue": (self.dead_letter_arn or "").rsplit(":", 1)[-1] or None,
        }


def _name_from_arn(arn: str, kind: str) -> str:
    # arn:aws:events:region:account:api-destination/<name>/<uuid>  or  connection/<name>/<uuid>
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != kind:
        raise ValueError(f"{arn!r} is not an EventBridge {kind} ARN")
    return parts[1]


def read_delivery_target(
    backend: backend_mod.Backend, *, rule: str, bus: str, target_id: str | None = None
) -> DeliveryTarget:
    """Read a rule's API destination target back from the backend, with its destination and connection."""
    events = backend.client("events")
    bus_name = bus.rsplit("/", 1)[-1]
    rule_arn = events.describe_rule(Name=rule, EventBusName=bus_name)["Arn"]
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus_name)["Targets"]
    candidates = [t for t in targets if ":api-destination/" in t["Arn"] and target_id in (None, t["Id"])]
    if len(candidates) != 1:
        found = ", ".join(t["Id"] for t in targets) or "none"
        raise LookupError(f"rule {rule!r} needs exactly one API destination target (id {target_id}); has: {found}")
    target = candidates[0]
    if target.get("InputTransformer"):
        raise NotImplementedError("InputTransformer on an API destination target is not delivered here")
    destination = events.describe_api_destination(Name=_name_from_arn(target["Arn"], "api-destination"))
    connection = events.describe_connection(Name=_name_from_arn(destination["ConnectionArn"], "connection"))
    auth = ConnectionAuth("NONE")
    if connection.get("SecretArn"):
        secret = backend.client("secretsmanager").get_secret_value(SecretId=connection["SecretArn"])
        auth = ConnectionAuth.from_secret(connection["AuthorizationType"], json.loads(secret["SecretString"]))
    http = target.get("HttpParameters") or {}
    rate = destination.get("InvocationRateLimitPerSecond")
    return DeliveryTarget(
        rule_arn=rule_arn,
        rule_name=rule,
        bus_name=bus_name,
        target_id=target["Id"],
        target_arn=target["Arn"],
        endpoint=destination["InvocationEndpoint"],
        http_method=destination.get("HttpMethod", "POST"),
        rate_limit_per_second=int(rate) if rate else None,
        header_parameters=dict(http.get("HeaderParameters") or {}),
        query_string_parameters=dict(http.get("QueryStringParameters") or {}),
        path_parameter_values=tuple(http.get("PathParameterValues") or ()),
        retry_policy=RetryPolicy.from_api(target.get("RetryPolicy")),
        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
        input=target.get("Input"),
        input_path=target.get("InputPath"),
        auth=auth,
    )


# -- requests ----------------------------------------------------------------------------------------------------
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
    """The HTTP request EventBridge would send for this event (AWS steps 2 above)."""
    if target.input is not None:
        body = target.input.encode()
    else:
        selected = event if target.input_path is None else jsonpath(event, target.input_path)
        body = json.dumps(None if selected is _MISSING else selected, separators=(",", ":")).encode()
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
            None, None, TIMEOUT_ERROR_CODE, _MESSAGE_PREFIX + "Timeout calling endpoint for API Destination."
        )
    except OSError:
        return Response(
            None, None, UNREACHABLE_ERROR_CODE, _MESSAGE_PREFIX + "API destination endpoint cannot be reached."
        )
    finally:
        connection.close()
    if 200 <= status < 300:
        return Response(status, retry_after)
    reason = http.client.responses.get(status, "")
    message = f"{_MESSAGE_PREFIX}The endpoint responded with HTTP {status} {reason}".rstrip() + "."
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


# -- records -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One HTTP call, as a row for tables and sequence diagrams (times in seconds on the dispatcher's clock)."""

    event_id: str
    attempt: int
    at: float
    rate_wait: float
    method: str
    url: str
    headers: dict[str, str]
    status: int | None
    outcome: str  # delivered | retry | dead-lettered | dropped
    retry_in: float | None = None
    error_code: str = ""


@dataclass(frozen=True)
class Delivery:
    """What became of one event: delivered, dead-lettered (sent to the target's DLQ) or dropped (no DLQ)."""

    event_id: str
    outcome: str
    attempts: int
    status: int | None
    error_code: str = ""
    error_message: str = ""
    exhausted_retry_condition: str = ""
    dlq_attributes: dict[str, str] = field(default_factory=dict)

    @property
    def retry_attempts(self) -> int:
        return max(0, self.attempts - 1)


@dataclass
class _Pending:
    event: dict[str, Any]
    received: float
    receipt: str | None
    attempts: int = 0


# -- the dispatcher ----------------------------------------------------------------------------------------------
class ApiDestinationDispatcher:
    """Deliver what the rule matched (drained from its tap queue) the way EventBridge delivers to an API destination.

    Events are scheduled on one timeline: a retry waits its backoff without holding up other events, the rate limit
    spaces every call (retries included), and the event's age counts from when the dispatcher took it from the tap.
    ``backoff_base`` / ``backoff_cap`` set the exponential backoff (full jitter, seeded by ``seed``); AWS does not
    publish its own, so notebooks keep these small or use a :class:`ManualClock`.
    """

    def __init__(
        self,
        backend: backend_mod.Backend,
        *,
        rule: str,
        bus: str,
        tap_url: str | None = None,
        target_id: str | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        seed: int = 0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        timeout: float = REQUEST_TIMEOUT_S,
        sender: Callable[[Request, float], Response] = send,
    ) -> None:
        self.backend = backend
        self.rule, self.bus, self.tap_url, self.target_id = rule, bus, tap_url, target_id
        if isinstance(clock, ManualClock) and sleep is None:
            sleep = clock.sleep
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.random = random.Random(seed)
        self.backoff_base, self.backoff_cap, self.timeout = backoff_base, backoff_cap, timeout
        self.sender = sender
        self.started = self.clock()
        self.attempts: list[Attempt] = []
        self.deliveries: list[Delivery] = []
        self._order = itertools.count()
        self.target = self.refresh()

    @classmethod
    def for_route(cls, backend: backend_mod.Backend, route: Route, **kwargs: Any) -> ApiDestinationDispatcher:
        return cls(
            backend,
            rule=route.rule_name,
            bus=route.bus_name,
            tap_url=route.tap.url if route.tap else None,
            target_id=route.target_id,
            **kwargs,
        )

    def refresh(self) -> DeliveryTarget:
        """Re-read the target's configuration from the backend (after ``put_targets`` changed it)."""
        self.target = read_delivery_target(self.backend, rule=self.rule, bus=self.bus, target_id=self.target_id)
        self._bucket = TokenBucket(self.target.rate_limit_per_second, clock=self.clock, sleep=self.sleep)
        return self.target

    # -- intake ---------------------------------------------------------------------------------------------------
    def drain(self, *, wait_seconds: int = 1, visibility_timeout: int = 300) -> list[Delivery]:
        """Take every event the rule routed to the tap so far and deliver it; returns what became of each."""
        if not self.tap_url:
            raise ValueError("this dispatcher has no tap queue; use deliver(events) or ensure_route(..., tap=True)")
        sqs = self.backend.client("sqs")
        pending: dict[str, _Pending] = {}
        wait = wait_seconds
        while True:
            got = sqs.receive_message(
                QueueUrl=self.tap_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait,
                VisibilityTimeout=visibility_timeout,
            ).get("Messages", [])
            if not got:
                break
            wait = 0
            for message in got:
                event = json.loads(message["Body"])
                event_id = str(event.get("id", message["MessageId"]))
                if event_id in pending:  # redelivered by the tap while we hold it: one event, one delivery
                    sqs.delete_message(QueueUrl=self.tap_url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                pending[event_id] = _Pending(event, self.clock(), message["ReceiptHandle"])
        return self._run(list(pending.values()))

    def deliver(self, events: Iterable[Mapping[str, Any]]) -> list[Delivery]:
        """Deliver events given directly (no tap): for tests and for showing one event's fate."""
        now = self.clock()
        return self._run([_Pending(dict(e), now, None) for e in events])

    # -- the timeline ---------------------------------------------------------------------------------------------
    def _run(self, pending: list[_Pending]) -> list[Delivery]:
        heap: list[tuple[float, int, _Pending]] = [(p.received, next(self._order), p) for p in pending]
        heapq.heapify(heap)
        results: list[Delivery] = []
        policy = self.target.retry_policy
        while heap:
            due, _, item = heapq.heappop(heap)
            now = self.clock()
            if due > now:
                self.sleep(due - now)
            event_id = str(item.event.get("id", "?"))
            if self.clock() + self._bucket.wait_needed() - item.received > policy.maximum_event_age_seconds:
                # Too old by the time the rate limit lets it go (a backlog): AWS gives up on it too.
                results.append(self._give_up(item, None, "MaximumEventAgeInSeconds", last=self._last(event_id)))
                continue
            rate_wait = self._bucket.acquire()
            item.attempts += 1
            request = build_request(self.target, item.event)
            at = self.clock() - self.started
            response = self.sender(request, self.timeout)
            record = dict(
                event_id=event_id,
                attempt=item.attempts,
                at=round(at, 3),
                rate_wait=round(rate_wait, 3),
                method=request.method,
                url=request.url,
                headers=request.redacted_headers(),
                status=response.status,
                error_code=response.error_code,
            )
            if response.status is not None and 200 <= response.status < 300:
                self.attempts.append(Attempt(**record, outcome="delivered"))
                results.append(self._finish(item, Delivery(event_id, "delivered", item.attempts, response.status)))
                continue
            retries_done = item.attempts - 1
            if not is_retryable(response.status):
                results.append(self._give_up(item, response, "", record=record))
                continue
            if response.retry_after is not None and response.retry_after < 0:
                results.append(self._give_up(item, response, "", record=record))
                continue
            if retries_done >= policy.maximum_retry_attempts:
                results.append(self._give_up(item, response, "MaximumRetryAttempts", record=record))
                continue
            delay = self._backoff(retries_done + 1)
            if response.retry_after is not None:
                delay = max(delay, response.retry_after)  # "the more conservative value"
            if self.clock() + delay - item.received > policy.maximum_event_age_seconds:
                results.append(self._give_up(item, response, "MaximumEventAgeInSeconds", record=record))
                continue
            self.attempts.append(Attempt(**record, outcome="retry", retry_in=round(delay, 3)))
            heapq.heappush(heap, (self.clock() + delay, next(self._order), item))
        return results

    def _backoff(self, retry_number: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (retry_number - 1))
        return round(self.random.uniform(0, ceiling), 3)  # millisecond steps: records show the exact wait

    def _last(self, event_id: str) -> Response:
        for attempt in reversed(self.attempts):
            if attempt.event_id == event_id:
                return Response(attempt.status, None, attempt.error_code, "")
        return Response(None)

    def _give_up(
        self,
        item: _Pending,
        response: Response | None,
        exhausted: str,
        *,
        record: dict[str, Any] | None = None,
        last: Response | None = None,
    ) -> Delivery:
        response = response or last or Response(None)
        event_id = str(item.event.get("id", "?"))
        code = response.error_code or "UNKNOWN"
        message = response.error_message or (
            _MESSAGE_PREFIX + f"The event is older than MaximumEventAgeInSeconds "
            f"({self.target.retry_policy.maximum_event_age_seconds} s)."
        )
        attributes = {
            "RULE_ARN": self.target.rule_arn,
            "TARGET_ARN": self.target.target_arn,
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "RETRY_ATTEMPTS": str(max(0, item.attempts - 1)),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        outcome = "dead-lettered" if self.target.dead_letter_arn else "dropped"
        if record is not None:
            self.attempts.append(Attempt(**record, outcome=outcome))
        if self.target.dead_letter_arn:
            self._send_to_dlq(item.event, attributes)
        delivery = Delivery(
            event_id,
            outcome,
            item.attempts,
            response.status,
            code,
            message,
            exhausted,
            attributes if outcome == "dead-lettered" else {},
        )
        return self._finish(item, delivery)

    def _send_to_dlq(self, event: Mapping[str, Any], attributes: dict[str, str]) -> None:
        sqs = self.backend.client("sqs")
        arn = self.target.dead_letter_arn or ""
        _, _, _, _, account, name = arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    def _finish(self, item: _Pending, delivery: Delivery) -> Delivery:
        if item.receipt and self.tap_url:
            # A receipt that expired (the tap's visibility timeout ran out) fails; the event was handled here anyway.
            with contextlib.suppress(ClientError):
                self.backend.client("sqs").delete_message(QueueUrl=self.tap_url, ReceiptHandle=item.receipt)
        self.deliveries.append(delivery)
        return delivery

    # -- views ----------------------------------------------------------------------------------------------------
    def frame(self, *, columns: Iterable[str] | None = None) -> Any:
        """Every attempt as a pandas DataFrame (headers flattened into ``header:<name>`` columns)."""
        import pandas as pd

        rows = []
        for a in self.attempts:
            row = {k: v for k, v in a.__dict__.items() if k != "headers"}
            row["path"] = urllib.parse.urlsplit(a.url).path
            row["query"] = urllib.parse.urlsplit(a.url).query
            standard = {"User-Agent", "Content-Type", *STANDARD_HEADERS}
            row.update({f"header:{k}": v for k, v in a.headers.items() if k not in standard})
            rows.append(row)
        frame = pd.DataFrame(rows)
        if columns is not None and not frame.empty:
            frame = frame[[c for c in columns if c in frame.columns]]
        return frame

    def sequence_diagram(self, *, label: Callable[[Attempt], str] | None = None, dlq: str = "DLQ") -> viz.Mermaid:
        """A Mermaid sequence diagram of the attempts (displays as a diagram in JupyterLab, compares as text)."""
        label = label or (lambda a: f"{a.method} {urllib.parse.urlsplit(a.url).path} (event {a.event_id[:8]})")
        lines = ["sequenceDiagram", "    participant EB as EventBridge delivery", "    participant API as HTTP API"]
        if any(a.outcome == "dead-lettered" for a in self.attempts) or any(
            d.outcome == "dead-lettered" for d in self.deliveries
        ):
            lines.append(f"    participant Q as {dlq}")
        for a in self.attempts:
            if a.rate_wait > 0:
                lines.append(f"    Note over EB: rate limit: wait {a.rate_wait:g} s")
            lines.append(f"    EB->>API: {label(a)} attempt {a.attempt}")
            lines.append(f"    API-->>EB: {a.status if a.status is not None else a.error_code}")
            if a.outcome == "retry":
                lines.append(f"    Note over EB: backoff {a.retry_in:g} s")
            elif a.outcome == "dead-lettered":
                lines.append(f"    EB->>Q: event {a.event_id[:8]} + error attributes")
        shown = {a.event_id for a in self.attempts if a.outcome == "dead-lettered"}
        for d in self.deliveries:
            if d.outcome == "dead-lettered" and d.event_id not in shown:
                lines.append(f"    Note over EB: event {d.event_id[:8]} older than MaximumEventAgeInSeconds")
                lines.append(f"    EB->>Q: event {d.event_id[:8]} + error attributes")
        return viz.Mermaid("\n".join(lines))


# -- setup: connection, destination, rule with its tap -------------------------------------------------------------
def needs_dispatcher(backend: backend_mod.Backend) -> bool:
    """True where the backend's own API destination delivery is not faithful, so this module delivers."""
    return not all(
        backend.supports(c)
        for c in ("api_destination_http", "api_destination_jsonpath_headers", "api_destination_retries_dlq")
    )


def ensure_connection(
    resources: Resources,
    name: str,
    *,
    api_key: tuple[str, str] | None = None,
    basic: tuple[str, str] | None = None,
    invocation_headers: Mapping[str, str] | None = None,
) -> str:
    """A connection with API-key (``(header, value)``) or basic (``(user, password)``) auth; returns its ARN.

    Generate the secret at run time (``secrets.token_urlsafe``): EventBridge stores it in Secrets Manager and
    DescribeConnection never returns it. moto's UpdateConnection does not rewrite the secret, so an existing
    connection whose secret differs is deleted and created again.
    """
    if (api_key is None) == (basic is None):
        raise ValueError("give exactly one of api_key=(header, value) or basic=(user, password)")
    events = resources.backend.client("events")
    full = resources.name(name)
    if api_key is not None:
        kind = "API_KEY"
        params: dict[str, Any] = {"ApiKeyAuthParameters": {"ApiKeyName": api_key[0], "ApiKeyValue": api_key[1]}}
    else:
        kind = "BASIC"
        params = {"BasicAuthParameters": {"Username": basic[0], "Password": basic[1]}}  # type: ignore[index]
    if invocation_headers:
        params["InvocationHttpParameters"] = {
            "HeaderParameters": [{"Key": k, "Value": v, "IsValueSecret": False} for k, v in invocation_headers.items()]
        }
    try:
        current = events.describe_connection(Name=full)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    else:
        secret = resources.backend.client("secretsmanager").get_secret_value(SecretId=current["SecretArn"])
        wanted = ConnectionAuth.from_secret(kind, _secret_shape(params))
        have = (
            ConnectionAuth.from_secret(current["AuthorizationType"], json.loads(secret["SecretString"]))
            if current["AuthorizationType"] == kind
            else None
        )
        if have == wanted:
            return current["ConnectionArn"]
        events.delete_connection(Name=full)
    return events.create_connection(Name=full, AuthorizationType=kind, AuthParameters=params)["ConnectionArn"]


def _secret_shape(params: Mapping[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for key, value in params.items():
        if key == "InvocationHttpParameters":
            shape["invocation_http_parameters"] = value
        else:
            shape.update({_snake(k): v for k, v in value.items()})
    return shape


def ensure_api_destination(
    resources: Resources,
    name: str,
    *,
    connection_arn: str,
    endpoint: str,
    method: str = "POST",
    rate_limit_per_second: int | None = None,
) -> str:
    """An API destination with exactly these settings; returns its ARN."""
    events = resources.backend.client("events")
    full = resources.name(name)
    wanted: dict[str, Any] = {"ConnectionArn": connection_arn, "InvocationEndpoint": endpoint, "HttpMethod": method}
    if rate_limit_per_second is not None:
        wanted["InvocationRateLimitPerSecond"] = rate_limit_per_second
    try:
        current = events.describe_api_destination(Name=full)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        return events.create_api_destination(Name=full, **wanted)["ApiDestinationArn"]
    if any(current.get(k) != v for k, v in wanted.items()):
        events.update_api_destination(Name=full, **wanted)
    return current["ApiDestinationArn"]


@dataclass(frozen=True)
class Route:
    """A rule that sends matched events to an API destination (and, where needed, to the dispatcher's tap)."""

    rule_name: str
    rule_arn: str
    bus_name: str
    target_id: str
    api_destination_arn: str
    dead_letter_queue: Queue | None
    tap: Queue | None


def ensure_route(
    resources: Resources,
    name: str,
    *,
    bus: str,
    pattern: dict[str, Any],
    api_destination_arn: str,
    header_parameters: Mapping[str, str] | None = None,
    query_string_parameters: Mapping[str, str] | None = None,
    path_parameter_values: Iterable[str] | None = None,
    retry_policy: RetryPolicy | None = None,
    dead_letter_queue: Queue | None = None,
    tap: bool | None = None,
) -> Route:
    """A rule on ``bus`` with the API destination target configured as on AWS, plus the tap where needed.

    ``tap=None`` adds the tap queue only when the backend needs the dispatcher (``needs_dispatcher``).
    """
    http: dict[str, Any] = {}
    if header_parameters:
        http["HeaderParameters"] = dict(header_parameters)
    if query_string_parameters:
        http["QueryStringParameters"] = dict(query_string_parameters)
    if path_parameter_values:
        http["PathParameterValues"] = list(path_parameter_values)
    extra: dict[str, Any] = {"RoleArn": resources.ensure_role()}
    if http:
        extra["HttpParameters"] = http
    if retry_policy is not None:
        extra["RetryPolicy"] = retry_policy.as_api()
    if dead_letter_queue is not None:
        extra["DeadLetterConfig"] = {"Arn": dead_letter_queue.arn}
    targets = [Target("api-destination", api_destination_arn, extra)]
    tap_queue = None
    if tap or (tap is None and needs_dispatcher(resources.backend)):
        tap_queue = resources.ensure_queue(f"{name}-tap")
        targets.append(Target("dispatcher-tap", tap_queue.arn))
    rule_arn = resources.ensure_rule(name, bus=bus, pattern=pattern, targets=targets)
    if tap_queue is not None:
        resources.allow_send_from(tap_queue, rule_arn, "events.amazonaws.com")
    if dead_letter_queue is not None:
        resources.allow_send_from(dead_letter_queue, rule_arn, "events.amazonaws.com")
    return Route(
        resources.name(name),
        rule_arn,
        bus.rsplit("/", 1)[-1],
        "api-destination",
        api_destination_arn,
        dead_letter_queue,
        tap_queue,
    )


def read_dead_letters(backend: backend_mod.Backend, queue: Queue, *, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Receive and delete everything on a DLQ: ``{"event": ..., "attributes": {...}}`` per message."""
    sqs = backend.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return found
        wait_seconds = 0
        for message in got:
            attributes = {k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()}
            found.append({"event": json.loads(message["Body"]), "attributes": attributes})
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
