"""What notebook 01 runs beside its lessons: the scorecard, the senders, the rules, and what the bus says it routes.

Notebook 01 changes one thing at a time on one side of an orders -> payments integration and counts what breaks on
the other. Its cells show the change, the count and the assert; the parts a learner need not read live here:

- :class:`Scorecard`: one row per facet broken, appended by the demo that measured it;
- the location demo: :class:`HardCodedSender` (a queue URL copied into its configuration), :class:`BusSender` (it
  knows a bus and no queue), :func:`route` (the payments side's rule, pointed at wherever payments now reads);
- :func:`routing` and :func:`routing_changes`: every rule of a bus with its pattern and targets, read back from
  EventBridge, and the difference between two readings, so "what changed" is counted from the resources, never
  written down (notebook 02 uses them for its fraud rule too); :func:`remove_rule` puts a bus back to a version;
- the content demo: :func:`order_created` (the talk's envelope), :func:`with_gst` (the ANZ consumer's arithmetic),
  :class:`ContentRules` (a rule and a queue per consumer; publish, then count what each queue received).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from helpers.aws.resources import Queue, Resources, Target
from helpers.chapters.routing import order_event
from helpers.services.messaging import drain_many, put_orders


# -- the scorecard --------------------------------------------------------------------------------------------------
@dataclass
class Scorecard:
    """One row per facet broken: what was coupled, what changed, what broke, how many messages, how many errors."""

    COLUMNS = ("facet", "coupling", "what changed", "what broke", "messages affected", "errors anyone saw")
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, facet: str, coupling: str, changed: str, broke: str, affected: int, errors: int) -> None:
        if affected < 0 or errors < 0 or errors > affected:
            raise ValueError(f"affected={affected}, errors={errors}: counts are >= 0 and errors <= affected")
        self.rows.append(dict(zip(self.COLUMNS, (facet, coupling, changed, broke, affected, errors), strict=True)))

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.COLUMNS))

    def facets(self) -> list[str]:
        """The facets measured, in the order the demos met them."""
        return list(dict.fromkeys(row["facet"] for row in self.rows))

    def silent(self) -> list[dict[str, Any]]:
        """The breakages nobody was told about: messages affected, no error anywhere."""
        return [row for row in self.rows if row["messages affected"] > 0 and row["errors anyone saw"] == 0]


# -- the location demo ----------------------------------------------------------------------------------------------
class HardCodedSender:
    """Sends each order to the queue URL it was configured with; ``send`` says whether SQS took it."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url

    def send(self, order_id: str) -> bool:
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"orderId": order_id}))
        except self.sqs.exceptions.QueueDoesNotExist:
            return False
        return True


class BusSender:
    """Publishes each order as an ``OrderCreated`` event; it knows the bus and no queue."""

    def __init__(self, events: Any, bus: str, *, source: str) -> None:
        self.events, self.bus, self.source = events, bus, source

    def send(self, order_id: str) -> bool:
        return put_orders(self.events, self.bus, [order_created(order_id)], source=self.source) == 0


def route(resources: Resources, bus: str, queue: Queue, *, rule: str, source: str) -> str:
    """The payments side's rule: every event from ``source`` goes to ``queue`` (and only there). Returns its ARN."""
    arn = resources.ensure_rule(rule, bus=bus, pattern={"source": [source]}, targets=[Target(rule, queue.arn)])
    resources.allow_send_from(queue, arn, "events.amazonaws.com")  # the queue policy AWS requires
    return arn


@dataclass(frozen=True)
class Rule:
    """A rule as EventBridge reports it: its pattern and the names of its targets (queue names for SQS)."""

    pattern: dict[str, Any]
    targets: tuple[str, ...]


def routing(events: Any, bus: str) -> dict[str, Rule]:
    """Every rule on ``bus`` with its pattern and targets, read back from EventBridge (ListRules,
    ListTargetsByRule)."""
    name = bus.rsplit("/", 1)[-1]
    out: dict[str, Rule] = {}
    for page in events.get_paginator("list_rules").paginate(EventBusName=name):
        for rule in page["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=name)["Targets"]
            arns = sorted(t["Arn"].rsplit(":", 1)[-1] for t in targets)
            out[rule["Name"]] = Rule(json.loads(rule.get("EventPattern") or "{}"), tuple(arns))
    return out


def routing_changes(before: Mapping[str, Rule], after: Mapping[str, Rule]) -> dict[str, str]:
    """rule name -> what changed between two readings of a bus (rules untouched are absent)."""
    changes: dict[str, str] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None and new is not None:
            changes[name] = f"added: pattern {json.dumps(new.pattern)}, target {', '.join(new.targets) or 'none'}"
        elif new is None:
            changes[name] = "removed"
        elif old is not None:
            parts = []
            if old.pattern != new.pattern:
                parts.append(f"pattern {json.dumps(old.pattern)} -> {json.dumps(new.pattern)}")
            if old.targets != new.targets:
                parts.append(f"target {', '.join(old.targets) or 'none'} -> {', '.join(new.targets) or 'none'}")
            changes[name] = "; ".join(parts)
    return changes


def remove_rule(resources: Resources, events: Any, bus: str, rule: str) -> bool:
    """Delete a rule (its targets first, as EventBridge requires); False if there was none. Puts a bus back to an
    earlier version, so a demo that adds the rule measures the same change on every run."""
    name, full = bus.rsplit("/", 1)[-1], resources.name(rule)
    try:
        targets = events.list_targets_by_rule(Rule=full, EventBusName=name)["Targets"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    if targets:
        events.remove_targets(Rule=full, EventBusName=name, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=full, EventBusName=name)
    return True


# -- the content demo -----------------------------------------------------------------------------------------------
def order_created(order_id: str, **data: Any) -> dict[str, Any]:
    """An ``OrderCreated`` detail in the talk's envelope: ``{"metadata": {}, "data": {"order-id": ..., ...}}``."""
    return dict(order_event({"order-id": order_id, **data})["detail"])


def with_gst(detail: Mapping[str, Any]) -> float:
    """The ANZ consumer's arithmetic: price plus 10 % GST (it raises TypeError on a price that is a string)."""
    return round(detail["data"]["price"] * 1.1, 2)


class Delivery(NamedTuple):
    """What one publish did: entries PutEvents refused, events each rule's queue received, consumer errors."""

    failed: int
    delivered: dict[str, int]
    errors: int


class ContentRules:
    """Rules that match on an event's ``detail.data``, each with a queue of its own as its only target.

    ``consumers`` maps a rule to the code its consumer runs on each event it receives (an exception is an error the
    consumer sees).
    """

    def __init__(
        self,
        resources: Resources,
        bus: str,
        data_patterns: Mapping[str, Mapping[str, Any]],
        *,
        sqs: Any,
        events: Any,
        consumers: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
        source: str = "com.orders",
    ) -> None:
        self.bus, self.sqs, self.events, self.source = bus, sqs, events, source
        self.consumers = dict(consumers or {})
        self.queues: dict[str, Queue] = {}
        for name, data in data_patterns.items():
            queue = self.queues[name] = resources.ensure_queue(name)
            pattern = {"source": [source], "detail": {"data": dict(data)}}
            rule = resources.ensure_rule(name, bus=bus, pattern=pattern, targets=[Target(name, queue.arn)])
            resources.allow_send_from(queue, rule, "events.amazonaws.com")

    def publish(self, details: Iterable[Mapping[str, Any]]) -> Delivery:
        """Put the events, read every rule's queue until quiet, run each consumer on what it received."""
        failed = put_orders(self.events, self.bus, details, source=self.source)
        arrived = drain_many(self.sqs, [q.url for q in self.queues.values()])  # waits once until all are quiet
        got = {name: arrived[q.url] for name, q in self.queues.items()}
        errors = 0
        for name, consume in self.consumers.items():
            for event in got[name]:
                try:
                    consume(event["detail"])
                except (TypeError, ValueError, KeyError):
                    errors += 1
        return Delivery(failed, {name: len(events) for name, events in got.items()}, errors)
