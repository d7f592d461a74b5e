"""The context-manager (and step-by-step) form: claim on creation, then complete, commit, fail or release.

Step by step is how tests and notebooks interleave several workers deterministically: claim with one guard, move
the clock, claim with another, then watch the first one's completion be refused.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from helpers.idempotency.core import Outcome, _run_effect_unprotected
from helpers.idempotency.errors import EffectFailed, LeaseLost
from helpers.idempotency.record import Status
from helpers.idempotency.store.base import Effect

if TYPE_CHECKING:
    from helpers.idempotency.core import Idempotency, _Call


class Guard:
    """The claimed (or replayed) state of one request, as a context manager or a step-by-step handle.

    ::

        with idem.guard(order) as g:
            if not g.replayed:
                g.complete(charge(order))       # or g.commit(Effect(...)) to fence the effect by the lease
        g.value                                 # the result, first time or replayed

    Leaving the block normally completes with ``None`` if nothing was completed; an exception releases the lease
    (or stores a terminal error); a SimulatedCrash leaves the record IN_PROGRESS, as a real crash would.
    """

    def __init__(self, idem: Idempotency, call: _Call, outcome: Outcome | None, *, unprotected: bool = False) -> None:
        self._idem = idem
        self._call = call
        self.outcome = outcome
        self.unprotected = unprotected
        self.finished = outcome is not None

    @property
    def replayed(self) -> bool:
        return self.outcome is not None and self.outcome.replayed

    @property
    def value(self) -> Any:
        if self.outcome is None:
            raise RuntimeError("no result yet: call complete() or commit() first")
        return self.outcome.value

    @property
    def key(self) -> str | None:
        return self._call.key or None

    @property
    def owner(self) -> str | None:
        return self._call.owner

    @property
    def worker(self) -> str:
        return self._call.worker

    @property
    def round_trips(self) -> int:
        return self._call.round_trips

    def _check_open(self) -> None:
        if self.finished:
            raise RuntimeError(f"guard for {self.key!r} is already finished ({self.outcome and self.outcome.source})")

    def complete(self, value: Any = None) -> Outcome:
        """Store ``value`` as the response (conditional on our lease) and return the Outcome."""
        self._check_open()
        if self.unprotected:
            self.outcome = Outcome(None, value, False, "unprotected", 0, self.worker)
        else:
            try:
                self.outcome = self._idem._complete(self._call, value)
            finally:
                self.finished = True
        return self.outcome

    def commit(self, effect: Effect) -> Outcome:
        """Fenced completion: the effect's writes and the completion in one transaction, only if we still own the
        lease (else LeaseLost and the effect is NOT applied)."""
        self._check_open()
        idem, call = self._idem, self._call
        if self.unprotected:
            _run_effect_unprotected(idem.store, effect)
            self.outcome = Outcome(None, effect.result, False, "unprotected", 0, self.worker)
            self.finished = True
            return self.outcome
        assert call.owner is not None and call.identity is not None
        text = idem._serialise(call.key, effect.result)
        idem._fire("before_completion", call)
        now = idem.clock.now()
        record = idem._completed_record(call, text, now, owner=call.owner)
        try:
            result = idem._store(call, "commit", idem.store.commit, record, effect, now=now, owner=call.owner)
        except LeaseLost as lost:
            self.finished = True
            lost.value = json.loads(text)
            idem._count("lease_lost")
            idem._log_lease_lost(call, lost, now, "fenced commit")
            raise idem._fail_with(call, lost) from None
        except EffectFailed as exc:
            idem._count("effect_failed")
            idem._log(call, Status.IN_PROGRESS.value, Status.IN_PROGRESS.value, "effect_failed", "effect refused")
            raise idem._fail_with(call, exc) from None
        idem._log(call, Status.IN_PROGRESS.value, Status.COMPLETED.value, "commit", "effect + completion, fenced")
        if idem.cache is not None and result.record is not None:
            idem.cache.put(result.record)
        idem._count("executed")
        self.finished = True
        self.outcome = Outcome(
            call.key, json.loads(text), False, "executed", call.round_trips, call.worker, result.record
        )
        return self.outcome

    def fail(self, exc: Exception) -> None:
        """Record ``exc``: stored and replayed if terminal, otherwise the lease is released."""
        self._check_open()
        self.finished = True
        if not self.unprotected:
            self._idem._on_error(self._call, exc)

    def release(self) -> None:
        """Give the key back without a result (the next attempt runs the action)."""
        self.fail(_Released("released by the caller"))

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.finished:
            return False
        if exc is None:
            self.complete(None)
        elif isinstance(exc, Exception):
            self.fail(exc)
        # BaseException (SimulatedCrash, KeyboardInterrupt): leave the record as a crashed process would.
        return False

    def __repr__(self) -> str:
        state = "replayed" if self.replayed else ("finished" if self.finished else "holding lease")
        return f"Guard(key={self.key!r}, worker={self.worker!r}, {state})"


class _Released(Exception):
    """Internal marker for an explicit release (never terminal)."""

    never_terminal = True
