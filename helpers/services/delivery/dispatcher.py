"""The dispatcher: drains the rule's tap queue and delivers each event with AWS's retries, backoff and DLQ."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import random
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws import backend as backend_mod
from helpers.idempotency.clock import Clock, SystemClock
from helpers.instruments import viz
from helpers.services.delivery.ratelimit import TokenBucket
from helpers.services.delivery.request import (
    MESSAGE_PREFIX,
    REQUEST_TIMEOUT_S,
    STANDARD_HEADERS,
    Request,
    Response,
    build_request,
    is_retryable,
    send,
)
from helpers.services.delivery.routes import Route
from helpers.services.delivery.target import DeliveryTarget, read_delivery_target


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
    publish its own, so notebooks keep these small or pass a :class:`~helpers.idempotency.clock.ManualClock`, on which
    a day of retries runs in milliseconds.
    """

    def __init__(
        self,
        backend: backend_mod.Backend,
        *,
        rule: str,
        bus: str,
        tap_url: str | None = None,
        target_id: str | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        timeout: float = REQUEST_TIMEOUT_S,
        sender: Callable[[Request, float], Response] = send,
    ) -> None:
        self.backend = backend
        self.rule, self.bus, self.tap_url, self.target_id = rule, bus, tap_url, target_id
        self.clock: Clock = clock or SystemClock()
        self.random = random.Random(seed)
        self.backoff_base, self.backoff_cap, self.timeout = backoff_base, backoff_cap, timeout
        self.sender = sender
        self.started = self.clock.now()
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
        self._bucket = TokenBucket(self.target.rate_limit_per_second, clock=self.clock)
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
                pending[event_id] = _Pending(event, self.clock.now(), message["ReceiptHandle"])
        return self._run(list(pending.values()))

    def deliver(self, events: Iterable[Mapping[str, Any]]) -> list[Delivery]:
        """Deliver events given directly (no tap): for tests and for showing one event's fate."""
        now = self.clock.now()
        return self._run([_Pending(dict(e), now, None) for e in events])

    # -- the timeline ---------------------------------------------------------------------------------------------
    def _run(self, pending: list[_Pending]) -> list[Delivery]:
        heap: list[tuple[float, int, _Pending]] = [(p.received, next(self._order), p) for p in pending]
        heapq.heapify(heap)
        results: list[Delivery] = []
        policy = self.target.retry_policy
        while heap:
            due, _, item = heapq.heappop(heap)
            now = self.clock.now()
            if due > now:
                self.clock.sleep(due - now)
            event_id = str(item.event.get("id", "?"))
            if self.clock.now() + self._bucket.wait_needed() - item.received > policy.maximum_event_age_seconds:
                # Too old by the time the rate limit lets it go (a backlog): AWS gives up on it too.
                results.append(self._give_up(item, None, "MaximumEventAgeInSeconds", last=self._last(event_id)))
                continue
            rate_wait = self._bucket.acquire()
            item.attempts += 1
            request = build_request(self.target, item.event)
            at = self.clock.now() - self.started
            response = self.sender(request, self.timeout)
            record: dict[str, Any] = dict(
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
            if self.clock.now() + delay - item.received > policy.maximum_event_age_seconds:
                results.append(self._give_up(item, response, "MaximumEventAgeInSeconds", record=record))
                continue
            self.attempts.append(Attempt(**record, outcome="retry", retry_in=round(delay, 3)))
            heapq.heappush(heap, (self.clock.now() + delay, next(self._order), item))
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
            MESSAGE_PREFIX + f"The event is older than MaximumEventAgeInSeconds "
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

    def sequence_diagram(
        self,
        *,
        label: Callable[[Attempt], str] | None = None,
        event: Callable[[str], str] | None = None,
        dlq: str = "DLQ",
    ) -> viz.Mermaid:
        """A Mermaid sequence diagram of the attempts (displays as a diagram in JupyterLab, compares as text).

        ``label`` gives an attempt's arrow text (default: method, path and event); ``event`` names an event by its id
        where the diagram mentions one (default: ``event`` and the id's first 8 characters), so a notebook can show
        something that does not change from run to run.
        """
        event = event or (lambda event_id: f"event {event_id[:8]}")
        label = label or (lambda a: f"{a.method} {urllib.parse.urlsplit(a.url).path} ({event(a.event_id)})")
        steps: list[dict[str, str]] = []

        def note(text: str) -> None:
            steps.append({"from": "EB", "to": "EB", "label": text, "kind": "note"})

        for a in self.attempts:
            if a.rate_wait > 0:
                note(f"rate limit: wait {a.rate_wait:g} s")
            steps.append({"from": "EB", "to": "API", "label": f"{label(a)} attempt {a.attempt}", "kind": "call"})
            answer = a.status if a.status is not None else a.error_code
            steps.append({"from": "API", "to": "EB", "label": str(answer), "kind": "reply"})
            if a.outcome == "retry":
                note(f"backoff {a.retry_in:g} s")
            elif a.outcome == "dead-lettered":
                steps.append({"from": "EB", "to": "Q", "label": f"{event(a.event_id)} + error attributes"})
        shown = {a.event_id for a in self.attempts if a.outcome == "dead-lettered"}
        for d in self.deliveries:
            if d.outcome == "dead-lettered" and d.event_id not in shown:
                note(f"{event(d.event_id)} older than MaximumEventAgeInSeconds")
                steps.append({"from": "EB", "to": "Q", "label": f"{event(d.event_id)} + error attributes"})
        aliases = {"EB": "EventBridge delivery", "API": "HTTP API", "Q": dlq}
        return viz.sequence_diagram(steps, actors=["EB", "API"], aliases=aliases)
