"""API destination delivery (helpers.services.delivery) against a local HTTP server and the embedded backend."""

from __future__ import annotations

import json
import secrets
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.aws.resources import Resources
from helpers.services import delivery as dl

PREFIX = "tdel"


class _Handler(BaseHTTPRequestHandler):
    server: _ScriptedServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            script = self.server.scripts.get(path.rsplit("/", 1)[0]) or self.server.scripts.get(path)
            status, headers = script.popleft() if script else (200, {})
            if script is not None and not script and self.server.repeat_last.get(path.rsplit("/", 1)[0]):
                script.append((status, headers))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_GET = _serve

    def log_message(self, *args: object) -> None:  # keep stderr quiet
        pass


class _ScriptedServer(ThreadingHTTPServer):
    """Answers each path prefix from a script of (status, headers); 200 once a script runs out."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.scripts: dict[str, deque] = defaultdict(deque)
        self.repeat_last: dict[str, bool] = {}

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, prefix: str, *responses: int | tuple[int, dict], repeat_last: bool = False) -> None:
        self.scripts[prefix] = deque(r if isinstance(r, tuple) else (r, {}) for r in responses)
        self.repeat_last[prefix] = repeat_last

    def to(self, prefix: str) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith(prefix)]


@pytest.fixture(scope="module")
def server():
    srv = _ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def env(backend, server):
    res = Resources(PREFIX, backend)
    res.teardown()
    key = secrets.token_urlsafe(24)
    conn = dl.ensure_connection(res, "conn", api_key=("x-api-key", key))
    bus = res.ensure_bus("bus")
    yield {"res": res, "key": key, "conn": conn, "bus": bus, "backend": backend}
    res.teardown()


def _route(
    env, name, endpoint, *, rate=None, retry=None, dlq=True, headers=None, query=None, path=None, conn=None, **options
):
    res = env["res"]
    dest = res.ensure_api_destination(
        f"{name}-dest", connection_arn=conn or env["conn"], endpoint=endpoint, rate_limit_per_second=rate
    )
    queue = res.ensure_queue(f"{name}-dlq") if dlq else None
    return dl.ensure_route(
        res,
        name,
        bus=env["bus"],
        pattern={"source": ["com.orders"], "detail-type": ["OrderCreated"]},
        api_destination_arn=dest,
        header_parameters=headers if headers is not None else {"Idempotency-Key": "$.detail.customID"},
        query_string_parameters=query,
        path_parameter_values=path,
        retry_policy=retry,
        dead_letter_queue=queue,
        tap=True,
        **options,
    )


def _event(n: int, **detail) -> dict:
    return {
        "id": f"evt-{n:04d}",
        "source": "com.orders",
        "detail-type": "OrderCreated",
        "detail": {"customID": f"key-{n}", "order_id": f"o-{n}", **detail},
    }


def _put(env, *details: dict, detail_type: str = "OrderCreated") -> None:
    events = env["backend"].client("events")
    entries = [
        {"Source": "com.orders", "DetailType": detail_type, "Detail": json.dumps(d), "EventBusName": env["bus"]}
        for d in details
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0


# -- pure functions ----------------------------------------------------------------------------------------------
def test_jsonpath_and_value_resolution():
    event = {"detail": {"customID": "abc", "n": 3, "items": [{"id": "i1"}], "odd key": True, "obj": {"a": 1}}}
    assert dl.resolve_value("$.detail.customID", event) == "abc"
    assert dl.resolve_value("$.detail.items[0].id", event) == "i1"
    assert dl.resolve_value("$.detail['odd key']", event) == "true"
    assert dl.resolve_value("$.detail.n", event) == "3"
    assert dl.resolve_value("$.detail.obj", event) == '{"a":1}'
    assert dl.resolve_value("static value", event) == "static value"
    assert dl.resolve_value("$.detail.missing", event) is None
    with pytest.raises(ValueError):
        dl.jsonpath(event, "$..customID")


def test_retryable_statuses_follow_the_eventbridge_docs():
    assert [s for s in (200, 301, 400, 401, 403, 404, 407, 409, 422, 429, 500, 503) if dl.is_retryable(s)] == [
        401,
        407,
        409,
        429,
        500,
        503,
    ]
    assert dl.is_retryable(None)  # no response: timeout or connection failure


def test_token_bucket_spaces_calls_on_a_manual_clock():
    clock = dl.ManualClock(0)  # the idempotency library's clock: sleep moves it at once
    bucket = dl.TokenBucket(4, clock=clock)
    times = []
    for _ in range(5):
        bucket.acquire()
        times.append(clock.now())
    assert times == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


def test_token_bucket_ends_on_a_clock_far_from_zero():
    """At 2e9 s a float moves in steps of ~2e-7 s: a wait shorter than that must still end, with a token taken."""
    clock = dl.ManualClock()  # starts in 2033
    bucket = dl.TokenBucket(1, clock=clock)
    bucket.tokens, bucket.updated = 1 - 5e-9, clock.now()  # just short of a token: the pause is below resolution
    assert bucket.acquire() == pytest.approx(5e-9)
    waits = [bucket.acquire() for _ in range(3)]
    assert waits == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)


# -- delivery through the real rule ------------------------------------------------------------------------------
def test_rule_matches_and_header_query_path_values_come_from_the_event(env, server):
    route = _route(
        env,
        "match",
        f"{server.base}/match/orders/*",
        query={"order": "$.detail.order_id", "channel": "web"},
        path=["$.detail.order_id"],
    )
    _put(env, {"customID": "k-1", "order_id": "o-1"}, {"customID": "k-2", "order_id": "o-2"})
    _put(env, {"customID": "k-3", "order_id": "o-3"}, detail_type="OrderShipped")  # the rule does not match
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route)
    results = dispatcher.drain()
    assert sorted(r.outcome for r in results) == ["delivered", "delivered"]
    got = sorted(server.to("/match/"), key=lambda r: r["path"])
    assert [r["path"] for r in got] == [
        "/match/orders/o-1?order=o-1&channel=web",
        "/match/orders/o-2?order=o-2&channel=web",
    ]
    assert [r["headers"]["Idempotency-Key"] for r in got] == ["k-1", "k-2"]
    first = got[0]
    assert first["method"] == "POST"
    assert first["headers"]["User-Agent"] == "Amazon/EventBridge/ApiDestinations"
    assert first["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert first["headers"]["Range"] == "bytes=0-1048575" and first["headers"]["Connection"] == "close"
    assert first["headers"]["x-api-key"] == env["key"]
    body = json.loads(first["body"])
    assert body["detail"] == {"customID": "k-1", "order_id": "o-1"} and body["source"] == "com.orders"
    # the secret never appears in what the dispatcher records or shows
    shown = repr(dispatcher.target) + repr(dispatcher.attempts) + dispatcher.frame().to_string()
    assert env["key"] not in shown and dl.REDACTED in shown
    # the tap is empty afterwards: a second drain delivers nothing again
    assert dispatcher.drain(wait_seconds=0) == []


def test_basic_auth_and_connection_headers_take_precedence(env, server):
    user, password = "orders", secrets.token_urlsafe(16)
    conn = dl.ensure_connection(
        env["res"], "conn-basic", basic=(user, password), invocation_headers={"X-Tenant": "from-connection"}
    )
    route = _route(env, "basic", f"{server.base}/basic/pay", headers={"X-Tenant": "from-target"}, conn=conn)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route)
    [result] = dispatcher.deliver([_event(1)])
    assert result.outcome == "delivered"
    [request] = server.to("/basic/")
    import base64

    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert request["headers"]["X-Tenant"] == "from-connection"
    assert password not in repr(dispatcher.attempts) and "x-api-key" not in request["headers"]


def test_rate_limit_spaces_calls(env, server):
    route = _route(env, "rate", f"{server.base}/rate/pay", rate=2)
    clock = dl.ManualClock()
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=clock)
    results = dispatcher.deliver([_event(n) for n in range(5)])
    assert [r.outcome for r in results] == ["delivered"] * 5
    assert [a.at for a in dispatcher.attempts] == [0, 0.5, 1.0, 1.5, 2.0]
    assert [a.rate_wait for a in dispatcher.attempts] == [0, 0.5, 0.5, 0.5, 0.5]


def test_retries_429_and_5xx_with_seeded_backoff_and_the_same_key(env, server):
    route = _route(env, "retry", f"{server.base}/retry/pay", retry=dl.RetryPolicy(5, 3600))
    delays = []
    for _ in range(2):
        server.script("/retry", 429, 503, 500, 200)
        clock = dl.ManualClock(0)
        dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=clock, seed=7, backoff_base=2.0)
        [result] = dispatcher.deliver([_event(1)])
        assert result.outcome == "delivered" and result.attempts == 4 and result.retry_attempts == 3
        assert [a.status for a in dispatcher.attempts] == [429, 503, 500, 200]
        assert [a.outcome for a in dispatcher.attempts] == ["retry", "retry", "retry", "delivered"]
        waits = [a.retry_in for a in dispatcher.attempts[:3]]
        assert all(0 <= w <= 2.0 * 2**i for i, w in enumerate(waits))  # full jitter under an exponential ceiling
        assert clock.now() == pytest.approx(sum(waits), abs=1e-6)
        delays.append(waits)
    assert delays[0] == delays[1]  # seeded: the same schedule every run
    keys = {r["headers"]["Idempotency-Key"] for r in server.to("/retry/")}
    assert keys == {"key-1"}  # every retry carries the same idempotency key


def test_no_retry_on_400_goes_straight_to_the_dlq(env, server):
    route = _route(env, "bad", f"{server.base}/bad/pay", retry=dl.RetryPolicy(5, 3600))
    server.script("/bad", 400, 403)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=dl.ManualClock())
    results = dispatcher.deliver([_event(1), _event(2)])
    assert [(r.outcome, r.attempts, r.status) for r in results] == [
        ("dead-lettered", 1, 400),
        ("dead-lettered", 1, 403),
    ]
    letters = dl.read_dead_letters(env["backend"], route.dead_letter_queue)
    assert len(letters) == 2
    attrs = letters[0]["attributes"]
    assert attrs["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attrs  # no retry limit ended it: the status is not retried
    assert attrs["ERROR_CODE"] == dl.HTTP_ERROR_CODE and "HTTP 400" in attrs["ERROR_MESSAGE"]


def test_dlq_message_after_maximum_retry_attempts(env, server):
    route = _route(env, "exhaust", f"{server.base}/exhaust/pay", retry=dl.RetryPolicy(2, 3600))
    server.script("/exhaust", 500, repeat_last=True)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=dl.ManualClock())
    event = _event(9)
    [result] = dispatcher.deliver([event])
    assert (result.outcome, result.attempts, result.exhausted_retry_condition) == (
        "dead-lettered",
        3,
        "MaximumRetryAttempts",
    )
    [letter] = dl.read_dead_letters(env["backend"], route.dead_letter_queue)
    assert letter["event"] == event  # the body is the event itself
    attrs = letter["attributes"]
    assert set(attrs) == {
        "RULE_ARN",
        "TARGET_ARN",
        "ERROR_CODE",
        "ERROR_MESSAGE",
        "EXHAUSTED_RETRY_CONDITION",
        "RETRY_ATTEMPTS",
    }
    assert attrs["RULE_ARN"] == route.rule_arn
    assert attrs["TARGET_ARN"] == route.api_destination_arn
    assert attrs["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attrs["RETRY_ATTEMPTS"] == "2"
    assert "HTTP 500" in attrs["ERROR_MESSAGE"]
    diagram = str(dispatcher.sequence_diagram())
    assert diagram.startswith("sequenceDiagram") and diagram.count("EB->>API") == 3 and "EB->>Q" in diagram
    frame = dispatcher.frame()
    assert list(frame["outcome"]) == ["retry", "retry", "dead-lettered"] and list(frame["status"]) == [500] * 3


def test_maximum_event_age_ends_retries(env, server):
    route = _route(env, "age", f"{server.base}/age/pay", retry=dl.RetryPolicy(185, 60))
    server.script("/age", 503, repeat_last=True)
    clock = dl.ManualClock()
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=clock, backoff_base=4.0)
    [result] = dispatcher.deliver([_event(1)])
    assert result.outcome == "dead-lettered"
    assert result.exhausted_retry_condition == "MaximumEventAgeInSeconds"
    assert 1 < result.attempts < 186
    assert all(a.at <= 60 for a in dispatcher.attempts)
    [letter] = dl.read_dead_letters(env["backend"], route.dead_letter_queue)
    assert letter["attributes"]["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert letter["attributes"]["RETRY_ATTEMPTS"] == str(result.attempts - 1)


def test_backlog_behind_the_rate_limit_ages_out(env, server):
    route = _route(env, "backlog", f"{server.base}/backlog/pay", rate=1, retry=dl.RetryPolicy(185, 60))
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=dl.ManualClock())
    results = dispatcher.deliver([_event(n) for n in range(65)])
    delivered = [r for r in results if r.outcome == "delivered"]
    too_old = [r for r in results if r.outcome == "dead-lettered"]
    assert len(delivered) == 61 and len(too_old) == 4  # calls at t = 0..60 s; the rest waited too long
    assert {r.exhausted_retry_condition for r in too_old} == {"MaximumEventAgeInSeconds"}
    assert {r.attempts for r in too_old} == {0}
    assert len(dl.read_dead_letters(env["backend"], route.dead_letter_queue)) == 4


def test_retry_after_is_honoured_and_a_negative_one_stops(env, server):
    route = _route(env, "after", f"{server.base}/after/pay", retry=dl.RetryPolicy(5, 3600))
    server.script("/after", (429, {"Retry-After": "30"}), 200)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=dl.ManualClock(), backoff_base=1.0)
    [result] = dispatcher.deliver([_event(1)])
    assert result.outcome == "delivered" and dispatcher.attempts[0].retry_in == 30
    server.script("/after", (503, {"Retry-After": "-1"}))
    [stopped] = dispatcher.deliver([_event(2)])
    assert (stopped.outcome, stopped.attempts, stopped.exhausted_retry_condition) == ("dead-lettered", 1, "")


def test_unreachable_endpoint_is_retried_then_dropped_without_a_dlq(env, server):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    route = _route(env, "down", f"http://127.0.0.1:{port}/pay", retry=dl.RetryPolicy(1, 3600), dlq=False)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], route, clock=dl.ManualClock())
    [result] = dispatcher.deliver([_event(1)])
    assert (result.outcome, result.attempts, result.status) == ("dropped", 2, None)
    assert result.error_code == dl.UNREACHABLE_ERROR_CODE and "cannot be reached" in result.error_message


def test_configuration_is_read_back_from_the_backend(env, server):
    route = _route(env, "config", f"{server.base}/config/pay", rate=3, retry=dl.RetryPolicy(4, 120))
    target = dl.read_delivery_target(env["backend"], rule=route.rule_name, bus=route.bus_name)
    assert target.summary() == {
        "method": "POST",
        "endpoint path": "/config/pay",
        "rate limit / s": 3,
        "headers": {"Idempotency-Key": "$.detail.customID"},
        "query": {},
        "path values": [],
        "auth": "API_KEY",
        "max retries": 4,
        "max event age s": 120,
        "dead-letter queue": f"{PREFIX}-config-dlq",
    }
    # ensure_connection with the same secret keeps the connection; a new secret replaces it
    assert dl.ensure_connection(env["res"], "conn", api_key=("x-api-key", env["key"])) == env["conn"]


def test_input_path_sends_the_detail_and_header_values_still_come_from_the_whole_event(env, server):
    """Notebook 11's fix: InputPath $.detail makes the body the producer's payload; the key still resolves."""
    route = _route(env, "inpath", f"{server.base}/inpath/pay")
    assert dl.read_delivery_target(env["backend"], rule=route.rule_name, bus=route.bus_name).input_path is None
    # ensure_route again, now with input_path: the existing rule's target is changed in place
    again = _route(env, "inpath", f"{server.base}/inpath/pay", input_path="$.detail")
    assert (again.rule_arn, again.tap) == (route.rule_arn, route.tap)
    dispatcher = dl.ApiDestinationDispatcher.for_route(env["backend"], again, clock=dl.ManualClock())
    assert dispatcher.target.input_path == "$.detail"
    [result] = dispatcher.deliver([_event(3)])
    assert result.outcome == "delivered"
    [request] = server.to("/inpath/")
    assert json.loads(request["body"]) == {"customID": "key-3", "order_id": "o-3"}
    assert request["headers"]["Idempotency-Key"] == "key-3"


def test_input_path_must_be_a_jsonpath(env, server):
    with pytest.raises(ValueError, match="not a JSONPath"):
        _route(env, "badpath", f"{server.base}/badpath/pay", input_path="detail")


def test_the_clock_is_the_idempotency_librarys():
    from helpers.idempotency import clock as library_clock

    assert dl.ManualClock is library_clock.ManualClock and isinstance(dl.ManualClock(), library_clock.Clock)


def _dispatcher_with(attempts, deliveries=()):
    # The views need only the records: a dispatcher built without a backend.
    dispatcher = object.__new__(dl.ApiDestinationDispatcher)
    dispatcher.attempts, dispatcher.deliveries = list(attempts), list(deliveries)
    return dispatcher


def test_sequence_diagram_names_events_through_the_given_function():
    attempt = dl.Attempt("evt-0001-abcdef", 1, 0.0, 0.0, "POST", "http://h/pay", {}, 500, "dead-lettered")
    lost = dl.Delivery("evt-0002-abcdef", "dead-lettered", 0, None)
    dispatcher = _dispatcher_with([attempt], [lost])
    default = dispatcher.sequence_diagram().lines
    assert "    EB->>API: POST /pay (event evt-0001) attempt 1" in default
    assert "    Note over EB: event evt-0002 older than MaximumEventAgeInSeconds" in default
    names = {"evt-0001-abcdef": "the first order", "evt-0002-abcdef": "the late order"}
    named = dispatcher.sequence_diagram(label=lambda a: "POST /pay", event=lambda i: names[i]).source
    assert named == "\n".join(
        [
            "sequenceDiagram",
            "    participant EB as EventBridge delivery",
            "    participant API as HTTP API",
            "    participant Q as DLQ",
            "    EB->>API: POST /pay attempt 1",
            "    API-->>EB: 500",
            "    EB->>Q: the first order + error attributes",
            "    Note over EB: the late order older than MaximumEventAgeInSeconds",
            "    EB->>Q: the late order + error attributes",
        ]
    )
    assert "evt-" not in named
