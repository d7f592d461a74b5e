"""The idempotency record and its one-way state machine.

::

    ABSENT --claim--> IN_PROGRESS --complete--> COMPLETED   (response replayed to duplicates)
                         |   |   \\--fail-----> FAILED      (terminal error replayed to duplicates)
                         |   \\--release--> ABSENT          (retryable error: the next attempt runs again)
                         \\--lease expired, claim--> IN_PROGRESS (takeover by a new owner)
    any state past ``expires_at`` counts as ABSENT (EXPIRED); the TTL attribute only cleans up later.

Time is decided in code (the caller's clock), never by the store's TTL sweeper, so an injected clock moves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The stored states. ABSENT and EXPIRED are never stored: they are what a missing or stale record means."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


ABSENT = "ABSENT"
EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Record:
    """One idempotency record. Times are epoch seconds (float) from the caller's clock."""

    key: str
    status: Status
    fingerprint: str
    expires_at: float
    owner: str | None = None
    worker: str | None = None
    lease_expires_at: float | None = None
    response: str | None = None
    error: str | None = None
    updated_at: float = 0.0

    def is_expired(self, now: float) -> bool:
        """Past its expiry window: the key is free again."""
        return self.expires_at <= now

    def lease_expired(self, now: float) -> bool:
        """An IN_PROGRESS record whose owner did not finish in time (crashed or stalled)."""
        return self.status is Status.IN_PROGRESS and self.lease_expires_at is not None and self.lease_expires_at <= now

    def claimable(self, now: float) -> bool:
        """The same rule as the store's conditional write: a new attempt may take this record."""
        return self.is_expired(now) or self.lease_expired(now)

    def state(self, now: float) -> str:
        """The effective state at ``now`` (EXPIRED when past the window), for logs and diagrams."""
        return EXPIRED if self.is_expired(now) else self.status.value

    def value(self) -> Any:
        """The stored response, deserialised."""
        return None if self.response is None else json.loads(self.response)

    def with_changes(self, **changes: Any) -> Record:
        return replace(self, **changes)
