"""Content-based routing, observed: rules x events through a real event bus, one SQS queue per rule, counted.

Notebook 03 never decides by itself whether a pattern matches an event. :class:`Router` gives every rule its own
SQS queue as its only target, puts the events on the bus (PutEvents, ten entries per call), then reads each queue
once and maps every delivered event back to the event it came from by the ``EventId`` PutEvents returned. A match
is "the rule's queue received the event"; nothing else. So the matrices a notebook shows are what the backend's own
matcher did; where an emulator differs from AWS, the capability table (``helpers.aws.capabilities``) says how and
the notebook says so.

Two emulator traps are guarded here with a clear message instead of a mysterious failure
(shared reference, section 8, measured on moto 5.2.5):

- a numeric bound given as a string (``{"numeric": [">", "10"]}``): AWS refuses the rule; moto accepts it and then
  fails *every* PutEvents on that bus with HTTP 500. :func:`check_pattern` refuses it on every backend.
- a pattern over an array of objects (``"lines": {"sku": [...]}`` against ``"lines": [{"sku": ...}]``): AWS matches
  when any element matches; moto never matches. :meth:`Router.matrix` raises :class:`EmulatorGap` on the embedded
  backend rather than show a "no match" that AWS would not give.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Queue, Resources, Target

PUT_EVENTS_BATCH = 10  # the PutEvents API takes at most 10 entries per call
MATCH, NO_MATCH = "match", "-"
#: Seconds to wait before the receive sweep. moto delivers inside the PutEvents call; LocalStack's delivery is
#: asynchronous to the caller, so the sweep waits a little. A parameter, not a lesson.
SETTLE_S = {"embedded": 0.0, "localstack": 1.0, "aws": 3.0}


class PatternRefused(ValueError):
    """The helper refuses a pattern before it reaches the backend; the message says why."""


class EmulatorGap(RuntimeError):
    """This backend cannot show what AWS would do here; the message says what AWS does."""


# -- events ---------------------------------------------------------------------------------------------------------
def order_event(
    data: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
    source: str = "com.orders",
    detail_type: str = "OrderCreated",
) -> dict[str, Any]:
    """An event in the talk's envelope: ``detail.metadata`` (keys, versions) and ``detail.data`` (the order)."""
    return {
        "source": source,
        "detail-type": detail_type,
        "detail": {"metadata": dict(metadata or {}), "data": dict(data)},
    }


def entry(event: Mapping[str, Any], bus: str) -> dict[str, Any]:
    """The PutEvents entry for an event given as ``{"source", "detail-type", "detail"}``."""
    missing = {"source", "detail-type", "detail"} - set(event)
    if missing:
        raise ValueError(f"an event needs source, detail-type and detail; missing {sorted(missing)}")
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "EventBusName": bus,
    }


# -- patterns -------------------------------------------------------------------------------------------------------
def check_pattern(pattern: Any, *, path: str = "") -> None:
    """Refuse the emulator trap (a numeric bound given as a string) with a message that says what AWS does.

    Everything else is left to the backend, so a learner sees AWS's own error (a bare value instead of an array is
    refused by PutRule with ``InvalidEventPatternException`` on AWS and both emulators).
    """
    if isinstance(pattern, Mapping):
        for key, value in pattern.items():
            check_pattern(value, path=f"{path}.{key}" if path else str(key))
    elif isinstance(pattern, list):
        for item in pattern:
            if isinstance(item, Mapping) and "numeric" in item:
                bounds = item["numeric"]
                if not isinstance(bounds, list):
                    continue
                for op, bound in zip(bounds[::2], bounds[1::2], strict=False):
                    if not isinstance(bound, int | float) or isinstance(bound, bool):
                        raise PatternRefused(
                            f"{path}: numeric bound {bound!r} after {op!r} is not a JSON number. AWS refuses this "
                            "rule (InvalidEventPatternException); moto would accept it and then fail every "
                            "PutEvents on the bus with HTTP 500, so this helper refuses it first. "
                            f"Write {op!r}, {_number_hint(bound)}."
                        )
            elif isinstance(item, Mapping | list):
                check_pattern(item, path=path)


def _number_hint(bound: Any) -> str:
    try:
        return json.dumps(float(bound) if "." in str(bound) else int(bound))
    except (TypeError, ValueError):
        return "a number"


def pattern_paths(pattern: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Field paths a pattern tests (``$or`` branches flattened)."""
    found: set[tuple[str, ...]] = set()
    for key, value in pattern.items():
        if key == "$or" and isinstance(value, list):
            for branch in value:
                if isinstance(branch, Mapping):
                    found |= pattern_paths(branch, prefix)
        elif isinstance(value, Mapping):
            found |= pattern_paths(value, (*prefix, key))
        else:
            found.add((*prefix, key))
    return found


def array_of_object_paths(event: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths in an event whose value is an array holding objects (where moto's matcher stops)."""
    found: set[tuple[str, ...]] = set()
    if isinstance(event, Mapping):
        for key, value in event.items():
            found |= array_of_object_paths(value, (*prefix, key))
    elif isinstance(event, list):
        if any(isinstance(v, Mapping) for v in event):
            found.add(prefix)
        for value in event:
            found |= array_of_object_paths(value, prefix)
    return found


def crosses_array_of_objects(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when a field the pattern tests lies under an array of objects in the event."""
    arrays = array_of_object_paths(event)
    return any(path[: len(a)] == a and len(path) > len(a) for path in pattern_paths(pattern) for a in arrays)


# -- results --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivered:
    """One event as a rule's queue received it: which rule, which event (by label), and the body."""

    rule: str
    event: str | None
    body: Any


@dataclass
class Matrix:
    """What real routing did: for each rule, the events its queue received."""

    rules: list[str]
    events: list[str]
    deliveries: list[Delivered] = field(default_factory=list)

    @property
    def matches(self) -> dict[str, list[str]]:
        """Rule -> labels of the events it received, in the order the events were put."""
        got = {r: {d.event for d in self.deliveries if d.rule == r} for r in self.rules}
        return {r: [e for e in self.events if e in got[r]] for r in self.rules}

    def counts(self) -> dict[str, int]:
        """Rule -> how many deliveries its queue received (copies included)."""
        return {r: sum(1 for d in self.deliveries if d.rule == r) for r in self.rules}

    def matched(self, rule: str, event: str) -> bool:
        return event in self.matches[rule]

    def frame(self, *, mark: str = MATCH, blank: str = NO_MATCH) -> Any:
        """A rules x events table ("match" / "-"), rules as rows, events as columns."""
        import pandas as pd

        m = self.matches
        rows = {r: [mark if e in m[r] else blank for e in self.events] for r in self.rules}
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=self.events)
        frame.index.name = "rule \\ event"
        return frame


def slug(label: str) -> str:
    """A resource-safe name for a rule label (``"anything-but AU,NZ"`` -> ``"anything-but-au-nz"``)."""
    text = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-")
    if not text:
        raise ValueError(f"rule label {label!r} has no letters or digits to name its queue after")
    return text


# -- the router -----------------------------------------------------------------------------------------------------
class Router:
    """A bus of its own with a queue per rule; :meth:`matrix` routes events and reads what each queue received."""

    def __init__(
        self,
        resources: Resources,
        bus: str = "routing",
        *,
        trace: Any = None,
        producer: str = "orders",
        settle_s: float | None = None,
    ) -> None:
        self.resources = resources
        self.backend = resources.backend
        self.bus_arn = resources.ensure_bus(bus)
        self.bus = self.bus_arn.rsplit("/", 1)[-1]
        self.short = bus
        self.trace = trace
        self.producer = producer
        self.settle_s = SETTLE_S.get(self.backend.name, 1.0) if settle_s is None else settle_s
        self.events = self.backend.client("events")
        self.sqs = self.backend.client("sqs")
        self.queues: dict[str, Queue] = {}
        self.patterns: dict[str, dict[str, Any]] = {}

    # -- rules ------------------------------------------------------------------------------------------------
    def queue_for(self, rule: str) -> Queue:
        return self.queues[rule]

    def add_rule(self, rule: str, pattern: Mapping[str, Any], *, target: Mapping[str, Any] | None = None) -> Queue:
        """A rule on this bus whose only target is its own queue (``target``: extra target fields, a transformer)."""
        check_pattern(pattern)
        name = f"{self.short}-{slug(rule)}"
        taken = {r for r, q in self.queues.items() if q.name == self.resources.name(name)}
        if taken - {rule}:
            raise ValueError(f"rules {sorted(taken)[0]!r} and {rule!r} would share the resource name {name!r}")
        queue = self.resources.ensure_queue(name)
        arn = self.resources.ensure_rule(
            name,
            bus=self.bus_arn,
            pattern=dict(pattern),
            targets=[Target(slug(rule)[:64], queue.arn, None if target is None else dict(target))],
        )
        self.resources.allow_send_from(queue, arn, "events.amazonaws.com")
        self.queues[rule] = queue
        self.patterns[rule] = dict(pattern)
        return queue

    def add_rules(self, rules: Mapping[str, Mapping[str, Any]]) -> None:
        for rule, pattern in rules.items():
            self.add_rule(rule, pattern)

    # -- events -----------------------------------------------------------------------------------------------
    def put(self, events: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """Put the events (label -> event), ten per PutEvents call; returns EventId -> label."""
        labels = list(events)
        ids: dict[str, str] = {}
        for start in range(0, len(labels), PUT_EVENTS_BATCH):
            chunk = labels[start : start + PUT_EVENTS_BATCH]
            reply = self.events.put_events(Entries=[entry(events[label], self.bus) for label in chunk])
            failed = [(label, e) for label, e in zip(chunk, reply["Entries"], strict=True) if "EventId" not in e]
            if reply.get("FailedEntryCount") or failed:
                raise RuntimeError(f"PutEvents refused {len(failed)} of {len(chunk)} entries: {failed}")
            for label, result in zip(chunk, reply["Entries"], strict=True):
                ids[result["EventId"]] = label
            if self.trace is not None:
                self.trace.send(self.producer, "EventBridge", f"PutEvents: {', '.join(chunk)}")
        return ids

    def drain(self, rule: str) -> list[Any]:
        """Every body waiting in the rule's queue, deleted as read (one sweep: receive until empty)."""
        queue = self.queues[rule]
        bodies: list[Any] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
                "Messages", []
            )
            if not messages:
                return bodies
            for message in messages:
                try:
                    bodies.append(json.loads(message["Body"]))
                except ValueError:
                    bodies.append(message["Body"])
            self.sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def collect(self, rules: Iterable[str], ids: Mapping[str, str]) -> list[Delivered]:
        """Read each rule's queue once; an event is named by its EventId (None when it is not one we put)."""
        if self.settle_s:
            time.sleep(self.settle_s)
        found: list[Delivered] = []
        put_order = {label: n for n, label in enumerate(ids.values())}
        last = len(put_order)
        for rule in rules:
            received = []
            for body in self.drain(rule):
                label = ids.get(str(body.get("id"))) if isinstance(body, Mapping) else None
                received.append(Delivered(rule, label, body))
            # A standard queue promises no order (LocalStack even delivers asynchronously): report deliveries in the
            # order the events were put, so tables and diagrams read the same on every run and backend.
            received.sort(key=lambda d: last if d.event is None else put_order.get(d.event, last))
            for delivered in received:
                found.append(delivered)
                if self.trace is not None and delivered.event is not None:
                    self.trace.send("EventBridge", f"{rule} queue", delivered.event, key=delivered.event)
        return found

    def matrix(
        self,
        rules: Mapping[str, Mapping[str, Any]],
        events: Mapping[str, Mapping[str, Any]],
    ) -> Matrix:
        """Create the rules (a queue each), put the events, read every queue once: who received what."""
        if not rules or not events:
            raise ValueError("a routing matrix needs at least one rule and one event")
        if not self.backend.supports("eventbridge_pattern_array_of_objects"):
            for rule, pattern in rules.items():
                for label, event in events.items():
                    if crosses_array_of_objects(pattern, event):
                        raise EmulatorGap(
                            f"rule {rule!r} tests a field inside an array of objects in event {label!r}. On AWS the "
                            "rule matches when any element of the array matches; the embedded emulator (moto) never "
                            "matches such a pattern, so its answer would be wrong. Run this cell on LocalStack "
                            "(WORKBOOK_BACKEND=localstack) to see it routed."
                        )
        self.add_rules(rules)
        ids = self.put(events)
        return Matrix(list(rules), list(events), self.collect(list(rules), ids))

    # -- TestEventPattern -------------------------------------------------------------------------------------
    def test_event_pattern(self, pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool | None:
        """AWS's TestEventPattern for a full event; None when the backend gives no answer (moto returns ``{}``)."""
        full = {
            "id": "00000000-0000-0000-0000-000000000000",
            "account": "123456789012",
            "region": self.backend.region,
            "time": "2026-01-01T00:00:00Z",
            "resources": [],
            "version": "0",
            **dict(event),
        }
        reply = self.events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(full))
        return reply.get("Result") if "Result" in reply else None


class Explorer:
    """Put one event on a router's bus with one extra rule (``yours``) and report which rules received it."""

    RULE = "yours"

    def __init__(self, router: Router, events: Mapping[str, Mapping[str, Any]]) -> None:
        self.router = router
        self.events = dict(events)

    def run(self, event: str, pattern: str | Mapping[str, Any]) -> dict[str, str]:
        """Rule -> "delivered" / "-" for every rule on the bus, or {"error": why} for a pattern that was refused."""
        if event not in self.events:
            return {"error": f"unknown event {event!r}; pick one of {', '.join(self.events)}"}
        try:
            parsed = json.loads(pattern) if isinstance(pattern, str) else dict(pattern)
            if not isinstance(parsed, dict):
                raise PatternRefused('a pattern is a JSON object, such as {"source": ["com.orders"]}')
            self.router.add_rule(self.RULE, parsed)
        except ValueError as exc:  # PatternRefused and json.JSONDecodeError are ValueErrors
            return {"error": str(exc)}
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return {"error": f"{error.get('Code')}: {error.get('Message')}"}
        rules = list(self.router.queues)
        ids = self.router.put({event: self.events[event]})
        got = {d.rule for d in self.router.collect(rules, ids) if d.event == event}
        return {rule: "delivered" if rule in got else NO_MATCH for rule in rules}


def put_rule_error(resources: Resources, bus: str, pattern: Any, name: str = "refused") -> str | None:
    """Try a pattern with PutRule and return the backend's error code and message (None when it is accepted)."""
    events = resources.backend.client("events")
    rule = resources.name(f"{bus}-{name}")
    bus_name = resources.name(bus)
    try:
        events.put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    events.delete_rule(Name=rule, EventBusName=bus_name)
    return None


def table(rows: Sequence[Mapping[str, Any]], index: str) -> Any:
    """A small pandas table for a notebook (rows of dicts, indexed by ``index``)."""
    import pandas as pd

    return pd.DataFrame(list(rows)).set_index(index)


# -- SNS subscription filter policies, side by side -----------------------------------------------------------------
def sns_matrix(
    resources: Resources,
    topic: str,
    policies: Mapping[str, Mapping[str, Any]],
    events: Mapping[str, Mapping[str, Any]],
    *,
    settle_s: float | None = None,
) -> Matrix:
    """The same question for SNS: a subscription (and queue) per filter policy on the message body, counted."""
    sns, sqs = resources.backend.client("sns"), resources.backend.client("sqs")
    topic_arn = resources.ensure_topic(topic)
    queues: dict[str, Queue] = {}
    for name, policy in policies.items():
        queue = resources.ensure_queue(f"{topic}-{name}")
        subscription = resources.ensure_subscription(topic_arn, queue)
        for attribute, value in (("FilterPolicyScope", "MessageBody"), ("FilterPolicy", json.dumps(policy))):
            sns.set_subscription_attributes(SubscriptionArn=subscription, AttributeName=attribute, AttributeValue=value)
        queues[name] = queue
    by_body: dict[str, Any] = {}
    for label, event in events.items():
        body = json.dumps(dict(event), sort_keys=True)
        if body in by_body:
            raise ValueError(f"events {by_body[body]!r} and {label!r} are identical: their copies cannot be told apart")
        by_body[body] = label
        sns.publish(TopicArn=topic_arn, Message=body)
    wait = SETTLE_S.get(resources.backend.name, 1.0) if settle_s is None else settle_s
    if wait:
        time.sleep(wait)
    found: list[Delivered] = []
    for name, queue in queues.items():
        while True:
            messages = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                found.append(Delivered(name, by_body.get(json.dumps(body, sort_keys=True)), body))
            sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
    return Matrix(list(policies), list(events), found)


# -- archive and replay ---------------------------------------------------------------------------------------------
def wait_until_archived(
    resources: Resources, archive: str, expected: int, *, timeout_s: float, poll_s: float = 5.0
) -> int:
    """How many events the archive holds, polled until ``expected`` or ``timeout_s`` (AWS archives late: it
    recommends waiting about 10 minutes before a replay; the emulators archive at once, so 0 s is enough there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = resources.archived_events(archive)
        if held >= expected or time.monotonic() >= deadline:
            return held
        time.sleep(poll_s)


def replay(
    resources: Resources,
    archive_arn: str,
    bus_arn: str,
    start: Any,
    end: Any,
    *,
    timeout_s: float = 30.0,
    poll_s: float = 0.2,
) -> dict[str, Any]:
    """Start a replay of the archive's events between ``start`` and ``end`` and wait until it has finished.

    Replay names cannot be reused or deleted, so each gets a unique suffix (never printed: it is not a lesson).
    """
    import uuid

    events = resources.backend.client("events")
    name = resources.name(f"replay-{uuid.uuid4().hex[:12]}")
    destination = {"Arn": bus_arn}
    events.start_replay(
        ReplayName=name, EventSourceArn=archive_arn, EventStartTime=start, EventEndTime=end, Destination=destination
    )
    deadline = time.monotonic() + timeout_s
    while True:
        described = events.describe_replay(ReplayName=name)
        if described["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"replay {name} still {described['State']} after {timeout_s} s")
        time.sleep(poll_s)
