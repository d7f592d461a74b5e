"""Seeded idempotency tokens: random (version 4) UUIDs that read the same on every run of a notebook.

A client makes its token with ``uuid.uuid4()``. A notebook that printed those would show different ids on every run,
and nbval compares outputs, so the course draws them from a seeded generator instead: the same seed gives the same
tokens in the same order, and each one is still a well-formed version 4 UUID.
"""

from __future__ import annotations

import random
import uuid


class SeededTokens:
    """``tokens = SeededTokens(8); tokens.new()`` -> a version 4 UUID string, the same sequence for the same seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def new(self) -> str:
        """The next token (in your code: ``str(uuid.uuid4())``)."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def __call__(self) -> str:
        return self.new()
