"""The transition log: every state change (and every refused or replayed attempt) as a dict a notebook can draw.

Entries: ``{"key", "from", "to", "worker", "at", "reason", "event"}``. ``from``/``to`` use the record states
plus ``ABSENT`` and ``EXPIRED``; refused attempts (409, 422, lease lost) have ``from == to``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any


class TransitionLog:
    """Thread-safe, append-only, list-like. Share one between workers to see a whole scenario."""

    def __init__(self, max_entries: int | None = 100_000) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def record(
        self, *, key: str, from_: str, to: str, worker: str, at: float, reason: str, event: str
    ) -> dict[str, Any]:
        entry = {"key": key, "from": from_, "to": to, "worker": worker, "at": at, "reason": reason, "event": event}
        with self._lock:
            self._entries.append(entry)
            if self.max_entries is not None and len(self._entries) > self.max_entries:
                del self._entries[: len(self._entries) - self.max_entries]
        return entry

    def entries(self, key: str | None = None, *, changes_only: bool = False) -> list[dict[str, Any]]:
        """A copy of the entries, optionally for one key and only real state changes."""
        with self._lock:
            rows = list(self._entries)
        if key is not None:
            rows = [r for r in rows if r["key"] == key]
        if changes_only:
            rows = [r for r in rows if r["from"] != r["to"] or r["event"] == "takeover"]
        return rows

    def events(self, key: str | None = None) -> list[str]:
        """Just the event names, in order: handy for asserting a scenario."""
        return [r["event"] for r in self.entries(key)]

    def counts(self) -> Counter[str]:
        return Counter(r["event"] for r in self.entries())

    def to_mermaid(self, key: str | None = None, *, changes_only: bool = False) -> str:
        """A Mermaid ``stateDiagram-v2`` of the edges taken, labelled with the events and how often."""
        edges: Counter[tuple[str, str, str]] = Counter()
        for r in self.entries(key, changes_only=changes_only):
            edges[(r["from"], r["to"], r["event"])] += 1
        lines = ["stateDiagram-v2"]
        if any(src == "ABSENT" for src, _, _ in edges):
            lines.append("    [*] --> ABSENT")
        for (src, dst, event), n in sorted(edges.items()):
            label = event if n == 1 else f"{event} x{n}"
            lines.append(f"    {src} --> {dst}: {label}")
        return "\n".join(lines)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._entries[index]

    def __repr__(self) -> str:
        return f"TransitionLog({len(self)} entries)"
