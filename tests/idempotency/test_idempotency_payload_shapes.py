"""Payloads of every Python shape: one conversion to plain data before any expression, so equal data is one request.

The defects this file holds down (each test failed before the conversion moved in front of the expressions):
payload validation silently off for dataclass and pydantic payloads (a tampered request was replayed, not refused
with 422), and key expressions unable to read their fields (KeyMissing). The property test covers the class:
dicts, mappings, dataclasses, pydantic v2 models, objects with ``to_dict`` and tuples, nested in any mix.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import ipaddress
import types
import uuid
from decimal import Decimal
from typing import Any

import pydantic
import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, SQSEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.idempotency import (
    IdempotencyConfig,
    KeyMissing,
    PayloadMismatch,
    PayloadNotSerializable,
    canonical_json,
    fingerprint,
)
from helpers.idempotency.keys import KeyResolver
from helpers.idempotency.payload import to_plain
from tests.idempotency.event_shapes import load


@dataclasses.dataclass
class Charge:
    transaction_id: str
    idempotency_key: str
    amount: int
    currency: str
    tenant: str = "acme"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class ChargeModel(pydantic.BaseModel):
    transaction_id: str
    idempotency_key: str
    amount: int
    currency: str
    tenant: str = "acme"
    headers: dict[str, str] = {}


SHAPES = {"dataclass": Charge, "pydantic": ChargeModel}


def charge(shape: str, **changes: Any) -> Any:
    fields = {"transaction_id": "t-1", "idempotency_key": "k-1", "amount": 10, "currency": "EUR"} | changes
    return SHAPES[shape](**fields)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_payload_validation_refuses_a_tampered_dataclass_or_model(make_idem, shape):
    # the token is passed explicitly, so only the fingerprint decides: before, [amount, currency] selected nothing
    # from the object (None for every payload) and the tampered charge was answered with the first result
    w1, w2 = make_idem("w1", fingerprint_expression="[amount, currency]"), make_idem("w2")
    runs = []
    first = w1.execute(charge(shape), lambda: runs.append(1) or "charged 10", token="k-1")
    for worker, source in ((w1, "cache"), (w2, "store")):
        with pytest.raises(PayloadMismatch) as info:
            worker.execute(charge(shape, amount=99), lambda: runs.append(1), token="k-1")
        assert info.value.http_status == 422 and info.value.source == source
    assert first.value == "charged 10" and runs == [1]
    assert w1.identify(charge(shape), token="k-1").fingerprint == fingerprint([10, "EUR"])


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"key_expression": "transaction_id"}, None),
        ({"token_field": "idempotency_key"}, "s#tok#k-1"),
        ({"token_header": "Idempotency-Key"}, "s#tok#h-1"),
        ({"token_field": "idempotency_key", "tenant_expression": "tenant"}, "s/acme#tok#k-1"),
    ],
)
def test_key_expressions_read_dataclass_and_model_fields(shape, options, key):
    # before: KeyMissing, though the field is there
    resolver = KeyResolver(IdempotencyConfig(scope="s", **options))
    identity = resolver.resolve(charge(shape, headers={"idempotency-key": "h-1"}))
    plain = resolver.resolve(dataclasses.asdict(charge("dataclass", headers={"idempotency-key": "h-1"})))
    assert identity == plain
    if key is not None:
        assert identity.key == key
    else:
        assert identity.key.startswith("s#sha256#") and identity.derived


def test_a_missing_field_of_a_model_is_still_missing():
    with pytest.raises(KeyMissing):
        KeyResolver(IdempotencyConfig(key_expression="order_id")).resolve(charge("pydantic"))


def test_the_conversion_keeps_plain_data_as_it_is_and_converts_only_containers():
    payload = {"a": [1, {"b": "x"}], "c": None}
    assert to_plain(payload) is payload  # nothing to convert: no copy
    mixed = {"a": (1, 2), "m": types.MappingProxyType({"k": Charge("t", "k", 1, "EUR")})}
    plain = to_plain(mixed)
    assert plain["a"] == [1, 2] and plain["m"]["k"]["amount"] == 1 and mixed["a"] == (1, 2)
    deep: Any = {}
    node = deep
    for _ in range(150):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(PayloadNotSerializable, match="nested more than 100"):
        to_plain(deep)


class Address(pydantic.BaseModel):
    ip: ipaddress.IPv4Address
    amount: Decimal
    at: dt.datetime


def test_a_model_is_hashed_like_a_dict_of_the_same_values_and_its_own_json_only_where_needed():
    at = dt.datetime(2026, 12, 4, 10, 15, tzinfo=dt.UTC)
    model = Address(ip="192.0.2.1", amount=Decimal("12.50"), at=at)
    # Decimal and datetime stay Python values (the model's JSON form would write "12.50" and "...Z");
    # an IP address has no canonical form of its own, so the model's JSON form ("192.0.2.1") is used
    assert canonical_json(model) == canonical_json({"ip": "192.0.2.1", "amount": Decimal("12.5"), "at": at})


class Circular:
    def to_dict(self) -> Any:
        return {"self": self}


def test_a_payload_that_cannot_be_converted_is_a_typed_error():
    with pytest.raises(PayloadNotSerializable, match="nested"):
        to_plain(Circular())


# ----------------------------------------------------------------------------- the property, across shapes


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


LEAVES: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "str": (str, st.text(max_size=8)),
    "token": (str, st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)),
    "int": (int, st.integers(-(2**60), 2**60)),
    "float": (float, st.floats(allow_nan=False, allow_infinity=False)),
    "bool": (bool, st.booleans()),
    "none": (type(None), st.none()),
    "decimal": (Decimal, st.decimals(-(10**12), 10**12, allow_nan=False, allow_infinity=False, places=3)),
    "datetime": (dt.datetime, st.datetimes(timezones=st.sampled_from([None, dt.UTC]))),
    "uuid": (uuid.UUID, st.uuids()),
    "enum": (Colour, st.sampled_from(Colour)),
}


@dataclasses.dataclass(frozen=True)
class Leaf:
    kind: str


@dataclasses.dataclass(frozen=True)
class Record:
    fields: tuple[tuple[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class ListOf:
    item: Any


names = st.sampled_from(["f_a", "f_b", "f_c", "f_d"])
schemas = st.recursive(
    st.sampled_from(sorted(set(LEAVES) - {"token"})).map(Leaf),
    lambda inner: st.one_of(
        st.dictionaries(names, inner, min_size=1, max_size=3).map(lambda d: Record(tuple(sorted(d.items())))),
        inner.map(ListOf),
    ),
    max_leaves=8,
)
top_schemas = st.dictionaries(names, schemas, max_size=4).map(
    lambda d: Record((("f_id", Leaf("token")), *sorted(d.items())))
)


def values(schema: Any) -> st.SearchStrategy[Any]:
    if isinstance(schema, Leaf):
        return LEAVES[schema.kind][1]
    if isinstance(schema, ListOf):
        return st.lists(values(schema.item), max_size=3)
    return st.fixed_dictionaries({name: values(sub) for name, sub in schema.fields})


_classes: dict[tuple[str, Record], type] = {}


def _class_for(shape: str, schema: Record) -> type:
    """One dataclass / pydantic model / to_dict class per record schema (leaves typed, nested parts Any)."""
    if (shape, schema) not in _classes:
        annotations = [(n, LEAVES[s.kind][0] if isinstance(s, Leaf) else Any) for n, s in schema.fields]
        name = f"R{len(_classes)}"
        if shape == "dataclass":
            cls: type = dataclasses.make_dataclass(name, annotations)
        elif shape == "pydantic":
            cls = pydantic.create_model(  # type: ignore[call-overload]
                name, __config__=pydantic.ConfigDict(strict=True), **{n: (t, ...) for n, t in annotations}
            )
        else:

            def to_dict(self: Any) -> dict[str, Any]:
                return dict(self.values)

            cls = type(name, (), {"__init__": lambda self, **kw: setattr(self, "values", kw), "to_dict": to_dict})
        _classes[(shape, schema)] = cls
    return _classes[(shape, schema)]


RECORD_SHAPES = ("dict", "mapping", "dataclass", "pydantic", "to_dict")


def shaped(draw: Any, schema: Any, value: Any) -> Any:
    """``value`` (plain data of ``schema``) rebuilt with a shape drawn for every record and list in it."""
    if isinstance(schema, Leaf):
        return value
    if isinstance(schema, ListOf):
        items = [shaped(draw, schema.item, v) for v in value]
        return tuple(items) if draw(st.booleans()) else items
    fields = {name: shaped(draw, sub, value[name]) for name, sub in schema.fields}
    shape = draw(st.sampled_from(RECORD_SHAPES))
    if shape == "dict":
        return fields
    if shape == "mapping":
        return types.MappingProxyType(fields)
    return _class_for(shape, schema)(**fields)


def leaf_paths(schema: Any, value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Leaf]]:
    if isinstance(schema, Leaf):
        return [(path, schema)]
    if isinstance(schema, ListOf):
        return [p for i, v in enumerate(value) for p in leaf_paths(schema.item, v, (*path, i))]
    return [p for name, sub in schema.fields for p in leaf_paths(sub, value[name], (*path, name))]


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(value)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return out


def resolvers(schema: Record) -> dict[str, KeyResolver]:
    """The configurations the property is checked under: a token, a derived key, whole and partial fingerprints."""
    first = schema.fields[-1][0]  # a field other than f_id when there is one
    return {
        "token": KeyResolver(IdempotencyConfig(scope="p", token_field="f_id")),
        "derived": KeyResolver(IdempotencyConfig(scope="p", key_expression="@")),
        "partial": KeyResolver(IdempotencyConfig(scope="p", token_field="f_id", fingerprint_expression=first)),
    }


@settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_equal_data_is_one_request_whatever_its_python_shape(data):
    schema = data.draw(top_schemas, label="schema")
    value = data.draw(values(schema), label="data")
    one, other = shaped(data.draw, schema, value), shaped(data.draw, schema, value)
    assert canonical_json(one) == canonical_json(other) == canonical_json(value)
    for name, resolver in resolvers(schema).items():
        expected = resolver.resolve(value)
        assert resolver.resolve(one) == resolver.resolve(other) == expected, name

    # change one leaf to a value with another canonical form: every fingerprint that covers it changes
    paths = leaf_paths(schema, value)
    path, leaf = data.draw(st.sampled_from(paths), label="changed leaf")
    old = canonical_json(_at(value, path))
    new = data.draw(LEAVES[leaf.kind][1].filter(lambda v: canonical_json(v) != old), label="new value")
    changed = replaced(value, path, new)
    changed_shape = shaped(data.draw, schema, changed)
    for name, resolver in resolvers(schema).items():
        before, after = resolver.resolve(one), resolver.resolve(changed_shape)
        covered = name != "partial" or path[0] == resolver.config.fingerprint_expression
        assert (before.fingerprint != after.fingerprint) == covered, (name, path)
        keyed = name == "derived" or path == ("f_id",)
        assert (before.key != after.key) == keyed, (name, path)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def test_powertools_event_source_data_classes_are_read_as_the_event_they_wrap():
    # a migrating handler often holds APIGatewayProxyEvent / SQSRecord objects: Mappings over the raw event
    resolver = KeyResolver(IdempotencyConfig(token_header="Idempotency-Key", fingerprint_expression="body"))
    raw = load("apigw_rest_create_order")
    assert resolver.resolve(APIGatewayProxyEvent(raw)) == resolver.resolve(raw)
    sqs = load("sqs_order_created")
    record_resolver = KeyResolver(IdempotencyConfig(key_expression="powertools_json(body).order_id"))
    wrapped = next(iter(SQSEvent(sqs).records))
    assert record_resolver.resolve(wrapped) == record_resolver.resolve(sqs["Records"][0])
