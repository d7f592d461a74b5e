"""Issue 10's defect classes: an action never runs twice because of how its outcome was (not) stored.

Each test names the class of defect it covers; most run on both stores (the ``store`` fixture: memory and DynamoDB
on the embedded backend).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from helpers.idempotency import (
    ConfigurationError,
    DynamoDBStore,
    Effect,
    Idempotency,
    IdempotencyConfig,
    InvalidKey,
    ManualClock,
    MemoryStore,
    PayloadNotSerializable,
    ResponseNotStorable,
    Status,
    StoreError,
    StoreUnavailable,
    TerminalError,
    WaitPolicy,
    handle_http,
)
from helpers.idempotency.errors import ItemTooLarge
from helpers.idempotency.http import parse_sf_string

ORDER = {"idempotency_key": "order-1", "amount": 100}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def raising(exc: BaseException) -> Any:
    def action(*_: Any) -> Any:
        raise exc

    return action


# ---------------------------------------------------------------- unstorable results and errors end FAILED


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (object(), "JSON-serialisable"),
        ({"text": "bad \ud800 surrogate"}, "lone surrogate"),
        (nested(5000), "RecursionError"),
        ("€" * 120_000, "bytes as UTF-8"),  # 120 000 characters, 360 000 bytes: over 350 000
    ],
    ids=["not-json", "not-utf8", "too-deep", "too-large-in-utf8"],
)
def test_an_unstorable_result_ends_failed_and_is_replayed(make_idem, result, reason):
    runs: list[int] = []
    first = make_idem("w1")
    with pytest.raises(ResponseNotStorable, match=reason):
        first.execute(ORDER, lambda: runs.append(1) or result)
    assert first.lookup(ORDER).status is Status.FAILED
    with pytest.raises(TerminalError) as replay:
        make_idem("w2").execute(ORDER, lambda: runs.append(1))
    assert replay.value.code == "response_not_storable" and replay.value.http_status == 500
    assert runs == [1]


def test_sizes_are_reported_in_stored_utf8_bytes(make_idem):
    with pytest.raises(ResponseNotStorable) as info:
        make_idem("w1", max_response_bytes=1000).execute(ORDER, lambda: "é" * 600)  # 600 chars, 1202 bytes as JSON
    assert "1202 bytes as UTF-8 JSON" in str(info.value)


@pytest.mark.parametrize(
    "details",
    [
        {"blob": "x" * 500_000},  # over the item limit on its own
        {"text": "\udcff"},  # not UTF-8
        nested(3000),  # too deep to serialise
        object(),  # not JSON (stored as its str)
    ],
    ids=["over-item-limit", "not-utf8", "too-deep", "not-json"],
)
def test_a_terminal_error_that_is_too_big_or_odd_is_still_stored_and_replayed(make_idem, details):
    runs: list[int] = []

    def decline() -> None:
        runs.append(1)
        raise TerminalError("declined \ud800 " + "m" * 100, code="declined", details=details, http_status=402)

    with pytest.raises(TerminalError):
        make_idem("w1").execute(ORDER, decline)
    for worker in ("w2", "w3"):
        with pytest.raises(TerminalError) as replay:
            make_idem(worker).execute(ORDER, decline)
        assert replay.value.replayed and replay.value.code == "declined" and replay.value.http_status == 402
    assert runs == [1]


def test_a_store_that_refuses_the_item_as_too_large_still_gets_a_failed_record():
    """The engine's size estimate and the store's count may differ: the store's refusal ends FAILED too."""

    class Stricter(MemoryStore):
        def complete(self, record, *, now):
            raise ItemTooLarge("the store counts this record as 401 KB")

    store = Stricter()
    runs: list[int] = []
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key")
    with pytest.raises(ResponseNotStorable, match="401 KB"):
        idem.execute(ORDER, lambda: runs.append(1) or {"ok": True})
    assert idem.lookup(ORDER).status is Status.FAILED
    with pytest.raises(TerminalError, match="401 KB"):
        Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key").execute(ORDER, runs.append)
    assert runs == [1]


def test_an_unstorable_fenced_commit_ends_failed_not_locked(make_idem):
    guard = make_idem("w1").guard(ORDER)
    with pytest.raises(ResponseNotStorable):
        guard.commit(Effect(result={1, 2}, apply=lambda: None))
    with pytest.raises(TerminalError) as replay:
        make_idem("w2").execute(ORDER, lambda: None)
    assert replay.value.code == "response_not_storable"


# ---------------------------------------------------------------- impossible configuration is refused up front


@pytest.mark.parametrize(
    "options",
    [
        {"lease_duration": math.nan},
        {"lease_duration": math.inf, "expires_after": math.inf},
        {"expires_after": math.nan},
        {"retry_after_cap": math.inf},
        {"max_response_bytes": 0},
    ],
)
def test_non_finite_durations_are_refused(options):
    with pytest.raises(ConfigurationError):
        IdempotencyConfig(token_field="k", **options)


@pytest.mark.parametrize(
    "options", [{"max_wait": math.inf}, {"interval": math.nan}, {"max_interval": math.inf}, {"backoff": math.nan}]
)
def test_non_finite_waits_are_refused(options):
    with pytest.raises(ConfigurationError, match="finite"):
        WaitPolicy(**options)


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: DynamoDBStore("never-called", client=object())])
def test_a_response_limit_above_the_item_size_is_refused_before_any_request(make_store):
    with pytest.raises(ConfigurationError, match="max_response_bytes=500000 does not fit"):
        Idempotency(store=make_store(), token_field="k", max_response_bytes=500_000)


@pytest.mark.parametrize(
    "options",
    [
        {"scope": "s" * 1800},
        {"tenant_expression": "tenant", "max_token_length": 1100},
        {"max_token_length": 2100},
    ],
)
def test_keys_that_can_exceed_the_partition_key_limit_are_refused(options):
    with pytest.raises(ConfigurationError, match="2048-byte key limit"):
        Idempotency(store=MemoryStore(), token_field="k", **options)


def test_the_longest_key_a_config_allows_is_accepted_by_dynamodb(ddb_store):
    idem = Idempotency(
        store=ddb_store,
        clock=ManualClock(),
        scope="s" * 500,
        tenant_expression="tenant",
        token_field="k",
        max_token_length=700,
    )
    assert idem.config.max_key_bytes <= 2048
    payload = {"tenant": "t" * 700, "k": "€" * 233 + "x"}  # 700 bytes each in UTF-8
    assert idem.execute(payload, lambda: "ok").value == "ok"
    with pytest.raises(InvalidKey, match="bytes in UTF-8"):
        idem.execute({"tenant": "t", "k": "€" * 234}, lambda: "ok")


# ---------------------------------------------------------------- a write retried by the SDK is our own


class RetriedAfterLostAnswer:
    """A DynamoDB client whose chosen operations are applied, their answer lost, and retried once (as botocore
    does after a timeout): the second attempt's answer is what the store sees."""

    def __init__(self, client: Any, *ops: str) -> None:
        self._client = client
        self.ops = set(ops)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name not in self.ops:
            return real

        def retried(**kwargs: Any) -> Any:
            self.ops.discard(name)  # once
            real(**kwargs)
            return real(**kwargs)

        return retried


class RetriedMemoryStore(MemoryStore):
    """The same for the memory store: each named step is applied twice; the caller sees the second answer."""

    def __init__(self, *ops: str) -> None:
        super().__init__()
        self.ops = set(ops)

    def _twice(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if op in self.ops:
            self.ops.discard(op)
            fn(*args, **kwargs)
        return fn(*args, **kwargs)

    def claim(self, record, *, now):
        return self._twice("claim", super().claim, record, now=now)

    def complete(self, record, *, now):
        return self._twice("complete", super().complete, record, now=now)

    def fail(self, record, *, now):
        return self._twice("fail", super().fail, record, now=now)

    def commit(self, record, effect, *, now, owner=None):
        return self._twice("commit", super().commit, record, effect, now=now, owner=owner)

    def release(self, key, owner, *, now):
        return self._twice("release", super().release, key, owner, now=now)


@pytest.fixture(params=["memory", "dynamodb"])
def retried_store(request: pytest.FixtureRequest) -> Any:
    def make(*ops: str) -> Any:
        if request.param == "memory":
            names = {"put_item": "claim", "transact_write_items": "commit", "delete_item": "release"}
            return RetriedMemoryStore(*(names.get(o, o) for o in ops))
        real = request.getfixturevalue("ddb_store")
        return DynamoDBStore(real.table_name, client=RetriedAfterLostAnswer(real.client, *ops))

    return make


def test_a_claim_retried_after_its_answer_was_lost_is_ours(retried_store):
    store = retried_store("put_item")  # the claim; completion then runs normally
    runs: list[int] = []
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key", worker="w1")
    out = idem.execute(ORDER, lambda: runs.append(1) or "charged")
    assert (out.value, out.replayed, out.source, runs) == ("charged", False, "executed", [1])
    assert idem.stats["own_write_recognised"] == 1


@pytest.mark.parametrize("op", ["complete", "fail"])
def test_a_completion_retried_after_its_answer_was_lost_is_not_lease_lost(ddb_store, op):
    class Once(DynamoDBStore):
        armed = True

        def _replace_owned(self, record, during, now):
            if self.armed:
                self.armed = False
                super()._replace_owned(record, during, now)
            return super()._replace_owned(record, during, now)

    store = Once(ddb_store.table_name, client=ddb_store.client)
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key")
    if op == "complete":
        assert idem.execute(ORDER, lambda: "charged").value == "charged"
        assert idem.lookup(ORDER).status is Status.COMPLETED
    else:
        with pytest.raises(TerminalError) as info:
            idem.execute(ORDER, raising(TerminalError("declined")))
        assert not info.value.replayed
        assert idem.lookup(ORDER).status is Status.FAILED


def test_a_release_retried_after_its_answer_was_lost_frees_the_key(retried_store):
    store = retried_store("delete_item")
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key")
    with pytest.raises(RuntimeError, match="gateway timeout") as info:
        idem.execute(ORDER, raising(RuntimeError("gateway timeout")))
    assert info.value.idempotency_state == "ABSENT"
    assert idem.execute(ORDER, lambda: "second try").value == "second try"


def test_a_memory_completion_retried_after_its_answer_was_lost_is_not_lease_lost():
    idem = Idempotency(store=RetriedMemoryStore("complete"), clock=ManualClock(), token_field="idempotency_key")
    assert idem.execute(ORDER, lambda: "charged").value == "charged"


def test_a_transaction_retried_after_its_answer_was_lost_is_executed_not_replayed(retried_store, ledger_table):
    store = retried_store("transact_write_items")
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key")
    put = {"TableName": ledger_table, "Item": {"order": {"S": "o-1"}, "charge": {"S": "c-1"}}}
    out = idem.execute_transactional(ORDER, Effect(result="charged", writes=[{"Put": put}], apply=lambda: None))
    assert (out.value, out.replayed, out.source) == ("charged", False, "executed")


def test_a_fenced_commit_retried_after_its_answer_was_lost_is_ours(retried_store, ledger_table):
    store = retried_store("transact_write_items")
    idem = Idempotency(store=store, clock=ManualClock(), token_field="idempotency_key")
    put = {"TableName": ledger_table, "Item": {"order": {"S": "o-1"}, "charge": {"S": "c-1"}}}
    guard = idem.guard(ORDER)
    out = guard.commit(Effect(result="charged", writes=[{"Put": put}], apply=lambda: None))
    assert (out.value, out.replayed) == ("charged", False)


# ---------------------------------------------------------------- replayed terminal errors keep their type and status


class CardDeclined(TerminalError):
    http_status = 402

    def __init__(self, card: str) -> None:  # a signature of the caller's own
        super().__init__(f"card {card} declined")
        self.card = card


class InsufficientFunds(ValueError):
    pass


def test_a_replayed_terminal_error_keeps_its_declared_class(make_idem):
    with pytest.raises(CardDeclined):
        make_idem("w1").execute(ORDER, raising(CardDeclined("4242")))
    with pytest.raises(CardDeclined) as replay:
        make_idem("w2").execute(ORDER, lambda: None)
    assert replay.value.replayed and replay.value.http_status == 402 and replay.value.message == "card 4242 declined"


def test_a_replayed_configured_terminal_error_is_still_that_class(make_idem):
    w1 = make_idem("w1", terminal_errors=(InsufficientFunds,))
    with pytest.raises(InsufficientFunds):
        w1.execute(ORDER, raising(InsufficientFunds("balance 3")))
    with pytest.raises(InsufficientFunds) as replay:
        make_idem("w2", terminal_errors=(InsufficientFunds,)).execute(ORDER, lambda: None)
    assert isinstance(replay.value, TerminalError) and replay.value.replayed
    assert replay.value.original_type == "InsufficientFunds" and replay.value.message == "balance 3"


@pytest.mark.parametrize(
    ("exc", "status"), [(CardDeclined("4242"), 402), (InsufficientFunds("balance 3"), 422)], ids=["subclass", "listed"]
)
def test_http_answers_a_terminal_error_with_the_same_status_first_and_on_replay(exc, status):
    idem = Idempotency(
        store=MemoryStore(), clock=ManualClock(), token_header="Idempotency-Key", terminal_errors=(InsufficientFunds,)
    )
    answers = [handle_http(idem, "POST", "/pay", {"Idempotency-Key": "k"}, b"{}", raising(exc)) for _ in range(3)]
    assert [a.status for a in answers] == [status] * 3
    assert len({a.json()["detail"] for a in answers}) == 1
    assert all("released" not in a.json()["detail"] for a in answers)
    assert [a.replayed for a in answers] == [False, True, True]


def test_an_sqs_batch_treats_a_listed_terminal_error_as_done_first_time_and_on_replay():
    from helpers.idempotency import process_sqs_batch

    idem = Idempotency(
        store=MemoryStore(), clock=ManualClock(), token_field="key", terminal_errors=(InsufficientFunds,)
    )
    event = {"Records": [{"messageId": "m-1", "body": json.dumps({"key": "k-1"})}]}
    for _ in range(2):
        report = process_sqs_batch(idem, event, raising(InsufficientFunds("balance 3")))
        assert [r.status for r in report.results] == ["terminal"] and report.response == {"batchItemFailures": []}


def test_http_says_released_only_when_the_key_was_released():
    class NoRelease(MemoryStore):
        def release(self, key, owner, *, now):
            raise StoreUnavailable("the store is down")

    idem = Idempotency(store=NoRelease(), clock=ManualClock(), token_header="Idempotency-Key")
    answer = handle_http(idem, "POST", "/pay", {"Idempotency-Key": "k"}, b"{}", raising(RuntimeError("bug")))
    assert answer.status == 500 and "could not be released" in answer.json()["detail"]
    idem = Idempotency(store=MemoryStore(), clock=ManualClock(), token_header="Idempotency-Key")
    answer = handle_http(idem, "POST", "/pay", {"Idempotency-Key": "k"}, b"{}", raising(RuntimeError("bug")))
    assert answer.status == 500 and "was released" in answer.json()["detail"]


# ---------------------------------------------------------------- hostile payloads give typed errors


def test_deeply_nested_payloads_are_a_typed_error(make_idem):
    with pytest.raises(PayloadNotSerializable, match="nested more than"):
        make_idem("w1").execute({"idempotency_key": "k", "x": nested(5000)}, lambda: "never")
    with pytest.raises(PayloadNotSerializable, match="nested more than"):
        make_idem("w1", key_expression="@", token_field=None).execute(nested(5000), lambda: "never")


def test_lone_surrogates_are_a_typed_error(make_idem):
    with pytest.raises(PayloadNotSerializable, match="lone surrogate"):
        make_idem("w1").execute({"idempotency_key": "k", "name": "\ud800"}, lambda: "never")
    with pytest.raises(InvalidKey):
        make_idem("w1").execute({"idempotency_key": "k\udfff"}, lambda: "never")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
        ({"Content-Type": "application/json"}, json.dumps(nested(500)).encode()),
        ({"Content-Type": "application/json"}, b'{"a": "\xff\xfe"}'),
        ({"Content-Type": "application/json"}, '{"a": "\ud800"}'),
        ({"Content-Type": "text/plain"}, "\ud800"),
        ({"Idempotency-Key": "k\ud800"}, b"{}"),
        ({"Idempotency-Key": '"k'}, b"{}"),
        ({"Idempotency-Key": '"a", "b"'}, b"{}"),
        ({"Idempotency-Key": "caf\u00e9"}, b"{}"),
    ],
    ids=[
        "deep-brackets",
        "deep-object",
        "not-utf8",
        "surrogate-json",
        "surrogate-text",
        "surrogate-key",
        "unterminated-key",
        "two-keys",
        "non-ascii-key",
    ],
)
def test_http_glue_answers_hostile_requests_with_400_and_never_raises(headers, body):
    ran: list[int] = []
    idem = Idempotency(store=MemoryStore(), clock=ManualClock(), token_header="Idempotency-Key")
    all_headers = {"Idempotency-Key": "k", **headers}
    answer = handle_http(idem, "POST", "/pay", all_headers, body, lambda r: ran.append(1) or (201, {}, b"ok"))
    assert answer.status == 400, answer.body
    assert ran == []


def test_http_glue_never_raises_even_when_the_handler_returns_nonsense():
    idem = Idempotency(store=MemoryStore(), clock=ManualClock(), token_header="Idempotency-Key")
    answer = handle_http(idem, "POST", "/pay", {"Idempotency-Key": "k"}, b"{}", lambda r: object())
    assert answer.status == 500
    answer = handle_http(idem, "GET", "/pay", {}, b"", lambda r: object())  # unprotected path too
    assert answer.status == 500


@pytest.mark.parametrize(
    ("raw", "key"), [('"abc"', "abc"), ('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"), ('  "x y"  ', "x y")]
)
def test_sf_strings_are_parsed_as_rfc_8941_defines_them(raw, key):
    assert parse_sf_string(raw) == key


@pytest.mark.parametrize("raw", ['"abc', '"a\\x"', '"a"b', '"caf\u00e9"', "abc", '"tab\there"'])
def test_malformed_sf_strings_are_invalid_keys(raw):
    with pytest.raises(InvalidKey):
        parse_sf_string(raw)


# ---------------------------------------------------------------- round trips told truthfully on store errors


def test_a_store_error_carries_the_round_trips_made(make_idem):
    class Broken(MemoryStore):
        def complete(self, record, *, now):
            raise StoreError("validation failed")

    idem = Idempotency(store=Broken(), clock=ManualClock(), token_field="idempotency_key")
    with pytest.raises(StoreError) as info:
        idem.execute(ORDER, lambda: "x")
    assert info.value.round_trips == 2  # the claim and the refused completion


def test_a_missing_table_error_carries_its_round_trip(ddb):
    idem = Idempotency(store=DynamoDBStore("no-such-table", ddb), clock=ManualClock(), token_field="idempotency_key")
    with pytest.raises(StoreError) as info:
        idem.execute(ORDER, lambda: "x")
    assert info.value.round_trips == 1
