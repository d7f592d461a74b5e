"""Typed errors: each says what happened, what it means for the side effect, and what to do next.

Every error a caller can act on differently has its own class, and the ones an HTTP API returns carry the IETF
Idempotency-Key status (``http_status``): 400 missing or malformed key, 409 still in progress, 422 key reused with
another payload. Errors raised by a protected call also carry ``round_trips`` (store calls made before the error).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpers.idempotency.record import Record


class IdempotencyError(Exception):
    """Base class of the library's errors (never raised itself)."""

    http_status: int = 500
    round_trips: int = 0
    key: str | None = None


class ConfigurationError(IdempotencyError, ValueError):
    """The configuration cannot work (bad JMESPath, no key source, lease longer than the expiry window...)."""


class KeyMissing(IdempotencyError):
    """No idempotency key could be found in the request (IETF: 400)."""

    http_status = 400


class InvalidKey(IdempotencyError):
    """The client-supplied key is not usable (empty, too long, control characters, not a string) (400)."""

    http_status = 400


class MalformedPayload(IdempotencyError):
    """The payload cannot be read: e.g. a field declared as a JSON string does not parse (400)."""

    http_status = 400


class PayloadNotSerializable(IdempotencyError, TypeError):
    """The payload holds a value with no canonical JSON form (a set, bytes, an object...); nothing was written."""

    http_status = 400


class PayloadMismatch(IdempotencyError):
    """The key was already used with a different payload (IETF: 422); the stored result is not returned."""

    http_status = 422

    def __init__(self, key: str, *, stored: str, received: str, source: str) -> None:
        self.key = key
        self.stored_fingerprint = stored
        self.fingerprint = received
        self.source = source
        super().__init__(
            f"idempotency key {key!r} was first used with a different payload (stored fingerprint {stored[:19]}..., "
            f"this request {received[:19]}..., seen via {source}). A key names ONE operation: send the original "
            "payload to get its result, or use a new key for a new operation."
        )


class InProgress(IdempotencyError):
    """Another attempt with this key holds the lease right now (IETF: 409); retry after ``retry_after`` seconds."""

    http_status = 409

    def __init__(self, key: str, *, retry_after: float, lease_expires_in: float, holder: str | None) -> None:
        self.key = key
        self.retry_after = retry_after
        self.lease_expires_in = lease_expires_in
        self.holder = holder
        super().__init__(
            f"idempotency key {key!r} is being processed by {holder or 'another worker'} (its lease ends in "
            f"{lease_expires_in:.3g}s). Retry with the same key after {retry_after:.3g}s to get its result; "
            "do not use a new key, or the operation may run twice."
        )


class LeaseLost(IdempotencyError):
    """This worker no longer owns the record: its lease was taken over, or the record is gone.

    The store refused the write, so the newer owner's record is intact. ``value`` holds this worker's own result
    (if it had one) so nothing is silently dropped; ``current`` is the record the store holds now.
    """

    http_status = 503

    def __init__(self, key: str, *, during: str, owner: str, current: Record | None, value: Any = None) -> None:
        self.key = key
        self.during = during
        self.owner = owner
        self.current = current
        self.value = value
        if current is None:
            now_holds = "the record no longer exists (expired, released or deleted)"
        else:
            now_holds = f"it is now {current.status.value} owned by {current.worker or current.owner}"
        super().__init__(
            f"{during} of idempotency key {key!r} was refused: this worker's lease ({owner[:8]}...) was lost and "
            f"{now_holds}. The store was not changed. If your side effect was not fenced by the lease it may have "
            "run twice: reconcile it; retry the request with the same key to get the authoritative result."
        )


class StoreError(IdempotencyError):
    """The store answered with an error the library cannot handle (missing table, validation error...)."""


class StoreUnavailable(StoreError):
    """The store could not be reached (connection refused, timeout, throttling after retries) (503).

    ``maybe_applied`` is True when the request may have reached the store before the answer was lost (a read
    timeout, a dropped connection): the write may or may not have happened.
    """

    http_status = 503

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class StoreConflict(StoreError):
    """A concurrent transaction touched the same record (DynamoDB TransactionConflict); safe to retry."""

    http_status = 409


class EffectFailed(IdempotencyError):
    """A transactional side effect's own condition failed, so nothing was written (neither effect nor record).

    ``reasons`` is the store's list of cancellation reasons (DynamoDB ``CancellationReasons``), one per write.
    """

    http_status = 409

    def __init__(self, key: str, reasons: list[dict[str, Any]], detail: str = "") -> None:
        self.key = key
        self.reasons = reasons
        failing = [f"write {i}: {r.get('Code')}" for i, r in enumerate(reasons) if r.get("Code") not in (None, "None")]
        super().__init__(
            f"the side effect for idempotency key {key!r} was refused by its own condition ({', '.join(failing)})"
            f"{': ' + detail if detail else ''}. Nothing was written and the key is free: fix the cause and retry."
        )


class ResponseNotStorable(IdempotencyError):
    """The action ran but its result cannot be stored (not JSON-serialisable, or too large).

    The record is marked FAILED with this reason so that a retry does not run the side effect again.
    """


class TerminalError(Exception):
    """Raise it (or subclass it) from an action to record a final failure that retries must get back unchanged.

    Like Stripe and the IETF draft, a terminal failure (card declined, invalid account) is stored and replayed;
    any other exception is treated as retryable and releases the lease. A replayed one has ``replayed = True``.
    """

    http_status: int = 422
    code: str = "terminal_error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        details: Any = None,
        http_status: int | None = None,
        original_type: str | None = None,
        replayed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        elif type(self).code == TerminalError.code and type(self) is not TerminalError:
            self.code = type(self).__name__
        if http_status is not None:
            self.http_status = http_status
        self.details = details
        self.original_type = original_type or type(self).__name__
        self.replayed = replayed
        self.key: str | None = None
        self.round_trips = 0

    def to_json(self) -> str:
        """The stored form: enough to rebuild the error on replay."""
        return json.dumps(
            {
                "type": self.original_type,
                "code": self.code,
                "message": self.message,
                "details": self.details,
                "http_status": self.http_status,
            },
            separators=(",", ":"),
            default=str,
        )

    @classmethod
    def from_exception(cls, exc: BaseException) -> TerminalError:
        """Wrap a configured terminal exception that is not a TerminalError (e.g. a ValueError)."""
        if isinstance(exc, TerminalError):
            return exc
        return cls(str(exc), code=type(exc).__name__, original_type=type(exc).__name__)

    @classmethod
    def from_json(cls, text: str, *, key: str | None = None) -> TerminalError:
        """Rebuild a stored terminal error, marked as replayed."""
        data = json.loads(text)
        err = cls(
            data.get("message", ""),
            code=data.get("code"),
            details=data.get("details"),
            http_status=data.get("http_status"),
            original_type=data.get("type"),
            replayed=True,
        )
        err.key = key
        return err

    def __repr__(self) -> str:
        flag = ", replayed" if self.replayed else ""
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{flag})"


class SimulatedCrash(BaseException):
    """Raised by fault hooks to stand for a process dying at an exact point.

    It derives from BaseException on purpose: a crashed process runs no ``except Exception`` clean-up, so the
    library leaves the record exactly as a real crash would (IN_PROGRESS until its lease expires).
    """

    def __init__(self, point: str = "", key: str | None = None, worker: str | None = None) -> None:
        self.point = point
        self.key = key
        self.worker = worker
        super().__init__(f"simulated crash at {point} (key={key!r}, worker={worker!r})")
