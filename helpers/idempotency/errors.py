"""Typed errors: each says what happened, what it means for the side effect, and what to do next.

Every error a caller can act on differently has its own class, and the ones an HTTP API returns carry the IETF
Idempotency-Key status (``http_status``): 400 missing or malformed key, 409 still in progress, 422 key reused with
another payload. Errors raised by a protected call also carry ``round_trips`` (store calls made before the error).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .record import Record


class IdempotencyError(Exception):
    """Base class of the library's errors (never raised itself)."""

    http_status: int = 500
    round_trips: int = 0
    key: str | None = None


class ConfigurationError(IdempotencyError, ValueError):
    """The configuration cannot work (bad JMESPath, no key source, lease longer than the expiry window...)."""


class UnknownFunction(ConfigurationError):
    """A JMESPath option calls a function that does not exist (caught when the configuration is built)."""

    def __init__(self, option: str, expression: str, function: str, hint: str = "") -> None:
        self.option = option
        self.expression = expression
        self.function = function
        super().__init__(
            f"{option}={expression!r} calls {function}(), which is not a JMESPath function here: use a JMESPath "
            f"built-in or powertools_json, powertools_base64, powertools_base64_gzip.{hint}"
        )


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


class InvalidRecord(StoreError):
    """The store holds a record this library cannot read (an unknown status, a field missing or of the wrong type).

    It was written by something else: another library sharing the table, a newer version, a hand edit. Nothing was
    changed; ``field`` and ``found`` say what is wrong.
    """

    def __init__(self, key: str | None, *, field: str, found: Any, expected: str) -> None:
        self.key = key
        self.field = field
        self.found = found
        super().__init__(
            f"the stored record for idempotency key {key!r} has {field}={found!r}, which this library cannot read "
            f"(expected {expected}). Something else wrote it: another library sharing the table (Powertools writes "
            "status INPROGRESS), a newer version of this one, or a hand edit. Nothing was changed: give this library "
            "a table of its own, or delete the record."
        )


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
    """The action ran but its result cannot be stored (not JSON-serialisable, not UTF-8, or too large).

    The record is marked FAILED with this reason so that a retry does not run the side effect again.
    """


class ItemTooLarge(StoreError):
    """The store refused a record because it is over its item size limit (DynamoDB: 400 KB)."""


#: The longest stored form of a terminal error (UTF-8 bytes); beyond it the details are dropped, then the message cut.
MAX_ERROR_BYTES = 16_000

_TERMINAL_TYPES: dict[str, type[TerminalError]] = {}
_HYBRIDS: dict[type[BaseException], type[TerminalError]] = {}


def type_name(cls: type[BaseException]) -> str:
    """The name a terminal error's class is stored under (module and qualified name)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _utf8_len(text: str) -> int | None:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


class TerminalError(Exception):
    """Raise it (or subclass it) from an action to record a final failure that retries must get back unchanged.

    Like Stripe and the IETF draft, a terminal failure (card declined, invalid account) is stored and replayed;
    any other exception is treated as retryable and releases the lease. A replayed one has ``replayed = True`` and
    is an instance of the class that was raised (a subclass of TerminalError, or a class listed in
    ``terminal_errors``), with the same ``code`` and ``http_status``.
    """

    http_status: int = 422
    code: str = "terminal_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _TERMINAL_TYPES[type_name(cls)] = cls  # the latest definition wins (a re-run notebook cell)

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
        self._setup(message, code, details, http_status, original_type, replayed)

    def _setup(
        self,
        message: str,
        code: str | None,
        details: Any,
        http_status: int | None,
        original_type: str | None,
        replayed: bool,
    ) -> None:
        self.message = message
        if code is not None:
            self.code = code
        elif type(self).code == TerminalError.code and type(self) is not TerminalError:
            self.code = type(self).__name__
        if http_status is not None:
            self.http_status = int(http_status)
        self.details = details
        self.original_type = original_type or type(self).__name__
        self.original_class = type_name(type(self)) if original_type is None else original_type
        self.replayed = replayed
        self.key: str | None = None
        self.round_trips = 0

    def to_json(self, *, limit: int = MAX_ERROR_BYTES) -> str:
        """The stored form: enough to rebuild the error on replay, always valid UTF-8 and at most ``limit`` bytes.

        Details that are not JSON, not UTF-8 or too long are dropped (``details_dropped`` says why), then the
        message is shortened: a terminal error must always be storable, or its action would run again.
        """
        data: dict[str, Any] = {
            "type": self.original_type,
            "class": self.original_class,
            "code": str(self.code),
            "message": str(self.message),
            "details": self.details,
            "http_status": int(self.http_status),
        }
        try:
            text = json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False, allow_nan=False)
            size = _utf8_len(text)
        except (TypeError, ValueError, RecursionError) as exc:
            size, reason = None, f"not JSON: {type(exc).__name__}"
        else:
            reason = "not UTF-8 (a lone surrogate)" if size is None else f"{size} bytes, over {limit}"
        if size is not None and size <= limit:
            return text
        data["details"] = None
        data["details_dropped"] = reason
        # ensure_ascii escapes lone surrogates, so the text is storable; then cut the message until it fits
        text = json.dumps(data, separators=(",", ":"), default=str)
        while len(text) > limit and data["message"]:
            data["message"] = data["message"][: max(0, len(data["message"]) - (len(text) - limit) - 16)] + "..."
            if len(data["message"]) <= 3:
                data["message"] = ""
            text = json.dumps(data, separators=(",", ":"), default=str)
        return text

    @classmethod
    def from_exception(cls, exc: BaseException) -> TerminalError:
        """Wrap a configured terminal exception that is not a TerminalError (e.g. a ValueError)."""
        if isinstance(exc, TerminalError):
            return exc
        wrapped = cls(
            str(exc),
            code=type(exc).__name__,
            http_status=getattr(exc, "http_status", None),
            original_type=type(exc).__name__,
        )
        wrapped.original_class = type_name(type(exc))
        return wrapped

    @classmethod
    def from_json(
        cls, text: str, *, key: str | None = None, declared: tuple[type[BaseException], ...] = ()
    ) -> TerminalError:
        """Rebuild a stored terminal error, marked as replayed, as an instance of the class that was raised.

        A TerminalError subclass is rebuilt as itself (its ``__init__`` is not called: its signature is the
        caller's); a class from ``declared`` (``terminal_errors``) that is not one becomes a subclass of both it
        and TerminalError, so ``except ValueError`` and ``except TerminalError`` both catch the replay.
        """
        data = json.loads(text)
        stored_type = str(data.get("type") or "")
        stored_class = str(data.get("class") or "")
        target: type[TerminalError] = cls
        found = _TERMINAL_TYPES.get(stored_class)
        if found is not None and issubclass(found, cls):
            target = found
        else:
            for declared_cls in declared:
                legacy = not stored_class and declared_cls.__name__ == stored_type  # stored before "class" existed
                if type_name(declared_cls) == stored_class or legacy:
                    target = _hybrid(declared_cls)
                    break
        err = target.__new__(target)
        Exception.__init__(err, data.get("message", ""))
        err._setup(
            data.get("message", ""),
            data.get("code"),
            data.get("details"),
            data.get("http_status"),
            stored_type or None,
            True,
        )
        err.original_class = stored_class or stored_type
        err.key = key
        return err

    def __repr__(self) -> str:
        flag = ", replayed" if self.replayed else ""
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{flag})"


def _hybrid(declared: type[BaseException]) -> type[TerminalError]:
    """A replay class that is both ``declared`` and TerminalError (plain TerminalError if they cannot combine)."""
    if issubclass(declared, TerminalError):
        return declared
    if declared not in _HYBRIDS:
        try:
            hybrid = type(declared.__name__, (TerminalError, declared), {"__module__": declared.__module__})
        except TypeError:  # an exception class with its own C layout (OSError...) cannot be mixed in
            hybrid = TerminalError
        _HYBRIDS[declared] = hybrid
    return _HYBRIDS[declared]


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
