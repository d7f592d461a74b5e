"""API destinations and ``Idempotency-Key`` (notebook 11): what the notebook's scenarios add around the delivery.

The delivery itself is :mod:`helpers.services.delivery` (the dispatcher that does what EventBridge does where the
emulator does not), the HTTP API is :mod:`helpers.services.payments`. What the scenarios add lives here, so a cell
shows the call, the counts and the assert instead of the harness:

- :class:`Scenarios`: the seed's sample event (``customID`` as the key, plus the order and amount a payments API
  needs), publishing it, handing what the rule matched to a fresh dispatcher (its own virtual clock, seeded backoff,
  every request body kept), and the tables and diagrams labelled by scenario (event ids change from run to run);
  ``deliver(..., real_time=True)`` lets a charge running in the API's thread see each call when the schedule says;
- :class:`DirectClient`: the payments API called with ``urllib``, no EventBridge: the IETF draft's answers one by one,
  and a duplicate sent while the first request still holds the key;
- the Custom Event Bus request (``eventbridgev2`` ``PutEvents``) that would have deduplicated scenario 1's retry at
  publish time: built and checked offline against botocore's model, because no emulator runs that bus.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.backend import Backend
from helpers.instruments.ledger import Ledger
from helpers.services import delivery as dl
from helpers.services.payments import PaymentsApi, Served

#: The seed's sample event (aws-samples serverless-patterns, eventbridge-api-destinations-idempotency-cdk).
SOURCE = "http.idempotency.demo.app"
DETAIL_TYPE = "http.idempotency.demo.event.v0"
MESSAGE = "hello world!"


# -- the scenarios: publish, deliver, count -----------------------------------------------------------------------
@dataclass
class Scenarios:
    """Publish the seed's event on the bus, deliver what the rule matched, and count by scenario.

    ``route`` is the rule with its tap (``dl.ensure_route``); assign a new one after changing the target. The
    dispatcher is created fresh for each ``deliver`` (each table starts at t = 0 on its own virtual clock) and reads
    the target's configuration back from the backend, so a changed rule changes what happens.
    """

    backend: Backend
    route: dl.Route
    api: PaymentsApi
    ledger: Ledger
    bus: str
    seed: int = 0
    backoff_base: float = 1.0
    tap_wait_s: float = 10.0
    api_key_header: str = "x-api-key"
    labels: dict[str, str] = field(default_factory=dict)  # customID -> the scenario it belongs to
    published: Counter[str] = field(default_factory=Counter)  # customID -> PutEvents calls
    bodies: list[Any] = field(default_factory=list)  # every request body the dispatchers sent, in order
    custom_id_of: dict[str, str] = field(default_factory=dict)  # event id -> the customID in its detail

    # -- events -----------------------------------------------------------------------------------------------
    def sample_event(self, label: str, order_id: str, amount: float) -> dict[str, Any]:
        """The seed's sample detail plus what the payments API needs (``orderId``, ``amount``); a new UUID key."""
        custom_id = str(uuid.uuid4())
        self.labels[custom_id] = label
        return {"customID": custom_id, "message": MESSAGE, "orderId": order_id, "amount": amount}

    def new_key(self, label: str) -> str:
        """A key for requests sent without EventBridge, counted in the tally like the events' keys."""
        key = str(uuid.uuid4())
        self.labels[key] = label
        return key

    def publish(self, detail: Mapping[str, Any]) -> str:
        """One ``PutEvents`` call on the classic bus; returns the event id EventBridge gave it."""
        entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail), "EventBusName": self.bus}
        answer = self.backend.client("events").put_events(Entries=[entry])
        if answer["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents refused the event: {answer['Entries']}")
        self.published[detail["customID"]] += 1
        event_id = str(answer["Entries"][0]["EventId"])
        self.custom_id_of[event_id] = detail["customID"]
        return event_id

    # -- delivery ---------------------------------------------------------------------------------------------
    def tap_depth(self) -> int:
        if self.route.tap is None:
            return 0
        attributes = self.backend.client("sqs").get_queue_attributes(
            QueueUrl=self.route.tap.url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def deliver(
        self, expected: int, *, timeout: float = dl.REQUEST_TIMEOUT_S, real_time: bool = False
    ) -> dl.ApiDestinationDispatcher:
        """Wait (at most ``tap_wait_s``) for ``expected`` matched events on the tap, then deliver them.

        The dispatcher runs on a :class:`~helpers.services.delivery.ManualClock`: rate-limit waits and backoff move
        it forward at once. ``real_time=True`` also holds each call back until the real clock has caught up with the
        virtual one, for a scenario where a charge running in the API's thread must see the calls when the schedule
        says they happen (a timed-out call, then a retry while the charge still runs).
        """
        deadline = time.monotonic() + self.tap_wait_s
        while self.tap_depth() < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        clock = dl.ManualClock()
        sender = _in_real_time(clock, self._recording_send) if real_time else self._recording_send
        dispatcher = dl.ApiDestinationDispatcher.for_route(
            self.backend,
            self.route,
            clock=clock,
            seed=self.seed,
            backoff_base=self.backoff_base,
            timeout=timeout,
            sender=sender,
        )
        results = dispatcher.drain(wait_seconds=1)
        if len(results) != expected:
            raise AssertionError(f"the rule routed {len(results)} events, expected {expected}")
        return dispatcher

    def _recording_send(self, request: dl.Request, timeout: float) -> dl.Response:
        self.bodies.append(json.loads(request.body))
        return dl.send(request, timeout)

    # -- what happened ----------------------------------------------------------------------------------------
    def key_of(self, attempt: dl.Attempt) -> str:
        return attempt.headers.get("Idempotency-Key", "")

    def label_of(self, attempt: dl.Attempt) -> str:
        return self.labels.get(self.custom_id_of.get(attempt.event_id, ""), "?")

    def attempts_table(self, dispatcher: dl.ApiDestinationDispatcher, *, scenario: bool = True) -> Any:
        """Every HTTP call the dispatcher made (times in seconds on its virtual clock), one row per call."""
        import pandas as pd

        rows = []
        for n, a in enumerate(dispatcher.attempts, 1):
            row: dict[str, Any] = {"call": n, "scenario": self.label_of(a), "attempt": a.attempt, "at": a.at}
            row["rate-limit wait"] = a.rate_wait
            row["answer"] = a.status if a.status is not None else f"no response ({a.error_code})"
            row["outcome"] = a.outcome
            row["retry in"] = "" if a.retry_in is None else a.retry_in
            row["Idempotency-Key = customID"] = self.key_of(a) == self.custom_id_of.get(a.event_id)
            row[self.api_key_header] = a.headers.get(self.api_key_header, "")
            if not scenario:
                row.pop("scenario")
            rows.append(row)
        return pd.DataFrame(rows).set_index("call")

    def diagram(self, dispatcher: dl.ApiDestinationDispatcher, *, with_key: bool = True) -> Any:
        """The dispatcher's sequence diagram, labelled by scenario (event ids vary from run to run)."""

        def event(event_id: str) -> str:
            return f"the event [{self.labels.get(self.custom_id_of.get(event_id, ''), '?')}]"

        def label(a: dl.Attempt) -> str:
            return f"POST /charges [{self.labels.get(self.key_of(a), '?')}]" if with_key else "POST /charges"

        return dispatcher.sequence_diagram(label=label, event=event)

    def served_for(self, *keys: str) -> list[Served]:
        """What the payments API saw for these keys, in the order it answered them."""
        return [s for s in list(self.api.served) if s.key in keys]

    def requests_for(self, *keys: str) -> Any:
        """``served_for`` as a table (the backend's own literal-key calls are left out)."""
        import pandas as pd

        rows = [
            {"request": n, "scenario": self.labels[s.key or ""], "status": s.status}
            | {"Idempotent-Replayed": s.replayed, "the API": s.note}
            for n, s in enumerate(self.served_for(*keys), 1)
        ]
        return pd.DataFrame(rows).set_index("request")

    def charges_for(self, key: str) -> int:
        return sum(1 for c in self.ledger.charges() if c["idempotency_key"] == key)

    def backend_calls(self, *, expected: int = 0, wait_s: float = 0.0) -> list[Served]:
        """Requests the backend itself sent with the literal ``$.detail.customID`` header (LocalStack only).

        LocalStack sends them in the background: ``expected`` and ``wait_s`` wait (at most that long) for that many.
        """
        deadline = time.monotonic() + wait_s
        while True:
            calls = [s for s in list(self.api.served) if s.key is not None and s.key.strip().startswith("$.")]
            if len(calls) >= expected or time.monotonic() >= deadline:
                return calls
            time.sleep(0.05)

    def tally(self) -> Any:
        """Every key the notebook used: PutEvents calls, requests that carried it, charges."""
        import pandas as pd

        served = Counter(s.key for s in list(self.api.served))
        charged = Counter(c["idempotency_key"] for c in self.ledger.charges())
        rows = [
            {"scenario": label, "PutEvents": self.published[key]}
            | {"requests with this key": served[key], "charges": charged[key]}
            for key, label in self.labels.items()
        ]
        return pd.DataFrame(rows).set_index("scenario")


def _in_real_time(clock: dl.ManualClock, sender: Callable[[dl.Request, float], dl.Response]) -> Any:
    """A sender that sends no call before the real clock has caught up with the dispatcher's virtual clock."""
    origin = clock.now()
    started: list[float] = []

    def send_when_due(request: dl.Request, timeout: float) -> dl.Response:
        if not started:
            started.append(time.monotonic())
        time.sleep(max(0.0, (clock.now() - origin) - (time.monotonic() - started[0])))
        return sender(request, timeout)

    return send_when_due


# -- the payments API called directly --------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers, JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]

    def row(self) -> dict[str, Any]:
        """The columns the notebook's table shows (the IETF draft's signals, and Stripe's replay header)."""
        return {
            "status": self.status,
            "Retry-After": self.headers.get("Retry-After", ""),
            "Idempotent-Replayed": self.headers.get("Idempotent-Replayed", ""),
            "code": self.body.get("code", ""),
        }


class DirectClient:
    """Calls ``POST /charges`` on the payments API with ``urllib``: no EventBridge in between."""

    def __init__(self, api: PaymentsApi, *, api_key: tuple[str, str], timeout: float = 10.0) -> None:
        self.api = api
        self._api_key = api_key
        self.timeout = timeout

    def post(self, body: Mapping[str, Any], key: str | None = None) -> Answer:
        headers = {"Content-Type": "application/json", self._api_key[0]: self._api_key[1]}
        if key:
            headers["Idempotency-Key"] = key
        url = f"{self.api.url}/charges"
        request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http://127.0.0.1
                return Answer(response.status, dict(response.headers), json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), json.loads(exc.read()))

    def stored_keys(self) -> int:
        """How many idempotency records the API holds (a consistent count)."""
        ddb = self.api.ledger.resources.backend.client("dynamodb")
        return int(ddb.scan(TableName=self.api.store.table_name, Select="COUNT", ConsistentRead=True)["Count"])

    def post_while_first_runs(
        self, body: Mapping[str, Any], key: str, *, charge_s: float, wait_s: float = 10.0
    ) -> tuple[Answer, Answer]:
        """Send ``body`` with ``key`` and, while that first request is still charging (each charge takes
        ``charge_s``), the same request again. Returns (the first request's answer, the duplicate's answer)."""
        before = self.stored_keys()
        answers: dict[str, Answer] = {}
        self.api.faults.delay_s = charge_s
        try:
            first = threading.Thread(target=lambda: answers.setdefault("first", self.post(body, key)))
            first.start()
            deadline = time.monotonic() + wait_s
            while self.stored_keys() == before and time.monotonic() < deadline:  # until the first holds the key
                time.sleep(0.01)
            duplicate = self.post(body, key)
            first.join(timeout=wait_s + charge_s)
        finally:
            self.api.faults.clear()
        return answers["first"], duplicate


def answers_table(answers: Iterable[tuple[str, Answer]]) -> Any:
    """(what was sent, its answer) pairs as a table, one row per request."""
    import pandas as pd

    return pd.DataFrame([{"request": what} | answer.row() for what, answer in answers]).set_index("request")


# -- the Custom Event Bus (eventbridgev2): the request shape, checked offline -----------------------------------
#: An example bus ARN that matches the model's pattern (a Custom Event Bus ARN ends in a 25-character id).
EXAMPLE_V2_BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-busv2/payments/examplebus000000000000001"


def custom_bus_put_events(detail: Mapping[str, Any], *, bus_arn: str = EXAMPLE_V2_BUS_ARN) -> dict[str, Any]:
    """The ``eventbridgev2`` ``PutEvents`` request for the seed's event, deduplicated by its ``customID``.

    ``SystemMetadata.DeduplicationId`` is the producer's key: the Custom Event Bus answers a second entry with the
    same id within 5 minutes ``DEDUPLICATED`` instead of publishing it (EventBridge user guide,
    eb-custom-bus-ordering). Nothing here sends it: neither emulator implements ``eventbridgev2``.
    """
    return {
        "EventBusArn": bus_arn,
        "Entries": [
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "SystemMetadata": {"DeduplicationId": str(detail["customID"])},
            }
        ],
    }


def check_custom_bus_request(request: Mapping[str, Any]) -> list[str]:
    """Check a ``PutEvents`` request against botocore's ``eventbridgev2`` model, offline; returns the problems.

    botocore validates types, required members and lengths, not patterns, so the patterns the model declares for
    the bus ARN and the deduplication id are checked here too.
    """
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    operation = custom_bus_model().operation_model("PutEvents")
    problems: list[str] = []
    try:
        validate_parameters(dict(request), operation.input_shape)
    except ParamValidationError as exc:
        problems += [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    arn_pattern = operation.input_shape.members["EventBusArn"].metadata["pattern"]
    if not re.fullmatch(arn_pattern, str(request.get("EventBusArn", ""))):
        problems.append(f"EventBusArn is not a Custom Event Bus ARN (the model's pattern: {arn_pattern})")
    entry_shape = operation.input_shape.members["Entries"].member
    id_pattern = entry_shape.members["SystemMetadata"].members["DeduplicationId"].metadata["pattern"]
    for n, entry in enumerate(request.get("Entries") or []):
        dedup_id = (entry.get("SystemMetadata") or {}).get("DeduplicationId")
        if dedup_id is not None and not re.fullmatch(id_pattern, str(dedup_id)):
            problems.append(f"Entries[{n}].SystemMetadata.DeduplicationId is blank (the model's pattern: {id_pattern})")
    return problems


def custom_bus_success_codes() -> list[str]:
    """The answers the model allows per entry: ``PUBLISHED`` or ``DEDUPLICATED``."""
    entry = custom_bus_model().operation_model("PutEvents").output_shape.members["Entries"].member
    return list(entry.members["SuccessCode"].enum)


def custom_bus_model() -> Any:
    """botocore's service model of the Custom Event Bus API (``eventbridgev2``), shipped with boto3."""
    import botocore.session

    return botocore.session.get_session().get_service_model("eventbridgev2")
