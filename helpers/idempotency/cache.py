"""A bounded LRU of finished records, so a hot duplicate costs no round trip.

Only COMPLETED records are cached: an IN_PROGRESS record changes elsewhere (its owner completes it, or a takeover
replaces it) and a stale copy would answer 409 or replay the wrong owner. Expiry is checked on every read with the
caller's clock, so a cached record never outlives the store's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .record import Record, Status


class LocalCache:
    def __init__(self, max_items: int = 256) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._items: OrderedDict[str, Record] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, now: float) -> Record | None:
        with self._lock:
            record = self._items.get(key)
            if record is None:
                self.misses += 1
                return None
            if record.is_expired(now):
                del self._items[key]
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return record

    def put(self, record: Record) -> None:
        if record.status is not Status.COMPLETED:
            return
        with self._lock:
            self._items[record.key] = record
            self._items.move_to_end(record.key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items
