"""Lab 03's check: an SQS consumer charges every order exactly once, whatever crashes and duplicates the queue brings.

The check runs the learner's consumer the way production runs it: in worker *processes* (forked, see
:mod:`helpers.labs.processes`), taking real messages from a real queue, with the charges counted in the ledger. It
creates the conditions that break the wrong versions, each on an order of its own:

==================  ==================================================================================================
order               what the check does to it
==================  ==================================================================================================
``crash_after``     the worker crashes right after the charge is written, before the message is deleted
``crash_before``    the worker crashes right before the charge is written (after whatever it did first)
``concurrent``      two copies of the message, handled by two workers at the same time
``concurrent_crash`` two copies at the same time; the first worker to reach the charge crashes right before it
``plain``           nothing: one delivery
``sent_again``      the producer sends a second copy after the first one was handled; the worker that handles it runs
                    half an hour later by its clock (``time.time``)
==================  ==================================================================================================

What makes each condition bite:

- a crash is ``os._exit`` in the worker's process, right before or after the AWS call that writes the order's row to
  the ledger table (whichever way the learner writes it: ``ledger.charge``, a ``put_item``, or a ``Put`` inside a
  transaction); no ``except`` can swallow it, and every scripted crash is counted (a crash that never happened is a
  miss, not a pass);
- the worker after a crash is a new process: nothing in memory survives, not even at module level;
- the two concurrent workers pass a barrier at their first write: neither writes anything until both have done
  their reads (or the other finished), so a check-then-write loses the race every time, not now and then;
- a producer's retry may come long after the first copy: the worker handling the second copy of ``sent_again`` runs
  ``later_s`` later by ``time.time`` (during that message only), so a record that expires with the lease
  (``expires_after`` of a few seconds) is gone by then;
- a message counts as acknowledged when ``handle`` returns; the check then reads the ledger: an acknowledgement
  before the order's charge is there is at-most-once delivery, whatever the final count says.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger
from helpers.labs.processes import (
    CRASH_EXIT,
    AwsCall,
    Channel,
    Child,
    captured_output,
    children,
    crash,
    install_gate,
    later_by,
    receive,
    start,
)
from helpers.labs.report import Report, plural
from helpers.labs.scratch import scratch

Consumer = Callable[[dict[str, Any]], Any]
LAB = "Lab 03 · the double-charging consumer"
_runs = itertools.count(1)

#: The orders of one run, in the order the table lists them (the helper's own script).
CASES: tuple[str, ...] = ("plain", "crash_after", "crash_before", "sent_again", "concurrent", "concurrent_crash")
CRASH_BEFORE = frozenset({"crash_before", "concurrent_crash"})
CRASH_AFTER = frozenset({"crash_after"})
PAIRS = frozenset({"concurrent", "concurrent_crash"})


@dataclass(frozen=True)
class ConsumerScenario:
    """The check's numbers (the helper's choice, not AWS's)."""

    retry_after_s: int = 1  # a message whose handle raised comes back after this (its visibility timeout)
    barrier_s: float = 3.0  # the first of two concurrent workers waits this long for the other at its first write
    handle_timeout_s: float = 8.0  # handle() must return within this
    deadline_s: float = 22.0  # every message must be finished within this
    max_errors: int = 80  # then the check stops early: the table already says what is wrong
    max_hangs: int = 2
    later_s: float = 1800.0  # the producer's second copy is handled this much later, by the worker's clock


@dataclass
class _Job:
    id: int
    case: str
    message: dict[str, Any]
    pair: bool
    child: Child
    started: float = field(default_factory=time.monotonic)
    arrived: bool = False  # at its first write (pairs only)
    waiting: int = 0  # the ask to answer when the barrier opens
    later: bool = False  # handled later by the worker's clock (the producer's second copy)


class _Gate:
    """In a worker process: the barrier at the first write, the crashes around the charge, the calls seen."""

    def __init__(self, channel: Channel, ledger_table: str, barrier_s: float) -> None:
        self.channel = channel
        self.table = ledger_table
        self.barrier_s = barrier_s
        self.job: dict[str, Any] | None = None
        self.passed_barrier = True
        self.ops: list[dict[str, Any]] = []

    def begin(self, job: dict[str, Any]) -> None:
        self.job, self.passed_barrier, self.ops = job, not job["pair"], []

    def before(self, call: AwsCall) -> None:
        if self.job is None:
            return  # make_consumer's own calls (creating a table) are not part of any message
        if call.writes_a_store and not self.passed_barrier:
            self.passed_barrier = True
            self.channel.ask("first-write", self.job["id"], timeout=self.barrier_s + 2)
        orders = call.strings_for(self.table, "order_id")
        if (
            orders
            and self.channel.ask("effect", {"job": self.job["id"], "orders": orders, "point": "before"}) == "crash"
        ):
            crash(self.channel, {"job": self.job["id"], "orders": orders, "point": "before"})

    def after(self, call: AwsCall, ok: bool) -> None:
        if self.job is None:
            return
        orders = call.strings_for(self.table, "order_id")
        self.ops.append(
            {
                "operation": call.operation,
                "writes": call.writes,
                "conditional": call.conditional,
                "charge": bool(orders),
                # a write anywhere but the ledger (or not to DynamoDB at all): a record of some kind
                "record": call.writes and (call.service != "dynamodb" or bool(call.tables_written() - {self.table})),
                "ok": ok,
            }
        )
        if self.job.get("later_s") and _record_of(call, self.table, self.job["key"]):
            # the late job writes a record named by the client's key: the first copy's record had expired
            self.ops.append(
                {"operation": call.operation, "writes": False, "conditional": False, "charge": False}
                | {"record": False, "ok": ok, "late_record_of_key": True}
            )
        if orders and ok:
            self.channel.tell("charged", {"job": self.job["id"], "orders": orders})
            if self.channel.ask("effect", {"job": self.job["id"], "orders": orders, "point": "after"}) == "crash":
                crash(self.channel, {"job": self.job["id"], "orders": orders, "point": "after"})


def _record_of(call: AwsCall, ledger_table: str, key: str) -> bool:
    """Does ``call`` write a record (to DynamoDB, anywhere but the ledger) that names the client's key?"""
    if call.service != "dynamodb" or not call.writes or not key:
        return False
    parts = [body for item in call.params.get("TransactItems", []) or [] for body in item.values()] or [call.params]
    return any(
        isinstance(body, dict) and body.get("TableName") != ledger_table and key in json.dumps(body, default=str)
        for body in parts
    )


def _count_local_locks(gate: _Gate, namespace: dict[str, Any]) -> None:
    """Note every file lock (fcntl.flock / fcntl.lockf / os.lockf) a message takes: it holds only on this machine, and
    the check's workers share one only because the check runs them side by side; workers on other hosts would not.

    ``namespace`` is where the learner's code looks names up: a name imported from ``fcntl`` into it (``from fcntl
    import flock``) is the original function, so it is replaced there too (in this forked worker only)."""
    import fcntl

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def lock(*args: Any, **kwargs: Any) -> Any:
            if gate.job is not None:
                gate.ops.append(
                    {"operation": fn.__name__, "local_lock": True, "writes": False, "conditional": False}
                    | {"charge": False, "record": False, "ok": True}
                )
            return fn(*args, **kwargs)

        return lock

    originals = [(fcntl, "flock"), (fcntl, "lockf")] + ([(os, "lockf")] if hasattr(os, "lockf") else [])
    replaced = {id(getattr(module, attr)): counted(getattr(module, attr)) for module, attr in originals}
    for module, attr in originals:
        setattr(module, attr, replaced[id(getattr(module, attr))])
    for key, value in list(namespace.items()):
        if callable(value) and id(value) in replaced:
            namespace[key] = replaced[id(value)]


def _worker(make_consumer: Callable[[str], Consumer], name: str, ledger_table: str, barrier_s: float) -> Any:
    def main(channel: Channel) -> None:
        gate = _Gate(channel, ledger_table, barrier_s)
        install_gate(gate)
        _count_local_locks(gate, getattr(make_consumer, "__globals__", {}))
        try:
            handle = make_consumer(name)
        except Exception as exc:
            channel.tell("setup-error", f"{type(exc).__name__}: {exc}"[:300])
            return
        while True:
            job = channel.next_job()
            if job is None or job.kind != "job":
                continue
            gate.begin(job.body)
            with later_by(float(job.body.get("later_s", 0))):
                try:
                    handle(job.body["message"])
                    ok, error = True, ""
                except Exception as exc:  # the message stays in the queue and comes back
                    ok, error = False, f"{type(exc).__name__}: {exc}"
            gate.job = None
            channel.tell(
                "done",
                {"job": job.body["id"], "ok": ok, "error": error[:300], "ops": gate.ops, "output": captured_output()},
            )

    return main


@dataclass
class _Run:
    """The parent's bookkeeping for one run of the check."""

    scenario: ConsumerScenario
    order_ids: dict[str, str]
    sent: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    seen_charges: Counter[str] = field(default_factory=Counter)
    effects: Counter[tuple[str, str]] = field(default_factory=Counter)
    crashes: list[tuple[str, str]] = field(default_factory=list)
    acked_uncharged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    setup_errors: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)
    paired: set[str] = field(default_factory=set)
    concurrent_seen: set[str] = field(default_factory=set)
    late_record_of_key: bool = False  # the late copy's worker wrote a record named by the client's key

    def case_of(self, order_id: str) -> str | None:
        return next((case for case, oid in self.order_ids.items() if oid == order_id), None)


def check_double_charging_consumer(
    wb: Any, ledger: Ledger, make_consumer: Callable[[str], Consumer], scenario: ConsumerScenario | None = None
) -> Report:
    """Lab 03: every order charged exactly once through crashes before and after the charge, concurrent copies and
    a producer's retry, with every worker a process of its own.

    ``make_consumer(worker)`` is called once in each worker process and returns ``handle(message)`` for one SQS
    message; returning means "done, delete it", raising means "not done, let it come back".
    """
    with scratch(wb) as resources:
        return _check_consumer(wb, resources, ledger, make_consumer, scenario)


def _check_consumer(
    wb: Any,
    resources: Resources,
    ledger: Ledger,
    make_consumer: Callable[[str], Consumer],
    scenario: ConsumerScenario | None,
) -> Report:
    s = scenario or ConsumerScenario()
    report = Report(LAB)
    run_n = next(_runs)
    sqs = wb.client("sqs")
    queue = resources.ensure_queue(f"orders-r{run_n}", visibility_timeout=30)
    ledger.clear()
    tag = uuid.uuid4().hex[:6]
    run = _Run(s, {case: f"r{run_n}{tag}-{case.replace('_', '-')}" for case in CASES})
    bodies = {
        case: {"order_id": oid, "amount": 10 + n, "key": str(uuid.uuid4())}
        for n, (case, oid) in enumerate(run.order_ids.items(), 1)
    }

    def send(case: str) -> None:
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(bodies[case]))
        run.sent[case] += 1

    for case in CASES:
        for _ in range(2 if case in PAIRS else 1):
            send(case)

    jobs: dict[int, _Job] = {}
    job_ids = itertools.count(1)
    worker_ids = itertools.count(1)
    pending: list[tuple[str, dict[str, Any]]] = []
    effects_seen: Counter[tuple[str, str]] = Counter()
    handled_by: dict[str, set[int]] = {}
    deadline = time.monotonic() + s.deadline_s

    def charged_now(case: str) -> bool:
        if run.seen_charges[case]:
            return True
        return ledger.charges_per_order().get(run.order_ids[case], 0) > 0

    with children() as workers:

        def new_worker() -> Child:
            name = f"worker-{next(worker_ids)}"
            child = start(name, _worker(make_consumer, name, ledger.table, s.barrier_s))
            workers.append(child)
            return child

        pool = [new_worker(), new_worker()]

        def idle() -> list[Child]:
            busy = {job.child.pid for job in jobs.values()}
            return [c for c in pool if c.alive and c.pid not in busy]

        def dispatch(child: Child, case: str, message: dict[str, Any], pair: bool) -> None:
            job = _Job(next(job_ids), case, message, pair, child)
            jobs[job.id] = job
            # The producer's second copy (sent once the first was handled) is handled later by the worker's clock.
            later = s.later_s if case == "sent_again" and run.finished[case] else 0.0
            job.later = bool(later)
            key = str(bodies[case]["key"])
            child.post("job", {"id": job.id, "message": message, "pair": pair, "later_s": later, "key": key})

        def replace(child: Child) -> None:
            child.kill()
            if child in pool:
                pool[pool.index(child)] = new_worker()

        def come_back(job: _Job, seconds: int) -> None:
            with contextlib.suppress(Exception):
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=job.message["ReceiptHandle"], VisibilityTimeout=seconds
                )

        def open_barrier(job: _Job) -> None:
            partner = next((j for j in jobs.values() if j.pair and j.case == job.case and j.id != job.id), None)
            if partner is None or partner.arrived:
                for waiting in (job, partner):
                    if waiting is not None and waiting.waiting:
                        waiting.child.answer(waiting.waiting, "go")
                        waiting.waiting = 0

        def finish(job: _Job) -> None:
            jobs.pop(job.id, None)
            partner = next((j for j in jobs.values() if j.pair and j.case == job.case), None)
            if partner is not None and partner.waiting:
                partner.child.answer(partner.waiting, "go")
                partner.waiting = 0

        last_poll = 0.0
        while time.monotonic() < deadline:
            if run.sent["sent_again"] == 2 and sum(run.finished.values()) >= sum(run.sent.values()):
                break
            if len(run.errors) >= s.max_errors or len(run.hangs) >= s.max_hangs or len(run.setup_errors) >= 3:
                break
            now = time.monotonic()
            if now - last_poll > 0.1 and idle():
                last_poll = now
                got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                for message in got.get("Messages", []):
                    case = run.case_of(json.loads(message["Body"])["order_id"]) or "plain"
                    pending.append((case, message))
            # Two copies of a pair's order go out together, to two workers, the first time they are delivered.
            for case in PAIRS - run.paired:
                copies = [(c, m) for c, m in pending if c == case]
                free = idle()
                if len(copies) >= 2 and len(free) >= 2:
                    for (c, m), child in zip(copies[:2], free[:2], strict=True):
                        pending.remove((c, m))
                        dispatch(child, c, m, pair=True)
                    run.paired.add(case)
                    run.concurrent_seen.add(case)
            for c, m in list(pending):
                if c in PAIRS and c not in run.paired:
                    continue
                # The producer's second copy goes to a worker that did not handle the first (any worker could).
                free = [w for w in idle() if w.pid not in handled_by.get(c, set())] or (
                    idle() if c not in handled_by or time.monotonic() > deadline - s.deadline_s / 2 else []
                )
                if not free:
                    continue
                pending.remove((c, m))
                dispatch(free[0], c, m, pair=False)

            for child, message in receive(pool, 0.05):
                job = next((j for j in jobs.values() if j.child is child), None)
                if message.kind == "first-write" and job is not None:
                    job.arrived, job.waiting = True, message.ask
                    open_barrier(job)
                elif message.kind == "effect":
                    body = message.body
                    verdict = "go"
                    for order_id in body["orders"]:
                        hit = run.case_of(order_id)
                        if hit is None:
                            continue
                        effects_seen[(hit, body["point"])] += 1
                        first = effects_seen[(hit, body["point"])] == 1
                        crashing = CRASH_BEFORE if body["point"] == "before" else CRASH_AFTER
                        if first and hit in crashing:
                            verdict = "crash"
                    child.answer(message.ask, verdict)
                elif message.kind == "charged":
                    for order_id in message.body["orders"]:
                        hit = run.case_of(order_id)
                        if hit is not None:
                            run.seen_charges[hit] += 1
                elif message.kind == "crash":
                    for order_id in message.body["orders"]:
                        hit = run.case_of(order_id)
                        if hit is not None:
                            run.crashes.append((hit, message.body["point"]))
                elif message.kind == "setup-error":
                    run.setup_errors.append(str(message.body))
                elif message.kind == "done" and job is not None:
                    body = message.body
                    run.ops += body["ops"]
                    run.late_record_of_key |= job.later and any(op.get("late_record_of_key") for op in body["ops"])
                    if body["output"]:
                        run.output.append(f"[{child.name}] {body['output'].rstrip()}")
                    if body["ok"]:
                        if not charged_now(job.case):
                            run.acked_uncharged.append(job.case)
                        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=job.message["ReceiptHandle"])
                        run.finished[job.case] += 1
                        if job.case == "sent_again" and run.sent["sent_again"] == 1:
                            handled_by["sent_again"] = {child.pid}
                            send("sent_again")  # the producer's retry, after the first copy was handled
                    else:
                        run.errors.append(body["error"])
                        come_back(job, s.retry_after_s)
                    finish(job)
                elif message.kind == "exit":
                    if job is not None:
                        crashed = message.body == CRASH_EXIT
                        if not crashed:
                            run.exits.append(f"{child.name} ended with status {message.body} while handling a message")
                        come_back(job, 0)  # the visibility timeout of a dead worker's message runs out (at once, here)
                        finish(job)
                    replace(child)
            now = time.monotonic()
            for job in list(jobs.values()):
                if job.waiting and now - job.started > s.barrier_s:
                    job.child.answer(job.waiting, "go")
                    job.waiting = 0
                if now - job.started > s.handle_timeout_s:
                    run.hangs.append(job.case)
                    come_back(job, 0)
                    finish(job)
                    replace(job.child)

    for line in run.output:
        print(line)
    return _verdict(report, run, ledger)


def _verdict(report: Report, run: _Run, ledger: Ledger) -> Report:
    s = run.scenario
    rows = ledger.charges_per_order()
    count = {case: max(rows.get(oid, 0), run.seen_charges[case]) for case, oid in run.order_ids.items()}
    records = [op for op in run.ops if op["record"]]
    charges = [op for op in run.ops if op["charge"]]
    kept_no_record = not records
    unconditional = bool(records) and not any(op["conditional"] for op in run.ops if op["writes"])
    separate_charge = any(op["operation"] != "TransactWriteItems" for op in charges)

    memory = (
        "a new worker process remembers nothing of the one before it, and two workers share no memory: a set or a "
        "dict, even at module level, is not a record. Keep a record per client key (order['key']) in DynamoDB"
    )
    race = (
        "both workers read 'not seen' before either one wrote (check, then write): claim the key with ONE "
        "conditional write (attribute_not_exists) before charging, as helpers.idempotency does"
    )
    if kept_no_record:
        race = memory
    elif unconditional:
        race = "your writes carry no condition, so both workers' writes succeed: " + race
    gap = (
        "the charge and the record that marks the key done are two writes: the crash between them left the key in "
        "progress, and the redelivery charged again once its lease ran out. Write the charge and the record in one "
        "transaction: Idempotency.execute_transactional with ledger.put_item_request"
    )
    crash_after_hint = memory if kept_no_record else gap if separate_charge else race
    at_most_once = (
        "the key was claimed, then the worker died before charging, and every later delivery took the claim for "
        "'done' (at most once). A claim needs a lease that expires (lease_duration), and an in-progress duplicate "
        "must raise so its message comes back, never return"
    )

    acked = set(run.acked_uncharged)
    lease = (
        f"its message never finished: the key stayed claimed (in progress) until the check's {s.deadline_s:g} s ran "
        "out. A crashed worker's claim must expire soon enough to be retried: use a lease of a few seconds "
        "(lease_duration=5)"
    )

    def state(case: str) -> tuple[bool, str, str]:
        """(exactly once and finished, what was observed, which hint: once / twice / never / unfinished)."""
        n, unfinished = count[case], run.finished[case] < run.sent[case]
        seen = "charged once" if n == 1 else f"charged {plural(n, 'time')}"
        if n > 1:
            return False, seen, "twice"
        if n == 0:
            return False, seen + (", its message acknowledged" if case in acked else ""), "never"
        if unfinished:
            return False, seen + ", but its message never finished", "unfinished"
        return True, seen, "once"

    local_lock = any(op.get("local_lock") for op in run.ops)

    def expect(case: str, what: str, hints: dict[str, str], *, concurrent: bool = False) -> None:
        ok, seen, which = state(case)
        if concurrent and case not in run.concurrent_seen:
            ok, seen = False, "the two copies never ran at the same time"
        never = at_most_once if case in acked or not run.errors else lease
        hint = {"never": never, "unfinished": gap if separate_charge else lease, **hints}.get(which, race)
        if concurrent and ok and local_lock:
            ok, seen = False, seen + ", but only a file lock (fcntl) on this machine kept the workers apart"
            hint = (
                "a file lock holds only on one machine: workers on other hosts (other containers, Lambda instances) "
                "never see it, and read 'not charged' side by side. Claim the key with ONE conditional write in "
                "DynamoDB (attribute_not_exists), as helpers.idempotency does"
            )
        report.expect(what, ok, observed=seen, hint=hint, key=case)

    expect(
        "plain",
        "an order delivered once is charged once",
        {"never": "handle(message) must charge the order (ledger.charge or ledger.put_item_request), then return"},
    )
    expect(
        "crash_after",
        "a crash right after the charge: the redelivery does not charge again",
        {"twice": crash_after_hint},
    )
    expect("crash_before", "a crash right before the charge: the redelivery still charges, once", {})
    expect(
        "sent_again",
        "the producer's second message for an order is not charged again",
        {
            "twice": memory
            if kept_no_record
            else race
            if unconditional
            else f"the producer's second message came {s.later_s / 60:g} minutes after the first, and the record of "
            "the key had expired by then, so it was charged again: expires_after is how long a key is remembered "
            "(hours, as long as a producer may retry), not the lease of a claim (lease_duration)"
            if run.late_record_of_key
            else "the two copies are two SQS messages with different MessageIds: key on the client's token in the "
            "body (order['key'])"
        },
    )
    expect("concurrent", "two copies handled by two workers at the same time: charged once", {}, concurrent=True)
    expect(
        "concurrent_crash",
        "two copies at once, the first crashing before its charge: charged once",
        {},
        concurrent=True,
    )
    early = sorted(set(run.acked_uncharged), key=CASES.index)
    report.expect(
        "a message is acknowledged only after its order is charged",
        not early,
        observed="always"
        if not early
        else f"{plural(len(run.acked_uncharged), 'message')} acknowledged before any charge ({', '.join(early)})",
        hint="handle returned for a message whose order was not charged yet (another worker held the claim, or had "
        "crashed holding it): an in-progress duplicate must raise, so the message comes back, never return as done",
        key="ack_after_charge",
    )
    scripted = [(case, "before") for case in CASES if case in CRASH_BEFORE] + [
        (case, "after") for case in CASES if case in CRASH_AFTER
    ]
    happened = [c for c in scripted if c in run.crashes]
    missing = [f"{case} ({point})" for case, point in scripted if (case, point) not in run.crashes]
    report.expect(
        f"every scripted crash happened ({len(scripted)} of {len(scripted)})",
        not missing,
        observed=f"{len(happened)} of {len(scripted)} crashes happened"
        + (f"; never reached the charge: {', '.join(missing)}" if missing else ""),
        hint="the check crashes a worker right before or right after it writes the order's charge to the ledger "
        "table; these orders never got there: charge with ledger.charge(...) or a ledger.put_item_request(...) "
        "in a transaction",
        key="crashes_happened",
    )
    total, done = sum(run.sent.values()), sum(run.finished.values())
    problem = ""
    hint = "a message must end: return when it is done (a duplicate is done), raise only to have it come back"
    if run.setup_errors:
        problem = f"; make_consumer raised: {run.setup_errors[0][:100]}"
        hint = "make_consumer(worker) must build the worker's handle without raising"
    elif run.hangs:
        problem = f"; handle did not return within {s.handle_timeout_s:g} s ({', '.join(run.hangs)})"
        hint = (
            f"handle must return or raise within {s.handle_timeout_s:g} s: something in it waits without end "
            "(a lock, a loop polling a record, a wait with no timeout)"
        )
    elif run.exits:
        problem = f"; {run.exits[0]}"
        hint = "handle ended its process (sys.exit, os._exit, a BaseException): raise an ordinary exception instead"
    elif done < total and run.errors:
        problem = f"; it kept raising, first: {run.errors[0][:100]}"
    report.expect(
        f"every message is finished within {s.deadline_s:g} s (the queue drains)",
        done >= total and not run.hangs and not run.setup_errors,
        observed=f"{done} of {total} messages finished{problem}",
        hint=hint,
        key="drained",
    )
    return report.verdict()
