"""The labs' checks: run the learner's code against the emulator, print what was met and missed, raise one error.

A check never asserts in silence. It prints a table (one row per expectation: met or missed, what it observed, a
hint for each miss) and then, if anything was missed, raises :class:`LabCheckFailed` naming the first thing to fix.
The error's name and message are stable (no ids, no timings), so CI can store it in a starter notebook and nbval can
prove that the starter fails for exactly that reason, and that the solution passes.

One ``check_*`` function per lab. Each takes the learner's code as a function, so tests can run the same check on
deliberately broken and fixed variants without executing notebooks.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from botocore.exceptions import ClientError

from helpers import progress
from helpers.aws.resources import Target
from helpers.idempotency.http import HttpRequest, HttpResponse
from helpers.instruments.faults import FaultPlan, WorkerCrashed
from helpers.instruments.ledger import Ledger
from helpers.services.http import LoopbackServer, read_body, send

MET, MISSED = "met", "MISSED"


_runs = itertools.count(1)


class LabCheckFailed(Exception):
    """A lab check found expectations missed. The message names the first one and how to fix it."""

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the table above already says everything else."""
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Expectation:
    what: str
    met: bool
    observed: str
    hint: str


@dataclass
class Report:
    """The expectations of one check, in the order a learner should work through them."""

    lab: str
    expectations: list[Expectation] = field(default_factory=list)

    def expect(self, what: str, met: bool, *, observed: str, hint: str) -> bool:
        self.expectations.append(Expectation(what, bool(met), observed, hint))
        return bool(met)

    @property
    def missed(self) -> list[Expectation]:
        return [e for e in self.expectations if not e.met]

    @property
    def passed(self) -> bool:
        return not self.missed

    def table(self) -> str:
        """Plain text, so it reads the same in JupyterLab, on GitHub and in a terminal."""
        width = max(len(e.what) for e in self.expectations)
        lines = [
            f"{self.lab}: {len(self.expectations) - len(self.missed)} of {len(self.expectations)} expectations met"
        ]
        for n, e in enumerate(self.expectations, 1):
            lines.append(f"  {n}. [{MET if e.met else MISSED:>6}] {e.what:<{width}}  observed: {e.observed}")
            if not e.met:
                lines.append(f"     {'':>8} hint: {e.hint}")
        return "\n".join(lines)

    def verdict(self) -> Report:
        """Print the table; raise LabCheckFailed naming the first miss, or say the lab is done."""
        print(self.table())
        progress.record_check(  # silent: the learner's "where am I" and, in a classroom, the instructor's board
            self.lab,
            met=len(self.expectations) - len(self.missed),
            total=len(self.expectations),
            first_miss=self.missed[0].what if self.missed else None,
        )
        if self.missed:
            first = self.missed[0]
            raise LabCheckFailed(
                f"{len(self.missed)} of {len(self.expectations)} expectations missed. Fix first: {first.what}. "
                f"Hint: {first.hint}",
                self,
            )
        print(f"All {len(self.expectations)} expectations met: {self.lab} is done.")
        return self


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else ('es' if word.endswith(('s', 'sh')) else 's')}"


# -- lab 01: the double-charging consumer -----------------------------------------------------------------------
Consumer = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class ConsumerScenario:
    """What the lab 01 check does to the consumer (the helper's choice of numbers, not AWS's)."""

    orders: int = 6
    crash_after: tuple[int, ...] = (1, 4)  # the worker crashes once right after charging these, before the delete
    sent_twice: tuple[int, ...] = (2, 5)  # the producer retried these after a lost response: two messages
    visibility_timeout_s: int = 1
    deadline_s: float = 30.0
    max_errors: int = 40  # then the check stops early: the table already says what is wrong


def check_double_charging_consumer(
    wb: Any, ledger: Ledger, make_consumer: Callable[[str], Consumer], scenario: ConsumerScenario | None = None
) -> Report:
    """Lab 01: one charge per order, whatever crashes and duplicate messages the queue delivers.

    ``make_consumer(worker)`` returns ``handle(message)`` for one SQS message. After a crash the check starts a NEW
    worker (``make_consumer`` again), as a restarted process would: memory does not survive a crash.
    """
    s = scenario or ConsumerScenario()
    run = next(_runs)
    sqs = wb.client("sqs")
    # A queue of its own per run, so a re-run never meets messages an interrupted run left in flight.
    queue = wb.resources.ensure_queue(f"orders-r{run}", visibility_timeout=s.visibility_timeout_s)
    ledger.clear()
    orders = {
        n: {"order_id": f"r{run}-order-{n}", "amount": 10 + n, "key": str(uuid.uuid4())} for n in range(1, s.orders + 1)
    }
    messages = 0
    for n, order in orders.items():
        for _ in range(2 if n in s.sent_twice else 1):
            sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(order))
            messages += 1
    # Each crash strikes once, at the first moment after the order's charge has landed: inside ledger.charge for a
    # consumer that calls it, after handle() returns for one whose charge is a write in a transaction.
    plan = FaultPlan.script({"crash_after_effect": {orders[n]["order_id"]: [1] for n in s.crash_after}})
    charge = ledger.charge

    def charge_then_maybe_crash(order_id: str, *args: Any, **kwargs: Any) -> str:
        charge_id = charge(order_id, *args, **kwargs)
        plan.after_effect(order_id)
        return charge_id

    workers = itertools.count(1)
    deleted, crashes = 0, 0
    errors: list[Any] = []
    deadline = time.monotonic() + s.deadline_s
    ledger.charge = charge_then_maybe_crash  # type: ignore[method-assign]
    try:
        handle = make_consumer(f"worker-{next(workers)}")
        while deleted < messages and time.monotonic() < deadline and len(errors) < s.max_errors:
            got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
            if not got:
                continue
            message = got[0]
            order_id = json.loads(message["Body"])["order_id"]
            try:
                handle(message)
                plan.after_effect(order_id)  # the crash: charged, not yet deleted
            except WorkerCrashed:
                crashes += 1
                handle = make_consumer(f"worker-{next(workers)}")  # a restarted process: fresh memory
                continue
            except Exception as exc:  # the learner's bug: the message stays, SQS redelivers it
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            deleted += 1
    finally:
        del ledger.charge  # the instance attribute goes; the method is back
        sqs.delete_queue(QueueUrl=queue.url)

    per_order = ledger.charges_per_order()
    count = {n: per_order.get(str(o["order_id"]), 0) for n, o in orders.items()}
    report = Report("Lab 01 · the double-charging consumer")
    uncharged = [n for n, c in count.items() if c == 0]
    report.expect(
        "every order is charged",
        not uncharged,
        observed=f"{s.orders - len(uncharged)} of {s.orders} orders charged",
        hint="the consumer must still charge each order once: do not drop messages it has not seen before",
    )
    crashed_twice = [n for n in s.crash_after if count[n] > 1]
    report.expect(
        "a crash between charge and delete does not charge again",
        not crashed_twice,
        observed=f"{_plural(len(crashed_twice), 'crashed order')} charged again on redelivery",
        hint="record the client's key in DynamoDB in the same transaction as the charge "
        "(Idempotency.execute_transactional); a set in memory dies with the worker",
    )
    sent_twice = [n for n in s.sent_twice if count[n] > 1]
    report.expect(
        "an order the producer sent twice is charged once",
        not sent_twice,
        observed=f"{_plural(len(sent_twice), 'order')} sent twice charged twice",
        hint="the two copies are two SQS messages with different MessageIds: key on the client's token in the "
        "body (order['key'])",
    )
    report.expect(
        "every message is deleted (the queue drains)",
        deleted == messages,
        observed=f"{deleted} of {messages} messages deleted (after {_plural(crashes, 'crash')})",
        hint="a duplicate must be acknowledged (return normally), not rejected: SQS would redeliver it forever",
    )
    report.expect(
        "the consumer raises no errors",
        not errors,
        observed=f"{_plural(len(errors), 'error')}" + (f", first: {errors[0][:80]}" if errors else ""),
        hint="a duplicate is not an error: answer it from the stored record",
    )
    return report.verdict()


# -- lab 02: the idempotent payment endpoint --------------------------------------------------------------------
Endpoint = Callable[[str, str, dict[str, str], bytes], HttpResponse]


class _Charger:
    """The payment itself (given to the learner): one ledger row per call; can hold one call to make it 'in flight'."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.hold_next = False
        self.started = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        body = request.json() or {}
        with self._lock:
            hold, self.hold_next = self.hold_next, False
        if hold:
            self.started.set()
            self.release.wait(timeout=10)
        charge_id = self.ledger.charge(
            body["orderId"], body["amount"], by="payments", key=request.header("Idempotency-Key") or ""
        )
        result = {"chargeId": charge_id, "orderId": body["orderId"], "amount": body["amount"], "status": "succeeded"}
        return HttpResponse(201, {"Content-Type": "application/json"}, json.dumps(result).encode())


class _Server(LoopbackServer):
    """The learner's endpoint behind a real HTTP server on 127.0.0.1."""

    methods = ("POST",)
    thread_name = "lab-endpoint"
    label = "the lab's endpoint"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.errors: list[str] = []

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        body = read_body(http)
        try:
            response = self.endpoint(http.command, http.path, dict(http.headers.items()), body)
        except Exception as exc:  # the learner's bug: a 500 the table reports
            self.errors.append(f"{type(exc).__name__}: {exc}")
            response = HttpResponse(500, {"Content-Type": "text/plain"}, str(exc).encode())
        send(http, response)

    def post(self, body: dict[str, Any], key: str | None) -> tuple[int, dict[str, str], bytes]:
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        url = f"{self.url}/charges"
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            url, data=json.dumps(body).encode(), method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - http://127.0.0.1 only
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


def check_payment_endpoint(
    ledger: Ledger, make_endpoint: Callable[[Callable[[HttpRequest], HttpResponse]], Endpoint]
) -> Report:
    """Lab 02: the IETF Idempotency-Key semantics, proven over real HTTP with the ledger counting charges.

    ``make_endpoint(charge)`` returns ``serve(method, path, headers, body) -> HttpResponse``; ``charge(request)`` is
    the payment (one ledger row per call) the endpoint must protect.
    """
    run = next(_runs)
    ledger.clear()
    charger = _Charger(ledger)
    report = Report("Lab 02 · the idempotent payment endpoint")

    def charges(order: str) -> int:
        return ledger.charges_per_order().get(order, 0)

    with _Server(make_endpoint(charger)) as api:
        key = str(uuid.uuid4())
        order: dict[str, Any] = {"orderId": f"r{run}-order-1", "amount": 25}
        first = api.post(order, key)
        report.expect(
            "a first request charges once and answers 201",
            first[0] == 201 and charges(order["orderId"]) == 1,
            observed=f"status {first[0]}, {_plural(charges(order['orderId']), 'charge')}",
            hint="let the first request with a key through to charge(request) and return its response",
        )
        again = api.post(order, key)  # the client's retry after a lost response
        replayed = again[1].get("Idempotent-Replayed") == "true"
        same = again[0] == first[0] and again[2] == first[2]
        report.expect(
            "a retry with the same key replays the first response without charging",
            same and replayed and charges(order["orderId"]) == 1,
            observed=f"status {again[0]}, same body: {same}, Idempotent-Replayed: {replayed}, "
            f"{_plural(charges(order['orderId']), 'charge')}",
            hint="store the first response under the key and send it back with Idempotent-Replayed: true "
            "(helpers.idempotency.handle_http does this)",
        )
        other = api.post({**order, "amount": 99}, key)
        report.expect(
            "the same key with another payload is refused with 422",
            other[0] == 422 and charges(order["orderId"]) == 1,
            observed=f"status {other[0]}, {_plural(charges(order['orderId']), 'charge')}",
            hint="keep a fingerprint of the first request (method, path, body) with the key and compare it",
        )

        slow_key = str(uuid.uuid4())
        slow: dict[str, Any] = {"orderId": f"r{run}-order-2", "amount": 40}
        charger.hold_next = True
        holder: dict[str, Any] = {}
        first_call = threading.Thread(target=lambda: holder.update(r=api.post(slow, slow_key)), daemon=True)
        first_call.start()
        in_flight = charger.started.wait(timeout=10)
        during = api.post(slow, slow_key) if in_flight else (0, {}, b"")
        charger.release.set()
        first_call.join(timeout=15)
        report.expect(
            "the same key while the first request is running is refused with 409",
            during[0] == 409 and charges(slow["orderId"]) == 1,
            observed=f"status {during[0]}, {_plural(charges(slow['orderId']), 'charge')} once both finished",
            hint="claim the key (IN_PROGRESS) before charging, with a conditional write; a second claim then fails",
        )
        missing = api.post({"orderId": f"r{run}-order-3", "amount": 5}, None)
        report.expect(
            "a request without Idempotency-Key is refused with 400",
            missing[0] == 400 and charges(f"r{run}-order-3") == 0,
            observed=f"status {missing[0]}, {_plural(charges(f'r{run}-order-3'), 'charge')}",
            hint="without a key the server cannot tell a retry from a new payment: refuse it before charging",
        )
        two = [api.post({"orderId": f"r{run}-order-4", "amount": 7}, str(uuid.uuid4()))[0] for _ in range(2)]
        report.expect(
            "two different keys are two payments",
            two == [201, 201] and charges(f"r{run}-order-4") == 2,
            observed=f"statuses {two}, {_plural(charges(f'r{run}-order-4'), 'charge')}",
            hint="the key, not the order id or the body, says what counts as the same request",
        )
        report.expect(
            "the endpoint raises no errors",
            not api.errors,
            observed=f"{_plural(len(api.errors), 'error')}" + (f", first: {api.errors[0][:80]}" if api.errors else ""),
            hint="return an HttpResponse for every request; handle_http turns store problems into 4xx/5xx for you",
        )
    return report.verdict()


# -- lab 04: route AU/NZ and big orders -------------------------------------------------------------------------
#: The orders the lab 04 check puts on the bus (label -> (detail-type, currency, price)); the helper's own examples.
ROUTING_EVENTS: dict[str, tuple[str, str, float]] = {
    "au-25": ("OrderCreated", "AU", 25),
    "nz-40": ("OrderCreated", "NZ", 40),
    "us-150": ("OrderCreated", "US", 150),
    "au-100": ("OrderCreated", "AU", 100),
    "gb-99.99": ("OrderCreated", "GB", 99.99),
    "nz-250": ("OrderCreated", "NZ", 250),
    "au-shipped": ("OrderShipped", "AU", 500),
}
#: Which rule must receive which events: the specification the learner's patterns implement.
ROUTING_EXPECTED: dict[str, list[str]] = {
    "au-nz": ["au-25", "nz-40", "au-100", "nz-250"],
    "big-orders": ["us-150", "au-100", "nz-250"],
}
ROUTING_HINTS = {
    "au-nz": "list every currency the rule is for; values in one array are ORed",
    "big-orders": "'100 or more' is >= 100, and a numeric bound is a JSON number (100), not a string",
}


def bare_values(pattern: Any, path: str = "") -> list[str]:
    """Paths whose value is neither an array nor an object: AWS's PutRule refuses them (values go in arrays)."""
    if not isinstance(pattern, dict):
        return [path or "(the pattern)"]
    found = []
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            found += bare_values(value, where)
        elif not isinstance(value, list):
            found.append(where)
    return found


def check_routing(wb: Any, rules: dict[str, Any]) -> Report:
    """Lab 04: the events x queues delivery matrix of the learner's rules, from real routing, against the spec.

    Every rule gets its own queue on a bus of its own (chapters.routing.Router). A pattern AWS would refuse is refused
    here on every backend with AWS's reason, because LocalStack accepts some of them and then matches nothing.
    """
    from helpers.chapters.routing import PatternRefused, Router, check_pattern, order_event

    run = next(_runs)
    report = Report("Lab 04 · route AU/NZ and big orders")
    refused: dict[str, str] = {}
    valid: dict[str, Any] = {}
    for rule in ROUTING_EXPECTED:
        pattern = rules.get(rule)
        if pattern is None:
            refused[rule] = "missing from RULES"
            continue
        bare = bare_values(pattern)
        try:
            if bare:
                raise PatternRefused(f"{bare[0]} is a bare value; AWS refuses it (values go in an array)")
            check_pattern(pattern)
        except PatternRefused as exc:
            refused[rule] = str(exc).split(". ")[0]
            continue
        valid[rule] = pattern
    events = {
        label: order_event({"order-id": label, "currency": cur, "price": price}, detail_type=kind)
        for label, (kind, cur, price) in ROUTING_EVENTS.items()
    }
    got: dict[str, list[str]] = {rule: [] for rule in ROUTING_EXPECTED}
    if valid:
        router = Router(wb.resources, bus=f"routing-r{run}")  # a bus of its own per run
        got.update(router.matrix(valid, events).matches)

    lines = [
        "delivery matrix (rows: queues; ok = as specified, MISSING = should have received it, EXTRA = should not):"
    ]
    width = max(len(e) for e in events)
    lines.append(f"  {'':<12}" + "".join(f"{e:>{width + 2}}" for e in events))
    for rule, expected in ROUTING_EXPECTED.items():
        cells = []
        for e in events:
            want, have = e in expected, e in got[rule]
            cells.append("ok" if want == have and have else "MISSING" if want else "EXTRA" if have else "-")
        lines.append(f"  {rule:<12}" + "".join(f"{c:>{width + 2}}" for c in cells))
    print("\n".join(lines))

    first_refusal = next(iter(refused.items()), None)
    report.expect(
        "every pattern is one AWS accepts",
        not refused,
        observed="all accepted"
        if first_refusal is None
        else f"{len(refused)} refused, first: {first_refusal[0]}: {first_refusal[1]}",
        hint="every value goes in an array ('currency': ['AU']); a numeric bound is a number ([\">=\", 100])",
    )
    for rule, expected in ROUTING_EXPECTED.items():
        missing = [e for e in expected if e not in got[rule]]
        extra = [e for e in got[rule] if e not in expected]
        observed = "as specified"
        if missing or extra:
            observed = ", ".join(
                part
                for part in (
                    f"missing {' '.join(missing)}" if missing else "",
                    f"extra {' '.join(extra)}" if extra else "",
                )
                if part
            )
        report.expect(
            f"{rule} receives exactly {', '.join(expected)}",
            not missing and not extra,
            observed=observed,
            hint=ROUTING_HINTS[rule],
        )
    return report.verdict()


# -- lab 03: the callback that waits forever --------------------------------------------------------------------
@dataclass(frozen=True)
class CallbackScenario:
    """What the lab 03 check asks of the workflow (the helper's numbers, scaled down from minutes to seconds)."""

    silent_deadline_s: int = 8  # a worker that never answers must be given up on within this
    worker_heartbeat_every_s: float = 1.0  # the slow worker says "still working" this often...
    worker_heartbeats: int = 3  # ...this many times, then answers: alive, just slow


def check_callback(
    wb: Any, make_definition: Callable[[str, str], dict[str, Any]], scenario: CallbackScenario | None = None
) -> Report:
    """Lab 03: a dead worker reaches the timeout and the compensation path in seconds; a live one is paid.

    ``make_definition(queue_url, orders_table)`` returns the ASL of the payment workflow: a
    ``sqs:sendMessage.waitForTaskToken`` task whose message carries ``orderId``, ``amount`` and ``taskToken``, and
    which writes the order's ``status`` (``PAID`` / ``CANCELLED``) to the orders table.
    """
    from helpers.chapters.orchestration import PaymentWorker
    from helpers.instruments.trace import Trace
    from helpers.services.stepfunctions import Runner, WorkflowTimeout

    s = scenario or CallbackScenario()
    run = next(_runs)
    resources = wb.resources
    queue = resources.ensure_queue(f"payment-requests-r{run}")
    table = resources.ensure_table("orders", partition_key="order_id")
    ddb = wb.client("dynamodb")
    report = Report("Lab 03 · the callback that waits forever")
    try:
        arn = resources.ensure_state_machine(f"payment-r{run}", make_definition(queue.url, table))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:120]}"
        report.expect(
            "the definition is accepted",
            False,
            observed=reason,
            hint="CreateStateMachine refused it: check every Next names a state, and the JSON shape of the ASL",
        )
        return report.verdict()
    runner = Runner(wb.backend, timeout=s.silent_deadline_s + 2 * s.worker_heartbeats * s.worker_heartbeat_every_s)
    worker = PaymentWorker(
        wb.backend,
        queue.url,
        Trace("lab03"),
        heartbeats=s.worker_heartbeats,
        heartbeat_every=s.worker_heartbeat_every_s,
    )

    def status(order: str) -> str:
        item = ddb.get_item(TableName=table, Key={"order_id": {"S": order}}, ConsistentRead=True).get("Item")
        return item["status"]["S"] if item else "no status"

    late: list[str] = []

    def answer(behaviour: str) -> None:
        """The worker: take the request, then answer as ``behaviour`` says; a refused call means the task had ended."""
        if behaviour == "slow":
            request = worker.take()
            for _ in range(s.worker_heartbeats):
                time.sleep(s.worker_heartbeat_every_s)
                # moto refuses a heartbeat for a task without HeartbeatSeconds: not a verdict, so not counted.
                with contextlib.suppress(ClientError):
                    worker.sfn.send_task_heartbeat(taskToken=request["taskToken"])
            try:
                worker.sfn.send_task_success(taskToken=request["taskToken"], output=json.dumps({"captured": 20}))
            except ClientError:
                late.append(request["orderId"])
        else:
            worker.handle(behaviour)

    def run_one(order: str, behaviour: str, within: float) -> str:
        execution = runner.start(arn, {"orderId": order, "amount": 20}, label=order)
        answer(behaviour)
        try:
            runner.wait(execution, timeout=within)
        except WorkflowTimeout:
            runner.sfn.stop_execution(executionArn=execution.arn, error="LabCheck", cause="still waiting")
            return "still RUNNING"
        return execution.status

    silent = run_one(f"r{run}-silent", "silent", s.silent_deadline_s)
    report.expect(
        f"a worker that never answers is given up on within {s.silent_deadline_s} s",
        silent != "still RUNNING",
        observed=f"execution {silent}",
        hint="give the task a HeartbeatSeconds (the longest silence you accept) and a TimeoutSeconds; "
        "the States Language sets no timeout by default",
    )
    report.expect(
        "... and its order is cancelled (the compensation path)",
        status(f"r{run}-silent") == "CANCELLED",
        observed=f"order {status(f'r{run}-silent')}",
        hint="add a Catch on the task (ErrorEquals States.ALL or States.Timeout) whose Next cancels the order",
    )
    declined = run_one(f"r{run}-declined", "decline", s.silent_deadline_s)
    report.expect(
        "a declined payment cancels the order",
        status(f"r{run}-declined") == "CANCELLED",
        observed=f"execution {declined}, order {status(f'r{run}-declined')}",
        hint="SendTaskFailure makes the task fail with the worker's error: the same Catch must handle it",
    )
    slow_total = s.worker_heartbeats * s.worker_heartbeat_every_s
    slow = run_one(f"r{run}-slow", "slow", s.silent_deadline_s + slow_total)
    report.expect(
        f"a slow worker that sends a heartbeat every {s.worker_heartbeat_every_s:g} s is paid",
        slow == "SUCCEEDED" and status(f"r{run}-slow") == "PAID",
        observed=f"execution {slow}, order {status(f'r{run}-slow')}"
        + (", its answer came after the task had ended" if late else ""),
        hint=f"HeartbeatSeconds must be longer than the gap between heartbeats ({s.worker_heartbeat_every_s:g} s), "
        f"TimeoutSeconds longer than the whole job ({slow_total:g} s)",
    )
    return report.verdict()


# -- lab 05: keys that survive the pipeline ---------------------------------------------------------------------
#: Which duplication source strikes which order (1-based); order 6 gets all of them. The helper's own script.
PIPELINE_FAULTS: dict[str, tuple[int, ...]] = {
    "putevents_retry": (2, 6),  # the orders service's PutEvents answer is lost: it publishes again (a new event id)
    "deliver_twice": (3, 6),  # SQS delivers the message twice
    "crash_after_effect": (4, 6),  # the consumer started the execution, then crashed before deleting the message
    "startexecution_retry": (5, 6),  # StartExecution's answer is lost: the SDK sends the same request again
}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def check_pipeline_keys(
    wb: Any, consumer_key: Callable[[dict[str, Any]], str], execution_name: Callable[[str], str], orders: int = 6
) -> Report:
    """Lab 05: one workflow execution per client key, with every duplication source of the path switched on.

    The path: the orders service publishes ``OrderCreated`` (the client's key in ``detail.metadata``) -> a rule -> an
    SQS queue -> the consumer, which starts a Step Functions execution named ``execution_name(consumer_key(event))``.
    The downstream effect counted is the execution: ListExecutions, per client key.
    """
    from helpers.chapters.routing import entry, order_event

    run = next(_runs)
    sqs, sfn, events_api = wb.client("sqs"), wb.client("stepfunctions"), wb.client("events")
    resources = wb.resources
    bus = resources.ensure_bus(f"orders-r{run}")
    queue = resources.ensure_queue(f"consumer-r{run}", visibility_timeout=30)
    rule = resources.ensure_rule(
        f"order-created-r{run}",
        bus=bus,
        pattern={"source": ["com.orders"], "detail-type": ["OrderCreated"]},
        targets=[Target("consumer", queue.arn)],
    )
    resources.allow_send_from(queue, rule, "events.amazonaws.com")
    machine = resources.ensure_state_machine(
        f"payment-r{run}", {"StartAt": "Charge", "States": {"Charge": {"Type": "Pass", "End": True}}}
    )
    struck = {n: {f for f, hit in PIPELINE_FAULTS.items() if n in hit} for n in range(1, orders + 1)}
    keys = {n: str(uuid.uuid4()) for n in range(1, orders + 1)}
    order_of = {k: n for n, k in keys.items()}
    bus_name = bus.rsplit("/", 1)[-1]
    published = 0
    for n, key in keys.items():
        event = order_event({"orderId": f"r{run}-o-{n}", "amount": 25}, metadata={"idempotency_key": key})
        for _ in range(2 if "putevents_retry" in struck[n] else 1):
            events_api.put_events(Entries=[entry(event, bus_name)])
            published += 1

    report = Report("Lab 05 · keys that survive the pipeline")
    errors: list[str] = []
    keys_seen: dict[int, set[str]] = {n: set() for n in keys}
    names_seen: dict[int, list[str]] = {n: [] for n in keys}
    copied: set[int] = set()
    crashed: set[int] = set()
    retried: set[int] = set()
    expected, done = published + sum(1 for n in keys if "deliver_twice" in struck[n]), 0
    deadline = time.monotonic() + 20
    while done < expected and time.monotonic() < deadline and len(errors) < 20:
        for message in sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            event = json.loads(message["Body"])
            n = order_of[event["detail"]["metadata"]["idempotency_key"]]
            if "deliver_twice" in struck[n] and n not in copied:
                copied.add(n)
                sqs.send_message(QueueUrl=queue.url, MessageBody=message["Body"])  # the service's second copy
            try:
                key = consumer_key(event)
                name = execution_name(key)
                keys_seen[n].add(str(key))
                names_seen[n].append(str(name))
                payload = json.dumps({"orderId": event["detail"]["data"]["orderId"], "key": str(key)})
                calls = 2 if "startexecution_retry" in struck[n] and n not in retried else 1
                retried.add(n)
                for _ in range(calls):
                    try:
                        sfn.start_execution(stateMachineArn=machine, name=name, input=payload)
                    except ClientError as exc:
                        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                            raise
            except Exception as exc:  # the learner's bug: the message stays and comes back
                errors.append(f"{type(exc).__name__}: {exc}")
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                continue
            if "crash_after_effect" in struck[n] and n not in crashed:
                crashed.add(n)  # crashed before DeleteMessage: the visibility timeout runs out (at once, here)
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                continue
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
            done += 1

    started: dict[int, int] = dict.fromkeys(keys, 0)
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for execution in page["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            key = json.loads(described["input"])["key"]
            found = order_of.get(key) or next((m for m, seen in keys_seen.items() if key in seen), None)
            if found is not None:
                started[found] += 1

    unstable = [n for n in keys if len(keys_seen[n]) > 1]
    report.expect(
        "the consumer's key is the client's key, the same for every copy of an order",
        not unstable,
        observed=f"{_plural(len(unstable), 'order')} gave different keys to their copies",
        hint="PutEvents gives each publish a new event id: read the client's key from detail.metadata",
    )
    repeat = [n for n in keys if len(set(names_seen[n])) > len(keys_seen[n])]
    bad = sorted({name for names in names_seen.values() for name in names if not _NAME.match(name)})
    report.expect(
        "the execution name is derived from the key: same key, same name",
        not repeat and not bad,
        observed=f"{_plural(len(repeat), 'key')} got different names"
        + (f", {_plural(len(bad), 'name')} Step Functions refuses" if bad else ""),
        hint="derive it (helpers.chapters.pipeline.derive_key(key, 'execution'), a UUIDv5); never uuid4() on a retry",
    )
    doubled = [n for n in keys if started[n] > 1]
    report.expect(
        "one execution per client key, with every fault on",
        not doubled,
        observed=f"{_plural(len(doubled), 'order')} started more than one execution "
        f"({_plural(sum(started.values()), 'execution')} for {orders} orders)",
        hint="a stable key and a name derived from it make StartExecution itself refuse the duplicate",
    )
    lost = [n for n in keys if started[n] == 0]
    report.expect(
        "every order starts its execution",
        not lost and not errors,
        observed=f"{_plural(len(lost), 'order')} without an execution"
        + (f"; {_plural(len(errors), 'error')}, first: {errors[0][:80]}" if errors else ""),
        hint="different orders need different keys, and consumer_key must not raise",
    )
    return report.verdict()
