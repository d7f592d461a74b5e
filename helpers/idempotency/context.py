"""The context-manager (and step-by-step) form: claim on creation, then complete, commit, fail or release.

Step by step is how tests and notebooks interleave several workers deterministically: claim with one guard, move
the clock, claim with another, then watch the first one's completion be refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from .errors import EffectFailed
from .outcome import Attempt, Outcome
from .store.base import Effect

if TYPE_CHECKING:
    from .core import Idempotency


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

    def __init__(self, idem: Idempotency, call: Attempt, outcome: Outcome | None, *, unprotected: bool = False) -> None:
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
                self.outcome = self._idem.complete_attempt(self._call, value)
            finally:
                self.finished = True
        return self.outcome

    def commit(self, effect: Effect) -> Outcome:
        """Fenced completion: the effect's writes and the completion in one transaction, only if we still own the
        lease (else LeaseLost and the effect is NOT applied). If the effect's own condition fails (EffectFailed)
        the guard stays open: release it or fail it."""
        self._check_open()
        if self.unprotected:
            self._idem.run_unprotected(self._call, effect)
            self.outcome = Outcome(None, effect.result, False, "unprotected", 0, self.worker)
            self.finished = True
            return self.outcome
        try:
            self.outcome = self._idem.commit_attempt(self._call, effect)
        except EffectFailed:
            raise
        except BaseException:
            self.finished = True
            raise
        self.finished = True
        return self.outcome

    def fail(self, exc: Exception) -> None:
        """Record ``exc``: stored if terminal, otherwise the lease is released."""
        self._check_open()
        self.finished = True
        if not self.unprotected:
            self._idem.fail_attempt(self._call, exc)

    def release(self) -> None:
        """Give the key back without a result (the next attempt runs the action)."""
        self.fail(_Released("released by the caller"))

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
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
