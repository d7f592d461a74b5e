"""Lab 04's check: ``POST /charges`` with the IETF Idempotency-Key semantics, over real HTTP, on two instances.

The learner's endpoint runs the way a payments API runs in production: as **two instances**, each a process of its
own (forked, see :mod:`helpers.labs.processes`) with its own HTTP server on 127.0.0.1, and a client that does not
care which one answers. The charges are counted in the ledger. What the check does, and why:

- a retry goes to the same instance and to the *other* one: an endpoint that remembers keys in memory (a dict, a
  ``MemoryStore``), however it shares it inside one process, forgets them on the other instance;
- header names arrive in other cases (``idempotency-key``): HTTP names are case-insensitive; key *values* that
  differ only in case are two keys;
- each instance salts Python's ``hash()`` with its name: a fork shares its parent's seed, real instances do not;
- the same key comes back with one field of the body changed, for several fields, and with the same body on another
  path: a fingerprint of part of the request lets some of them through;
- a retry comes half an hour later (the instance's wall clock runs ahead while it serves it): a key that expires
  with the lease is forgotten by then;
- a request whose charge is held (in flight) meets a second request with its key on the other instance: 409; and
  another one 3 s into the charge: 409 still (a lease shorter than a charge frees the key too soon);
- a burst of requests with one key hits both instances at once, with a barrier at every request's first write to
  AWS: no request writes anything until all of them have done their reads (or answered), so a read-then-write
  claim loses the race every time;
- a charge fails once (the card network does not answer) and the client retries with the same key, twice at once on
  both instances in lockstep (each one's n-th write to AWS waits for the other's n-th, or its answer): the retry
  must charge, not meet a key that stays claimed forever, and charge once, not twice because each retry read the
  failed record and took the key over without a condition.

Every request has a timeout and every process is stopped at the end, also when the learner's code raises or hangs.
In-memory storage is not accepted: an idempotency record must outlive the process and be visible to every instance.
``Idempotent-Replayed: true`` (Stripe's convention; the IETF draft defines no replay header) is not required.
"""

from __future__ import annotations

import builtins
import http.client
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from helpers.idempotency.http import HttpRequest, HttpResponse
from helpers.instruments.ledger import Ledger
from helpers.labs.processes import AwsCall, Channel, Child, children, install_gate, later_by, receive, start
from helpers.labs.report import Report, plural
from helpers.services.http import LoopbackServer, read_body, send

Endpoint = Callable[[str, str, dict[str, str], bytes], HttpResponse]
LAB = "Lab 04 · the idempotent payment endpoint"
#: The check's own request id, sent to its servers and removed before the learner's endpoint sees the headers.
REQUEST_HEADER = "X-Lab-Check-Request"
#: Seconds the instance's wall clock runs later while it serves this request (removed like REQUEST_HEADER).
LATER_HEADER = "X-Lab-Check-Later"
_runs = itertools.count(1)


class CardNetworkDown(ConnectionError):
    """The payment did not go through: the card network did not answer (injected once by the check)."""


@dataclass(frozen=True)
class EndpointScenario:
    """The check's numbers (the helper's own)."""

    burst: int = 8  # concurrent requests with one key, spread over both instances
    barrier_s: float = 3.0  # how long a burst request waits at its first write for the others
    hold_s: float = 6.0  # longest a charge is held "in flight"
    in_flight_after_s: float = 3.0  # a second duplicate comes this long into the held charge
    request_timeout_s: float = 8.0  # a request must be answered within this
    later_s: float = 1800.0  # a client's late retry comes this much later (by the instance's clock)
    start_timeout_s: float = 15.0  # both instances must be listening within this


# -- an instance of the learner's endpoint, in its own process --------------------------------------------------
class _Server(LoopbackServer):
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    thread_name = "lab-endpoint"
    label = "the lab's endpoint"

    def __init__(self, endpoint: Endpoint, channel: Channel, local: threading.local) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.channel = channel
        self.local = local

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        body = read_body(http)
        check_headers = {REQUEST_HEADER.lower(), LATER_HEADER.lower()}
        headers = {k: v for k, v in http.headers.items() if k.lower() not in check_headers}
        self.local.request = http.headers.get(REQUEST_HEADER, "")
        self.local.passed = False
        self.local.writes = 0
        try:
            # A request the check sends alone may come "later": the instance's wall clock runs ahead while it serves it.
            with later_by(float(http.headers.get(LATER_HEADER, 0) or 0)):
                response = self.endpoint(http.command, http.path, headers, body)
            if not isinstance(response, HttpResponse):
                raise TypeError(f"serve returned {type(response).__name__}, not an HttpResponse")
        except Exception as exc:  # the learner's bug: a 500, and the check hears about it
            self.channel.tell("error", f"{type(exc).__name__}: {exc}"[:200])
            response = HttpResponse(500, {"Content-Type": "text/plain"}, f"{type(exc).__name__}: {exc}".encode())
        finally:
            self.local.request = ""
        send(http, response)


class _Gate:
    """The barrier at a burst request's first write to AWS (reads first, for every request of the burst)."""

    def __init__(self, channel: Channel, local: threading.local, wait_s: float) -> None:
        self.channel, self.local, self.wait_s = channel, local, wait_s

    def before(self, call: AwsCall) -> None:
        request = getattr(self.local, "request", "")
        if call.writes_a_store and request.startswith("burst") and not getattr(self.local, "passed", True):
            self.local.passed = True
            self.channel.ask("first-write", request, timeout=self.wait_s + 2)
        if call.writes_a_store and request.startswith("lockstep"):
            self.local.writes = getattr(self.local, "writes", 0) + 1
            self.channel.ask("nth-write", {"request": request, "n": self.local.writes}, timeout=self.wait_s + 2)

    def after(self, call: AwsCall, ok: bool) -> None:
        return None


def _instance(
    make_endpoint: Callable[[Callable[[HttpRequest], HttpResponse]], Endpoint],
    name: str,
    ledger: Ledger,
    s: EndpointScenario,
) -> Callable[[Channel], None]:
    def main(channel: Channel) -> None:
        local = threading.local()
        install_gate(_Gate(channel, local, s.barrier_s))
        # A forked instance inherits its parent's hash() seed; two real instances (or one restarted) have their own.
        # Salt the built-in hash() per instance, as another PYTHONHASHSEED would for strings.
        unsalted = builtins.hash
        builtins.hash = lambda value: unsalted((name, value))

        def charge(request: HttpRequest) -> HttpResponse:
            """The payment (given to the learner): one ledger row per call, 201 with the charge."""
            body = request.json() or {}
            asked = {"request": getattr(local, "request", ""), "order": body.get("orderId")}
            if channel.ask("charge", asked, timeout=s.hold_s + 2) == "fail":
                raise CardNetworkDown("the card network did not answer; nothing was charged")
            key = request.header("Idempotency-Key") or ""
            charge_id = ledger.charge(body["orderId"], body["amount"], by=name, key=key)
            channel.tell("charged", {**asked, "instance": name})
            result = {"chargeId": charge_id, "orderId": body["orderId"], "amount": body["amount"], "status": "paid"}
            return HttpResponse(201, {"Content-Type": "application/json"}, json.dumps(result).encode())

        try:
            endpoint = make_endpoint(charge)
        except Exception as exc:
            channel.tell("setup-error", f"{type(exc).__name__}: {exc}"[:200])
            return
        server = _Server(endpoint, channel, local).start()
        channel.tell("listening", server.port)
        while True:
            channel.next_job()  # until the parent says stop (or goes away): then the process ends

    return main


# -- the client side, in the notebook's process -----------------------------------------------------------------
@dataclass
class _Request:
    id: str
    instance: int  # 0: A, 1: B
    body: dict[str, Any] | None
    key: str | None
    header: str = "Idempotency-Key"
    path: str = "/charges"
    later_s: float = 0.0  # the instance serves it this much later by its wall clock


@dataclass
class _Answer:
    status: int  # 0: no answer
    body: bytes = b""
    error: str = ""

    def same_as(self, other: _Answer) -> bool:
        return self.status == other.status and self.body == other.body

    def text(self, timeout: float) -> str:
        return f"status {self.status}" if self.status else f"no answer within {timeout:g} s"


@dataclass
class _Exchange:
    """Sends requests to the instances and answers their questions (hold, fail, barrier) while they run."""

    s: EndpointScenario
    instances: list[Child]
    ports: list[int]
    pool: ThreadPoolExecutor
    charged: Counter[str] = field(default_factory=Counter)
    charged_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)
    fail: set[str] = field(default_factory=set)
    held: dict[str, tuple[Child, int]] = field(default_factory=dict)
    charging: set[str] = field(default_factory=set)
    burst: set[str] = field(default_factory=set)
    arrived: dict[str, tuple[Child, int, float]] = field(default_factory=dict)
    lockstep: set[str] = field(default_factory=set)  # requests whose every n-th write waits for the others' n-th
    steps: dict[int, dict[str, tuple[Child, int, float]]] = field(default_factory=dict)
    futures: dict[str, Future[_Answer]] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    unanswered: int = 0

    def _call(self, request: _Request) -> _Answer:
        headers = {"Content-Type": "application/json", REQUEST_HEADER: request.id}
        if request.key is not None:
            headers[request.header] = request.key
        if request.later_s:
            headers[LATER_HEADER] = f"{request.later_s:g}"
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[request.instance], timeout=self.s.request_timeout_s)
        try:
            conn.request("POST", request.path, body=json.dumps(request.body).encode(), headers=headers)
            response = conn.getresponse()
            return _Answer(response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            return _Answer(0, error=f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def send(self, request: _Request) -> Future[_Answer]:
        future = self.pool.submit(self._call, request)
        self.futures[request.id] = future
        return future

    def pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Answer the instances' questions until ``until()`` holds (True) or ``timeout`` runs out (False)."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            self._take(0.02)
        # An instance tells "charged" before it answers, so the last message can still sit in the pipe when the
        # answer has arrived: take what is there, or the count misses the last charge under load.
        self._take(0.0)
        return True

    def _take(self, wait_s: float) -> None:
        for child, message in receive(self.instances, wait_s):
            self._on(child, message)
        self._open_barrier(force=False)
        self._open_steps()

    def _on(self, child: Child, message: Any) -> None:
        if message.kind == "charge":
            request = message.body["request"]
            self.charging.add(request)
            if request in self.fail:
                self.fail.discard(request)
                child.answer(message.ask, "fail")
            elif request in self.hold:
                self.held[request] = (child, message.ask)
            else:
                child.answer(message.ask, "go")
        elif message.kind == "charged":
            self.charged[str(message.body["order"])] += 1
            self.charged_by[(str(message.body["order"]), message.body["instance"])] += 1
        elif message.kind == "nth-write":
            self.steps.setdefault(int(message.body["n"]), {})[message.body["request"]] = (
                child,
                message.ask,
                time.monotonic(),
            )
        elif message.kind == "first-write":
            self.arrived[message.body] = (child, message.ask, time.monotonic())
        elif message.kind == "error":
            self.errors.append(str(message.body))
        elif message.kind == "exit":
            self.dead.append(f"{child.name} ended (status {message.body})")

    def _open_barrier(self, *, force: bool) -> None:
        waiting = {r: v for r, v in self.arrived.items() if v[1]}
        if not waiting:
            return
        answered = {r for r in self.burst if r in self.futures and self.futures[r].done()}
        oldest = min(v[2] for v in waiting.values())
        if (
            force
            or len(set(self.arrived) | answered) >= len(self.burst)
            or time.monotonic() - oldest > self.s.barrier_s
        ):
            for request, (child, ask, at) in waiting.items():
                child.answer(ask, "go")
                self.arrived[request] = (child, 0, at)

    def _open_steps(self) -> None:
        """Lockstep: a request's n-th write goes once every other lockstep request made its n-th write or was
        answered (or after barrier_s): whatever each read before that write, the others read it too."""
        answered = {r for r in self.lockstep if r in self.futures and self.futures[r].done()}
        for arrived in self.steps.values():
            waiting = {r: v for r, v in arrived.items() if v[1]}
            if not waiting:
                continue
            oldest = min(v[2] for v in waiting.values())
            if set(arrived) | answered >= self.lockstep or time.monotonic() - oldest > self.s.barrier_s:
                for request, (child, ask, at) in waiting.items():
                    child.answer(ask, "go")
                    arrived[request] = (child, 0, at)

    def release(self, request: str) -> None:
        held = self.held.pop(request, None)
        if held is not None:
            held[0].answer(held[1], "go")

    def exchange(self, requests: list[_Request]) -> list[_Answer]:
        futures = [self.send(r) for r in requests]
        self.pump(lambda: all(f.done() for f in futures), self.s.request_timeout_s + 2)
        answers = [f.result() if f.done() else _Answer(0, error="no answer") for f in futures]
        self.unanswered += sum(1 for a in answers if a.status == 0)
        return answers


def _stalled(report: Report, x: _Exchange, s: EndpointScenario) -> Report:
    """The endpoint stopped answering: say so, and do not wait for every later request too."""
    report.expect(
        f"every request is answered within {s.request_timeout_s:g} s",
        False,
        observed=f"{plural(x.unanswered, 'request')} without an answer"
        + (f"; {x.errors[0][:80]}" if x.errors else "")
        + (f"; {x.dead[0]}" if x.dead else ""),
        hint=f"serve must answer every request within {s.request_timeout_s:g} s: something in it waits without end "
        "(a lock never released, a loop polling a record, a wait with no timeout)",
        key="answers",
    )
    return report.verdict()


def check_payment_endpoint(
    ledger: Ledger,
    make_endpoint: Callable[[Callable[[HttpRequest], HttpResponse]], Endpoint],
    scenario: EndpointScenario | None = None,
) -> Report:
    """Lab 04: Idempotency-Key semantics proven over real HTTP on two instances of the endpoint, charges counted.

    ``make_endpoint(charge)`` is called once in each instance's process and returns
    ``serve(method, path, headers, body) -> HttpResponse``; ``charge(request)`` is the payment (one ledger row per
    call, a 201 response) the endpoint must protect.
    """
    s = scenario or EndpointScenario()
    report = Report(LAB)
    run = f"r{next(_runs)}{uuid.uuid4().hex[:4]}"
    ledger.clear()
    ids = (f"req-{n}" for n in itertools.count(1))

    def order(n: int) -> str:
        return f"{run}-order-{n}"

    with children() as started, ThreadPoolExecutor(max_workers=s.burst + 4, thread_name_prefix="lab-client") as pool:
        for name in ("instance-A", "instance-B"):
            started.append(start(name, _instance(make_endpoint, name, ledger, s)))
        ports: dict[str, int] = {}
        setup_errors: list[str] = []
        deadline = time.monotonic() + s.start_timeout_s
        while len(ports) + len(setup_errors) < 2 and time.monotonic() < deadline:
            for child, message in receive(started, 0.05):
                if message.kind == "listening":
                    ports[child.name] = int(message.body)
                elif message.kind in ("setup-error", "exit"):
                    setup_errors.append(f"{child.name}: {message.body}")
        if len(ports) < 2:
            reason = setup_errors[0] if setup_errors else f"not listening after {s.start_timeout_s:g} s"
            report.expect(
                "both instances of the endpoint start",
                False,
                observed=reason[:160],
                hint="make_endpoint(charge) must return serve(method, path, headers, body) without raising",
                key="start",
            )
            return report.verdict()
        x = _Exchange(s, started, [ports["instance-A"], ports["instance-B"]], pool)

        def post(
            instance: int,
            body: dict[str, Any] | None,
            key: str | None,
            header: str = "Idempotency-Key",
            path: str = "/charges",
        ) -> Any:
            return _Request(next(ids), instance, body, key, header, path)

        def timeout_text(answer: _Answer) -> str:
            return answer.text(s.request_timeout_s)

        # 1-4: the first request, its retries (same instance, other instance, header names in other cases).
        k1 = str(uuid.uuid4())
        first_body: dict[str, Any] = {"orderId": order(1), "amount": 25, "currency": "AUD", "customer": "c-17"}
        [first] = x.exchange([post(0, first_body, k1)])
        report.expect(
            "a first request charges once and answers 201",
            first.status == 201 and x.charged[order(1)] == 1,
            observed=f"{timeout_text(first)}, {plural(x.charged[order(1)], 'charge')}",
            hint="let the first request with a key through to charge(request) and answer with its response",
            key="first",
        )
        [same] = x.exchange([post(0, first_body, k1)])
        report.expect(
            "a retry with the same key gets the first response again, without charging",
            same.same_as(first) and x.charged[order(1)] == 1,
            observed=f"{timeout_text(same)}, same body: {same.body == first.body}, "
            f"{plural(x.charged[order(1)], 'charge')}",
            hint="nothing remembered the first request: store its response under the key (a record in DynamoDB, "
            "claimed with a conditional write) and send it back on a retry, without charging "
            "(helpers.idempotency.handle_http does this)",
            key="replay",
        )
        before = x.charged[order(1)]
        [other] = x.exchange([post(1, first_body, k1)])
        remembers = same.same_as(first)  # the key is remembered at all
        shared = remembers and other.same_as(first) and x.charged[order(1)] == before  # by both instances
        report.expect(
            "... also when the retry reaches the second instance (another process)",
            other.same_as(first) and x.charged[order(1)] == before,
            observed=f"{timeout_text(other)}, same body: {other.body == first.body}, "
            f"{plural(x.charged[order(1)] - before, 'new charge')}",
            hint="the other instance computed another fingerprint for the same request and refused it: Python's "
            "hash() is salted per process (PYTHONHASHSEED), so it differs between instances and after a restart. "
            "Fingerprint with hashlib.sha256 of method, path and body"
            if other.status == 422 and remembers
            else "the retry reached another instance of the endpoint, a process that never saw the key: what one "
            "instance keeps in memory (a dict, a MemoryStore) the other cannot see. Keep the records in DynamoDB "
            "(DynamoDBStore)",
            key="second_instance",
        )
        before = x.charged[order(1)]
        cased = x.exchange([post(0, first_body, k1, "idempotency-key"), post(0, first_body, k1, "IDEMPOTENCY-KEY")])
        report.expect(
            "the header name is matched in any case (idempotency-key, IDEMPOTENCY-KEY)",
            all(a.same_as(first) for a in cased) and x.charged[order(1)] == before,
            observed=", ".join(timeout_text(a) for a in cased)
            + f", {plural(x.charged[order(1)] - before, 'new charge')}",
            hint="HTTP header names are case-insensitive (RFC 9110): a client may send idempotency-key. Look the "
            "header up ignoring case (HttpRequest(...).header('Idempotency-Key') does)",
            key="header_case",
        )

        # 4b: a retry half an hour later (a client retries for hours): the instance serves it with its clock ahead.
        before = x.charged[order(1)]
        [late] = x.exchange([_Request(next(ids), 1, first_body, k1, later_s=s.later_s)])
        report.expect(
            f"a retry {s.later_s / 60:g} minutes later still gets the first response, without charging",
            late.same_as(first) and x.charged[order(1)] == before,
            observed=f"{timeout_text(late)}, same body: {late.body == first.body}, "
            f"{plural(x.charged[order(1)] - before, 'new charge')}",
            hint=f"the record of the key had expired {s.later_s / 60:g} minutes later, so the retry charged again: "
            "expires_after is how long a key is remembered (hours: Stripe keeps keys 24 h), not the lease of a claim "
            "(lease_duration)"
            if shared
            else "nothing remembered the first request on this instance: keep the records in DynamoDB",
            key="later_retry",
        )

        if x.unanswered:
            return _stalled(report, x, s)

        # 5: the same key with another payload, one field at a time.
        variants = {
            "amount": {**first_body, "amount": 26},
            "currency": {**first_body, "currency": "NZD"},
            "customer": {**first_body, "customer": "c-18"},
            "orderId": {**first_body, "orderId": order(11)},
            "an added field": {**first_body, "note": "gift"},
            "the path (POST /refunds, same body)": first_body,
        }
        paths = {"the path (POST /refunds, same body)": "/refunds"}
        before = x.charged[order(1)] + x.charged[order(11)]
        answers = x.exchange(
            [post(n % 2, body, k1, path=paths.get(f, "/charges")) for n, (f, body) in enumerate(variants.items())]
        )
        accepted = [field for field, a in zip(variants, answers, strict=True) if a.status != 422]
        new = x.charged[order(1)] + x.charged[order(11)] - before
        report.expect(
            "the same key with a different payload is refused with 422, whichever field differs",
            not accepted and new == 0,
            observed="all refused with 422"
            if not accepted
            else f"{len(accepted)} of {len(variants)} not refused ({', '.join(accepted)}), {plural(new, 'new charge')}",
            hint=f"the same key came back with only {accepted[0] if accepted else 'a field'} changed and was not "
            "refused: fingerprint the whole request (method, path and the whole body), not some of its fields",
            key="payload_mismatch",
        )

        if x.unanswered:
            return _stalled(report, x, s)

        # 6: the same key while the first request is still charging, on the other instance.
        k2 = str(uuid.uuid4())
        slow_body = {"orderId": order(2), "amount": 40, "currency": "AUD", "customer": "c-18"}
        slow = post(0, slow_body, k2)
        x.hold.add(slow.id)
        slow_future = x.send(slow)
        in_flight = x.pump(lambda: slow.id in x.charging or slow_future.done(), s.hold_s)
        during = x.exchange([post(1, slow_body, k2)])[0] if in_flight and not slow_future.done() else _Answer(0)
        # The charge goes on (a slow card network): the key must stay claimed as long as it runs, not for a lease
        # shorter than a charge can take.
        late = _Answer(0)
        if during.status == 409:
            x.pump(slow_future.done, s.in_flight_after_s)
            if not slow_future.done():
                late = x.exchange([post(1, slow_body, k2)])[0]
        lapsed = late.status not in (0, 409)
        x.release(slow.id)
        x.pump(slow_future.done, s.request_timeout_s)
        report.expect(
            "the same key while the first request is still running is refused with 409",
            during.status == 409 and not lapsed and x.charged[order(2)] == 1,
            observed=(timeout_text(during) if in_flight else "the first request never reached charge")
            + (f", {s.in_flight_after_s:g} s into the charge {timeout_text(late)}" if lapsed else "")
            + f", {plural(x.charged[order(2)], 'charge')} once both finished",
            hint=f"{s.in_flight_after_s:g} s into a charge that was still running, the key was free again and the "
            "request was not refused: the claim's lease (lease_duration) ran out before the charge ended. A lease must "
            "outlast the longest charge (the card network may take many seconds)"
            if lapsed
            else "the other instance did not know the key was being charged, and charged too: keep the claim in a "
            "store both instances share (DynamoDB), not in memory"
            if x.charged_by[(order(2), "instance-B")] and remembers and not shared
            else "the second request arrived while the first was charging and was not refused: claim the key "
            "(IN_PROGRESS) with a conditional write before charging; a claim that fails on an unfinished record means "
            "409",
            key="in_flight",
        )

        if x.unanswered:
            return _stalled(report, x, s)

        # 7: a burst of concurrent requests with one key, over both instances, reads before writes.
        k3 = str(uuid.uuid4())
        burst_body = {"orderId": order(3), "amount": 7, "currency": "NZD", "customer": "c-19"}
        burst = [_Request(f"burst-{n}", n % 2, burst_body, k3) for n in range(s.burst)]
        x.burst = {r.id for r in burst}
        futures = [x.send(r) for r in burst]
        x.pump(lambda: all(f.done() for f in futures), s.request_timeout_s + s.barrier_s + 2)
        statuses = [f.result().status if f.done() else 0 for f in futures]
        n3 = x.charged[order(3)]
        report.expect(
            f"{s.burst} concurrent requests with one key (on both instances) charge once",
            n3 == 1 and set(statuses) <= {201, 409} and 201 in statuses,
            # Which of the others get 409 and which the replay depends on timing: only a surprise is printed.
            observed=f"{plural(n3, 'charge')}, "
            + (
                "every answer 201 or 409"
                if set(statuses) <= {201, 409}
                else "answers " + ", ".join(f"{n} x {st or 'none'}" for st, n in sorted(Counter(statuses).items()))
            ),
            hint="nothing claimed the key before charging: claim it with ONE conditional write (attribute_not_exists) "
            "in DynamoDB, so that one request of the burst charges and the others are refused"
            if not remembers
            else "every instance kept its own memory, so each one charged: keep the records in DynamoDB"
            if n3 > 1 and not shared
            else "several requests read 'no record' before any of them wrote one (read, then write): claim the key "
            "with ONE conditional write (attribute_not_exists) before charging",
            key="burst",
        )

        if x.unanswered:
            return _stalled(report, x, s)

        # 8-9: no key; two keys.
        [missing] = x.exchange([post(0, {"orderId": order(4), "amount": 5}, None)])
        report.expect(
            "a request without Idempotency-Key is refused with 400",
            missing.status == 400 and x.charged[order(4)] == 0,
            observed=f"{timeout_text(missing)}, {plural(x.charged[order(4)], 'charge')}",
            hint="without a key the server cannot tell a retry from a new payment: answer 400 before charging",
            key="missing_key",
        )
        two_body = {"orderId": order(5), "amount": 9, "currency": "AUD", "customer": "c-20"}
        k5 = str(uuid.uuid4())
        # The second key differs from the first only in case: a key is compared exactly (only the header's NAME is
        # case-insensitive), so they are two payments.
        two = x.exchange([post(0, two_body, k5), post(1, two_body, k5.upper())])
        report.expect(
            "two keys are two payments, same body or not, even if they differ only in case",
            [a.status for a in two] == [201, 201] and x.charged[order(5)] == 2,
            observed=f"statuses {[a.status for a in two]}, {plural(x.charged[order(5)], 'charge')}",
            hint="the key, not the order id or the body, says what counts as the same request, and it is compared "
            "exactly: only the header's name is case-insensitive, its value is not (do not lower() or strip the key)",
            key="two_keys",
        )

        if x.unanswered:
            return _stalled(report, x, s)

        # 10: a charge that fails, then the client's retry with the same key.
        k6 = str(uuid.uuid4())
        failing_body = {"orderId": order(6), "amount": 12, "currency": "NZD", "customer": "c-21"}
        failing = post(0, failing_body, k6)
        x.fail.add(failing.id)
        [failed] = x.exchange([failing])
        # The client's retry goes out twice at once (its first try timed out as well), one to each instance, in
        # lockstep (each one's n-th write waits for the other's): a retry that reads the failed record and then takes
        # it over with a write that carries no condition charges twice, every time.
        pair = [_Request(f"lockstep-retry-{n}", n, failing_body, k6) for n in range(2)]
        x.lockstep = {r.id for r in pair}
        retries = x.exchange(pair)
        retried = next((a for a in retries if a.status in (0, 201)), retries[-1])
        for _ in range(3 if retried.status not in (0, 201) else 0):  # a 5xx or 409 is retried a moment later
            [retried] = x.exchange([post(0, failing_body, k6)])
            if retried.status in (0, 201):
                break
            time.sleep(0.3)
        ok = failed.status >= 500 and retried.status == 201 and x.charged[order(6)] == 1
        report.expect(
            "a charge that failed can be retried with the same key, and charges once",
            ok,
            observed=f"failed charge answered {timeout_text(failed)}, the retry {timeout_text(retried)}, "
            f"{plural(x.charged[order(6)], 'charge')}",
            hint="a charge that raised must not be answered as a success: let it become a 5xx"
            if 200 <= failed.status < 300
            else "two retries of the failed charge, at once on both instances, both charged: nothing claimed the key "
            "before charging. Claim it with ONE conditional write (attribute_not_exists), and release the claim "
            "(delete the record) when charge raises"
            if x.charged[order(6)] > 1 and not remembers
            else "two retries of the failed charge, at once on both instances, both charged: each read the failed "
            "record and took the key over with a write that carries no condition. Release the claim (delete the "
            "record) when charge raises, so that a retry claims the key again with ONE conditional write "
            "(attribute_not_exists)"
            if x.charged[order(6)] > 1
            else "the failed charge left the key claimed, so the client's retry was refused: when charge raises, "
            "release the claim (delete the record) so the retry with the same key charges",
            key="failed_charge",
        )
    return report.verdict()
