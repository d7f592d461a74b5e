"""Rate limiting on an injectable clock: an API destination's ``InvocationRateLimitPerSecond``."""

from __future__ import annotations

from helpers.idempotency.clock import Clock, SystemClock


class TokenBucket:
    """At most ``rate_per_second`` requests per second: ``burst`` tokens, refilled continuously.

    With the default ``burst=1`` requests are spaced ``1/rate`` seconds apart, so no one-second window ever holds
    more than ``rate`` of them. ``acquire`` sleeps on the clock (a :class:`ManualClock` moves instead of waiting)
    until a token is free and returns how long it waited.
    """

    def __init__(self, rate_per_second: float | None, *, burst: int = 1, clock: Clock | None = None) -> None:
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive (or None for no limit)")
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self.clock: Clock = clock or SystemClock()
        self.tokens = float(self.burst)
        self.updated = self.clock.now()

    def wait_needed(self) -> float:
        """How long ``acquire`` would wait now (without taking a token)."""
        if self.rate is None:
            return 0.0
        tokens = min(self.burst, self.tokens + (self.clock.now() - self.updated) * self.rate)
        return 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate

    def acquire(self) -> float:
        if self.rate is None:
            return 0.0
        now = self.clock.now()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1 - 1e-9:
            self.tokens -= 1
            return 0.0
        pause = (1 - self.tokens) / self.rate
        self.clock.sleep(pause)
        # The wait made exactly the token taken here. Re-deriving it from the clock could loop forever: on a clock
        # far from zero (the ManualClock starts in 2033), a pause shorter than the float's resolution does not move
        # the clock at all.
        self.tokens, self.updated = 0.0, self.clock.now()
        return pause
