"""An in-memory store with the same conditional semantics as DynamoDB (one lock stands for per-item atomicity).

For unit tests, docs and property-based checks; it is not shared between processes.
"""

from __future__ import annotations

import threading

from ..errors import EffectFailed, ItemTooLarge, LeaseLost
from ..record import Record, Status
from .base import DYNAMODB_ITEM_BYTES, DYNAMODB_PARTITION_KEY_BYTES, ClaimResult, Effect, Store


class MemoryStore(Store):
    """Records in a dict. It keeps DynamoDB's size limits by default (``max_item_bytes``, ``max_key_bytes``), so
    code tested on it meets the same refusals on DynamoDB; pass None to lift them."""

    name = "memory"

    def __init__(
        self,
        *,
        max_item_bytes: int | None = DYNAMODB_ITEM_BYTES,
        max_key_bytes: int | None = DYNAMODB_PARTITION_KEY_BYTES,
    ) -> None:
        self._records: dict[str, Record] = {}
        self._lock = threading.RLock()
        self.max_item_bytes = max_item_bytes
        self.max_key_bytes = max_key_bytes

    def _check_size(self, record: Record) -> None:
        if self.max_item_bytes is not None and (size := self.item_bytes(record)) > self.max_item_bytes:
            raise ItemTooLarge(
                f"the record for {record.key!r} is {size} bytes, over this store's item limit of "
                f"{self.max_item_bytes} bytes; nothing was written"
            )

    def claim(self, record: Record, *, now: float) -> ClaimResult:
        self._check_size(record)
        with self._lock:
            old = self._records.get(record.key)
            if old is not None and not old.claimable(now):
                return ClaimResult(False, old)
            new = record.with_changes(updated_at=now)
            self._records[record.key] = new
            return ClaimResult(True, new, old)

    def _owned(self, key: str, owner: str, during: str) -> Record:
        current = self._records.get(key)
        if current is None or current.status is not Status.IN_PROGRESS or current.owner != owner:
            raise LeaseLost(key, during=during, owner=owner, current=current)
        return current

    def complete(self, record: Record, *, now: float) -> Record:
        return self._replace_owned(record, "completion", now)

    def fail(self, record: Record, *, now: float) -> Record:
        return self._replace_owned(record, "failure", now)

    def _replace_owned(self, record: Record, during: str, now: float) -> Record:
        assert record.owner is not None
        self._check_size(record)
        with self._lock:
            self._owned(record.key, record.owner, during)
            new = record.with_changes(updated_at=now)
            self._records[record.key] = new
            return new

    def release(self, key: str, owner: str, *, now: float) -> Record:
        with self._lock:
            current = self._owned(key, owner, "release")
            del self._records[key]
            return current

    def get(self, key: str) -> Record | None:
        with self._lock:
            return self._records.get(key)

    def commit(self, record: Record, effect: Effect, *, now: float, owner: str | None = None) -> ClaimResult:
        if effect.apply is None and effect.writes:
            raise TypeError(
                "MemoryStore cannot run DynamoDB writes: give Effect(apply=callable) (run atomically with the "
                "record), or use DynamoDBStore for Effect(writes=[...])."
            )
        self._check_size(record)
        with self._lock:
            old = self._records.get(record.key)
            if owner is None:
                if old is not None and not old.claimable(now):
                    return ClaimResult(False, old)
                new = record.with_changes(updated_at=now)
            else:
                old = self._owned(record.key, owner, "fenced commit")
                new = record.with_changes(owner=owner, updated_at=now)
            if effect.apply is not None:
                try:
                    effect.apply()
                except Exception as exc:
                    raise EffectFailed(
                        record.key, [{"Code": "None"}, {"Code": type(exc).__name__, "Message": str(exc)}], str(exc)
                    ) from exc
            self._records[record.key] = new
            return ClaimResult(True, new, old)

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def copy(self) -> MemoryStore:
        """An independent store holding the same records (a model checker branches a run this way)."""
        twin = MemoryStore(max_item_bytes=self.max_item_bytes, max_key_bytes=self.max_key_bytes)
        with self._lock:
            twin._records = dict(self._records)  # records are immutable: sharing them is safe
        return twin

    def records(self) -> dict[str, Record]:
        """A snapshot of everything stored (for inspection in notebooks)."""
        with self._lock:
            return dict(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
