"""Clocks: the library never reads the wall clock directly, so tests and notebooks can move time without sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What the library needs from time: the current epoch seconds, and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """Time that only moves when told to: ``advance(s)`` / ``set(t)``; ``sleep(s)`` advances instead of waiting.

    The default start (2033-05-18T03:33:20Z) makes printed times identical on every run, and lies in the future so
    the TTL attribute of records written under it never tells a store that really deletes expired items (AWS) to
    remove them in the middle of a demo.
    """

    def __init__(self, start: float = 2_000_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards; use set() for that on purpose")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = float(when)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        time.sleep(0)  # let other threads run, as a real sleep would

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now():.3f})"
