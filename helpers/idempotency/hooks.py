"""Fault hooks: crash or stall a worker at an exact point of the protocol, deterministically.

The points, in the order one attempt passes them::

    before_claim -> [claim] -> after_claim -> [action] -> after_effect -> [serialise] -> before_completion
                 -> [complete / fail]              (on a retryable error: before_release -> [release])

``execute_transactional`` passes ``before_claim`` and ``before_completion`` (just before its single write).
A hook is any callable taking a :class:`HookContext`; it may raise :class:`SimulatedCrash`, block, advance the
clock, or even run another worker inline (the way tests build a lease takeover without threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import SimulatedCrash

if TYPE_CHECKING:
    from .clock import Clock

HOOK_POINTS = ("before_claim", "after_claim", "after_effect", "before_completion", "before_release")


@dataclass(frozen=True)
class HookContext:
    """Where a worker is when a hook fires."""

    point: str
    key: str
    worker: str
    owner: str | None
    now: float
    clock: Clock
    payload: Any = None


@dataclass
class _Hook:
    point: str
    fn: Callable[[HookContext], Any]
    when: Callable[[HookContext], bool] | None
    times: int | None
    fired: int = 0
    hooks: FaultHooks | None = field(default=None, repr=False)

    def remove(self) -> None:
        if self.hooks is not None:
            self.hooks.remove(self)


class FaultHooks:
    """A registry of hooks by point; ``history`` lists every hook that fired (point, key, worker, at)."""

    def __init__(self) -> None:
        self._hooks: list[_Hook] = []
        self._lock = threading.Lock()
        self.history: list[dict[str, Any]] = []

    def add(
        self,
        point: str,
        fn: Callable[[HookContext], Any],
        *,
        when: Callable[[HookContext], bool] | None = None,
        worker: str | None = None,
        key: str | None = None,
        times: int | None = None,
    ) -> _Hook:
        """Run ``fn(ctx)`` at ``point`` for calls matching ``when``/``worker``/``key``, at most ``times`` times."""
        if point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {point!r}; use one of {', '.join(HOOK_POINTS)}")

        def matches(ctx: HookContext) -> bool:
            if worker is not None and ctx.worker != worker:
                return False
            if key is not None and ctx.key != key:
                return False
            return when is None or bool(when(ctx))

        hook = _Hook(point, fn, matches, times, hooks=self)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def crash(self, point: str, *, times: int | None = 1, **filters: Any) -> _Hook:
        """Make the matching worker die at ``point`` (raises :class:`SimulatedCrash`)."""

        def crash(ctx: HookContext) -> None:
            raise SimulatedCrash(ctx.point, ctx.key, ctx.worker)

        return self.add(point, crash, times=times, **filters)

    def stall(
        self,
        point: str,
        *,
        seconds: float | None = None,
        until: threading.Event | None = None,
        timeout: float = 10.0,
        times: int | None = 1,
        **filters: Any,
    ) -> _Hook:
        """Hold the matching worker at ``point``: advance its clock by ``seconds`` (instant on a ManualClock)
        and/or block until ``until`` is set (bounded by ``timeout``, so a broken test fails instead of hanging)."""

        def stall(ctx: HookContext) -> None:
            if seconds:
                ctx.clock.sleep(seconds)
            if until is not None and not until.wait(timeout):
                raise TimeoutError(f"stall at {ctx.point} for {ctx.worker} was not released within {timeout}s")

        return self.add(point, stall, times=times, **filters)

    def remove(self, hook: _Hook) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()
            self.history.clear()

    def fire(self, ctx: HookContext) -> None:
        """Called by the library at each point; runs the matching hooks in registration order."""
        with self._lock:
            due = []
            for hook in self._hooks:
                if hook.point != ctx.point or (hook.times is not None and hook.fired >= hook.times):
                    continue
                if hook.when is not None and not hook.when(ctx):
                    continue
                hook.fired += 1
                due.append(hook)
                self.history.append({"point": ctx.point, "key": ctx.key, "worker": ctx.worker, "at": ctx.now})
        for hook in due:
            hook.fn(ctx)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def __repr__(self) -> str:
        return f"FaultHooks({[(h.point, h.fired, h.times) for h in self._hooks]})"
