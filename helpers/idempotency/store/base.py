"""The store interface. Every method is ONE conditional round trip; the orchestration (core.py) counts them.

Rules a store must keep (the DynamoDB one does it with condition expressions, the memory one with a lock):

- ``claim`` succeeds only if the key is free: absent, past ``expires_at``, or IN_PROGRESS with an expired lease.
  When it fails it returns the record that blocked it (DynamoDB: ``ReturnValuesOnConditionCheckFailure=ALL_OLD``),
  so a duplicate costs one round trip, not two.
- ``complete`` / ``fail`` / ``release`` succeed only while the caller's owner token is on an IN_PROGRESS record;
  otherwise they change nothing and raise :class:`LeaseLost` with the record that is there now (taken from the
  failed write itself, so a refusal costs no extra read).
- ``commit`` writes the record and the side effect's own writes in one transaction (all or nothing).
- Expiry is judged with the ``now`` the caller passes, never with the store's own clock or TTL sweeper.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..record import Record


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of a claim (or a claim-and-commit): ``record`` is ours if acquired, else the one in the way."""

    acquired: bool
    record: Record | None
    previous: Record | None = None


@dataclass(frozen=True)
class Effect:
    """A side effect applied atomically with the idempotency record (the single-round-trip mode).

    ``writes`` are DynamoDB ``TransactWriteItems`` entries (``{"Put": {...}}``, ``{"Update": ...}``,
    ``{"ConditionCheck": ...}``, ``{"Delete": ...}``) for :class:`DynamoDBStore`; ``apply`` is a callable that an
    in-memory store runs under its lock in the same step (raising from it cancels the whole step). ``result`` is the
    response stored and returned. Give both writes and apply to use one Effect with either store.
    """

    result: Any = None
    writes: Sequence[Mapping[str, Any]] = ()
    apply: Callable[[], None] | None = None


DYNAMODB_ITEM_BYTES = 400 * 1024
DYNAMODB_PARTITION_KEY_BYTES = 2048


def record_bytes(record: Record) -> int:
    """A record's size as DynamoDB counts it: attribute names plus values, strings in UTF-8 bytes, numbers at most
    21 bytes. Unencodable text (a lone surrogate) counts as unstorable (a huge size)."""
    size = 0
    for name, value in (
        ("pk", record.key),
        ("status", record.status.value),
        ("fingerprint", record.fingerprint),
        ("owner", record.owner),
        ("worker", record.worker),
        ("response", record.response),
        ("error", record.error),
    ):
        if value is not None:
            try:
                size += len(name) + len(value.encode("utf-8"))
            except UnicodeEncodeError:
                return 2**62
    numbers = ("expires_at", "ttl", "updated_at") + (("lease_expires_at",) if record.lease_expires_at else ())
    return size + sum(len(name) + 21 for name in numbers)


class Store(ABC):
    """Where records live. Implementations must be safe to share between threads.

    ``max_item_bytes`` and ``max_key_bytes`` are the store's limits (None: none); the engine checks records and
    configurations against them before writing, so nothing fails half-way for a reason known in advance.
    """

    name: str = "store"
    max_item_bytes: int | None = None
    max_key_bytes: int | None = None

    def item_bytes(self, record: Record) -> int:
        """The stored size of ``record`` in bytes (as the store counts it)."""
        return record_bytes(record)

    def run_unprotected(self, effect: Effect) -> None:
        """Apply an effect without an idempotency record (a call with no key and ``on_missing_key='warn'``)."""
        if effect.apply is not None:
            effect.apply()
        elif effect.writes:
            raise NotImplementedError(f"{type(self).__name__} cannot run an Effect's writes; give Effect(apply=...)")

    @abstractmethod
    def claim(self, record: Record, *, now: float) -> ClaimResult:
        """Write ``record`` (IN_PROGRESS, with owner and lease) if the key is free at ``now``."""

    @abstractmethod
    def complete(self, record: Record, *, now: float) -> Record:
        """IN_PROGRESS(record.owner) -> ``record`` (COMPLETED, with the response); LeaseLost if the owner lost it."""

    @abstractmethod
    def fail(self, record: Record, *, now: float) -> Record:
        """IN_PROGRESS(record.owner) -> ``record`` (FAILED, with the terminal error); LeaseLost if the owner lost it."""

    @abstractmethod
    def release(self, key: str, owner: str, *, now: float) -> Record:
        """IN_PROGRESS(owner) -> ABSENT (retryable error); raises LeaseLost if ``owner`` lost the record."""

    @abstractmethod
    def get(self, key: str) -> Record | None:
        """The stored record (strongly consistent), expired or not; None if absent."""

    def commit(self, record: Record, effect: Effect, *, now: float, owner: str | None = None) -> ClaimResult:
        """Write the COMPLETED ``record`` and ``effect`` in one transaction.

        ``owner=None``: claim, effect and completion at once (the key must be free at ``now``); a busy key returns
        ``acquired=False`` with the record in the way. ``owner=...``: a fenced completion of a claimed record; the
        effect is written only if the lease is still ours (else LeaseLost). EffectFailed if the effect's own
        condition fails; StoreConflict if a concurrent transaction touched the record.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support transactional side effects")

    def delete(self, key: str) -> None:
        """Remove a record unconditionally (administration and tests only; not part of the protocol)."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name
