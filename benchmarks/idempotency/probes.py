"""Probes: the round trips of each path, and what the backend charges per call.

``probe_round_trips`` runs each path once, single-threaded (first call, duplicate from the store, local-cache hit,
and our transactional mode) and counts the calls botocore sends. ``probe_call_costs`` times single calls of each
operation; ``emulator_bias`` says whether those per-call prices, not the libraries, favour one side of a throughput
ratio. ``cost_profile`` says where the time of workload A goes, per kind of call and outside calls.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from helpers.idempotency import Effect

from .env import OURS, POWERTOOLS, Backend, Ledger, OursWorker, PowertoolsWorker, Worker, memory_effect
from .workload import Args, make_requests


def probe_round_trips(env: Backend, lease: float) -> dict[str, Any]:
    """Each path once, single-threaded: first call, duplicate from the store, cache hit, transactional."""
    scope = f"probe-{secrets.token_hex(3)}"
    req = {"request_id": f"{scope}-1", "customer": "c", "amount": 1, "currency": "EUR"}
    txn = {**req, "request_id": f"{scope}-2"}
    out: dict[str, Any] = {"helpers.idempotency": {}, "Powertools": {}}

    def measure(library: str, label: str, worker: Worker, request: dict[str, Any]) -> None:
        before = worker.counter.n
        _, library_count = worker.call(request)
        out[library][label] = {
            "botocore": worker.counter.n - before,
            "library": library_count if isinstance(worker, OursWorker) else None,
        }

    ours_ledger, pt_ledger = Ledger(), Ledger()
    a = OursWorker(env, "a", scope, lease, memory_effect(ours_ledger))
    b = OursWorker(env, "b", scope, lease, memory_effect(ours_ledger))
    for label, worker in (("first call", a), ("duplicate", b), ("cached", a)):
        measure("helpers.idempotency", label, worker, req)

    def txn_effect(request: dict[str, Any], worker: Worker) -> Effect:
        return Effect(result={"charged": request["request_id"]}, writes=[env.ledger_put(request["request_id"], "t")])

    ta = OursWorker(env, "ta", scope, lease, txn_effect, transactional=True)
    tb = OursWorker(env, "tb", scope, lease, txn_effect, transactional=True)
    for label, worker in (("transactional first", ta), ("transactional duplicate", tb), ("transactional cached", ta)):
        measure("helpers.idempotency", label, worker, txn)

    pa = PowertoolsWorker(env, "a", scope, lease, memory_effect(pt_ledger))
    pb = PowertoolsWorker(env, "b", scope, lease, memory_effect(pt_ledger))
    for label, pt_worker in (("first call", pa), ("duplicate", pb), ("cached", pa)):
        measure("Powertools", label, pt_worker, req)
    out["side_effects"] = {
        "helpers.idempotency": ours_ledger.total + len(env.ledger_rows(str(txn["request_id"]))),
        "Powertools": pt_ledger.total,
    }
    return out


COST_OPS = ("PutItem", "UpdateItem", "GetItem", "DeleteItem", "TransactWriteItems")


def probe_call_costs(env: Backend, samples: int = 15) -> dict[str, float]:
    """Median milliseconds of one call of each operation the libraries use, single-threaded on a fresh client:
    conditional PutItem (new item), conditional UpdateItem, consistent GetItem, DeleteItem, and a two-item
    TransactWriteItems (a record and a ledger row)."""
    client = env.client()
    table, ledger = env.ours_table, env.ledger_table
    times: dict[str, list[float]] = {op: [] for op in COST_OPS}

    def timed(op: str, method: Callable[..., Any], **kwargs: Any) -> None:
        started = time.perf_counter()
        method(**kwargs)
        times[op].append((time.perf_counter() - started) * 1000)

    new = "attribute_not_exists(pk)"
    client.get_item(TableName=table, Key={"pk": {"S": "warm-up"}})
    for i in range(samples):
        key = {"pk": {"S": f"cost-probe-{i}"}}
        item = {**key, "status": {"S": "IN_PROGRESS"}, "expires_at": {"N": "1"}}
        timed("PutItem", client.put_item, TableName=table, Item=item, ConditionExpression=new)
        timed(
            "UpdateItem",
            client.update_item,
            TableName=table,
            Key=key,
            UpdateExpression="SET #s = :c",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":c": {"S": "COMPLETED"}},
        )
        timed("GetItem", client.get_item, TableName=table, Key=key, ConsistentRead=True)
        timed("DeleteItem", client.delete_item, TableName=table, Key=key)
        record = {**item, "pk": {"S": f"cost-probe-txn-{i}"}}
        row = {"charge": {"S": f"cost-probe-{i}"}, "request": {"S": "cost-probe"}, "by": {"S": "probe"}}
        timed(
            "TransactWriteItems",
            client.transact_write_items,
            TransactItems=[
                {"Put": {"TableName": table, "Item": record, "ConditionExpression": new}},
                {"Put": {"TableName": ledger, "Item": row}},
            ],
        )
    return {op: statistics.median(values) for op, values in times.items()}


def cost_profile(env: Backend, args: Args) -> dict[str, Any]:
    """Where the time of workload A goes, for each library: its requests sent to its containers one at a time
    (request i to container i mod N, as the threads share them), so every call is timed alone. The two libraries
    take turns request by request (each on its own tables), so a change in the machine's load hits both alike.

    Per kind of call (operation, role, refused or not): calls per request, median and mean milliseconds, and
    milliseconds per request; then the time outside calls (the library's own work and the SDK building requests)
    and the total per request. Best (lowest total) of ``args.repeat`` passes per library, fresh tables each."""
    sequence, _, _ = make_requests(args)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(max(1, args.repeat)):
        env.fresh_tables()
        scope = f"profile-{secrets.token_hex(3)}"
        ledger = Ledger()
        pools: dict[str, list[Worker]] = {
            OURS: [OursWorker(env, f"w{i}", scope, args.lease, memory_effect(ledger)) for i in range(args.workers)],
            POWERTOOLS: [
                PowertoolsWorker(env, f"w{i}", scope, args.lease, memory_effect(ledger)) for i in range(args.workers)
            ],
        }
        wall_ms = dict.fromkeys(pools, 0.0)
        for i, request in enumerate(sequence):
            for library, workers in pools.items():
                started = time.perf_counter()
                workers[i % len(workers)].call(request)
                wall_ms[library] += (time.perf_counter() - started) * 1000
        for library, workers in pools.items():
            profile = _profile(workers, wall_ms[library], len(sequence))
            if library not in best or profile["total_ms_per_request"] < best[library]["total_ms_per_request"]:
                best[library] = profile
    return {"workers": args.workers, "requests": len(sequence), "libraries": best}


def _profile(workers: list[Worker], wall_ms: float, requests: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {}
    for w in workers:
        for kind, values in w.counter.ms.items():
            times.setdefault(str(kind), []).extend(values)
    kinds = {
        kind: {
            "calls_per_request": len(values) / requests,
            "median_ms": statistics.median(values),
            "mean_ms": statistics.mean(values),
            "ms_per_request": sum(values) / requests,
        }
        for kind, values in sorted(times.items())
    }
    in_calls = sum(k["ms_per_request"] for k in kinds.values())
    return {
        "kinds": kinds,
        "calls_per_request": sum(k["calls_per_request"] for k in kinds.values()),
        "in_calls_ms_per_request": in_calls,
        "outside_ms_per_request": wall_ms / requests - in_calls,
        "total_ms_per_request": wall_ms / requests,
    }
