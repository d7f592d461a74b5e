"""JMESPath options: unknown functions refused at start-up; Powertools' functions on real API Gateway and SQS events."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from aws_lambda_powertools.utilities.jmespath_utils import query as powertools_query

from helpers.idempotency import (
    ConfigurationError,
    Idempotency,
    IdempotencyConfig,
    MalformedPayload,
    ManualClock,
    MemoryStore,
    UnknownFunction,
    process_sqs_batch,
)
from helpers.idempotency.expressions import MAX_DECOMPRESSED_BYTES, Expression
from tests.idempotency.event_shapes import body_of, client_retry, encode_body, load, sqs_redelivery

OPTIONS = ("token_field", "key_expression", "tenant_expression", "fingerprint_expression")


@pytest.mark.parametrize("option", OPTIONS)
def test_an_unknown_function_is_refused_when_the_configuration_is_built(option):
    # before: accepted at start-up, and every request then failed with jmespath's UnknownFunctionError
    options = {"key_expression": "order_id", option: "to_upper(order_id)"}
    with pytest.raises(UnknownFunction) as info:
        IdempotencyConfig(**options)
    err = info.value
    assert isinstance(err, ConfigurationError) and (err.option, err.function) == (option, "to_upper")
    assert "to_upper()" in str(err) and option in str(err) and "powertools_json" in str(err)


def test_a_misspelt_function_gets_a_suggestion_and_nested_calls_are_checked():
    with pytest.raises(UnknownFunction, match=r"calls powertools_jsn\(\).*Did you mean powertools_json\(\)\?"):
        IdempotencyConfig(key_expression="powertools_jsn(body).order_id")
    with pytest.raises(UnknownFunction, match="nope"):
        IdempotencyConfig(key_expression="[order_id, length(nope(items))] || sort_by(items, &nope2(@))")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("powertools_json(body, headers)", r"powertools_json\(\) takes 1 argument\(s\), the expression gives 2"),
        ("length(@, @)", r"length\(\) takes 1"),
        ("not_null()", r"not_null\(\) takes at least 1"),
        ("order_id[", "not a valid JMESPath"),
        ("", "give a JMESPath expression"),
    ],
)
def test_wrong_arity_and_bad_syntax_are_configuration_errors(expression, message):
    with pytest.raises(ConfigurationError, match=message):
        IdempotencyConfig(token_field="id", fingerprint_expression=expression)


def test_variadic_functions_take_any_number_of_arguments():
    assert Expression("key_expression", "not_null(a, b, c)").search({"c": 3}) == 3
    assert Expression("key_expression", "merge(a, b)").search({"a": {"x": 1}, "b": {"y": 2}}) == {"x": 1, "y": 2}


def test_a_failing_search_is_a_typed_400_naming_the_option():
    idem = Idempotency(store=MemoryStore(), clock=ManualClock(), key_expression="length(amount)")
    with pytest.raises(MalformedPayload) as info:
        idem.execute({"amount": 5}, lambda: None)
    assert info.value.http_status == 400 and "key_expression='length(amount)'" in str(info.value)


# ----------------------------------------------------------------------------- Powertools' functions, real events

API_EVENTS = ("apigw_rest_create_order", "apigw_http_create_order")

# what a Powertools user writes for each encoding of the body; it works here as written
POWERTOOLS_KEY = {
    "json": "powertools_json(body).order_id",
    "base64": "powertools_json(powertools_base64(body)).order_id",
    "base64_gzip": "powertools_json(powertools_base64_gzip(body)).order_id",
}


def event_for(name, encoding):
    event = load(name)
    return event if encoding == "json" else encode_body(event, encoding)


@pytest.mark.parametrize("name", API_EVENTS)
@pytest.mark.parametrize("encoding", list(POWERTOOLS_KEY))
def test_powertools_functions_read_api_gateway_events(name, encoding):
    event = event_for(name, encoding)
    expression = f"[{POWERTOOLS_KEY[encoding]}, {POWERTOOLS_KEY[encoding].removesuffix('.order_id')}.amount]"
    ours = Expression("key_expression", expression)
    # the same answer as Powertools' own jmespath_utils on the raw event (its functions, its json.loads)
    assert (
        ours.search(event)
        == powertools_query(event, expression)
        == [body_of(event_for(name, "json"))["order_id"], body_of(event_for(name, "json"))["amount"]]
    )


@pytest.mark.parametrize("name", API_EVENTS)
@pytest.mark.parametrize("encoding", list(POWERTOOLS_KEY))
def test_a_powertools_configuration_protects_api_gateway_retries(name, encoding):
    # the configuration a Powertools user has (event_key_jmespath / payload_validation_jmespath), copied as-is
    key = POWERTOOLS_KEY[encoding]
    body = key.removesuffix(".order_id")
    idem = Idempotency(
        store=MemoryStore(), clock=ManualClock(), scope="orders", key_expression=key, fingerprint_expression=body
    )
    runs = []
    event = event_for(name, encoding)
    retry = client_retry(load(name))
    retry = retry if encoding == "json" else encode_body(retry, encoding)
    first = idem.execute(event, lambda: runs.append(1) or {"created": True})
    again = idem.execute(retry, lambda: runs.append(1))
    assert (first.replayed, again.replayed, runs) == (False, True, [1])
    assert again.key == first.key and again.key.startswith("orders#sha256#")
    # the same key whatever the encoding: the key is the order id, not the bytes on the wire
    plain = Idempotency(store=MemoryStore(), scope="orders", key_expression=POWERTOOLS_KEY["json"])
    assert first.key == plain.identify(load(name)).key
    # a different order under the same key expression is another request; tampering the amount is a 422
    tampered = json.loads(json.dumps(load(name)))
    tampered["body"] = json.dumps({**body_of(tampered), "amount": 1})
    tampered = tampered if encoding == "json" else encode_body(tampered, encoding)
    with pytest.raises(Exception) as info:
        idem.execute(tampered, lambda: runs.append(1))
    assert type(info.value).__name__ == "PayloadMismatch" and info.value.http_status == 422 and runs == [1]


def test_a_base64_api_gateway_body_is_not_parsed_as_json_by_default():
    # json_string_fields=("body",) leaves a body flagged isBase64Encoded alone, so powertools_base64 can read it
    event = encode_body(load("apigw_rest_create_order"), "base64")
    assert event["isBase64Encoded"] is True
    idem = Idempotency(store=MemoryStore(), key_expression=POWERTOOLS_KEY["base64"])
    assert idem.identify(event).key == idem.identify(encode_body(load("apigw_rest_create_order"), "base64")).key


@pytest.mark.parametrize("encoding", list(POWERTOOLS_KEY))
def test_powertools_functions_read_sqs_records(encoding):
    event = event_for("sqs_order_created", encoding)
    record = event["Records"][0]
    key = POWERTOOLS_KEY[encoding]
    assert Expression("key_expression", key).search(record) == powertools_query(record, key) == "order-3003"
    # a whole batch, one record at a time as Powertools' idempotent_function over a record sees it. An SQS body is
    # any text: when it is not JSON (base64 here), say so with json_string_fields=() (the default parses "body")
    idem = Idempotency(
        store=MemoryStore(),
        clock=ManualClock(),
        scope="orders",
        key_expression=key,
        fingerprint_expression=key.removesuffix(".order_id"),
        json_string_fields=("body",) if encoding == "json" else (),
    )
    charged = []
    first = process_sqs_batch(idem, event, lambda r: charged.append(r["messageId"]), payload=lambda r: r)
    again = process_sqs_batch(
        idem, sqs_redelivery(event), lambda r: charged.append(r["messageId"]), payload=lambda r: r
    )
    assert first.counts() == {"processed": 1} and again.counts() == {"replayed": 1}
    assert charged == ["2e1424d4-f796-459a-8184-9c92662be6da"] and again.response == {"batchItemFailures": []}


def test_the_message_attribute_token_of_an_sqs_record():
    event = load("sqs_order_created")
    idem = Idempotency(store=MemoryStore(), token_field='messageAttributes."idempotency-key".stringValue')
    assert idem.identify(event["Records"][0]).key == "default#tok#a7c3e5f1-9b2d-4f6a-8e0c-2d4b6f8a0c1e"


@pytest.mark.parametrize(
    ("expression", "value", "message"),
    [
        ("powertools_base64(@)", "not base64!", "not base64"),
        ("powertools_base64(@)", base64.b64encode(b"\xff\xfe").decode(), "not UTF-8"),
        ("powertools_base64_gzip(@)", base64.b64encode(b"plain").decode(), "not gzip"),
        ("powertools_base64_gzip(@)", base64.b64encode(gzip.compress(b"x" * 100)[:-12]).decode(), "truncated"),
        ("powertools_json(@)", "{not json", "not JSON"),
        ("powertools_base64(@)", 5, "cannot be evaluated"),
    ],
)
def test_a_body_the_functions_cannot_decode_is_a_400(expression, value, message):
    with pytest.raises(MalformedPayload, match=message) as info:
        Expression("key_expression", expression).search(value)
    assert info.value.http_status == 400 and "key_expression=" in str(info.value)


def test_powertools_base64_gzip_will_not_inflate_a_bomb():
    bomb = base64.b64encode(gzip.compress(b"\0" * (MAX_DECOMPRESSED_BYTES + 1))).decode()
    assert len(bomb) < 100_000
    with pytest.raises(MalformedPayload, match="inflate past"):
        Expression("key_expression", "powertools_base64_gzip(@)").search(bomb)
    # several gzip members (what `cat a.gz b.gz` makes) are read in full, like gzip.decompress
    two = base64.b64encode(gzip.compress(b'{"a":') + gzip.compress(b"1}")).decode()
    assert Expression("key_expression", "powertools_json(powertools_base64_gzip(@)).a").search(two) == 1


def test_powertools_json_passes_an_already_parsed_body_through():
    # json_string_fields parses API Gateway's body first: powertools_json(body) reads the same either way
    event = load("apigw_rest_create_order")
    parsed = Idempotency(store=MemoryStore(), key_expression="powertools_json(body).order_id")
    raw = Idempotency(store=MemoryStore(), key_expression="powertools_json(body).order_id", json_string_fields=())
    assert parsed.identify(event).key == raw.identify(event).key
