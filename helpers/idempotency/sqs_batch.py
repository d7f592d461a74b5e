"""Per-message idempotency for an SQS batch, with a partial-failure report in Lambda's shape.

Only the messages that should come back are reported in ``batchItemFailures``: retryable errors, 409 (still in
progress elsewhere), lease lost, poison input (missing key, bad JSON, 422 mismatch: these reach the DLQ after
``maxReceiveCount``). Processed, replayed and terminally failed messages are done and are not redelivered.
For FIFO queues (``eventSourceARN`` ending in ``.fifo``, or ``fifo=True``) the first failure stops the batch and
every later message is reported too, so order within a message group is kept. If the store is unreachable the
remaining messages are not attempted (each would time out in turn) and are all reported.

Accepts a Lambda event (``{"Records": [...]}``), a list of Lambda records, or messages from boto3
``receive_message`` (``MessageId`` / ``Body``).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import MalformedPayload, StoreUnavailable, TerminalError

if TYPE_CHECKING:
    from .config import WaitPolicy
    from .core import Idempotency, Outcome

DONE = ("processed", "replayed", "terminal")


def message_id(record: Mapping[str, Any]) -> str:
    return str(record.get("messageId") or record.get("MessageId") or "")


def message_body(record: Mapping[str, Any]) -> Any:
    return record.get("body", record.get("Body"))


def json_body(record: Mapping[str, Any]) -> Any:
    """The default payload: the message body parsed as JSON."""
    body = message_body(record)
    try:
        return json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedPayload(
            f"message {message_id(record)} has a body that is not JSON ({exc}); pass payload=lambda r: r['body'] "
            "to process text bodies"
        ) from None


@dataclass
class RecordResult:
    """What happened to one message: ``status`` is processed, replayed, terminal, failed or skipped."""

    message_id: str
    status: str
    record: Mapping[str, Any]
    outcome: Outcome | None = None
    error: BaseException | None = None

    @property
    def retried(self) -> bool:
        return self.status not in DONE


@dataclass
class BatchReport:
    results: list[RecordResult] = field(default_factory=list)

    @property
    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda partial batch response: return it from the handler (ReportBatchItemFailures)."""
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in self.results if r.retried]}

    @property
    def failed_ids(self) -> list[str]:
        return [r.message_id for r in self.results if r.retried]

    @property
    def done(self) -> list[Mapping[str, Any]]:
        """Messages finished for good (delete them when polling SQS yourself)."""
        return [r.record for r in self.results if not r.retried]

    @property
    def retry(self) -> list[Mapping[str, Any]]:
        """Messages to leave on the queue (they reappear after the visibility timeout)."""
        return [r.record for r in self.results if r.retried]

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def round_trips(self) -> int:
        total = 0
        for r in self.results:
            if r.outcome is not None:
                total += r.outcome.round_trips
            elif r.error is not None:
                total += getattr(r.error, "round_trips", 0)
        return total


def _records(batch: Any) -> list[Mapping[str, Any]]:
    if isinstance(batch, Mapping):
        if "Records" in batch:
            return list(batch["Records"])
        if "Messages" in batch:
            return list(batch["Messages"])
        raise MalformedPayload("an SQS batch is {'Records': [...]} (Lambda) or {'Messages': [...]} (receive_message)")
    return list(batch)


def process_sqs_batch(
    idem: Idempotency,
    batch: Any,
    handler: Callable[[Any], Any],
    *,
    payload: Callable[[Mapping[str, Any]], Any] = json_body,
    token: Callable[[Mapping[str, Any]], Any] | None = None,
    worker: str | None = None,
    fifo: bool | None = None,
    wait: WaitPolicy | bool | None = False,
) -> BatchReport:
    """Run ``handler(payload(record))`` once per message key; return a :class:`BatchReport`."""
    records = _records(batch)
    if fifo is None:
        fifo = any(str(r.get("eventSourceARN", "")).endswith(".fifo") for r in records)
    report = BatchReport()
    stop_reason: BaseException | None = None
    for record in records:
        mid = message_id(record)
        if stop_reason is not None:
            report.results.append(RecordResult(mid, "skipped", record, error=stop_reason))
            continue
        try:
            data = payload(record)
            explicit = token(record) if token is not None else None
            outcome = idem.execute(data, functools.partial(handler, data), token=explicit, worker=worker, wait=wait)
        except TerminalError as exc:
            report.results.append(RecordResult(mid, "terminal", record, error=exc))
            continue
        except StoreUnavailable as exc:
            report.results.append(RecordResult(mid, "failed", record, error=exc))
            stop_reason = exc
            continue
        except Exception as exc:
            if getattr(exc, "idempotency_state", None) == "FAILED":  # a class listed in terminal_errors: stored
                report.results.append(RecordResult(mid, "terminal", record, error=exc))
                continue
            report.results.append(RecordResult(mid, "failed", record, error=exc))
            if fifo:
                stop_reason = exc
            continue
        status = "replayed" if outcome.replayed else "processed"
        report.results.append(RecordResult(mid, status, record, outcome=outcome))
    return report
