"""Keys, fingerprints and configuration: pure, no store."""

from __future__ import annotations

import dataclasses
import json
import uuid
from decimal import Decimal

import pytest

from helpers.idempotency import (
    ConfigurationError,
    IdempotencyConfig,
    InvalidKey,
    KeyMissing,
    MalformedPayload,
    PayloadNotSerializable,
    canonical_json,
    fingerprint,
)
from helpers.idempotency.keys import KeyResolver


def resolver(**options):
    return KeyResolver(IdempotencyConfig(**options))


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": True}]}) == '{"a":[1,{"c":true,"d":null}],"b":1}'


def test_canonical_json_treats_integral_numbers_alike():
    assert canonical_json({"x": 1.0}) == canonical_json({"x": 1}) == canonical_json({"x": Decimal("1.00")})
    assert canonical_json({"x": 1.5}) != canonical_json({"x": 1})


def test_canonical_json_converts_common_types():
    @dataclasses.dataclass
    class Order:
        id: str
        amount: Decimal

    u = uuid.UUID(int=7)
    assert json.loads(canonical_json({"o": Order("a", Decimal("2.5")), "u": u})) == {
        "o": {"amount": 2.5, "id": "a"},
        "u": str(u),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {1, 2}}, "payload.a is a set"),
        ({"a": [b"x"]}, "payload.a[0] is a bytes"),
        ({"a": float("nan")}, "payload.a is nan"),
        ({1: "x"}, "payload has the key 1 (int)"),
    ],
)
def test_values_without_canonical_form_are_refused_with_their_path(value, message):
    with pytest.raises(PayloadNotSerializable) as info:
        canonical_json(value)
    assert message in str(info.value)


def test_json_body_string_is_parsed_before_hashing():
    r = resolver(key_expression="body", scope="api")
    a = r.resolve({"body": '{"amount": 10, "currency": "EUR"}', "headers": {"X-Trace": "1"}})
    b = r.resolve({"body": '{\n  "currency":"EUR",\n  "amount":10\n}', "headers": {"X-Trace": "2"}})
    assert a.key == b.key
    assert a.key.startswith("api#sha256#")
    c = r.resolve({"body": '{"amount": 11, "currency": "EUR"}'})
    assert c.key != a.key


def test_a_json_string_field_that_does_not_parse_is_malformed():
    with pytest.raises(MalformedPayload, match="json_string_fields"):
        resolver(key_expression="body").resolve({"body": "amount=10"})
    # ... and plain text is fine once the field is not declared as JSON
    assert resolver(key_expression="body", json_string_fields=()).resolve({"body": "amount=10"}) is not None


def test_token_field_is_preferred_and_used_verbatim():
    r = resolver(token_field="detail.metadata.idempotency_key", key_expression="@", scope="orders")
    ident = r.resolve({"detail": {"metadata": {"idempotency_key": "k-1"}, "amount": 1}})
    assert ident.key == "orders#tok#k-1"
    assert ident.token == "k-1" and not ident.derived
    # fallback to the derived key when no token is sent
    derived = r.resolve({"detail": {"amount": 1}})
    assert derived.derived and derived.key.startswith("orders#sha256#")


def test_token_header_is_case_insensitive_and_explicit_token_wins():
    r = resolver(token_header="Idempotency-Key")
    assert r.resolve({"headers": {"idempotency-key": "abc"}}).key == "default#tok#abc"
    assert r.resolve({"headers": {"Idempotency-Key": "abc"}}, token="xyz").key == "default#tok#xyz"


def test_scope_and_tenant_prefix_the_key_explicitly():
    r = resolver(token_field="id", scope="payments.charge", tenant_expression="tenant")
    assert r.resolve({"id": "1", "tenant": "acme"}).key == "payments.charge/acme#tok#1"
    assert r.resolve({"id": "1", "tenant": "globex"}).key == "payments.charge/globex#tok#1"
    with pytest.raises(KeyMissing, match="tenant"):
        r.resolve({"id": "1"})


def test_scalar_jmespath_results_are_keys_too():
    # seed 003's key function crashed on a scalar JMESPath result
    assert resolver(key_expression="order_id").resolve({"order_id": 42}).derived


def test_fingerprint_uses_the_expression_and_ignores_volatile_fields():
    r = resolver(token_field="id", fingerprint_expression="[amount, currency]")
    a = r.resolve({"id": "1", "amount": 5, "currency": "EUR", "received_at": 1})
    b = r.resolve({"id": "1", "amount": 5, "currency": "EUR", "received_at": 2})
    c = r.resolve({"id": "1", "amount": 6, "currency": "EUR", "received_at": 2})
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.fingerprint == fingerprint([5, "EUR"])


def test_missing_key_is_an_error_by_default_and_says_what_to_do():
    with pytest.raises(KeyMissing) as info:
        resolver(token_field="idempotency_key").resolve({"amount": 1})
    assert info.value.http_status == 400
    assert "idempotency_key" in str(info.value) and "on_missing_key='warn'" in str(info.value)
    assert resolver(token_field="k", on_missing_key="warn").resolve({"amount": 1}) is None
    # a multiselect whose values are all missing is missing too
    with pytest.raises(KeyMissing):
        resolver(key_expression="[a, b]").resolve({"c": 1})


@pytest.mark.parametrize("token", ["", "   ", "x" * 256, "a\nb", 3.5, True, {"a": 1}])
def test_bad_tokens_are_invalid(token):
    with pytest.raises((InvalidKey, KeyMissing)) as info:
        resolver(token_field="k").resolve({"k": token})
    assert info.value.http_status == 400


def test_integer_tokens_are_accepted_as_strings():
    assert resolver(token_field="k").resolve({"k": 17}).key == "default#tok#17"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "say where the idempotency key comes from"),
        ({"token_field": "a[", "scope": "s"}, "not a valid JMESPath"),
        ({"token_field": "a", "lease_duration": 0}, "lease_duration"),
        ({"token_field": "a", "lease_duration": 60, "expires_after": 30}, "longer than the lease"),
        ({"token_field": "a", "on_missing_key": "ignore"}, "on_missing_key"),
        ({"token_field": "a", "scope": ""}, "scope"),
        ({"token_field": "a", "terminal_errors": ("ValueError",)}, "exception classes"),
    ],
)
def test_configuration_errors_fail_early_with_a_message(options, message):
    with pytest.raises(ConfigurationError, match=message):
        IdempotencyConfig(**options)


def test_local_cache_is_a_bounded_lru_of_completed_records_only():
    from helpers.idempotency import LocalCache, Record, Status

    def record(key, status=Status.COMPLETED, expires_at=100.0):
        return Record(key=key, status=status, fingerprint="f", expires_at=expires_at)

    cache = LocalCache(max_items=2)
    cache.put(record("in-progress", Status.IN_PROGRESS))
    cache.put(record("failed", Status.FAILED))
    assert len(cache) == 0  # a live lease or a failure is never answered from memory
    cache.put(record("a"))
    cache.put(record("b"))
    assert cache.get("a", now=0) is not None  # touch a: b is now the least recently used
    cache.put(record("c"))
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.get("a", now=100.0) is None and "a" not in cache  # expiry is checked on read
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_decimal_beyond_a_floats_range_is_refused_not_written_as_infinity():
    huge = Decimal("1" + "0" * 400 + ".5")
    with pytest.raises(PayloadNotSerializable, match="beyond a float's range"):
        canonical_json({"amount": huge})
    assert canonical_json({"amount": Decimal("1" + "0" * 400)}) == '{"amount":1' + "0" * 400 + "}"
