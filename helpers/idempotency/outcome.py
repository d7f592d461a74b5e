"""What a protected call is while it runs (:class:`Attempt`) and what it returns (:class:`Outcome`).

Kept apart from the engine (core.py) so the forms built on it (the guard, the decorator, the batch and HTTP glue)
depend on these plain data classes, not on each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .keys import Identity
from .record import Record


@dataclass(frozen=True)
class Outcome:
    """What a protected call returned, and how: ``replayed`` is True when the action did not run this time.

    ``source``: ``executed`` (ran now), ``store`` (replayed from the store), ``cache`` (replayed from the local
    cache, 0 round trips) or ``unprotected`` (no key, ran without protection). ``round_trips`` counts the store
    calls this call made.
    """

    key: str | None
    value: Any
    replayed: bool
    source: str
    round_trips: int
    worker: str
    record: Record | None = dataclasses.field(default=None, repr=False)
    waited: float = 0.0


@dataclass(frozen=True)
class EffectContext:
    """Handed to a transactional effect builder: tag your ledger rows with ``key`` to trace them."""

    key: str
    worker: str
    now: float
    token: str | None


@dataclass
class Attempt:
    """One protected call in flight: its identity, who runs it, the owner token of its claim, what it cost."""

    identity: Identity | None
    worker: str
    payload: Any
    round_trips: int = 0
    owner: str | None = None
    record: Record | None = None
    waited: float = 0.0

    @property
    def key(self) -> str:
        return self.identity.key if self.identity else ""
