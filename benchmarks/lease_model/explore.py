"""Exhaustive exploration: every sequence of actions of a given length, from an empty key, on the memory store.

Depth-first over :meth:`World.enabled` (each worker's possible actions, each store call also with every injected
fault, and the clock moves). Each transition runs the real library on a copy of the world and is checked by the
world (model and invariants). Worlds that agree on :meth:`World.state_key` (same record, caches, holders and
effects, times relative to now) answer every later sequence alike, so each is explored once per remaining depth;
the number of sequences covered is counted exactly through that merge.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .world import FAULTS, Action, Violation, World, memory_world


@dataclass
class Exploration:
    workers: int
    depth: int
    faults: tuple[str, ...]
    sequences: int = 0  # distinct action sequences of length ``depth``, every step of each checked
    states: int = 0  # distinct (state, remaining depth) pairs expanded
    transitions: int = 0  # library steps actually run
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)  # the library's answers, per transition run

    def summary(self) -> str:
        faults = ", ".join(self.faults) or "none"
        return (
            f"{self.workers} workers, depth {self.depth}, injected faults: {faults}\n"
            f"  interleavings explored: {self.sequences:,} action sequences of length {self.depth}\n"
            f"  distinct states expanded: {self.states:,}; library steps run: {self.transitions:,}; "
            f"{self.seconds:.1f} s\n"
            f"  violations: {len(self.violations)}"
        )


def explore(
    depth: int,
    *,
    workers: int = 2,
    faults: tuple[str, ...] = FAULTS,
    make: Callable[[int, tuple[str, ...]], World] = lambda n, f: memory_world(n, f),
    max_violations: int = 20,
) -> Exploration:
    """Run every sequence of ``depth`` actions; return the counts and the violations found (each with its steps)."""
    result = Exploration(workers, depth, faults)
    counts: dict[tuple[Any, int], int] = {}
    started = time.perf_counter()

    def visit(world: World, remaining: int) -> int:
        if remaining == 0:
            return 1
        key = (world.state_key(), remaining)
        if key in counts:
            return counts[key]
        result.states += 1
        total = 0
        for action in world.enabled(faults=bool(faults)):
            child = world.fork()
            result.transitions += 1
            try:
                result.outcomes[child.apply(action)] += 1
            except Violation as violation:
                result.violations.append(str(violation))
                if len(result.violations) >= max_violations:
                    raise
                continue
            total += visit(child, remaining - 1)
        counts[key] = total
        return total

    root = make(workers, faults)
    root.check()
    result.sequences = visit(root, depth)
    result.seconds = time.perf_counter() - started
    return result


def replay(steps: list[Action], *, workers: int = 2, world: World | None = None) -> World:
    """Run one sequence from an empty key (a failing example kept as a regular test)."""
    world = world or memory_world(workers)
    world.check()
    for action in steps:
        world.apply(action)
    return world


__all__ = ["Exploration", "explore", "replay"]
