"""Keys and fingerprints: a client token or a JMESPath-derived hash, over a canonical JSON form.

Canonical JSON: object keys sorted, no insignificant whitespace, integral numbers written as integers (``1.0`` and
``1`` are the same amount), NaN/Infinity refused. JSON strings in ``json_string_fields`` are parsed first, so the
same API Gateway body with other whitespace or key order gives the same key (Powertools issue #657).
"""

from __future__ import annotations

import dataclasses
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

from helpers.idempotency.config import IdempotencyConfig
from helpers.idempotency.errors import InvalidKey, KeyMissing, MalformedPayload, PayloadNotSerializable

_MAX_SAFE_INT = 2**53


def _normalise(value: Any, path: str) -> Any:
    """A plain JSON value (dict/list/str/int/float/bool/None) equal in meaning to ``value``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadNotSerializable(f"{path} is {value}: JSON has no NaN or Infinity; send null or a string")
        return int(value) if value.is_integer() and abs(value) < _MAX_SAFE_INT else value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PayloadNotSerializable(f"{path} is {value}: JSON has no NaN or Infinity")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise PayloadNotSerializable(
                    f"{path} has the key {k!r} ({type(k).__name__}): JSON object keys are strings; convert it"
                )
            out[k] = _normalise(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Enum):
        return _normalise(value.value, path)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _normalise(dataclasses.asdict(value), path)
    if callable(getattr(value, "model_dump", None)):
        return _normalise(value.model_dump(mode="json"), path)
    raise PayloadNotSerializable(
        f"{path} is a {type(value).__name__}, which has no canonical JSON form. Convert it (a set to a sorted list, "
        "bytes to base64 text, an object to a dict), or choose a key_expression / fingerprint_expression that "
        "leaves it out. Nothing was written."
    )


def canonical_json(value: Any, *, path: str = "payload") -> str:
    """The one text for a JSON value: sorted keys, compact separators, UTF-8 kept as is."""
    return json.dumps(
        _normalise(value, path), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON: the request fingerprint stored with the record (IETF draft)."""
    return "sha256:" + sha256_hex(canonical_json(value))


def parse_json_fields(payload: Any, fields: tuple[str, ...]) -> Any:
    """A shallow copy of ``payload`` with the named top-level JSON-string fields parsed (others untouched)."""
    if not fields or not isinstance(payload, Mapping):
        return payload
    parsed = None
    for name in fields:
        raw = payload.get(name)
        if isinstance(raw, (str, bytes, bytearray)):
            try:
                decoded = json.loads(raw)
            except ValueError as exc:
                raise MalformedPayload(
                    f"field {name!r} is listed in json_string_fields but is not valid JSON ({exc}). Send JSON there, "
                    f"or remove {name!r} from json_string_fields if it is plain text."
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
    if len(text) > max_length:
        raise InvalidKey(
            f"the idempotency key from {source} has {len(text)} characters (limit {max_length}); use a UUID"
        )
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
        """The identity, or None when no key is present and ``on_missing_key='warn'`` (raises otherwise)."""
        cfg = self.config
        data = parse_json_fields(payload, cfg.json_string_fields)
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
