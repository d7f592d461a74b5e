"""Deterministic, seeded fault injection: one vocabulary for notebooks, labs and tests.

Six faults cause the duplicates (and the failures) this course studies:

=====================  ===================================================================  ======================
fault                  what happens                                                         raised here
=====================  ===================================================================  ======================
``lose_response``      the receiver did the work, the answer never reached the caller      :class:`ResponseLost`
``crash_after_effect`` the worker made the side effect, then died before acknowledging it  :class:`WorkerCrashed`
``exceed_visibility``  the work outlasts the SQS visibility timeout (a second worker sees   nothing (a decision)
                       the same message)
``deliver_twice``      the service delivers one message twice (at-least-once delivery)      nothing (a decision)
``throttle``           the receiver refuses the call (HTTP 429, ``ThrottlingException``)    :class:`Throttled`
``receiver_down``      nothing answers; no work was done                                    :class:`ReceiverDown`
=====================  ===================================================================  ======================

A :class:`FaultPlan` decides, for each (fault, key, attempt), whether the fault happens:

- **by rate, seeded**: ``FaultPlan(seed=6, lose_response=0.2)`` draws from a hash of
  ``(seed, fault, key, attempt)``, so the same plan gives the same faults in any order, on any machine, in any
  thread, and adding orders never changes what happened to the earlier ones;
- **by script**: ``FaultPlan.script({"lose_response": {"order-1": [1]}})`` (the first attempt for order-1 loses its
  response) or ``FaultPlan.script({"lose_response": [2]})`` (the 2nd ``lose_response`` decision, whatever its key).

The attempt number counts, per (fault, key), how often the plan was asked; pass ``attempt=`` to say it yourself.
Every fault injected is logged (:attr:`FaultPlan.injected`, :meth:`FaultPlan.counts`, :meth:`FaultPlan.frame`),
so a notebook can put "faults injected" next to "charges made" in one table.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

LOSE_RESPONSE = "lose_response"
CRASH_AFTER_EFFECT = "crash_after_effect"
EXCEED_VISIBILITY = "exceed_visibility"
DELIVER_TWICE = "deliver_twice"
THROTTLE = "throttle"
RECEIVER_DOWN = "receiver_down"

#: The vocabulary, in the order tables show it.
FAULTS: tuple[str, ...] = (LOSE_RESPONSE, CRASH_AFTER_EFFECT, EXCEED_VISIBILITY, DELIVER_TWICE, THROTTLE, RECEIVER_DOWN)

#: One line per fault, for tables and legends.
DESCRIPTIONS: dict[str, str] = {
    LOSE_RESPONSE: "the work was done, the response never reached the caller",
    CRASH_AFTER_EFFECT: "the side effect was made, then the worker crashed before acknowledging",
    EXCEED_VISIBILITY: "the work outlasted the visibility timeout, so the message was received again",
    DELIVER_TWICE: "the service delivered the same message twice (at-least-once)",
    THROTTLE: "the receiver refused the call (429 / ThrottlingException); no work was done",
    RECEIVER_DOWN: "nothing answered; no work was done",
}


# -- exceptions --------------------------------------------------------------------------------------------------
class Fault(Exception):
    """An injected fault. ``fault`` names it in the vocabulary; ``key`` and ``attempt`` say where it struck."""

    fault = ""

    def __init__(self, key: str = "", attempt: int = 0, message: str = "") -> None:
        self.key = key
        self.attempt = attempt
        super().__init__(message or self.describe())

    def describe(self) -> str:
        return _describe(self.fault, self.key, self.attempt)


def _describe(fault: str, key: str, attempt: int) -> str:
    where = f" for {key}" if key else ""
    when = f" (attempt {attempt})" if attempt else ""
    return f"injected fault {fault}{where}{when}: {DESCRIPTIONS.get(fault, '')}"


class ResponseLost(Fault):
    """The receiver did the work, but the caller never heard back. ``result`` is the answer that was lost."""

    fault = LOSE_RESPONSE

    def __init__(self, key: str = "", attempt: int = 0, result: Any = None) -> None:
        self.result = result
        super().__init__(key, attempt)


class WorkerCrashed(BaseException):
    """The worker made its side effect and crashed before deleting / acknowledging the message.

    A BaseException, like the idempotency library's ``SimulatedCrash``: a process that dies runs no
    ``except Exception`` clean-up, so a library protecting the handler must not mistake the crash for an ordinary
    error and give its claim back (that would let the next delivery charge again at once). It is defined here, not
    derived from the library's class, because faults sit below the library in the helpers' layering.
    """

    fault = CRASH_AFTER_EFFECT
    point = "after_effect"  # where it struck, in the library's words for crash points

    def __init__(self, key: str = "", attempt: int = 0, message: str = "") -> None:
        self.key = key
        self.attempt = attempt
        super().__init__(message or _describe(self.fault, key, attempt))


class Throttled(Fault):
    """The receiver refused the call before doing anything (like HTTP 429 or ``ThrottlingException``)."""

    fault = THROTTLE


class ReceiverDown(Fault):
    """Nothing answered (connection refused); no work was done."""

    fault = RECEIVER_DOWN


#: Faults that are raised as exceptions, by name.
EXCEPTIONS: dict[str, type[BaseException]] = {
    LOSE_RESPONSE: ResponseLost,
    CRASH_AFTER_EFFECT: WorkerCrashed,
    THROTTLE: Throttled,
    RECEIVER_DOWN: ReceiverDown,
}

#: What a well-behaved client retries: the call may not have happened, or its answer was lost.
RETRYABLE: tuple[type[Fault], ...] = (ResponseLost, Throttled, ReceiverDown)


# -- the plan ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Injection:
    """One fault that happened: the n-th decision overall (``step``), which fault, for which key and attempt."""

    step: int
    fault: str
    key: str
    attempt: int


def draw(seed: int, fault: str, key: str, attempt: int) -> float:
    """A number in [0, 1) that depends only on its arguments (SHA-256, so stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}|{fault}|{key}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_fault(name: str) -> str:
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; the vocabulary is: {', '.join(FAULTS)}")
    return name


@dataclass
class FaultPlan:
    """Which faults happen, by seeded rate or by script. Thread-safe; :meth:`reset` starts the counts again."""

    seed: int = 0
    lose_response: float = 0.0
    crash_after_effect: float = 0.0
    exceed_visibility: float = 0.0
    deliver_twice: float = 0.0
    throttle: float = 0.0
    receiver_down: float = 0.0
    scripted: dict[str, Any] = field(default_factory=dict)
    injected: list[Injection] = field(default_factory=list, init=False)
    _attempts: Counter = field(default_factory=Counter, init=False, repr=False)
    _calls: Counter = field(default_factory=Counter, init=False, repr=False)
    _steps: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in FAULTS:
            rate = self.rate(name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}={rate!r}: a fault rate is a probability between 0 and 1")
        normalised: dict[str, Any] = {}
        for name, spec in self.scripted.items():
            normalised[_check_fault(name)] = _normalise_script(name, spec)
        self.scripted = normalised

    # -- constructors ------------------------------------------------------------------------------------------
    @classmethod
    def none(cls) -> FaultPlan:
        """A plan that never injects anything (the happy path)."""
        return cls()

    @classmethod
    def script(cls, schedule: Mapping[str, Any] | None = None, *, seed: int = 0, **rates: float) -> FaultPlan:
        """Explicit faults: ``{fault: [n, ...]}`` (the n-th decision for that fault, any key, 1-based) or
        ``{fault: {key: [attempt, ...]}}`` (those attempts for that key; ``"*"`` as key matches any key;
        ``True`` instead of a list means every attempt). Scripted faults ignore their rate."""
        return cls(seed=seed, scripted=dict(schedule or {}), **rates)

    # -- decisions ---------------------------------------------------------------------------------------------
    def rate(self, fault: str) -> float:
        return float(getattr(self, _check_fault(fault)))

    def should(self, fault: str, key: Any = "", *, attempt: int | None = None) -> bool:
        """Does ``fault`` strike ``key`` on this attempt? Each call counts one attempt for (fault, key)."""
        return self._decide(fault, key, attempt)[0]

    def _decide(self, fault: str, key: Any, attempt: int | None) -> tuple[bool, int]:
        _check_fault(fault)
        key = str(key)
        with self._lock:
            self._calls[fault] += 1
            call = self._calls[fault]
            if attempt is None:
                self._attempts[(fault, key)] += 1
                attempt = self._attempts[(fault, key)]
            if fault in self.scripted:
                hit = _scripted_hit(self.scripted[fault], key, attempt, call)
            else:
                hit = draw(self.seed, fault, key, attempt) < self.rate(fault)
            if hit:
                self._steps += 1
                self.injected.append(Injection(self._steps, fault, key, attempt))
        return hit, attempt

    def attempts(self, fault: str, key: Any) -> int:
        """How many times the plan was asked about ``fault`` for ``key``."""
        with self._lock:
            return self._attempts[(_check_fault(fault), str(key))]

    # -- injection helpers -------------------------------------------------------------------------------------
    def check(self, fault: str, key: Any = "", *, attempt: int | None = None) -> None:
        """Raise the fault's exception when it strikes (for ``throttle``, ``receiver_down``, ``crash_after_effect``)."""
        if fault not in EXCEPTIONS:
            raise ValueError(f"{fault!r} is a decision, not an exception: use plan.should({fault!r}, key)")
        hit, attempt = self._decide(fault, key, attempt)
        if hit:
            raise EXCEPTIONS[fault](str(key), attempt)

    def after_effect(self, key: Any, *, attempt: int | None = None) -> None:
        """Call right after the side effect: raises :class:`WorkerCrashed` when ``crash_after_effect`` strikes."""
        self.check(CRASH_AFTER_EFFECT, key, attempt=attempt)

    def call(self, key: Any, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``operation`` as a remote call: ``receiver_down`` and ``throttle`` stop it before it runs;
        ``lose_response`` lets it run and then raises :class:`ResponseLost` carrying the lost result."""
        self.check(RECEIVER_DOWN, key)
        self.check(THROTTLE, key)
        result = operation(*args, **kwargs)
        hit, attempt = self._decide(LOSE_RESPONSE, key, None)
        if hit:
            raise ResponseLost(str(key), attempt, result)
        return result

    def deliveries(self, key: Any) -> int:
        """How many copies the service delivers: 2 when ``deliver_twice`` strikes, else 1."""
        return 2 if self.should(DELIVER_TWICE, key) else 1

    # -- reporting ---------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Faults injected so far, by name, every fault of the vocabulary present (zeros included)."""
        with self._lock:
            seen = Counter(i.fault for i in self.injected)
        return {name: seen.get(name, 0) for name in FAULTS}

    def count(self, fault: str) -> int:
        return self.counts()[_check_fault(fault)]

    def total(self) -> int:
        with self._lock:
            return len(self.injected)

    def frame(self, *, only_injected: bool = False) -> Any:
        """A pandas table: fault, what it means, the configured rate or script, and how many were injected."""
        import pandas as pd

        counts = self.counts()
        rows = []
        for name in FAULTS:
            configured = "script" if name in self.scripted else self.rate(name)
            if only_injected and not counts[name]:
                continue
            rows.append(
                {"fault": name, "what happens": DESCRIPTIONS[name], "configured": configured, "injected": counts[name]}
            )
        return pd.DataFrame(rows, columns=["fault", "what happens", "configured", "injected"])

    def log(self) -> list[dict[str, Any]]:
        """Every injection as a dict (step, fault, key, attempt), in the order they happened."""
        with self._lock:
            return [{"step": i.step, "fault": i.fault, "key": i.key, "attempt": i.attempt} for i in self.injected]

    def reset(self) -> None:
        """Forget attempts and injections; the same calls then give the same faults again."""
        with self._lock:
            self.injected.clear()
            self._attempts.clear()
            self._calls.clear()
            self._steps = 0

    def describe(self) -> str:
        parts = [f"{name}={self.rate(name):g}" for name in FAULTS if self.rate(name) and name not in self.scripted]
        parts += [f"{name}=script" for name in self.scripted]
        return f"FaultPlan(seed={self.seed}{', ' if parts else ''}{', '.join(parts)})"

    def __repr__(self) -> str:
        return self.describe()


def _normalise_script(fault: str, spec: Any) -> Any:
    if spec is True:
        return {"*": True}
    if isinstance(spec, Mapping):
        out: dict[str, Any] = {}
        for key, attempts in spec.items():
            out[str(key)] = True if attempts is True else frozenset(_positive_ints(fault, attempts))
        return out
    return frozenset(_positive_ints(fault, spec))


def _positive_ints(fault: str, values: Any) -> Iterable[int]:
    if isinstance(values, int):
        values = [values]
    result = []
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"script for {fault}: attempts and call numbers are integers from 1, got {v!r}")
        result.append(v)
    return result


def _scripted_hit(spec: Any, key: str, attempt: int, call: int) -> bool:
    if isinstance(spec, frozenset):
        return call in spec
    for candidate in (key, "*"):
        if candidate in spec:
            attempts = spec[candidate]
            if attempts is True or attempt in attempts:
                return True
    return False


# -- retrying ------------------------------------------------------------------------------------------------------
@dataclass
class RetryOutcome:
    """What a retry loop did: the result (if any), how many attempts, and the error that ended it (if any)."""

    result: Any
    attempts: int
    errors: list[BaseException]

    @property
    def ok(self) -> bool:
        return len(self.errors) < self.attempts

    @property
    def gave_up(self) -> bool:
        return not self.ok


def retry(
    operation: Callable[[int], T],
    *,
    max_attempts: int = 3,
    retry_on: tuple[type[BaseException], ...] = RETRYABLE,
    on_error: Callable[[int, BaseException], None] | None = None,
) -> RetryOutcome:
    """Call ``operation(attempt)`` until it returns or ``max_attempts`` is spent (the client's retry loop).

    ``attempt`` starts at 1. Errors in ``retry_on`` are retried (``on_error(attempt, exc)`` sees each one); any other
    error propagates. No sleeping: the course measures attempts in logical time. Never raises for a retryable error:
    the returned :class:`RetryOutcome` says whether the loop gave up.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    errors: list[BaseException] = []
    for attempt in range(1, max_attempts + 1):
        try:
            return RetryOutcome(operation(attempt), attempt, errors)
        except retry_on as exc:
            errors.append(exc)
            if on_error is not None:
                on_error(attempt, exc)
    return RetryOutcome(None, max_attempts, errors)


#: AWS Lambda asynchronous invocation: a function error is retried twice (three attempts in all), by default.
LAMBDA_ASYNC_MAX_ATTEMPTS = 3
