"""The workflow's idempotency key, computed before the start (the seed's first Lambda did it).

The canonical JSON is the idempotency library's (:func:`helpers.idempotency.canonical_json`), so a payload gives
the same text, and so the same key, in the workflow and in the library.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jmespath

from helpers.idempotency import canonical_json

__all__ = ["canonical_json", "idempotency_key", "seed_key"]


def idempotency_key(payload: Any, *, select: str | None = None) -> str:
    """SHA-256 of the canonical JSON of the payload, or of the part a JMESPath ``select`` picks.

    Any JSON value may be selected (an object, a list, a string, a number); selecting nothing is an error, because
    every request without a key would otherwise share one.
    """
    value = payload if select is None else jmespath.search(select, payload)
    if value is None:
        raise ValueError(f"{select!r} selects nothing from the payload, so there is no idempotency key")
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def seed_key(payload: Any, *, select: str | None = None) -> str:
    """The seed's key, for comparison: ``json.dumps`` without ``sort_keys``, so key order changes the key.

    With ``select`` it does what the seed's function does with its JMESPath: it checks the result with
    ``value[0] is None``, which only works for a list. A number or nothing selected raises ``TypeError``, an object
    ``KeyError``, an empty string ``IndexError`` (and a string passes by its first character).
    """
    value = payload
    if select is not None:
        value = jmespath.search(select, payload)
        if value[0] is None:
            raise ValueError(f"JMESPath expression {select!r} did not yield any results")
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()
