"""Fixtures for the idempotency library tests: one table per test, a manual clock, round trips seen by botocore."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config

from helpers.idempotency import DynamoDBStore, Idempotency, ManualClock, MemoryStore, TransitionLog

# moto's conditional writes are made atomic by helpers.aws.backend (make_moto_dynamodb_writes_atomic) for every
# embedded server, so the concurrency tests below test the library, not moto.


@pytest.fixture
def ddb(backend: Any) -> Any:
    return backend.client("dynamodb")


def table_name_for(nodeid: str, prefix: str = "idem") -> str:
    return f"{prefix}-{hashlib.sha1(nodeid.encode()).hexdigest()[:12]}"


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A table name unique to this test, for a given prefix."""
    return lambda prefix="idem": table_name_for(request.node.nodeid, prefix)


@pytest.fixture
def ddb_store(ddb: Any, request: pytest.FixtureRequest) -> Iterator[DynamoDBStore]:
    """A fresh table for this test (deleted afterwards)."""
    store = DynamoDBStore(table_name_for(request.node.nodeid), ddb)
    store.create_table()
    yield store
    store.delete_table()


@pytest.fixture
def ledger_table(ddb: Any, table_name: Callable[[str], str]) -> Iterator[str]:
    """The side effect's own table: one item per charge (HASH order, RANGE charge)."""
    name = table_name("ledger")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order", "KeyType": "HASH"}, {"AttributeName": "charge", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "order", "AttributeType": "S"},
            {"AttributeName": "charge", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    ddb.delete_table(TableName=name)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Any:
    """Both stores: every semantic test must hold on each."""
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("ddb_store")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def log() -> TransitionLog:
    return TransitionLog()


@pytest.fixture
def make_idem(store: Any, clock: ManualClock, log: TransitionLog) -> Callable[..., Idempotency]:
    """Workers sharing one store, clock and log; each has its own cache, like separate processes."""

    def make(worker: str = "w1", **options: Any) -> Idempotency:
        options.setdefault("scope", "test")
        if not any(k in options for k in ("token_field", "token_header", "key_expression")):
            options["token_field"] = "idempotency_key"
        options.setdefault("lease_duration", 30.0)
        options.setdefault("expires_after", 3600.0)
        return Idempotency(store=store, clock=clock, log=log, worker=worker, **options)

    return make


class ApiCalls:
    """DynamoDB API calls as botocore sees them: an independent check of the library's own round-trip count."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.calls[event_name.rsplit(".", 1)[-1]] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


@pytest.fixture
def api_calls(ddb: Any) -> Iterator[ApiCalls]:
    counter = ApiCalls()
    ddb.meta.events.register("before-call.dynamodb.*", counter, unique_id="idem-test-api-calls")
    yield counter
    ddb.meta.events.unregister("before-call.dynamodb.*", unique_id="idem-test-api-calls")


@pytest.fixture
def dead_ddb_client(backend: Any) -> Any:
    """A DynamoDB client pointed at a 127.0.0.1 port nobody listens on (fails fast, no retries)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return backend.session.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
