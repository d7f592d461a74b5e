"""One key, N workers, a manual clock and a store that can fail: the lease protocol stepped one action at a time.

A :class:`World` runs the real library (``helpers.idempotency``: its guards, transactions and stores) one
:class:`Action` at a time, and after every action checks two things:

1. the library did what a small reference model of the protocol (:class:`Model`, written from the README's
   promises, not from the library's code) says it must: the same answer (acquired, replayed, 409, 422, LeaseLost,
   503...) and the same record in the store, field by field;
2. the invariants, judged on the store itself (before and after the step), not on the model:

   - **legal record**: absent, or IN_PROGRESS with an owner and a lease and no result, or COMPLETED with a result
     and no lease, or FAILED with an error and no lease;
   - **a completed result is never replaced or lost**: once COMPLETED, the record stays exactly that until it
     expires; a worker told "executed" finds its own result stored;
   - **a worker whose lease was taken is refused on every write**: a complete, commit, release or fail by an
     attempt that does not own the IN_PROGRESS record raises LeaseLost and leaves the store as it was;
   - **effects**: in one generation of the key (from a claim of a free key until the record expires) the fenced
     and transactional effects number at most one, and at most one effect is made by a worker holding a live
     lease per attempt that got the key (a first claim or a takeover); any further effect is *stale*: unfenced,
     by a worker whose lease had run out or been taken (the documented unfenced window).

Store errors are injected per action (:data:`FAULTS`): the request never sent (``before``), the write applied but
its answer lost (``after``: the library must say ``maybe_applied``), or the write applied and silently retried by
the SDK (``retried``: the library must recognise its own write).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from helpers.idempotency import (
    ClaimResult,
    DynamoDBStore,
    Effect,
    Guard,
    Idempotency,
    InProgress,
    LeaseLost,
    LocalCache,
    ManualClock,
    MemoryStore,
    Outcome,
    PayloadMismatch,
    Record,
    Status,
    Store,
    StoreUnavailable,
    TerminalError,
    TransitionLog,
)

LEASE = 8.0
WINDOW = 64.0
#: Clock moves: to just inside a lease, exactly to its end (expired: the rule is ``<=``), exactly to the end of the
#: expiry window. Whole seconds, so every time stays exact.
ADVANCES = (LEASE - 1, LEASE, WINDOW)
#: Injected store faults: request never sent; applied but the answer lost; applied and retried by the SDK.
FAULTS = ("before", "after", "retried")
PAYLOAD = {"idempotency_key": "the-key", "amount": 10}
TAMPERED = {"idempotency_key": "the-key", "amount": 99}
FINGERPRINTS = {"P": PAYLOAD, "T": TAMPERED}

IDLE, HOLDING, EFFECTED = "idle", "holding", "effected"
#: Which actions a worker can take in each phase; ``store`` marks those that call the store (and can fail).
PHASE_ACTIONS = {
    IDLE: ("claim", "tamper", "txn"),
    HOLDING: ("effect", "commit", "release", "fail", "crash"),
    EFFECTED: ("complete", "release", "fail", "crash"),
}
STORE_ACTIONS = frozenset({"claim", "tamper", "txn", "commit", "complete", "release", "fail"})
_HANDLERS = {
    "claim": "_claim",
    "tamper": "_tamper",
    "txn": "_txn",
    "effect": "_unfenced_effect",
    "commit": "_commit",
    "complete": "_complete",
    "release": "_release",
    "fail": "_fail",
    "crash": "_crash",
}


class Violation(AssertionError):
    """The library broke the model or an invariant; the message names the step and what differed."""


@dataclass(frozen=True, order=True)
class Action:
    kind: str
    worker: int = -1
    fault: str | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.kind == "advance":
            return f"advance {self.seconds:g}s"
        return f"w{self.worker} {self.kind}" + (f" [{self.fault}]" if self.fault else "")


# ----------------------------------------------------------------------------- a store that fails on request


class FaultyStore(Store):
    """Delegates to a shared store; ``arm(kind)`` makes the next protocol call fail that way (see FAULTS)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_item_bytes = inner.max_item_bytes
        self.max_key_bytes = inner.max_key_bytes
        self.armed: str | None = None
        self.fired: str | None = None
        self.calls = 0  # protocol calls made (sent or not)

    def arm(self, kind: str | None) -> None:
        self.armed, self.fired = kind, None

    def _call(self, fn: Callable[[], Any]) -> Any:
        self.calls += 1
        kind, self.armed = self.armed, None
        if kind is None:
            return fn()
        self.fired = kind
        if kind == "before":
            raise StoreUnavailable("injected fault: the request was never sent", maybe_applied=False)
        with contextlib.suppress(Exception):  # applied; whatever the store answered is lost (or retried)
            fn()
        if kind == "after":
            raise StoreUnavailable("injected fault: the answer was lost after the write", maybe_applied=True)
        return fn()  # retried: the SDK sent the same request again and this is the answer the caller gets

    def item_bytes(self, record: Record) -> int:
        return self.inner.item_bytes(record)

    def claim(self, record: Record, *, now: float) -> ClaimResult:
        result: ClaimResult = self._call(lambda: self.inner.claim(record, now=now))
        return result

    def complete(self, record: Record, *, now: float) -> Record:
        result: Record = self._call(lambda: self.inner.complete(record, now=now))
        return result

    def fail(self, record: Record, *, now: float) -> Record:
        result: Record = self._call(lambda: self.inner.fail(record, now=now))
        return result

    def release(self, key: str, owner: str, *, now: float) -> Record:
        result: Record = self._call(lambda: self.inner.release(key, owner, now=now))
        return result

    def get(self, key: str) -> Record | None:
        result: Record | None = self._call(lambda: self.inner.get(key))
        return result

    def commit(self, record: Record, effect: Effect, *, now: float, owner: str | None = None) -> ClaimResult:
        result: ClaimResult = self._call(lambda: self.inner.commit(record, effect, now=now, owner=owner))
        return result

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def describe(self) -> str:
        return f"faulty({self.inner.describe()})"


# ----------------------------------------------------------------------------- the reference model


@dataclass(frozen=True)
class ModelRecord:
    status: str
    attempt: int
    worker: str
    fp: str
    expires: float
    lease_until: float | None = None

    def free(self, now: float) -> bool:
        return self.expires <= now or (self.status == "IN_PROGRESS" and (self.lease_until or 0.0) <= now)


class Model:
    """What the README promises, for one key: the record, each worker's cache, and the answer to each action."""

    def __init__(self, workers: int) -> None:
        self.record: ModelRecord | None = None
        self.cache: list[ModelRecord | None] = [None] * workers

    def copy(self) -> Model:
        twin = Model(len(self.cache))
        twin.record, twin.cache = self.record, list(self.cache)
        return twin

    def free(self, now: float) -> bool:
        return self.record is None or self.record.free(now)

    def cached(self, w: int, now: float) -> ModelRecord | None:
        hit = self.cache[w]
        if hit is not None and hit.expires <= now:
            self.cache[w] = hit = None
        return hit

    def answer(self, w: int, record: ModelRecord, fp: str, source: str) -> str:
        """A live record met by a request: 422 before anything else, then replay, stored error, or 409."""
        if record.fp != fp:
            return f"mismatch:{source}"
        if record.status == "COMPLETED":
            self.cache[w] = record
            return f"replay:{source}"
        if record.status == "FAILED":
            return "terminal"
        return "busy"

    def claim(self, w: int, attempt: int, fp: str, fault: str | None, now: float, *, completes: bool) -> str:
        """A claim (``completes=False``) or a claim + effect + completion in one transaction (``completes=True``)."""
        hit = self.cached(w, now)
        if hit is not None:
            return self.answer(w, hit, fp, "cache")
        if fault == "before":
            return "unavailable"
        if self.free(now):
            worker = f"w{w}"
            if completes:
                self.record = ModelRecord("COMPLETED", attempt, worker, fp, now + WINDOW)
            else:
                self.record = ModelRecord("IN_PROGRESS", attempt, worker, fp, now + WINDOW, now + LEASE)
            if fault == "after":
                return "unavailable"
            if completes:
                self.cache[w] = self.record
                return "executed"
            return "acquired"
        assert self.record is not None
        if fault == "after":
            return "unavailable"
        return self.answer(w, self.record, fp, "store")

    def owns(self, attempt: int) -> bool:
        return self.record is not None and self.record.status == "IN_PROGRESS" and self.record.attempt == attempt

    def finish(self, w: int, attempt: int, status: str, fault: str | None, now: float) -> str:
        """complete / fenced commit (status COMPLETED) or a stored terminal failure (FAILED)."""
        if fault == "before":
            return "unavailable"
        if not self.owns(attempt):
            return "unavailable" if fault == "after" else "lease_lost"
        assert self.record is not None
        self.record = replace(self.record, status=status, lease_until=None, expires=now + WINDOW)
        if fault == "after":
            return "unavailable"
        if status == "COMPLETED":
            self.cache[w] = self.record
            return "executed"
        return "failed"

    def release(self, attempt: int, fault: str | None) -> str:
        if fault == "before":
            return "unavailable"
        if not self.owns(attempt):
            if fault == "after":
                return "unavailable"
            return "released" if self.record is None else "lease_lost"
        self.record = None
        return "unavailable" if fault == "after" else "released"


# ----------------------------------------------------------------------------- the world


@dataclass
class WorkerState:
    idem: Idempotency
    store: FaultyStore
    phase: str = IDLE
    guard: Guard | None = None
    attempt: int = 0


@dataclass(frozen=True)
class EffectMade:
    attempt: int
    kind: str  # unfenced | fenced | txn
    live: bool  # by a worker holding a live lease (fenced and txn: committed together with the record)
    generation: int


@dataclass
class Stats:
    steps: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    effects: int = 0
    stale_effects: int = 0
    takeovers: int = 0
    faults_fired: int = 0


class World:
    """The library under test, driven one action at a time, checked after every action."""

    def __init__(
        self,
        store: Store,
        *,
        workers: int = 2,
        faults: tuple[str, ...] = FAULTS,
        scope: str | None = None,
        effect_item: Callable[[str], dict[str, Any]] | None = None,
        effect_applied: Callable[[str], bool] | None = None,
    ) -> None:
        self.clock = ManualClock()
        self.store = store
        self.faults = faults
        self.scope = scope or f"model-{uuid.uuid4().hex[:8]}"
        self.log = TransitionLog(max_entries=0)  # not kept: the steps are in ``history``
        self.workers = [self._worker(i) for i in range(workers)]
        identities = {fp: self.workers[0].idem.identify(p) for fp, p in FINGERPRINTS.items()}
        self.fingerprints = {fp: identity.fingerprint for fp, identity in identities.items() if identity is not None}
        self.key = identities["P"].key if identities["P"] is not None else ""
        self.model = Model(workers)
        self.attempts = 0
        self.acting = 0  # the attempt the current action belongs to
        self.owners: dict[str, int] = {}  # owner token -> attempt
        self.generation = 0
        self.gen_takeovers = 0
        self.effects: list[EffectMade] = []
        self.completed: Record | None = None  # this generation's COMPLETED record, once there is one
        self.history: list[str] = []
        self.stats = Stats()
        self.last_read: Record | None = None  # the store's record after the last step (nothing else writes it)
        self._read_now: Record | None = None
        self._fresh = False
        self._pending: list[tuple[Outcome | None, int | None]] = []  # answers to check once the step is done
        self._effect_item = effect_item
        self._effect_applied = effect_applied

    def _worker(self, i: int) -> WorkerState:
        faulty = FaultyStore(self.store)
        idem = Idempotency(
            store=faulty,
            clock=self.clock,
            log=self.log,
            worker=f"w{i}",
            scope=self.scope,
            token_field="idempotency_key",
            lease_duration=LEASE,
            expires_after=WINDOW,
            local_cache=True,
        )
        return WorkerState(idem, faulty)

    def fork(self) -> World:
        """An independent copy of this world (memory store only), to branch a run: the explorer's step."""
        if not isinstance(self.store, MemoryStore):
            raise TypeError("only a world on a MemoryStore can be forked")
        twin = copy.copy(self)  # the immutable parts (scope, key, fingerprints, callbacks) are shared
        twin.clock = ManualClock(self.clock.now())
        twin.store = self.store.copy()
        twin.model = self.model.copy()
        twin.owners = dict(self.owners)
        twin.effects = list(self.effects)
        twin.history = list(self.history)
        twin._pending = []
        twin.stats = Stats(outcomes=dict(self.stats.outcomes))
        twin.workers = [twin._fork_worker(w) for w in self.workers]
        return twin

    def _fork_worker(self, w: WorkerState) -> WorkerState:
        old = w.idem
        cache = LocalCache(old.config.cache_size)
        held = old.cache.get(self.key, self.clock.now()) if old.cache else None
        if held is not None:
            cache.put(held)
        faulty = FaultyStore(self.store)
        idem = Idempotency(
            old.config, store=faulty, clock=self.clock, log=self.log, hooks=old.hooks, worker=old.worker, cache=cache
        )
        guard = None
        if w.guard is not None:
            # a claimed guard cannot be rebuilt through the public API: copy its attempt (owner token, record)
            guard = Guard(idem, dataclasses.replace(w.guard._call), None)
        return WorkerState(idem, faulty, w.phase, guard, w.attempt)

    # ------------------------------------------------------------------ what can happen next

    def enabled(self, *, faults: bool = True) -> list[Action]:
        """Every action possible now, in a fixed order: per worker what its phase allows (each store call also
        with every injected fault), then the clock moves."""
        out: list[Action] = []
        for i, w in enumerate(self.workers):
            for kind in PHASE_ACTIONS[w.phase]:
                out.append(Action(kind, i))
                if faults and kind in STORE_ACTIONS:
                    out.extend(Action(kind, i, fault) for fault in self.faults)
        out.extend(Action("advance", seconds=s) for s in ADVANCES)
        return out

    # ------------------------------------------------------------------ one step

    def apply(self, action: Action) -> str:
        """Run ``action`` on the library, check it against the model and the invariants; the answer's label."""
        self.history.append(str(action))
        self.stats.steps += 1
        now = self.clock.now()
        if action.kind == "advance":
            self.clock.advance(action.seconds)
            if self.completed is not None and self.completed.expires_at <= self.clock.now():
                self.completed = None
            self.check()
            return "advanced"
        w = self.workers[action.worker]
        before = self.last_read
        self._fresh = False
        w.store.arm(action.fault if action.kind in STORE_ACTIONS else None)
        calls = w.store.calls
        handler = getattr(self, _HANDLERS[action.kind])
        got, expected = handler(action.worker, w, action.fault, now)
        if w.store.calls == calls:  # no store call (a cache hit, an effect, a crash): the record is as it was
            self._read_now, self._fresh = before, True
        for outcome, attempt in self._pending:  # what the worker was told, against the store
            if attempt is None:
                self._check_replay(outcome)
            else:
                self._check_own_result(outcome, attempt)
        self._pending.clear()
        if w.store.fired:
            self.stats.faults_fired += 1
        w.store.arm(None)
        self.stats.outcomes[got] = self.stats.outcomes.get(got, 0) + 1
        if got != expected:
            self.fail(f"{action}: the library answered {got!r}, the model says {expected!r}")
        self._check_step(action, w, before, got)
        self.check()
        return got

    # claims -----------------------------------------------------------

    def _new_attempt(self) -> int:
        self.attempts += 1
        self.acting = self.attempts
        return self.attempts

    def _claim(self, i: int, w: WorkerState, fault: str | None, now: float, fp: str = "P") -> tuple[str, str]:
        attempt = self._new_attempt()
        prior = self.model.record
        expected = self.model.claim(i, attempt, fp, fault, now, completes=False)
        try:
            guard = w.idem.guard(FINGERPRINTS[fp])
        except (StoreUnavailable, InProgress, PayloadMismatch, TerminalError) as exc:
            got = self._label(exc, fault)
        else:
            if guard.replayed:
                got = f"replay:{guard.outcome.source if guard.outcome else '?'}"
                self._pending.append((guard.outcome, None))
            else:
                got = "acquired"
                w.phase, w.guard, w.attempt = HOLDING, guard, attempt
                assert guard.owner is not None
                self.owners[guard.owner] = attempt
        self._count_generation(prior, attempt, now)
        return got, expected

    def _tamper(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        return self._claim(i, w, fault, now, fp="T")

    def _txn(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        attempt = self._new_attempt()
        prior = self.model.record
        expected = self.model.claim(i, attempt, "P", fault, now, completes=True)
        applied: list[bool] = []
        try:
            outcome = w.idem.execute_transactional(PAYLOAD, self._effect_for(i, attempt, applied))
        except (StoreUnavailable, InProgress, PayloadMismatch, TerminalError) as exc:
            got = self._label(exc, fault)
        else:
            if outcome.replayed:
                got = f"replay:{outcome.source}"
                self._pending.append((outcome, None))
            else:
                got = "executed"
                if outcome.record is not None and outcome.record.owner:
                    self.owners[outcome.record.owner] = attempt
        self._count_generation(prior, attempt, now)
        if self._was_applied(attempt, applied):
            self._made(attempt, "txn", live=True)
        return got, expected

    def _count_generation(self, prior: ModelRecord | None, attempt: int, now: float) -> None:
        """A claim that got the key starts a generation, or (an abandoned lease taken over) continues one."""
        got_key = self.model.record is not None and self.model.record.attempt == attempt
        if not got_key:
            return
        if prior is not None and prior.expires > now:
            self.gen_takeovers += 1
            self.stats.takeovers += 1
        else:
            self.generation += 1
            self.gen_takeovers = 0
            self.completed = None

    # the holder's steps ---------------------------------------------

    def _effect_for(self, i: int, attempt: int, applied: list[bool]) -> Effect:
        """The side effect of a fenced commit or a transaction: applied only together with the record."""
        writes = [self._effect_item(self._effect_key(attempt))] if self._effect_item else []
        return Effect(result={"by": f"w{i}", "attempt": attempt}, writes=writes, apply=lambda: applied.append(True))

    def _effect_key(self, attempt: int) -> str:
        return f"{self.scope}#effect#{attempt}"

    def _was_applied(self, attempt: int, applied: list[bool]) -> bool:
        if self._effect_applied is not None:
            return self._effect_applied(self._effect_key(attempt))
        return bool(applied)

    def _made(self, attempt: int, kind: str, *, live: bool) -> None:
        """Record an effect and check the effect invariant for this generation."""
        self.effects.append(EffectMade(attempt, kind, live, self.generation))
        self.stats.effects += 1
        self.stats.stale_effects += not live
        mine = [e for e in self.effects if e.generation == self.generation]
        fenced = [e for e in mine if e.kind != "unfenced"]
        if len(fenced) > 1:
            self.fail(f"{len(fenced)} fenced/transactional effects in one generation: {fenced}")
        if any(e.kind != "unfenced" and not e.live for e in mine):
            self.fail(f"a fenced effect was applied without the lease: {mine}")
        by_holders = [e for e in mine if e.live]
        holders = 1 + self.gen_takeovers
        if len(by_holders) > holders or len({e.attempt for e in by_holders}) < len(by_holders):
            self.fail(
                f"{len(by_holders)} effects by lease holders in one generation, {holders} attempts got the key: "
                f"{by_holders}"
            )

    def _unfenced_effect(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self.acting = w.attempt
        r = self.model.record
        live = r is not None and r.status == "IN_PROGRESS" and r.attempt == w.attempt and (r.lease_until or 0) > now
        self._made(w.attempt, "unfenced", live=live)
        w.phase = EFFECTED
        return "effect", "effect"

    def _commit(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self.acting = w.attempt
        expected = self.model.finish(i, w.attempt, "COMPLETED", fault, now)
        applied: list[bool] = []
        assert w.guard is not None
        try:
            outcome = w.guard.commit(self._effect_for(i, w.attempt, applied))
        except (StoreUnavailable, LeaseLost) as exc:
            got = self._label(exc, fault)
        else:
            got = "executed"
            self._pending.append((outcome, w.attempt))
        if self._was_applied(w.attempt, applied):
            self._made(w.attempt, "fenced", live=True)
        self._idle(w)
        return got, expected

    def _complete(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self.acting = w.attempt
        expected = self.model.finish(i, w.attempt, "COMPLETED", fault, now)
        assert w.guard is not None
        try:
            outcome = w.guard.complete({"by": f"w{i}", "attempt": w.attempt})
        except (StoreUnavailable, LeaseLost) as exc:
            got = self._label(exc, fault)
        else:
            got = "executed"
            self._pending.append((outcome, w.attempt))
        self._idle(w)
        return got, expected

    def _release(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self.acting = w.attempt
        expected = self.model.release(w.attempt, fault)
        return self._give_up(w, RuntimeError("retryable"), "released", fault), expected

    def _fail(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self.acting = w.attempt
        expected = self.model.finish(i, w.attempt, "FAILED", fault, now)
        return self._give_up(w, TerminalError("declined", code="declined"), "failed", fault), expected

    def _give_up(self, w: WorkerState, exc: Exception, done: str, fault: str | None) -> str:
        assert w.guard is not None
        try:
            w.guard.fail(exc)
        except LeaseLost as raised:
            got = self._label(raised, fault)
        else:
            # the store could not be updated: the action's own error says the record stays IN_PROGRESS
            state = getattr(exc, "idempotency_state", None)
            got = "unavailable" if state == Status.IN_PROGRESS.value else done
        self._idle(w)
        return got

    def _crash(self, i: int, w: WorkerState, fault: str | None, now: float) -> tuple[str, str]:
        self._idle(w)  # the process is gone: no clean-up, the record stays until its lease runs out
        return "crashed", "crashed"

    def _idle(self, w: WorkerState) -> None:
        w.phase, w.guard = IDLE, None

    # ------------------------------------------------------------------ labels and step checks

    def _label(self, exc: BaseException, fault: str | None) -> str:
        if isinstance(exc, StoreUnavailable):
            if exc.maybe_applied != (fault == "after"):
                self.fail(f"StoreUnavailable.maybe_applied={exc.maybe_applied} after a {fault!r} fault: {exc}")
            return "unavailable"
        if isinstance(exc, InProgress):
            return "busy"
        if isinstance(exc, PayloadMismatch):
            return f"mismatch:{exc.source}"
        if isinstance(exc, LeaseLost):
            return "lease_lost"
        if isinstance(exc, TerminalError) and exc.replayed:
            return "terminal"
        raise exc

    def stored(self) -> Record | None:
        """The record in the store now (read once per step: only the step's own calls write it)."""
        if not self._fresh:
            self._read_now, self._fresh = self.store.get(self.key), True
            self.last_read = self._read_now
        return self._read_now

    def _check_replay(self, outcome: Outcome | None) -> None:
        stored = self.stored()
        if outcome is None or stored is None or stored.status is not Status.COMPLETED:
            self.fail(f"replayed {outcome!r} but the store holds {stored!r}")
        elif outcome.value != stored.value():
            self.fail(f"replayed {outcome.value!r} but the store holds {stored.value()!r}")

    def _check_own_result(self, outcome: Outcome | None, attempt: int) -> None:
        stored = self.stored()
        if stored is None or stored.status is not Status.COMPLETED or self.owners.get(stored.owner or "") != attempt:
            self.fail(f"attempt {attempt} was told its result is stored, but the store holds {stored!r}")
        told = None if outcome is None else outcome.value
        if outcome is None or stored.value() != told:
            self.fail(f"attempt {attempt} was told {told!r}, the store holds {stored.value()!r}")

    def _check_step(self, action: Action, w: WorkerState, before: Record | None, got: str) -> None:
        """What must hold of the step itself, judged on the store before and after it."""
        after = self.stored()
        if after is not None and after.owner and after.owner not in self.owners:
            self.owners[after.owner] = self.acting  # a write whose answer was lost: it was this attempt's
        if action.fault == "before" and w.store.fired and after != before:
            self.fail(f"{action}: a request that was never sent changed the store from {before!r} to {after!r}")
        if action.kind in ("commit", "complete", "release", "fail"):
            owned = (
                before is not None
                and before.status is Status.IN_PROGRESS
                and self.owners.get(before.owner or "") == w.attempt
            )
            if not owned and after != before:
                self.fail(
                    f"{action}: attempt {w.attempt} did not own the record, yet it changed: {before!r} -> {after!r}"
                )
            if not owned and got not in ("lease_lost", "unavailable", "released"):
                self.fail(f"{action}: a worker whose lease was taken was answered {got!r}, not LeaseLost")
            if not owned and got == "released" and before is not None:
                self.fail(f"{action}: a release by a worker that lost the record to {before!r} was reported done")

    # ------------------------------------------------------------------ invariants on the store

    def check(self) -> None:
        """The invariants and the model's record, against the store as it is now."""
        now = self.clock.now()
        stored = self.stored()
        self._check_legal(stored)
        self._check_model(stored)
        if stored is not None and stored.status is Status.COMPLETED and not stored.is_expired(now):
            if self.completed is None:
                self.completed = stored
            elif stored != self.completed:
                self.fail(f"a completed result was replaced: {self.completed!r} became {stored!r}")
        elif self.completed is not None and self.completed.expires_at > now:
            self.fail(f"a completed result was lost: {self.completed!r} became {stored!r}")

    def _check_legal(self, r: Record | None) -> None:
        if r is None:
            return
        legal = {
            Status.IN_PROGRESS: r.owner is not None and r.lease_expires_at is not None and r.response is None,
            Status.COMPLETED: r.response is not None and r.lease_expires_at is None and r.error is None,
            Status.FAILED: r.error is not None and r.lease_expires_at is None and r.response is None,
        }[r.status]
        if not legal or r.expires_at <= r.updated_at or r.fingerprint not in self.fingerprints.values():
            self.fail(f"illegal record: {r!r}")

    def _check_model(self, stored: Record | None) -> None:
        m = self.model.record
        if m is None or stored is None:
            if (m is None) != (stored is None):
                self.fail(f"the store holds {stored!r}, the model {m!r}")
            return
        actual = (
            stored.status.value,
            self.owners.get(stored.owner or ""),
            stored.worker,
            stored.fingerprint,
            stored.expires_at,
            stored.lease_expires_at,
        )
        wanted = (m.status, m.attempt, m.worker, self.fingerprints[m.fp], m.expires, m.lease_until)
        if actual != wanted:
            self.fail(f"the store holds {actual}, the model {wanted}")
        if m.status == "COMPLETED" and json.loads(stored.response or "null") != {"by": m.worker, "attempt": m.attempt}:
            self.fail(f"the stored result {stored.response!r} is not attempt {m.attempt}'s")

    def state_key(self) -> str:
        """What decides every future step, with times relative to now, attempts renamed in order of appearance and
        workers in the order that gives the smallest key: two worlds with the same key answer every sequence of
        actions alike (up to renaming the workers), so the explorer merges them."""
        return min(repr(self._key(order)) for order in itertools.permutations(range(len(self.workers))))

    def _key(self, order: tuple[int, ...]) -> tuple[Any, ...]:
        now = self.clock.now()
        labels: dict[int, int] = {}
        rename = {f"w{old}": f"w{new}" for new, old in enumerate(order)}

        def label(attempt: int | None) -> int | None:
            return None if attempt is None else labels.setdefault(attempt, len(labels))

        def rel(t: float | None) -> float | None:
            return None if t is None else max(t - now, 0.0)  # a time passed stays passed: all past times alike

        def stored(r: Record | None) -> tuple[Any, ...] | None:
            if r is None:
                return None
            value = r.value() if r.response else None
            return (
                r.status.value,
                label(self.owners.get(r.owner or "")),
                rename.get(r.worker or ""),
                r.fingerprint[-8:],
                rel(r.expires_at),
                rel(r.lease_expires_at),
                None if value is None else (rename[value["by"]], label(value["attempt"])),
                r.error is not None,
            )

        workers = [self.workers[i] for i in order]
        phases = tuple((w.phase, label(w.attempt) if w.phase != IDLE else None) for w in workers)
        record = stored(self.stored())
        caches = tuple(stored(w.idem.cache.get(self.key, now) if w.idem.cache else None) for w in workers)
        m = self.model.record
        model = (
            None
            if m is None
            else (m.status, label(m.attempt), rename[m.worker], m.fp, rel(m.expires), rel(m.lease_until))
        )
        model_caches = tuple(
            None if c is None or c.expires <= now else (label(c.attempt), c.fp, rel(c.expires))
            for c in (self.model.cache[i] for i in order)
        )
        effects = tuple(
            sorted((label(e.attempt), e.kind, e.live) for e in self.effects if e.generation == self.generation)
        )
        return (phases, record, caches, model, model_caches, effects, self.gen_takeovers)

    def fail(self, message: str) -> NoReturn:
        trail = "\n  ".join(self.history[-40:])
        raise Violation(f"{message}\nsteps:\n  {trail}")


def memory_world(workers: int = 2, faults: tuple[str, ...] = FAULTS) -> World:
    return World(MemoryStore(), workers=workers, faults=faults)


def dynamodb_world(client: Any, table: str, workers: int = 2, faults: tuple[str, ...] = FAULTS) -> World:
    """A world on a DynamoDB table: fenced effects are items of the same table, written in the same transaction."""
    store = DynamoDBStore(table, client)

    def item(key: str) -> dict[str, Any]:
        return {"Put": {"TableName": table, "Item": {"pk": {"S": key}, "effect": {"S": "charged"}}}}

    def applied(key: str) -> bool:
        return "Item" in client.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)

    return World(store, workers=workers, faults=faults, effect_item=item, effect_applied=applied)
