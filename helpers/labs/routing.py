"""Lab 01's check: two EventBridge patterns, judged by what really reaches each rule's queue, on events the learner
was shown and on events held out.

Every rule gets its own SQS queue on a bus of its own (:class:`helpers.chapters.routing.Router`); a match is "the
queue received the event", nothing else. The learner sees a table of seven events. The check also puts events the
learner was not shown, each aimed at one way a pattern can be right on the visible seven and wrong in general:

- another currency (``anything-but`` on the currency lets it in), currencies that start like AU or NZ (``prefix``);
- prices of 99.995 and 99.999999 (``[">", 99.99]`` lets them in), 100.5, 1000, 25000 and 2500000 (a list of the
  prices seen misses them, an upper bound the big ones);
- an ``OrderCreated`` from another source (a pattern without ``source`` takes it), one from a source that starts
  like ``com.orders`` (a ``prefix`` on the source takes it), an ``OrderCancelled`` and an ``OrderUpdated``
  (``anything-but`` on the detail-type takes them), a ``RefundCreated`` (a ``suffix`` or ``wildcard`` on the
  detail-type takes it);
- an order without a price, and one without a currency (a rule must not depend on a field it is not about).

The held-out events are not printed as a table (their labels are the check's, not the lab's); a miss names the one
that was wrongly delivered or missed, with a hint aimed at the mistake it reveals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from helpers.aws.resources import Resources
from helpers.labs.report import Report
from helpers.labs.scratch import scratch

LAB = "Lab 01 · route AU/NZ and big orders"
_runs = itertools.count(1)


@dataclass(frozen=True)
class RoutingEvent:
    """One order on the bus; ``None`` leaves the field out of the event."""

    detail_type: str
    currency: str | None
    price: float | None
    source: str = "com.orders"
    #: How a hint names the event (held-out events only: the visible ones are named by their label).
    description: str = ""
    #: Why a rule that received it (and should not have) is wrong.
    if_extra: str = ""
    #: Why a rule that missed it (and should have received it) is wrong: one text, or one per rule.
    if_missing: str | dict[str, str] = ""

    def data(self, label: str) -> dict[str, Any]:
        data: dict[str, Any] = {"order-id": label}
        if self.currency is not None:
            data["currency"] = self.currency
        if self.price is not None:
            data["price"] = self.price
        return data


_LIST = "values in one array are ORed: list every currency the rule is for (['AU', 'NZ'])"
_CREATED = (
    "keep 'detail-type': ['OrderCreated'] in the pattern: fields are ANDed, so the envelope keeps other events out"
)
_RANGE = "'100 or more' is {'numeric': ['>=', 100]}: a numeric range, a JSON number, the boundary included"
_EXACT = "match the currencies exactly (['AU', 'NZ']): prefix and anything-but let other currencies in"

#: The orders the learner's table shows (label -> event): the lab's own examples.
ROUTING_EVENTS: dict[str, RoutingEvent] = {
    "au-25": RoutingEvent("OrderCreated", "AU", 25, if_missing=_LIST),
    "nz-40": RoutingEvent("OrderCreated", "NZ", 40, if_missing=_LIST),
    "us-150": RoutingEvent("OrderCreated", "US", 150, if_extra=_EXACT, if_missing=_RANGE),
    "au-100": RoutingEvent(
        "OrderCreated", "AU", 100, if_missing="'100 or more' includes 100: '>=' keeps the boundary, '>' leaves it out"
    ),
    "gb-99.99": RoutingEvent("OrderCreated", "GB", 99.99, if_extra=_RANGE),
    "nz-250": RoutingEvent("OrderCreated", "NZ", 250, if_missing=_LIST),
    "au-shipped": RoutingEvent("OrderShipped", "AU", 500, if_extra=_CREATED),
}

#: Orders the learner is not shown (the check's own): each catches a pattern that is right only on the table.
HELD_OUT: dict[str, RoutingEvent] = {
    "h-jp-30": RoutingEvent(
        "OrderCreated",
        "JP",
        30,
        description="an OrderCreated in JP",
        if_extra="another currency got in: list exactly the currencies you want (['AU', 'NZ']); anything-but lets "
        "every other currency in",
    ),
    "h-at-45": RoutingEvent(
        "OrderCreated",
        "AT",
        45,
        description="an OrderCreated in AT",
        if_extra="a currency that starts like AU got in: " + _EXACT,
    ),
    "h-aud-60": RoutingEvent(
        "OrderCreated",
        "AUD",
        60,
        description="an OrderCreated whose currency is AUD, not AU",
        if_extra="a currency that only starts with AU got in: " + _EXACT,
    ),
    "h-us-99.995": RoutingEvent(
        "OrderCreated",
        "US",
        99.995,
        description="an OrderCreated of 99.995",
        if_extra="99.995 is under 100 and got in: " + _RANGE + " ('> 99.99' is not the same)",
    ),
    "h-gb-99.999999": RoutingEvent(
        "OrderCreated",
        "GB",
        99.999999,
        description="an OrderCreated of 99.999999",
        if_extra="a price just under 100 got in: " + _RANGE,
    ),
    "h-nz-100.5": RoutingEvent(
        "OrderCreated",
        "NZ",
        100.5,
        description="an OrderCreated of 100.5 in NZ",
        if_missing={
            "au-nz": _LIST,
            "big-orders": "a price you were not shown was missed: "
            + _RANGE
            + ", not a list of the prices in the table",
        },
    ),
    "h-gb-1000": RoutingEvent(
        "OrderCreated",
        "GB",
        1000,
        description="an OrderCreated of 1000 in GB",
        if_missing="a big order you were not shown was missed: " + _RANGE + ", with no upper bound",
    ),
    "h-us-25000": RoutingEvent(
        "OrderCreated",
        "US",
        25000,
        description="an OrderCreated of 25000 in US",
        if_missing="a very big order was missed: " + _RANGE + ", with no upper bound",
    ),
    "h-jp-2500000": RoutingEvent(
        "OrderCreated",
        "JP",
        2500000,
        description="an OrderCreated of 2500000 in JP",
        if_missing="a huge order was missed: " + _RANGE + ", with no upper bound at all",
    ),
    "h-partner-150": RoutingEvent(
        "OrderCreated",
        "AU",
        150,
        source="com.partner.orders",
        description="an OrderCreated of 150 in AU from another source (com.partner.orders)",
        if_extra="an event from another source got in: keep 'source': ['com.orders'] in the pattern",
    ),
    "h-sandbox-150": RoutingEvent(
        "OrderCreated",
        "AU",
        150,
        source="com.orders.sandbox",
        description="an OrderCreated of 150 in AU from com.orders.sandbox (a source that starts like com.orders)",
        if_extra="an event from another source that starts like com.orders got in: match the source exactly "
        "('source': ['com.orders']), not with prefix",
    ),
    "h-cancelled-120": RoutingEvent(
        "OrderCancelled", "NZ", 120, description="an OrderCancelled of 120 in NZ", if_extra=_CREATED
    ),
    "h-updated-300": RoutingEvent(
        "OrderUpdated",
        "AU",
        300,
        description="an OrderUpdated of 300 in AU",
        if_extra="another kind of event got in: list the one detail-type you want ('detail-type': ['OrderCreated']); "
        "anything-but lets every other detail-type in",
    ),
    "h-au-no-price": RoutingEvent(
        "OrderCreated",
        "AU",
        None,
        description="an OrderCreated in AU without a price",
        if_missing="au-nz is about the currency only: do not make it depend on another field",
    ),
    "h-no-currency-500": RoutingEvent(
        "OrderCreated",
        None,
        500,
        description="an OrderCreated of 500 without a currency",
        if_missing="big-orders is about the price only, in any currency: do not make it depend on the currency",
    ),
    "h-refund-created-300": RoutingEvent(
        "RefundCreated",
        "AU",
        300,
        description="a RefundCreated of 300 in AU (a detail-type that ends like OrderCreated)",
        if_extra="another kind of event that ends like OrderCreated got in: list the one detail-type you want "
        "exactly ('detail-type': ['OrderCreated']); a suffix or a wildcard lets every *Created event in",
    ),
}

#: Which rule must receive which events (visible ones, then held-out ones): the specification.
ROUTING_EXPECTED: dict[str, list[str]] = {
    "au-nz": ["au-25", "nz-40", "au-100", "nz-250"],
    "big-orders": ["us-150", "au-100", "nz-250"],
}
HELD_OUT_EXPECTED: dict[str, list[str]] = {
    "au-nz": ["h-nz-100.5", "h-au-no-price"],
    "big-orders": ["h-nz-100.5", "h-gb-1000", "h-us-25000", "h-jp-2500000", "h-no-currency-500"],
}
_FALLBACK = {
    "au-nz": "au-nz takes every OrderCreated from com.orders in AU or NZ, and nothing else",
    "big-orders": "big-orders takes every OrderCreated from com.orders of 100 or more, any currency, nothing else",
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


def _wrong(rule: str, got: list[str], expected: list[str], events: dict[str, RoutingEvent]) -> list[tuple[str, str]]:
    """(event, "extra" or "missing") for every event of ``events`` the rule got wrong, in the events' order."""
    wrong = []
    for label in events:
        if label in got and label not in expected:
            wrong.append((label, "extra"))
        elif label in expected and label not in got:
            wrong.append((label, "missing"))
    return wrong


def _hint(rule: str, wrong: list[tuple[str, str]], events: dict[str, RoutingEvent], *, refused: bool) -> str:
    if refused:
        return "AWS refuses this rule's pattern, so nothing was routed: fix what the first expectation says"
    if not wrong:
        return _FALLBACK[rule]
    label, kind = wrong[0]
    event = events[label]
    why = event.if_extra if kind == "extra" else event.if_missing
    if isinstance(why, dict):
        why = why.get(rule, "")
    return why or _FALLBACK[rule]


def check_routing(wb: Any, rules: dict[str, Any]) -> Report:
    """Lab 01: the events x queues delivery matrix of the learner's rules, from real routing, against the spec.

    A pattern AWS would refuse is refused here on every backend with AWS's reason, because the emulators accept some
    of them: moto then fails every PutEvents on the bus (HTTP 500), LocalStack fails every event it evaluates.
    """
    with scratch(wb) as resources:
        return _check_routing(resources, rules)


def _check_routing(resources: Resources, rules: dict[str, Any]) -> Report:
    from helpers.chapters.routing import PatternRefused, Router, check_pattern, order_event

    run = next(_runs)
    report = Report(LAB)
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
    every = {**ROUTING_EVENTS, **HELD_OUT}
    events = {
        label: order_event(e.data(label), detail_type=e.detail_type, source=e.source) for label, e in every.items()
    }
    got: dict[str, list[str]] = {rule: [] for rule in ROUTING_EXPECTED}
    if valid:
        router = Router(resources, bus=f"routing-r{run}")  # a bus of its own per run
        got.update(router.matrix(valid, events).matches)

    lines = [
        "delivery matrix (rows: queues; ok = as specified, MISSING = should have received it, EXTRA = should not):"
    ]
    width = max(len(e) for e in ROUTING_EVENTS)
    lines.append(f"  {'':<12}" + "".join(f"{e:>{width + 2}}" for e in ROUTING_EVENTS))
    for rule, expected in ROUTING_EXPECTED.items():
        cells = []
        for e in ROUTING_EVENTS:
            want, have = e in expected, e in got[rule]
            cells.append("ok" if want == have and have else "MISSING" if want else "EXTRA" if have else "-")
        lines.append(f"  {rule:<12}" + "".join(f"{c:>{width + 2}}" for c in cells))
    held = {rule: _wrong(rule, got[rule], HELD_OUT_EXPECTED[rule], HELD_OUT) for rule in ROUTING_EXPECTED}
    summary = ", ".join(f"{rule} {len(held[rule])} wrong" if held[rule] else f"{rule} all right" for rule in held)
    lines.append(f"and {len(HELD_OUT)} events you were not shown: {summary if valid else 'not routed'}")
    print("\n".join(lines))

    first_refusal = next(iter(refused.items()), None)
    report.expect(
        "every pattern is one AWS accepts",
        not refused,
        observed="all accepted"
        if first_refusal is None
        else f"{len(refused)} refused, first: {first_refusal[0]}: {first_refusal[1]}",
        hint="every value goes in an array ('currency': ['AU']); a numeric bound is a number ([\">=\", 100])",
        key="accepted",
    )
    for rule, expected in ROUTING_EXPECTED.items():
        wrong = _wrong(rule, got[rule], expected, ROUTING_EVENTS)
        missing = [e for e, kind in wrong if kind == "missing"]
        extra = [e for e, kind in wrong if kind == "extra"]
        parts = [f"missing {' '.join(missing)}" if missing else "", f"extra {' '.join(extra)}" if extra else ""]
        report.expect(
            f"{rule} receives exactly {', '.join(expected)}",
            rule in valid and not wrong,
            observed=", ".join(p for p in parts if p) or "as specified",
            hint=_hint(rule, wrong, ROUTING_EVENTS, refused=rule in refused),
            key=rule.replace("-", "_"),
        )
    for rule in ROUTING_EXPECTED:
        wrong = held[rule]
        observed = "all right"
        if wrong:
            label, kind = wrong[0]
            what = "received" if kind == "extra" else "missed"
            observed = f"{len(wrong)} of {len(HELD_OUT)} wrong, first: {what} {HELD_OUT[label].description}"
        report.expect(
            f"{rule} is right on events you were not shown",
            rule in valid and not wrong,
            observed=observed if rule in valid else "not routed (the pattern was refused)",
            hint=_hint(rule, wrong, HELD_OUT, refused=rule in refused),
            key=f"{rule.replace('-', '_')}_held_out",
        )
    return report.verdict()
