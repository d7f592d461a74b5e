"""Keys and fingerprints: a client token or a JMESPath-derived hash, over a canonical JSON form.

Canonical JSON: object keys sorted, no insignificant whitespace, integral numbers written as integers (``1.0`` and
``1`` are the same amount), NaN/Infinity refused. JSON strings in ``json_string_fields`` are parsed first, so the
same API Gateway body with other whitespace or key order gives the same key (Powertools issue #657).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from .config import IdempotencyConfig
from .errors import InvalidKey, KeyMissing, MalformedPayload, PayloadNotSerializable
from .payload import MAX_DEPTH, to_plain

_MAX_SAFE_INT = 2**53


def _check_text(value: str, path: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PayloadNotSerializable(
            f"{path} holds a lone surrogate ({value[exc.start]!r} at {exc.start}), which is not Unicode text and has "
            "no UTF-8 form; fix the text at its source"
        ) from None
    return value


def _normalise(value: Any, path: str, depth: int = 0) -> Any:
    """A plain JSON value (dict/list/str/int/float/bool/None) equal in meaning to ``value`` (already plain data:
    :func:`to_plain` has turned dataclasses, models and mappings into dicts)."""
    if depth > MAX_DEPTH:
        raise PayloadNotSerializable(f"{path} is nested more than {MAX_DEPTH} levels deep; flatten it")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _check_text(value, path)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadNotSerializable(f"{path} is {value}: JSON has no NaN or Infinity; send null or a string")
        return int(value) if value.is_integer() and abs(value) < _MAX_SAFE_INT else value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PayloadNotSerializable(f"{path} is {value}: JSON has no NaN or Infinity")
        if value == value.to_integral_value():
            return int(value)
        if not math.isfinite(as_float := float(value)):
            raise PayloadNotSerializable(f"{path} is a Decimal beyond a float's range; send it as a string")
        return as_float
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise PayloadNotSerializable(
                    f"{path} has the key {k!r} ({type(k).__name__}): JSON object keys are strings; convert it"
                )
            out[_check_text(k, path)] = _normalise(v, f"{path}.{k}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Enum):
        return _normalise(to_plain(value.value, path), path, depth + 1)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    raise PayloadNotSerializable(
        f"{path} is a {type(value).__name__}, which has no canonical JSON form. Convert it (a set to a sorted list, "
        "bytes to base64 text, an object to a dict), or choose a key_expression / fingerprint_expression that "
        "leaves it out. Nothing was written."
    )


def canonical_json(value: Any, *, path: str = "payload") -> str:
    """The one text for a JSON value: sorted keys, compact separators, UTF-8 kept as is."""
    plain = _normalise(to_plain(value, path), path)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON: the request fingerprint stored with the record (IETF draft)."""
    return "sha256:" + sha256_hex(canonical_json(value))


def loads(text: str | bytes | bytearray, what: str) -> Any:
    """``json.loads`` whose every failure (bad syntax, bad UTF-8, nesting deep enough to exhaust the stack) is a
    MalformedPayload naming ``what``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedPayload(f"{what} is JSON nested too deep to read (limit {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedPayload(f"{what} is not valid JSON ({exc})") from None


def parse_json_fields(payload: Any, fields: tuple[str, ...]) -> Any:
    """A shallow copy of ``payload`` with the named top-level JSON-string fields parsed (others untouched).

    An API Gateway event with ``isBase64Encoded: true`` carries its body as base64, not JSON: it is left as text
    for an expression to decode (``powertools_json(powertools_base64(body))``)."""
    if not fields or not isinstance(payload, Mapping) or payload.get("isBase64Encoded") is True:
        return payload
    parsed = None
    for name in fields:
        raw = payload.get(name)
        if isinstance(raw, (str, bytes, bytearray)):
            try:
                decoded = loads(raw, f"field {name!r}")
            except MalformedPayload as exc:
                raise MalformedPayload(
                    f"{exc}. Field {name!r} is listed in json_string_fields: send JSON there, or remove {name!r} "
                    "from json_string_fields if it is plain text."
                ) from None
            if parsed is None:
                parsed = dict(payload)
            parsed[name] = decoded
    return payload if parsed is None else parsed


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, Mapping):
        return all(v is None for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(v is None for v in value)
    return False


def validate_token(token: Any, *, max_length: int = 255, source: str = "token") -> str:
    """A client token as a string, or InvalidKey saying what is wrong with it."""
    if isinstance(token, bool) or not isinstance(token, (str, int)):
        raise InvalidKey(f"the idempotency key from {source} is a {type(token).__name__}; send a string (a UUID)")
    text = str(token)
    if not text.strip():
        raise InvalidKey(f"the idempotency key from {source} is blank; send a unique string such as a UUID")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"the idempotency key from {source} is not Unicode text; use a UUID") from None
    if size > max_length:
        raise InvalidKey(f"the idempotency key from {source} is {size} bytes in UTF-8 (limit {max_length}); use a UUID")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidKey(f"the idempotency key from {source} contains control characters; use a UUID")
    return text


def header_value(headers: Mapping[str, Any] | None, name: str) -> Any:
    """A header looked up case-insensitively (HTTP header names are case-insensitive)."""
    if not headers:
        return None
    lowered = name.lower()
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


@dataclass(frozen=True)
class Identity:
    """What a request is, for idempotency: its storage key and its payload fingerprint."""

    key: str
    fingerprint: str
    token: str | None = None
    derived: bool = False


class KeyResolver:
    """Turns a payload (and an optional explicit token) into an :class:`Identity`, with no I/O."""

    def __init__(self, config: IdempotencyConfig) -> None:
        self.config = config

    def _search(self, name: str, data: Any) -> Any:
        expr = self.config.compiled(name)
        return None if expr is None else expr.search(data)

    def resolve(self, payload: Any, *, token: Any = None, fingerprint_of: Any = ...) -> Identity | None:
        """The identity, or None when no key is present and ``on_missing_key='warn'`` (raises otherwise).

        The payload is converted to plain data once, here, and every lookup (tenant, header, token field, key
        expression, fingerprint) reads that one conversion."""
        cfg = self.config
        data = parse_json_fields(to_plain(payload), cfg.json_string_fields)
        prefix = cfg.scope
        if cfg.tenant_expression is not None:
            tenant = self._search("tenant_expression", data)
            if _is_missing(tenant):
                raise KeyMissing(f"no tenant at {cfg.tenant_expression!r} in the payload; the key is scoped per tenant")
            prefix = f"{prefix}/{validate_token(tenant, max_length=cfg.max_token_length, source='tenant_expression')}"

        key = None
        source = None
        derived = False
        if not _is_missing(token):
            source = "the explicit token"
        elif cfg.token_header is not None and isinstance(data, Mapping):
            token = header_value(data.get("headers"), cfg.token_header)
            source = f"header {cfg.token_header!r}"
        if _is_missing(token) and cfg.token_field is not None:
            token = self._search("token_field", data)
            source = f"field {cfg.token_field!r}"
        if not _is_missing(token):
            token = validate_token(token, max_length=cfg.max_token_length, source=source or "token")
            key = f"{prefix}#tok#{token}"
        elif cfg.key_expression is not None:
            selected = self._search("key_expression", data)
            if not _is_missing(selected):
                key = f"{prefix}#sha256#{sha256_hex(canonical_json(selected, path=cfg.key_expression))}"
                derived = True
                token = None
        if key is None:
            if cfg.on_missing_key == "warn":
                return None
            where = [
                f"{label} {value!r}"
                for label, value in (
                    ("header", cfg.token_header),
                    ("field", cfg.token_field),
                    ("key_expression", cfg.key_expression),
                )
                if value is not None
            ]
            raise KeyMissing(
                f"no idempotency key in the request (looked at {', '.join(where)}). Send one (a UUID the client "
                "generates once per operation and reuses on every retry), or set on_missing_key='warn' to run "
                "unprotected."
            )

        if fingerprint_of is ...:
            fp_source = self._search("fingerprint_expression", data) if cfg.fingerprint_expression else data
        else:
            fp_source = fingerprint_of
        return Identity(key=key, fingerprint=fingerprint(fp_source), token=token, derived=derived)
