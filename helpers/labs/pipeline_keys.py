"""Lab 05's check: a consumer key and an execution name that give one Step Functions execution per client request,
with every duplication source of the path on, in any process.

The path: the orders service publishes ``OrderCreated`` (the client's key in ``detail.metadata``) -> a rule -> an SQS
queue -> the consumer, which starts an execution named ``execution_name(consumer_key(event))``. The effect counted is
the execution (ListExecutions, per client request). What the check does, and why:

- the orders service's PutEvents is retried: a new event ``id`` and a **later** ``time`` (a key that hashes the
  envelope changes);
- SQS delivers a message twice, and the second copy is handled by **another consumer process**;
- the consumer crashes after StartExecution and before DeleteMessage; the redelivery is handled by the **restarted
  consumer**, a fresh interpreter (another ``hash()`` seed, no memory of the old one);
- StartExecution's answer is lost and the SDK sends the same request again;
- two **different client requests for the same order** (same order id and content, two client keys) must both take
  effect;
- client keys are any string the client chose: two of them are long, contain ``/`` and differ only in the middle,
  and only in case, with more than 80 characters alike on either side (a lower-cased key merges them; a name cut
  from the key, from its start or from its end, or the key itself, fails on them);
- every event's key and name are also computed in two fresh interpreters and compared with the notebook's; the one
  playing the restarted consumer runs a day later by its clock (a message can wait in a queue for days).

Fresh interpreters rebuild the learner's two functions from the cell that defined them (:mod:`helpers.labs.fresh`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Resources, Target
from helpers.labs.fresh import Call, RebuildFailed, call_in_fresh_interpreter
from helpers.labs.processes import LearnerTimeout, call_bounded
from helpers.labs.report import Report, plural
from helpers.labs.scratch import scratch

LAB = "Lab 05 · keys that survive the pipeline"
_runs = itertools.count(1)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

#: Which duplication source strikes which client request (the helper's own script); request 6 gets all of them,
#: requests 7 and 8 are two client requests for the same order.
PIPELINE_FAULTS: dict[str, tuple[int, ...]] = {
    "putevents_retry": (2, 6),  # the PutEvents answer is lost: published again, new event id, later time
    "deliver_twice": (3, 6),  # SQS delivers the message twice; another consumer process handles the second copy
    "crash_after_effect": (4, 6),  # crash after StartExecution, before DeleteMessage; a restarted consumer takes over
    "startexecution_retry": (5, 6),  # StartExecution's answer is lost: the SDK sends the same request again
}
REQUESTS = 8
SAME_ORDER = (7, 8)


@dataclass(frozen=True)
class PipelineScenario:
    retry_later_s: float = 3.0  # the retried PutEvents carries a time this much later
    deadline_s: float = 20.0  # every message must be finished within this
    fresh_timeout_s: float = 10.0  # a fresh interpreter must answer within this (it takes about 1 s)
    max_errors: int = 20
    call_timeout_s: float = 5.0  # consumer_key and execution_name must return within this
    restart_later_s: float = 26 * 3600  # the restarted consumer runs this much later (a message may wait for days)


def _diagnose_key(consumer_key: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> str:
    """Why the key changed between copies: try the copy's differences one at a time."""
    for field, value, why in (
        (
            "id",
            str(uuid.uuid4()),
            "the key changes with the event id, and every PutEvents (a retry too) gets a new one",
        ),
        ("time", "2030-01-01T00:00:00Z", "the key changes with the event's time, and a retried PutEvents is later"),
    ):
        with contextlib.suppress(Exception):
            changed = call_bounded(consumer_key, {**event, field: value}, timeout=5, what="consumer_key")
            if str(changed) != str(call_bounded(consumer_key, event, timeout=5, what="consumer_key")):
                return why
    return "the key differs between copies of one client request"


def check_pipeline_keys(
    wb: Any,
    consumer_key: Callable[[dict[str, Any]], str],
    execution_name: Callable[[str], str],
    scenario: PipelineScenario | None = None,
) -> Report:
    """Lab 05: one workflow execution per client request, with every duplication source of the path on and the
    consumer's functions run in fresh processes too."""
    with scratch(wb) as resources:
        return _check_pipeline_keys(wb, resources, consumer_key, execution_name, scenario)


def _check_pipeline_keys(
    wb: Any,
    resources: Resources,
    consumer_key: Callable[[dict[str, Any]], str],
    execution_name: Callable[[str], str],
    scenario: PipelineScenario | None,
) -> Report:
    from helpers.chapters.routing import entry, order_event

    s = scenario or PipelineScenario()
    report = Report(LAB)
    run = f"r{next(_runs)}{uuid.uuid4().hex[:4]}"
    sqs, sfn, events_api = wb.client("sqs"), wb.client("stepfunctions"), wb.client("events")
    bus = resources.ensure_bus(f"orders-{run}")
    queue = resources.ensure_queue(f"consumer-{run}", visibility_timeout=30)
    rule = resources.ensure_rule(
        f"order-created-{run}",
        bus=bus,
        pattern={"source": ["com.orders"], "detail-type": ["OrderCreated"]},
        targets=[Target("consumer", queue.arn)],
    )
    resources.allow_send_from(queue, rule, "events.amazonaws.com")
    machine = resources.ensure_state_machine(
        f"payment-{run}", {"StartAt": "Charge", "States": {"Charge": {"Type": "Pass", "End": True}}}
    )
    struck = {n: {f for f, hit in PIPELINE_FAULTS.items() if n in hit} for n in range(1, REQUESTS + 1)}
    client_keys = {n: str(uuid.uuid4()) for n in range(1, REQUESTS + 1)}
    # A client's key is any string it chose, not always a UUID: the two requests for the same order come from a
    # client whose keys are long, contain '/' and differ only in the middle, and only in case, with more than 80
    # characters alike on either side (a key cut to fit, from its start or from its end, lower-cased, or used as the
    # name as it is, fails on them).
    checkout, cart = f"checkout/{uuid.uuid4()}/{uuid.uuid4()}", f"{uuid.uuid4()}/{uuid.uuid4()}/payment"
    client_keys.update({n: f"{checkout}/attempt-{c}/{cart}" for c, n in zip("xX", SAME_ORDER, strict=True)})
    request_of = {k: n for n, k in client_keys.items()}
    bus_name = bus.rsplit("/", 1)[-1]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    published = 0
    for n, key in client_keys.items():
        order = f"{run}-o-{7 if n in SAME_ORDER else n}"
        event = order_event({"order-id": order, "amount": 25}, metadata={"idempotency-key": key})
        for attempt in range(2 if "putevents_retry" in struck[n] else 1):
            put = {**entry(event, bus_name), "Time": now + dt.timedelta(seconds=attempt * s.retry_later_s)}
            events_api.put_events(Entries=[put])
            published += 1

    # Every copy the queue holds, read once (kept in flight), so the fresh interpreters can see every event.
    bodies: dict[str, int] = {}
    first: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(first) < published and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            first.append(message)
            body = json.loads(message["Body"])
            bodies[message["Body"]] = request_of[body["detail"]["metadata"]["idempotency-key"]]

    # The same events in two fresh interpreters with other hash() seeds: the restarted consumer (a day later, by
    # its clock) and another instance (now).
    functions: dict[str, Callable[..., Any]] = {"key": consumer_key, "name": execution_name}
    fresh: list[dict[str, tuple[str, str]]] = [{}, {}]
    rebuild_error = ""

    def compute(seed: int) -> dict[str, tuple[str, str]]:
        texts = list(bodies)
        later = s.restart_later_s if seed == 1 else 0.0
        keys = call_in_fresh_interpreter(
            functions,
            [Call("key", json.loads(t)) for t in texts],
            hash_seed=seed,
            timeout=s.fresh_timeout_s,
            clock_shift_s=later,
        )
        names = call_in_fresh_interpreter(
            functions,
            [Call("name", k.get("value", "")) for k in keys],
            hash_seed=seed,
            timeout=s.fresh_timeout_s,
            clock_shift_s=later,
        )
        failed = next((r["error"] for r in [*keys, *names] if "error" in r), "")
        if failed:
            raise RebuildFailed(f"in a fresh interpreter your function raised {failed[:160]}")
        return {t: (k["value"], m["value"]) for t, k, m in zip(texts, keys, names, strict=True)}

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            fresh = list(pool.map(compute, (1, 2)))
    except RebuildFailed as exc:
        rebuild_error = str(exc)

    errors: list[str] = []
    here: dict[str, tuple[str, str]] = {}
    keys_seen: dict[int, set[str]] = {n: set() for n in client_keys}
    names_by_key: dict[str, set[str]] = {}
    bad_names: set[str] = set()
    handled: set[str] = set()
    copied: set[int] = set()
    crashed: set[int] = set()
    retried: set[int] = set()
    second_copies: dict[int, str] = {}
    expected = published + sum(1 for n in client_keys if "deliver_twice" in struck[n])
    done = 0

    def in_process(text: str) -> tuple[str, str]:
        if text not in here:
            key = str(call_bounded(consumer_key, json.loads(text), timeout=s.call_timeout_s, what="consumer_key"))
            here[text] = (key, str(call_bounded(execution_name, key, timeout=s.call_timeout_s, what="execution_name")))
        return here[text]

    def handle(message: dict[str, Any]) -> bool:
        """The consumer: True when the message may be deleted."""
        text = message["Body"]
        n = bodies.get(text) or request_of[json.loads(text)["detail"]["metadata"]["idempotency-key"]]
        if "deliver_twice" in struck[n] and n not in copied:
            copied.add(n)
            second_copies[n] = sqs.send_message(QueueUrl=queue.url, MessageBody=text)["MessageId"]
        if text in handled and fresh[0]:
            key, name = fresh[0][text]  # the restarted consumer: a fresh interpreter
        elif second_copies.get(n) == message["MessageId"] and fresh[1]:
            key, name = fresh[1][text]  # another consumer process took the second copy
        else:
            key, name = in_process(text)
        handled.add(text)
        keys_seen[n].add(key)
        names_by_key.setdefault(key, set()).add(name)
        if not _NAME.match(name):
            bad_names.add(name)
            raise ValueError(f"Step Functions refuses the execution name {name[:40]!r}")
        payload = json.dumps({"orderId": json.loads(text)["detail"]["data"]["order-id"], "key": key})
        for _ in range(2 if "startexecution_retry" in struck[n] and n not in retried else 1):
            try:
                sfn.start_execution(stateMachineArn=machine, name=name, input=payload)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                    raise
        retried.add(n)
        if "crash_after_effect" in struck[n] and n not in crashed:
            crashed.add(n)
            return False
        return True

    pending = list(first)
    deadline = time.monotonic() + s.deadline_s
    hung: list[str] = []
    while done < expected and time.monotonic() < deadline and len(errors) < s.max_errors and not hung:
        if not pending:
            pending = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
        while pending:
            message = pending.pop(0)
            try:
                finished = handle(message)
            except LearnerTimeout as exc:  # the learner's function hangs: stop feeding it
                errors.append(str(exc))
                hung.append(str(exc))
                pending.clear()
                break
            except Exception as exc:  # the learner's bug: the message comes back
                errors.append(f"{type(exc).__name__}: {exc}")
                finished = False
            if finished:
                sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
                done += 1
            else:  # crashed before DeleteMessage: the visibility timeout runs out (at once, here)
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )

    started: dict[int, int] = dict.fromkeys(client_keys, 0)
    key_owner = {k: n for n, ks in keys_seen.items() for k in ks}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for execution in page["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            owner = key_owner.get(json.loads(described["input"])["key"])
            if owner is not None:
                started[owner] += 1

    def known(text: str) -> tuple[str, str] | None:
        """The key and name computed here, or None when the functions raise or hang on this event."""
        if hung:
            return here.get(text)
        try:
            return in_process(text)
        except LearnerTimeout as exc:
            hung.append(str(exc))
        except Exception:
            return None  # a learner's error: reported under "every client request"
        return None

    # 1. the key, across the copies of one client request (in this process)
    texts_of = {n: [t for t, m in bodies.items() if m == n] for n in client_keys}
    unstable = [n for n, texts in texts_of.items() if len({k[0] for t in texts if (k := known(t))}) > 1]
    why = "the key differs between copies of one client request"
    if unstable and not hung:
        why = _diagnose_key(consumer_key, json.loads(texts_of[unstable[0]][0]))
    report.expect(
        "the consumer's key is the same for every copy of a client request",
        not unstable,
        observed="the same for every copy"
        if not unstable
        else f"{plural(len(unstable), 'request')} gave different keys to their copies (a retried PutEvents: new id, "
        "later time)",
        hint=f"{why}: read the client's key from detail.metadata.idempotency-key",
        key="stable_key",
    )
    # 2. the key and the name, across processes
    computed = {t: k for t in bodies if (k := known(t))}
    differ_key = [t for t, k in computed.items() if fresh[0] and any(f[t][0] != k[0] for f in fresh)]
    differ_name = [t for t, k in computed.items() if fresh[0] and any(f[t][1] != k[1] for f in fresh)]
    if rebuild_error:
        observed = rebuild_error
        hint = (
            "the check runs your two functions again in fresh interpreters (the way a restarted consumer would): "
            "keep them, and what they use, in their own cell, and let them need no AWS"
        )
    elif differ_key or differ_name:
        observed = (
            f"{plural(len(differ_key), 'event')} got another key, {plural(len(differ_name), 'event')} another name "
            "in a fresh interpreter"
        )
        by_clock = all(
            fresh[0][t] != k and fresh[1][t] == k for t, k in computed.items() if t in differ_key + differ_name
        )
        hint = (
            "the key or name changes with the clock: the restarted consumer ran a day later (a message can wait in "
            "the queue for days) and got another one. Derive the name from the key alone, with no date or time in it"
            if by_clock
            else "a value that lives only in this process is not a key: Python's hash() is salted per process "
            "(PYTHONHASHSEED), and a name remembered in memory (a dict of uuid4s) is gone after a restart. Derive the "
            "name from the key alone (a UUIDv5 or a SHA-256 of it)"
        )
    else:
        observed, hint = "the same in two fresh interpreters", ""
    report.expect(
        "the same event gives the same key and name in another process (a restart, a second consumer)",
        not rebuild_error and not differ_key and not differ_name,
        observed=observed,
        hint=hint,
        key="same_in_any_process",
    )
    # 3. the name, from the key
    twice: list[str] = []
    with contextlib.suppress(Exception):
        if not hung:
            twice = [
                k
                for k in names_by_key
                if str(call_bounded(execution_name, k, timeout=s.call_timeout_s, what="execution_name"))
                != str(call_bounded(execution_name, k, timeout=s.call_timeout_s, what="execution_name"))
            ]
    report.expect(
        "the execution name is derived from the key: same key, same name, one Step Functions accepts",
        not twice and not bad_names,
        observed=f"{plural(len(twice), 'key')} got two names in one process"
        + (f", {plural(len(bad_names), 'name')} Step Functions refuses" if bad_names else ""),
        hint="a name Step Functions refuses: 1 to 80 characters, letters, digits, - and _"
        if bad_names and not twice
        else "derive it from the key (helpers.chapters.pipeline.derive_key(key, 'execution'), a UUIDv5); "
        "never uuid4() on a retry",
        key="stable_name",
    )
    doubled = [n for n in client_keys if started[n] > 1]
    report.expect(
        "one execution per client request, with every fault on",
        not doubled,
        observed=f"{plural(len(doubled), 'request')} started more than one execution"
        if doubled
        else "one each at most",
        hint="a stable key and a name derived from it make StartExecution itself refuse the duplicate",
        key="one_execution",
    )
    a, b = SAME_ORDER
    merged = bool(keys_seen[a] & keys_seen[b])
    # Merged because the key was lower-cased (the client's key is in it, in lower case), not because it is the order's?
    cased = merged and any(client_keys[a].lower() in k for k in keys_seen[a] & keys_seen[b])
    report.expect(
        "two client requests for the same order both take effect",
        not merged and started[a] == 1 and started[b] == 1,
        observed="one key for both" if merged else f"{started[a]} and {started[b]} executions",
        hint="two client keys that differ only in case got one key: a key is compared exactly, so they are two "
        "requests. Use the client's key as it is (do not lower() or strip it)"
        if cased
        else "two client requests with the same order id and content got one key: the order is not the request. "
        "Key on the client's idempotency key (detail.metadata.idempotency-key)"
        if merged
        else "each of the two requests must start an execution of its own: see what stopped them above",
        key="both_requests",
    )
    lost = [n for n in client_keys if started[n] == 0]
    owner_of_name: dict[str, str] = {}
    shared_name = any(owner_of_name.setdefault(m, k) != k for k, ms in names_by_key.items() for m in ms)
    report.expect(
        "every client request starts its execution",
        not lost and not errors,
        observed=f"{plural(len(lost), 'request')} without an execution"
        + (f"; {plural(len(errors), 'error')}, first: {errors[0][:80]}" if errors else ""),
        hint=f"{hung[0]}: a key function computes, it does not wait (no network, no lock, no sleep)"
        if hung
        else "two different keys got the same execution name, so Step Functions took the second request for the "
        "first: a key cut to fit (key[:8], key[:80], key[-80:]) collides when keys share a beginning or an end. Derive "
        "the name from the WHOLE key (a UUIDv5 or a SHA-256 of it)"
        if shared_name
        else "different client requests need different keys and names, and consumer_key must not raise",
        key="every_request",
    )
    return report.verdict()
