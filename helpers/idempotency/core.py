"""The orchestration: identify -> cache -> claim -> act -> complete / fail / release, with every step observable.

One :class:`Idempotency` object holds a config, a store, a clock, fault hooks, a transition log and a local
cache. Its forms (``execute``, ``execute_transactional``, ``guard``, ``idempotent``) all run the same protocol:

1. **identify** the request (key + payload fingerprint) with no I/O; a missing key is an error by default;
2. **cache**: a COMPLETED record for the key (fingerprint checked) replays with 0 round trips;
3. **claim** with one conditional write; if the key is taken, the same write returns the record in the way
   (fingerprint checked -> 422; COMPLETED -> replay; FAILED -> the stored terminal error; IN_PROGRESS -> 409,
   or a bounded wait that polls with further claims);
4. **act**, then **complete** (or **fail** for a terminal error, **release** for a retryable one), each
   conditional on the owner token, so a worker whose lease was taken over is refused with LeaseLost.

The first caller gets the stored (JSON round-tripped) value too, so first call and replays return equal values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from .cache import LocalCache
from .clock import Clock, SystemClock
from .config import IdempotencyConfig, WaitPolicy
from .context import Guard
from .decorator import idempotent as _idempotent
from .errors import (
    ConfigurationError,
    EffectFailed,
    IdempotencyError,
    InProgress,
    ItemTooLarge,
    LeaseLost,
    PayloadMismatch,
    ResponseNotStorable,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    TerminalError,
)
from .hooks import FaultHooks, HookContext
from .keys import Identity, KeyResolver
from .outcome import Attempt, EffectContext, Outcome
from .record import ABSENT, EXPIRED, Record, Status
from .store.base import Effect, Store
from .transitions import TransitionLog

__all__ = ["EffectContext", "Idempotency", "Outcome", "UnprotectedCall"]

T = TypeVar("T")
MAX_CLAIM_RACES = 3
#: Room a record needs beside its response: key (up to the store's key limit), fingerprint, owner, numbers.
RECORD_OVERHEAD_BYTES = 1024

_Call = Attempt  # the name this class had before it moved to outcome.py


class UnprotectedCall(UserWarning):
    """A call ran without idempotency because it had no key and ``on_missing_key='warn'``."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if callable(getattr(value, "model_dump", None)):
        return value.model_dump(mode="json")
    raise TypeError(f"a {type(value).__name__} is not JSON-serialisable")


def _mark(exc: BaseException, state: str, round_trips: int) -> None:
    """Tell the caller (and the HTTP glue) what the record became after the action raised ``exc``."""
    for name, value in (("idempotency_state", state), ("round_trips", round_trips)):
        with contextlib.suppress(AttributeError, TypeError):  # an exception class with __slots__
            setattr(exc, name, value)


class Idempotency:
    """One protected operation (or family of them sharing a scope), ready to be called from many threads.

    ``Idempotency(store=MemoryStore(), scope="payments.charge", token_field="idempotency_key")`` is the short
    form; pass ``config=IdempotencyConfig(...)`` to share a config. ``worker`` names this process in logs
    (override per call with ``worker=``). A configuration the store cannot hold (keys longer than its key limit, a
    response limit above its item size) is refused here, before any request.
    """

    def __init__(
        self,
        config: IdempotencyConfig | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        hooks: FaultHooks | None = None,
        log: TransitionLog | None = None,
        worker: str | None = None,
        cache: LocalCache | None = None,
        **options: Any,
    ) -> None:
        if config is None:
            config = IdempotencyConfig(**options)
        elif options:
            config = dataclasses.replace(config, **options)
        self.config = config
        if store is None:
            from .store.dynamodb import DynamoDBStore

            store = DynamoDBStore()
        self.store = store
        _check_fits(config, store)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.hooks = hooks if hooks is not None else FaultHooks()
        self.log = log if log is not None else TransitionLog()
        self.worker = worker or f"worker-{uuid.uuid4().hex[:6]}"
        self.cache = cache if cache is not None else (LocalCache(config.cache_size) if config.local_cache else None)
        self.resolver = KeyResolver(config)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Idempotency(scope={self.config.scope!r}, store={self.store.describe()}, worker={self.worker!r})"

    # ------------------------------------------------------------------ small helpers

    def identify(self, payload: Any, *, token: Any = None, fingerprint_of: Any = ...) -> Identity | None:
        """The key and fingerprint for a payload, without any I/O (None: no key and on_missing_key='warn')."""
        return self.resolver.resolve(payload, token=token, fingerprint_of=fingerprint_of)

    def _count(self, *names: str, n: int = 1) -> None:
        with self._stats_lock:
            for name in names:
                self.stats[name] += n

    def _store(self, call: Attempt, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One store call, counted; an error it raises carries the round trips made so far (this one included)."""
        call.round_trips += 1
        self._count("round_trips", f"store.{op}")
        try:
            return fn(*args, **kwargs)
        except IdempotencyError as exc:
            self._fail_with(call, exc)
            raise

    def _fire(self, point: str, call: Attempt) -> None:
        if self.hooks:
            ctx = HookContext(point, call.key, call.worker, call.owner, self.clock.now(), self.clock, call.payload)
            self.hooks.fire(ctx)

    def _log(self, call: Attempt, from_: str, to: str, event: str, reason: str) -> None:
        self.log.record(
            key=call.key, from_=from_, to=to, worker=call.worker, at=self.clock.now(), reason=reason, event=event
        )

    def _fail_with(self, call: Attempt, exc: BaseException) -> BaseException:
        if isinstance(exc, (IdempotencyError, TerminalError)):
            exc.round_trips = call.round_trips
            if getattr(exc, "key", None) is None:
                exc.key = call.key or None
        return exc

    def _begin(self, payload: Any, token: Any, worker: str | None, fingerprint_of: Any) -> Attempt:
        identity = self.identify(payload, token=token, fingerprint_of=fingerprint_of)
        self._count("calls")
        return Attempt(identity, worker or self.worker, payload)

    def _unprotected(self, call: Attempt) -> None:
        self._count("unprotected")
        warnings.warn(
            f"no idempotency key in the request for scope {self.config.scope!r}: running WITHOUT protection "
            "(on_missing_key='warn'). A retry of this request may repeat its side effect.",
            UnprotectedCall,
            stacklevel=4,
        )

    def _serialise(self, key: str, value: Any) -> str:
        """The stored form of a result: JSON, valid UTF-8, at most ``max_response_bytes`` bytes."""
        try:
            text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ResponseNotStorable(
                f"the result for idempotency key {key!r} cannot be stored: {type(exc).__name__}: {exc}. Return "
                "JSON-serialisable data (dicts, lists, str, numbers, bool, None; dataclasses, Enum, UUID, datetime "
                "and Decimal are converted)."
            ) from exc
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ResponseNotStorable(
                f"the result for idempotency key {key!r} cannot be stored: it holds a lone surrogate "
                f"({text[exc.start]!r}), which has no UTF-8 form. Return Unicode text."
            ) from exc
        if size > self.config.max_response_bytes:
            raise ResponseNotStorable(
                f"the result for idempotency key {key!r} is {size} bytes as UTF-8 JSON, over max_response_bytes="
                f"{self.config.max_response_bytes}. Store a reference (an id, an S3 key) and return that instead."
            )
        return text

    def _check_storable(self, record: Record) -> None:
        limit = self.store.max_item_bytes
        if limit is not None and (size := self.store.item_bytes(record)) > limit:
            raise ResponseNotStorable(
                f"the record for idempotency key {record.key!r} would be {size} bytes, over the store's item limit "
                f"of {limit} bytes. Store a reference (an id, an S3 key) and return that instead."
            )

    # ------------------------------------------------------------------ duplicate handling

    def _from_cache(self, call: Attempt) -> Outcome | None:
        if self.cache is None or call.identity is None:
            return None
        record = self.cache.get(call.key, self.clock.now())
        if record is None:
            return None
        return self._answer(call, record, "cache")

    def _answer(self, call: Attempt, existing: Record, source: str) -> Outcome:
        """A request met an existing live record: replay, or raise 422 / 409 / the stored terminal error."""
        assert call.identity is not None
        now = self.clock.now()
        state = existing.state(now)
        if existing.fingerprint != call.identity.fingerprint:
            self._count("mismatch")
            self._log(call, state, state, "mismatch", f"payload fingerprint differs from the stored one ({source})")
            raise self._fail_with(
                call,
                PayloadMismatch(
                    call.key, stored=existing.fingerprint, received=call.identity.fingerprint, source=source
                ),
            )
        if existing.status is Status.COMPLETED:
            if self.cache is not None:
                self.cache.put(existing)
            self._count(f"replay.{source}")
            self._log(call, state, state, "replay", f"returned the stored response ({source})")
            return Outcome(
                call.key, existing.value(), True, source, call.round_trips, call.worker, existing, call.waited
            )
        if existing.status is Status.FAILED:
            self._count(f"replay_error.{source}")
            self._log(call, state, state, "replay_error", f"re-raised the stored terminal error ({source})")
            err = TerminalError.from_json(existing.error or "{}", key=call.key, declared=self.config.terminal_errors)
            raise self._fail_with(call, err)
        lease_left = max(0.0, (existing.lease_expires_at or now) - now)
        self._count("in_progress")
        self._log(call, state, state, "conflict", f"held by {existing.worker}; lease ends in {lease_left:.3f}s")
        raise self._fail_with(
            call,
            InProgress(
                call.key,
                retry_after=min(lease_left, self.config.retry_after_cap),
                lease_expires_in=lease_left,
                holder=existing.worker,
            ),
        )

    def _log_lease_lost(self, call: Attempt, lost: LeaseLost, now: float, what: str) -> None:
        """A refused write changes nothing: the entry loops on the state the record is really in."""
        state = _state(lost.current, now)
        holder = lost.current.worker if lost.current is not None else None
        self._log(
            call, state, state, "lease_lost", f"{what} refused: record is {state}" + (f" ({holder})" if holder else "")
        )

    def _log_claim(self, call: Attempt, previous: Record | None, now: float) -> None:
        if previous is None:
            self._log(call, ABSENT, Status.IN_PROGRESS.value, "claim", "key was free")
        elif previous.is_expired(now):
            self._log(
                call, EXPIRED, Status.IN_PROGRESS.value, "claim", f"previous {previous.status.value} record expired"
            )
        else:
            self._log(
                call,
                Status.IN_PROGRESS.value,
                Status.IN_PROGRESS.value,
                "takeover",
                f"lease of {previous.worker} expired at {previous.lease_expires_at:.3f}",
            )

    def _acquire(self, call: Attempt, wait: WaitPolicy | bool | None) -> Outcome | None:
        """Claim the key (returns None, lease held) or answer as a duplicate (returns the replay / raises)."""
        assert call.identity is not None
        policy = self.config.wait if wait is None or wait is True else (wait or None)
        if wait is True and policy is None:
            policy = WaitPolicy()
        started = self.clock.now()
        races = 0
        interval = policy.interval if policy else 0.0
        self._fire("before_claim", call)
        while True:
            now = self.clock.now()
            owner = uuid.uuid4().hex
            record = Record(
                key=call.key,
                status=Status.IN_PROGRESS,
                fingerprint=call.identity.fingerprint,
                expires_at=now + self.config.expires_after,
                owner=owner,
                worker=call.worker,
                lease_expires_at=now + self.config.lease_duration,
                updated_at=now,
            )
            try:
                result = self._store(call, "claim", self.store.claim, record, now=now)
            except StoreUnavailable as exc:
                written = (
                    "the claim may have been written (the answer was lost): a retry gets 409 until its lease ends"
                    if exc.maybe_applied
                    else "nothing was written"
                )
                raise self._fail_with(
                    call,
                    StoreUnavailable(
                        f"{exc} The action did not run; {written}. Retrying with the same key is safe.",
                        maybe_applied=exc.maybe_applied,
                    ),
                ) from exc
            mine = result.record
            if (
                not result.acquired
                and mine is not None
                and mine.owner == owner
                and mine.status is Status.IN_PROGRESS
                and not mine.claimable(now)
            ):
                # our own claim, written by an attempt whose answer was lost and retried by the SDK
                result = dataclasses.replace(result, acquired=True)
                self._count("own_write_recognised")
            if result.acquired:
                call.owner = owner
                call.record = result.record
                self._log_claim(call, result.previous, now)
                self._fire("after_claim", call)
                return None
            existing = result.record or self._store(call, "get", self.store.get, call.key)
            if existing is None or existing.claimable(self.clock.now()):
                races += 1  # it vanished or freed up between our write and now: claim again (bounded)
                if races > MAX_CLAIM_RACES:
                    raise self._fail_with(call, _inconsistent(call.key, existing))
                continue
            try:
                return self._answer(call, existing, "store")
            except InProgress as busy:
                waited = self.clock.now() - started
                if policy is None or waited >= policy.max_wait:
                    raise
                pause = min(interval, max(policy.max_wait - waited, 0.0))
                if busy.lease_expires_in > 0:
                    pause = min(pause, busy.lease_expires_in)
                self.clock.sleep(max(pause, 0.001))
                call.waited = self.clock.now() - started
                interval = min(interval * policy.backoff, policy.max_interval)

    # ------------------------------------------------------------------ finishing an attempt

    def _own_write(self, call: Attempt, lost: LeaseLost, status: Status) -> Record | None:
        """The record a refused write found, if it is the one this attempt wrote: the SDK retried a write whose
        answer was lost, and the retry's condition failed on our own result."""
        current = lost.current
        if current is not None and current.owner == call.owner and current.status is status:
            self._count("own_write_recognised")
            return current
        return None

    def _not_storable(self, call: Attempt, exc: ResponseNotStorable) -> BaseException:
        """The action ran but its result cannot be stored: record FAILED (so it never runs again) and say so."""
        terminal = TerminalError(str(exc), code="response_not_storable", http_status=500)
        try:
            self._store_failure(call, exc, terminal)
        except StoreError as down:
            exc.add_note(f"the FAILED record could not be written either ({down})")
        return self._fail_with(call, exc)

    def _complete(self, call: Attempt, value: Any) -> Outcome:
        """Serialise, then complete conditionally on the owner token."""
        assert call.owner is not None and call.record is not None
        self._fire("after_effect", call)
        now = self.clock.now()
        try:
            text = self._serialise(call.key, value)
            completed = call.record.with_changes(
                status=Status.COMPLETED,
                response=text,
                expires_at=now + self.config.expires_after,
                lease_expires_at=None,
            )
            self._check_storable(completed)
        except ResponseNotStorable as exc:
            raise self._not_storable(call, exc) from exc.__cause__
        self._fire("before_completion", call)
        now = self.clock.now()
        completed = completed.with_changes(expires_at=now + self.config.expires_after)
        try:
            record = self._store(call, "complete", self.store.complete, completed, now=now)
        except LeaseLost as lost:
            own = self._own_write(call, lost, Status.COMPLETED)
            if own is None:
                lost.value = json.loads(text)
                self._count("lease_lost")
                self._log_lease_lost(call, lost, now, "completion")
                raise self._fail_with(call, lost) from None
            record = own
        except ItemTooLarge as exc:
            unstorable = ResponseNotStorable(f"the result for idempotency key {call.key!r} cannot be stored: {exc}")
            raise self._not_storable(call, unstorable) from exc
        except StoreUnavailable as exc:
            lease_end = call.record.lease_expires_at or now
            recorded = (
                "may not be recorded: unless the completion went through, "
                if exc.maybe_applied
                else "is not recorded: "
            )
            raise self._fail_with(
                call,
                StoreUnavailable(
                    f"{exc} The action RAN but its result {recorded}the record stays IN_PROGRESS until its lease "
                    f"ends at {lease_end:.3f}; retries get 409 until then and may run the action again after (fence "
                    "the effect with execute_transactional or guard().commit to rule that out).",
                    maybe_applied=exc.maybe_applied,
                ),
            ) from exc
        self._log(call, Status.IN_PROGRESS.value, Status.COMPLETED.value, "complete", "response stored")
        if self.cache is not None:
            self.cache.put(record)
        self._count("executed")
        return Outcome(
            call.key, json.loads(text), False, "executed", call.round_trips, call.worker, record, call.waited
        )

    def _store_failure(self, call: Attempt, cause: BaseException, terminal: TerminalError) -> None:
        """Record FAILED with ``terminal``; its stored form is cut to fit the store, so this cannot fail for size."""
        now = self.clock.now()
        assert call.record is not None
        limit = self.config.max_response_bytes
        if self.store.max_item_bytes is not None:
            limit = min(limit, self.store.max_item_bytes - self.store.item_bytes(call.record) - RECORD_OVERHEAD_BYTES)
        failed = call.record.with_changes(
            status=Status.FAILED,
            error=terminal.to_json(limit=max(limit, 512)),
            expires_at=now + self.config.expires_after,
            lease_expires_at=None,
        )
        try:
            self._store(call, "fail", self.store.fail, failed, now=now)
        except ItemTooLarge:
            failed = failed.with_changes(error=terminal.to_json(limit=512))
            self._store(call, "fail", self.store.fail, failed, now=now)
        except LeaseLost as lost:
            if self._own_write(call, lost, Status.FAILED) is None:
                self._count("lease_lost")
                self._log_lease_lost(call, lost, now, "failure")
                raise self._fail_with(call, lost) from cause
        self._count("failed")
        self._log(call, Status.IN_PROGRESS.value, Status.FAILED.value, "fail", f"terminal: {terminal.code}")

    def _on_error(self, call: Attempt, exc: Exception) -> None:
        """The action raised: store a terminal error, or release the lease so a retry can run.

        ``exc.idempotency_state`` then says what the record became: FAILED, ABSENT (released) or IN_PROGRESS
        (the store could not be updated; the lease runs out).
        """
        assert call.owner is not None
        state = Status.IN_PROGRESS.value
        try:
            if self.config.is_terminal(exc) and not getattr(exc, "never_terminal", False):
                self._store_failure(call, exc, TerminalError.from_exception(exc))
                state = Status.FAILED.value
                if isinstance(exc, TerminalError):
                    self._fail_with(call, exc)
                return
            self._fire("before_release", call)
            now = self.clock.now()
            try:
                self._store(call, "release", self.store.release, call.key, call.owner, now=now)
            except LeaseLost as lost:
                if lost.current is not None:
                    self._count("lease_lost")
                    self._log_lease_lost(call, lost, now, "release")
                    state = _state(lost.current, now)
                    raise self._fail_with(call, lost) from exc
                # the record is gone, as a release leaves it: our own delete retried by the SDK after its answer
                # was lost, or a record that expired and was removed; either way the key is free
                self._count("own_write_recognised")
            state = ABSENT
            self._count("released")
            self._log(call, Status.IN_PROGRESS.value, ABSENT, "release", f"retryable {type(exc).__name__}")
        except StoreError as down:
            lease_end = call.record.lease_expires_at if call.record else 0.0
            exc.add_note(
                f"idempotency: the record for {call.key!r} could not be updated ({down}); it stays IN_PROGRESS "
                f"until its lease ends at {lease_end:.3f}, so retries get 409 until then."
            )
        finally:
            _mark(exc, state, call.round_trips)

    def _completed_record(self, call: Attempt, text: str, now: float, *, owner: str | None) -> Record:
        """The COMPLETED record a commit writes together with the effect (fenced or single round trip)."""
        assert call.identity is not None
        return Record(
            key=call.key,
            status=Status.COMPLETED,
            fingerprint=call.identity.fingerprint,
            expires_at=now + self.config.expires_after,
            owner=owner,
            worker=call.worker,
            response=text,
            updated_at=now,
        )

    def _commit(self, call: Attempt, effect: Effect) -> Outcome:
        """Write the COMPLETED record and the effect in one transaction: the one commit path of both forms.

        With ``call.owner`` set (a guard holding the lease) the commit is fenced by the lease: LeaseLost if it was
        taken over. Without (``execute_transactional``) it is claim + effect + completion at once: a busy key is
        answered as a duplicate, a concurrent transaction is retried ``conflict_retries`` times.
        """
        fenced = call.owner is not None
        try:
            text = self._serialise(call.key, effect.result)
            self._check_storable(self._completed_record(call, text, self.clock.now(), owner=uuid.uuid4().hex))
        except ResponseNotStorable as exc:
            if fenced:  # the effect was not applied, but the key is held: record why, so retries do not wait
                raise self._not_storable(call, exc) from exc.__cause__
            raise self._fail_with(call, exc) from exc.__cause__
        self._fire("before_completion", call)
        last: Record | None = None
        for attempt in range(self.config.conflict_retries + 1):
            now = self.clock.now()
            owner = call.owner if fenced else uuid.uuid4().hex
            record = self._completed_record(call, text, now, owner=owner)
            try:
                result = self._store(call, "commit", self.store.commit, record, effect, now=now, owner=call.owner)
            except LeaseLost as lost:
                if self._own_write(call, lost, Status.COMPLETED) is None:
                    lost.value = json.loads(text)
                    self._count("lease_lost")
                    self._log_lease_lost(call, lost, now, "fenced commit")
                    raise self._fail_with(call, lost) from None
                return self._committed(call, text, lost.current, now, fenced)
            except StoreUnavailable as exc:
                committed = (
                    "the transaction may have committed (the answer was lost)"
                    if exc.maybe_applied
                    else "nothing was written"
                )
                raise self._fail_with(
                    call,
                    StoreUnavailable(
                        f"{exc} {committed}; the effect and its record commit together, so retrying with the same "
                        "key is safe: it replays the result if the transaction went through.",
                        maybe_applied=exc.maybe_applied,
                    ),
                ) from exc
            except StoreConflict:
                if attempt == self.config.conflict_retries:
                    self._count("in_progress")
                    raise self._fail_with(
                        call,
                        InProgress(
                            call.key, retry_after=self.config.retry_after_cap, lease_expires_in=0.0, holder=None
                        ),
                    ) from None
                self.clock.sleep(0.01 * (attempt + 1))
                continue
            except EffectFailed as exc:
                self._count("effect_failed")
                if fenced:
                    state, why = Status.IN_PROGRESS.value, "effect refused"
                else:
                    state, why = ABSENT, "the effect's own condition failed; nothing written"
                self._log(call, state, state, "effect_failed", why)
                raise self._fail_with(call, exc) from None
            if result.acquired:
                return self._committed(call, text, result.record, now, fenced, result.previous)
            existing = result.record or self._store(call, "get", self.store.get, call.key)
            if existing is not None and existing.owner == owner and existing.status is Status.COMPLETED:
                self._count("own_write_recognised")  # our transaction, applied; its retry found it
                return self._committed(call, text, existing, now, fenced)
            if existing is None or existing.claimable(self.clock.now()):
                last = existing
                continue
            return self._answer(call, existing, "store")
        raise self._fail_with(call, _inconsistent(call.key, last))

    def _committed(
        self,
        call: Attempt,
        text: str,
        record: Record | None,
        now: float,
        fenced: bool,
        previous: Record | None = None,
    ) -> Outcome:
        if fenced:
            self._log(call, Status.IN_PROGRESS.value, Status.COMPLETED.value, "commit", "effect + completion, fenced")
        else:
            self._log(
                call,
                _state(previous, now),
                Status.COMPLETED.value,
                "commit",
                "claim + effect + completion in one transaction",
            )
        if self.cache is not None and record is not None:
            self.cache.put(record)
        self._count("executed")
        return Outcome(call.key, json.loads(text), False, "executed", call.round_trips, call.worker, record)

    def _run(self, call: Attempt, action: Callable[[], Any]) -> Outcome:
        try:
            value = action()
        except Exception as exc:
            # The caller's own exception propagates; it still says what the protection cost (claim + release)
            # and what the record became (idempotency_state), so batch reports and HTTP glue tell the truth.
            self._on_error(call, exc)
            raise
        return self._complete(call, value)

    # ------------------------------------------------------------------ the engine's interface to the guard

    def complete_attempt(self, call: Attempt, value: Any) -> Outcome:
        """Store ``value`` as the result of a claimed attempt (conditional on its lease)."""
        return self._complete(call, value)

    def commit_attempt(self, call: Attempt, effect: Effect) -> Outcome:
        """Commit ``effect`` with the completion of a claimed attempt, fenced by its lease."""
        return self._commit(call, effect)

    def fail_attempt(self, call: Attempt, exc: Exception) -> None:
        """Record that a claimed attempt raised ``exc``: stored if terminal, else the lease is released."""
        self._on_error(call, exc)

    def run_unprotected(self, call: Attempt, effect: Effect) -> None:
        """Apply ``effect`` with no record (no key and ``on_missing_key='warn'``); one round trip, counted."""
        self._store(call, "run_effect", self.store.run_unprotected, effect)

    # ------------------------------------------------------------------ public forms

    def execute(
        self,
        payload: Any,
        action: Callable[[], Any],
        *,
        token: Any = None,
        worker: str | None = None,
        wait: WaitPolicy | bool | None = None,
        fingerprint_of: Any = ...,
    ) -> Outcome:
        """Run ``action()`` at most once per key (within the expiry window) and return an :class:`Outcome`.

        Raises KeyMissing / InvalidKey / MalformedPayload / PayloadNotSerializable before any write,
        PayloadMismatch (422), InProgress (409), the stored TerminalError on a replayed failure, LeaseLost when
        this worker's lease was taken over, StoreUnavailable when the store cannot be reached.
        """
        call = self._begin(payload, token, worker, fingerprint_of)
        if call.identity is None:
            self._unprotected(call)
            return Outcome(None, action(), False, "unprotected", 0, call.worker)
        cached = self._from_cache(call)
        if cached is not None:
            return cached
        replay = self._acquire(call, wait)
        if replay is not None:
            return replay
        return self._run(call, action)

    def execute_transactional(
        self,
        payload: Any,
        effect: Effect | Callable[[EffectContext], Effect],
        *,
        token: Any = None,
        worker: str | None = None,
        fingerprint_of: Any = ...,
    ) -> Outcome:
        """Claim, side effect and completion in ONE store transaction (1 round trip; 0 on a cache hit).

        ``effect`` (or ``effect(ctx)``) gives the writes and the result to store. Building it must have no side
        effect of its own: it may run on a request that turns out to be a duplicate. The effect can never be
        applied twice, because it commits only together with the record that marks the key as done.
        """
        call = self._begin(payload, token, worker, fingerprint_of)
        if call.identity is None:
            self._unprotected(call)
            built = effect(EffectContext("", call.worker, self.clock.now(), None)) if callable(effect) else effect
            self.run_unprotected(call, built)
            return Outcome(None, built.result, False, "unprotected", call.round_trips, call.worker)
        cached = self._from_cache(call)
        if cached is not None:
            return cached
        self._fire("before_claim", call)
        built = (
            effect(EffectContext(call.key, call.worker, self.clock.now(), call.identity.token))
            if callable(effect)
            else effect
        )
        return self._commit(call, built)

    def guard(
        self,
        payload: Any,
        *,
        token: Any = None,
        worker: str | None = None,
        wait: WaitPolicy | bool | None = None,
        fingerprint_of: Any = ...,
    ) -> Guard:
        """Claim now and return a :class:`Guard` (a context manager, or drive it step by step)."""
        call = self._begin(payload, token, worker, fingerprint_of)
        if call.identity is None:
            self._unprotected(call)
            return Guard(self, call, None, unprotected=True)
        cached = self._from_cache(call)
        if cached is not None:
            return Guard(self, call, cached)
        replay = self._acquire(call, wait)
        return Guard(self, call, replay)

    def idempotent(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator form; see :func:`idempotent` in decorator.py for the options."""
        return _idempotent(self, fn, **options)

    # ------------------------------------------------------------------ inspection and administration

    def lookup(self, payload: Any, *, token: Any = None) -> Record | None:
        """The stored record for this request (one round trip; expired records included)."""
        identity = self.identify(payload, token=token)
        return None if identity is None else self.store.get(identity.key)

    def forget(self, payload: Any, *, token: Any = None) -> None:
        """Delete the record and its cache entry (administration: lets a key run again)."""
        identity = self.identify(payload, token=token)
        if identity is not None:
            self.store.delete(identity.key)
            if self.cache is not None:
                self.cache.discard(identity.key)


def _check_fits(config: IdempotencyConfig, store: Store) -> None:
    """Refuse a configuration the store cannot hold, before the first request meets it."""
    if store.max_key_bytes is not None and config.max_key_bytes > store.max_key_bytes:
        raise ConfigurationError(
            f"keys of scope {config.scope!r} can reach {config.max_key_bytes} bytes (scope, tenant and token of up to "
            f"max_token_length={config.max_token_length} bytes each), over the {store.max_key_bytes}-byte key limit "
            f"of {store.describe()}. Lower max_token_length or shorten the scope."
        )
    if store.max_item_bytes is not None:
        room = store.max_item_bytes - RECORD_OVERHEAD_BYTES - config.max_key_bytes
        if config.max_response_bytes > room:
            raise ConfigurationError(
                f"max_response_bytes={config.max_response_bytes} does not fit in a record of {store.describe()}: an "
                f"item holds {store.max_item_bytes} bytes, and the key and bookkeeping need up to "
                f"{store.max_item_bytes - room}. Use at most {room}."
            )


def _inconsistent(key: str, record: Record | None) -> StoreError:
    seen = "no record" if record is None else f"a record ({record.status.value}) that is free by the library's rules"
    return StoreError(
        f"the store refused to claim {key!r} but returned {seen}, several times in a row: the store's condition and "
        "the record rules disagree (a custom Store bug, or clocks far apart). Nothing was run."
    )


def _state(record: Record | None, now: float) -> str:
    return ABSENT if record is None else record.state(now)
