"""Configuration: where the key comes from, how long records and leases live, and what counts as terminal.

Everything is validated when the config is built, so a bad JMESPath (its syntax, the functions it calls) or an
impossible window fails at start-up with a message, not on the first request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigurationError, TerminalError
from .expressions import Expression


@dataclass(frozen=True)
class WaitPolicy:
    """Wait (bounded) for an in-progress duplicate to finish instead of failing with 409 at once.

    Each poll is one claim attempt (one round trip): it returns the result if the first attempt completed, and
    takes the work over if that attempt released its lease or let it expire.
    """

    max_wait: float = 5.0
    interval: float = 0.05
    max_interval: float = 1.0
    backoff: float = 2.0

    def __post_init__(self) -> None:
        _finite(self, "max_wait", "interval", "max_interval", "backoff")
        if self.max_wait < 0 or self.interval <= 0 or self.max_interval < self.interval or self.backoff < 1:
            raise ConfigurationError(
                f"{self}: need max_wait >= 0, interval > 0, max_interval >= interval and backoff >= 1"
            )


def _finite(owner: object, *names: str) -> None:
    """Refuse NaN, infinity and non-numbers: a NaN lease compares False with everything and never expires."""
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigurationError(f"{name}={value!r} must be a finite number of seconds")


#: ``#tok#`` (5) before a token, or ``#sha256#`` + 64 hex digits (72) for a derived key: the key's fixed part.
_TOKEN_SEPARATOR_BYTES = 5
_DERIVED_SUFFIX_BYTES = 72


def _compile(name: str, expression: str | None) -> Expression | None:
    """The checked expression (syntax, function names, arities), or None when the option is not set."""
    return None if expression is None else Expression(name, expression)


@dataclass(frozen=True)
class IdempotencyConfig:
    """How one protected operation is identified and kept.

    Key sources, in order of preference (the first one present wins):

    - ``token``: passed explicitly to the call (the HTTP glue passes the ``Idempotency-Key`` header);
    - ``token_header``: a client token in the payload's ``headers`` map (looked up case-insensitively);
    - ``token_field``: a JMESPath to a client token in the payload (e.g. ``"idempotency_key"``,
      ``"detail.metadata.idempotency_key"``) -- the preferred form: the client decides what "the same" means;
    - ``key_expression``: a JMESPath whose result is hashed in canonical JSON (``"@"`` = the whole payload).

    Expressions read the payload as plain data (payload.py: dataclasses, pydantic models and mappings become dicts)
    and may call JMESPath's functions and Powertools' ``powertools_json``, ``powertools_base64`` and
    ``powertools_base64_gzip`` (expressions.py); any other name is refused here with :class:`UnknownFunction`.

    ``scope`` (plus an optional per-tenant ``tenant_expression``) prefixes every key. It is explicit on purpose:
    renaming or moving the function must not change the keys of records already stored.

    ``fingerprint_expression`` selects what must be identical for a reuse of the key to count as a duplicate
    (default: the whole payload). Exclude volatile parts (trace headers, receive timestamps) or every retry of an
    API Gateway event would look like a different payload. ``json_string_fields`` are top-level fields holding a
    JSON string (API Gateway's ``body``): they are parsed before hashing, so whitespace and key order do not
    change the key or fingerprint.
    """

    scope: str = "default"
    token_field: str | None = None
    token_header: str | None = None
    key_expression: str | None = None
    tenant_expression: str | None = None
    fingerprint_expression: str | None = None
    json_string_fields: tuple[str, ...] = ("body",)
    expires_after: float = 3600.0
    lease_duration: float = 30.0
    on_missing_key: Literal["error", "warn"] = "error"
    local_cache: bool = True
    cache_size: int = 256
    wait: WaitPolicy | None = None
    terminal_errors: tuple[type[BaseException], ...] = ()
    max_token_length: int = 255
    max_response_bytes: int = 350_000
    retry_after_cap: float = 1.0
    conflict_retries: int = 2
    _compiled: dict[str, Expression | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bad = not isinstance(self.scope, str) or not self.scope
        if bad or any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in self.scope):
            raise ConfigurationError(f"scope={self.scope!r}: give a short printable name such as 'payments.charge'")
        if not (self.token_field or self.token_header or self.key_expression):
            raise ConfigurationError(
                "say where the idempotency key comes from: token_field='idempotency_key' or token_header="
                "'Idempotency-Key' (a client token, preferred), or key_expression='order_id' (derived from the "
                "payload; '@' hashes the whole payload). A call may also pass token=... explicitly: then set "
                "token_field or token_header to document where it normally comes from."
            )
        _finite(self, "expires_after", "lease_duration", "retry_after_cap")
        for name in ("cache_size", "max_token_length", "max_response_bytes", "conflict_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name}={value!r} must be a whole number >= 0")
        if self.max_token_length < 1 or self.max_response_bytes < 1:
            raise ConfigurationError("max_token_length and max_response_bytes must be >= 1")
        if self.retry_after_cap < 0:
            raise ConfigurationError(f"retry_after_cap={self.retry_after_cap} must be >= 0 seconds")
        if self.wait is not None and not isinstance(self.wait, WaitPolicy):
            raise ConfigurationError(f"wait={self.wait!r}: give a WaitPolicy(...) or None")
        if self.lease_duration <= 0:
            raise ConfigurationError(f"lease_duration={self.lease_duration} must be > 0 seconds")
        if self.expires_after < self.lease_duration:
            raise ConfigurationError(
                f"expires_after={self.expires_after}s is shorter than lease_duration={self.lease_duration}s: a "
                "record would expire while its owner still works on it. Make the window longer than the lease."
            )
        if self.on_missing_key not in ("error", "warn"):
            raise ConfigurationError(f"on_missing_key={self.on_missing_key!r}: use 'error' (default) or 'warn'")
        if self.cache_size < 1:
            raise ConfigurationError("cache_size must be >= 1 (use local_cache=False to switch the cache off)")
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in self.terminal_errors):
            raise ConfigurationError("terminal_errors must be a tuple of exception classes")
        if isinstance(self.json_string_fields, str):
            object.__setattr__(self, "json_string_fields", (self.json_string_fields,))
        compiled = {
            "token_field": _compile("token_field", self.token_field),
            "key_expression": _compile("key_expression", self.key_expression),
            "tenant_expression": _compile("tenant_expression", self.tenant_expression),
            "fingerprint_expression": _compile("fingerprint_expression", self.fingerprint_expression),
        }
        self._compiled.update(compiled)

    @property
    def max_key_bytes(self) -> int:
        """The longest storage key this config can produce, in UTF-8 bytes (tokens and tenants are limited to
        ``max_token_length`` bytes each): a store checks it against its own key limit."""
        prefix = len(self.scope.encode("utf-8", "surrogatepass"))
        if self.tenant_expression is not None:
            prefix += 1 + self.max_token_length
        tail = 0
        if self.token_field or self.token_header or not self.key_expression:
            tail = _TOKEN_SEPARATOR_BYTES + self.max_token_length
        if self.key_expression is not None:
            tail = max(tail, _DERIVED_SUFFIX_BYTES)
        return prefix + tail

    def compiled(self, name: str) -> Expression | None:
        """The compiled JMESPath for ``name`` (or None)."""
        return self._compiled.get(name)

    def is_terminal(self, exc: BaseException) -> bool:
        return isinstance(exc, (TerminalError, *self.terminal_errors))
