"""What both libraries run on: the backend's tables, a worker per container, and the instrument that sees calls.

A worker is one "container": its own DynamoDB client (with a :class:`CallLog` on it) and its own local cache.
``OursWorker`` and ``PowertoolsWorker`` expose the same ``call(request) -> (path, round trips)``, so every
measurement treats the two libraries alike. Powertools is set up by ``helpers.services.powertools`` (a stand-in Lambda
context gives it the lease we give our library), the one harness notebook 09 uses too.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.idempotency import DynamoDBStore, Idempotency, InProgress, SimulatedCrash, SystemClock
from helpers.services import powertools

FINGERPRINT = "[customer, amount, currency]"


@dataclass(frozen=True)
class CallKind:
    """One kind of DynamoDB call: the operation, the part it plays in the protocol, and whether it was refused."""

    operation: str
    role: str
    refused: bool = False

    def __str__(self) -> str:
        return f"{self.operation} ({self.role}{', refused' if self.refused else ''})"


def call_role(operation: str, params: dict[str, Any], ledger_table: str = "") -> str:
    """The part a call plays, read from its parameters (the same rules for both libraries)."""
    condition = str(params.get("ConditionExpression", ""))
    if operation == "TransactWriteItems":
        return "claim + effect + completion"
    if operation == "GetItem":
        return "read"
    if params.get("TableName") == ledger_table and ledger_table:
        return "side effect"
    if operation == "PutItem":
        if "attribute_not_exists" in condition:
            return "claim"
        return "completion, owner condition" if ":own" in condition else "completion, unconditional"
    if operation == "UpdateItem":
        return "completion, owner condition" if condition else "completion, unconditional"
    if operation == "DeleteItem":
        return "release, owner condition" if condition else "release, unconditional"
    return operation


class CallLog:
    """DynamoDB API calls on one client, seen by botocore (the same instrument for both libraries): how many, of
    which operation, and how long each kind took (from sending the request to the parsed answer, emulator
    included; building the request is client time)."""

    def __init__(self, client: Any, ledger_table: str = "") -> None:
        self.n = 0
        self.ops: Counter[str] = Counter()
        self.ms: dict[CallKind, list[float]] = {}
        self.ledger_table = ledger_table
        self._lock = threading.Lock()
        self._pending = threading.local()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._classify)
        events.register("before-call.dynamodb.*", self._start)
        events.register("after-call.dynamodb.*", self._stop)

    def _classify(self, event_name: str = "", params: dict[str, Any] | None = None, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self._pending.kind = (operation, call_role(operation, params or {}, self.ledger_table))

    def _start(self, event_name: str = "", **_: Any) -> None:
        with self._lock:
            self.n += 1
            self.ops[event_name.rsplit(".", 1)[-1]] += 1
        self._pending.started = time.perf_counter()

    def _stop(self, http_response: Any = None, **_: Any) -> None:
        elapsed = (time.perf_counter() - self._pending.started) * 1000
        operation, role = self._pending.kind
        refused = http_response is not None and http_response.status_code >= 300
        kind = CallKind(operation, role, refused)
        with self._lock:
            self.ms.setdefault(kind, []).append(elapsed)

    def reset(self) -> None:
        with self._lock:
            self.n = 0
            self.ops.clear()
            self.ms.clear()


class Ledger:
    """Side effects in memory (workload A): every charge counted per request."""

    def __init__(self) -> None:
        self.charges: Counter[str] = Counter()
        self._lock = threading.Lock()

    def charge(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.charges[request["request_id"]] += 1
            n = sum(self.charges.values())
        return {"charge_id": f"ch_{n}", "amount": request["amount"], "currency": request["currency"]}

    @property
    def total(self) -> int:
        return sum(self.charges.values())


class Crashes:
    """Which requests crash right after their side effect, on their first attempt only."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.done: set[str] = set()
        self._lock = threading.Lock()

    def maybe_crash(self, request_id: str) -> None:
        with self._lock:
            if request_id not in self.ids or request_id in self.done:
                return
            self.done.add(request_id)
        raise SimulatedCrash("after_effect", request_id)


class Backend:
    """The benchmark's tables on the course backend. ``fresh_tables()`` gives every timed pass new, empty tables
    (the same for both libraries); everything is dropped at the end."""

    def __init__(self) -> None:
        from helpers.aws import backend

        self.backend = backend.current()
        os.environ.setdefault("AWS_DEFAULT_REGION", self.backend.region)  # Powertools reads the region from env
        self.ddb = self.backend.client("dynamodb")
        self.ours_table = self.pt_table = self.ledger_table = ""
        self.fresh_tables()

    def fresh_tables(self) -> None:
        self.close()
        run = secrets.token_hex(3)
        self.ours_table = f"bench-ours-{run}"
        self.pt_table = f"bench-powertools-{run}"
        self.ledger_table = f"bench-ledger-{run}"
        DynamoDBStore(self.ours_table, self.ddb).create_table()
        powertools.create_table(self.ddb, self.pt_table)
        self.ddb.create_table(
            TableName=self.ledger_table,
            KeySchema=[{"AttributeName": "charge", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "charge", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.get_waiter("table_exists").wait(
            TableName=self.ledger_table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def client(self) -> Any:
        return self.backend.client("dynamodb", max_pool_connections=8)

    def ledger_put(self, request_id: str, by: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.ledger_table,
                "Item": {
                    "charge": {"S": f"{request_id}#{secrets.token_hex(4)}"},
                    "request": {"S": request_id},
                    "by": {"S": by},
                },
            }
        }

    def ledger_rows(self, request_id: str | None = None) -> list[dict[str, str]]:
        kwargs: dict[str, Any] = {"TableName": self.ledger_table, "ConsistentRead": True}
        if request_id is not None:
            kwargs |= {
                "FilterExpression": "#r = :r",
                "ExpressionAttributeNames": {"#r": "request"},
                "ExpressionAttributeValues": {":r": {"S": request_id}},
            }
        rows, start = [], None
        while True:
            page = self.ddb.scan(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
            rows += [{k: v["S"] for k, v in item.items()} for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return rows

    def close(self) -> None:
        for name in (self.ours_table, self.pt_table, self.ledger_table):
            if not name:
                continue
            try:
                self.ddb.delete_table(TableName=name)
            except Exception:  # best effort clean-up: a table already gone is fine
                continue


class Worker:
    """One container: its own client (with a botocore call counter) and its own local cache.

    ``effect(request, worker)`` is the side effect; it gets the worker so a DynamoDB write goes through (and is
    counted on) the worker's own client.
    """

    library = "?"
    client: Any
    counter: CallLog

    def call(self, request: dict[str, Any]) -> tuple[str, int]:
        """Process one request; returns (path, round trips). Paths: first, duplicate, cached, in_progress."""
        raise NotImplementedError


OURS = "helpers.idempotency"
OURS_LIKE = "helpers.idempotency, like-for-like"
OURS_TXN = "helpers.idempotency, one transaction"
POWERTOOLS = "Powertools"


class OursWorker(Worker):
    library = OURS

    def __init__(
        self,
        env: Backend,
        name: str,
        scope: str,
        lease: float,
        effect: Callable[[dict[str, Any], Worker], Any],
        *,
        transactional: bool = False,
    ) -> None:
        self.client = env.client()
        self.counter = CallLog(self.client, env.ledger_table)
        self.effect = effect
        self.transactional = transactional
        self.library = OURS_TXN if transactional else OURS
        self.idem = Idempotency(
            store=DynamoDBStore(env.ours_table, self.client),
            clock=SystemClock(),
            worker=name,
            scope=scope,
            token_field="request_id",
            fingerprint_expression=FINGERPRINT,
            lease_duration=lease,
            expires_after=3600,
            local_cache=True,
        )

    def call(self, request: dict[str, Any]) -> tuple[str, int]:
        try:
            if self.transactional:
                out = self.idem.execute_transactional(request, lambda ctx: self.effect(request, self))
            else:
                out = self.idem.execute(request, lambda: self.effect(request, self))
        except InProgress as busy:
            return "in_progress", busy.round_trips
        path = {"executed": "first", "store": "duplicate", "cache": "cached"}[out.source]
        return path, out.round_trips


class PowertoolsWorker(Worker):
    library = POWERTOOLS

    def __init__(
        self, env: Backend, name: str, scope: str, lease: float, effect: Callable[[dict[str, Any], Worker], Any]
    ) -> None:
        self.client = env.client()
        self.counter = CallLog(self.client, env.ledger_table)
        self.scope = scope
        self.table = env.pt_table
        self.lease = lease
        self.ran = threading.local()

        def charge(request: dict[str, Any]) -> Any:
            self.ran.flag = True
            return effect(request, self)

        self.fn = self.wrap(charge)

    def wrap(self, body: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        """``body`` under Powertools on this worker's client, table and lease (helpers.services.powertools)."""
        return powertools.powertools_function(
            body,
            client=self.client,
            table=self.table,
            key="request_id",
            validation=FINGERPRINT,
            lease_s=self.lease,
            prefix=self.scope,
            data_argument="request",
            function_name="benchmark",
        )

    def call(self, request: dict[str, Any]) -> tuple[str, int]:
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        before = self.counter.n
        self.ran.flag = False
        try:
            self.fn(request=request)
        except IdempotencyAlreadyInProgressError:
            return "in_progress", self.counter.n - before
        rts = self.counter.n - before
        if self.ran.flag:
            return "first", rts
        return ("cached" if rts == 0 else "duplicate"), rts


def memory_effect(ledger: Ledger, crashes: Crashes | None = None) -> Callable[[dict[str, Any], Worker], Any]:
    def effect(request: dict[str, Any], worker: Worker) -> Any:
        value = ledger.charge(request)
        if crashes is not None:
            crashes.maybe_crash(request["request_id"])  # the process dies right after the side effect
        return value

    return effect
