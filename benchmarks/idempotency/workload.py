"""The workloads: the same seeded stream of requests (unique, duplicates, optional crashes right after the side
effect) through N worker threads, each worker a separate container, for each library.

Workload A's side effect is in memory; workload B's is a DynamoDB write, run three ways: Powertools (the write
inside the function, then UpdateItem), ours like-for-like (the same write inside the action, then a conditional
PutItem) and ours in one transaction (the write commits with the record). Each timed pass gets fresh tables; the
best of ``repeat`` passes is kept, passes alternating which library runs first.
"""

from __future__ import annotations

import random
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from helpers.idempotency import Effect, SimulatedCrash

from .env import (
    OURS,
    OURS_LIKE,
    OURS_TXN,
    POWERTOOLS,
    Backend,
    Crashes,
    Ledger,
    OursWorker,
    PowertoolsWorker,
    Worker,
    memory_effect,
)


@dataclass
class Args:
    requests: int = 200
    duplicates: float = 0.3
    workers: int = 4
    crash_rate: float = 0.0
    seed: int = 1
    lease: float = 0.5
    takeover_lease: float = 0.3
    repeat: int = 2
    json: bool = False


def make_requests(args: Args) -> tuple[list[dict[str, Any]], set[str], int]:
    rng = random.Random(args.seed)
    unique = max(1, round(args.requests * (1 - args.duplicates)))
    payloads: list[dict[str, Any]] = [
        {
            "request_id": f"req-{args.seed}-{i:05d}-{rng.getrandbits(32):08x}",
            "customer": f"cust-{rng.randrange(50)}",
            "amount": rng.randrange(100, 10_000),
            "currency": "EUR",
        }
        for i in range(unique)
    ]
    sequence = payloads + [rng.choice(payloads) for _ in range(args.requests - unique)]
    rng.shuffle(sequence)
    crash_ids = {str(r) for r in rng.sample([p["request_id"] for p in payloads], k=round(unique * args.crash_rate))}
    return sequence, crash_ids, unique


@dataclass
class PassResult:
    library: str
    seconds: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    side_effects: int = 0
    expected_side_effects: int = 0
    round_trips: int = 0
    library_round_trips: int | None = None
    paths: Counter[str] = field(default_factory=Counter)
    path_round_trips: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_pass(
    args: Args,
    workers: list[Worker],
    sequence: list[dict[str, Any]],
    crashes: Crashes,
    count_side_effects: Callable[[], int],
    expected: int,
) -> PassResult:
    """The timed part: each worker takes every n-th request. Then, untimed, clients retry what crashed or met an
    in-progress record (after the lease if anything crashed)."""
    result = PassResult(workers[0].library, requests=len(sequence), expected_side_effects=expected)
    deferred: list[dict[str, Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(workers) + 1)

    def record(path: str, rts: int) -> None:
        with lock:
            result.paths[path] += 1
            result.path_round_trips[path] += rts

    def process(worker: Worker, request: dict[str, Any], retry: bool) -> None:
        prefix = "retry " if retry else ""
        before = worker.counter.n  # one instrument for every library: what botocore sent, in-action writes too
        try:
            path, _ = worker.call(request)
            rts = worker.counter.n - before
        except SimulatedCrash:
            record(prefix + "crashed", 0)
            with lock:
                deferred.append(request)
            return
        except Exception as exc:  # counted and reported, never hidden
            with lock:
                result.errors[type(exc).__name__] += 1
            return
        record(prefix + path, rts)
        if path == "in_progress":
            with lock:
                deferred.append(request)

    def loop(worker: Worker, share: list[dict[str, Any]]) -> None:
        barrier.wait()
        for request in share:
            process(worker, request, retry=False)

    threads = [
        threading.Thread(target=loop, args=(w, sequence[i :: len(workers)]), daemon=True) for i, w in enumerate(workers)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started

    for _ in range(3):  # a retry can meet a lease that has not run out yet: at most three rounds
        if not deferred:
            break
        if crashes.done:
            time.sleep(args.lease + 0.05)
        batch, deferred[:] = list(deferred), []
        for request in batch:
            process(workers[0], request, retry=True)
    result.side_effects = count_side_effects()
    result.round_trips = sum(w.counter.n for w in workers)
    result.library = workers[0].library
    for w in workers:
        result.ops.update(w.counter.ops)
    ours = [w for w in workers if isinstance(w, OursWorker)]
    if ours:
        result.library_round_trips = sum(w.idem.stats["round_trips"] for w in ours)
    return result


def _pass(
    env: Backend, args: Args, kind: str, library: str, sequence: list[dict[str, Any]], crash_ids: set[str], unique: int
) -> PassResult:
    env.fresh_tables()
    scope = f"{kind}-{secrets.token_hex(3)}"
    crashes = Crashes(crash_ids)
    if kind == "memory":
        ledger = Ledger()
        effect = memory_effect(ledger, crashes)
        if library == POWERTOOLS:
            workers: list[Worker] = [
                PowertoolsWorker(env, f"w{i}", scope, args.lease, effect) for i in range(args.workers)
            ]
        else:
            workers = [OursWorker(env, f"w{i}", scope, args.lease, effect) for i in range(args.workers)]
        return run_pass(args, workers, sequence, crashes, lambda: ledger.total, unique + len(crash_ids))

    def ledger_id(request: dict[str, Any]) -> str:
        return f"{scope}/{request['request_id']}"

    if library == POWERTOOLS:

        def pt_write(request: dict[str, Any], worker: Worker) -> Any:
            put = env.ledger_put(ledger_id(request), "powertools")["Put"]
            worker.client.put_item(**put)  # the function's own write, on the worker's (counted) client
            crashes.maybe_crash(request["request_id"])
            return {"charged": request["request_id"]}

        workers = [PowertoolsWorker(env, f"w{i}", scope, args.lease, pt_write) for i in range(args.workers)]
        expected = unique + len(crash_ids)
    elif library == OURS_LIKE:

        def like_write(request: dict[str, Any], worker: Worker) -> Any:
            put = env.ledger_put(ledger_id(request), "ours, like-for-like")["Put"]
            worker.client.put_item(**put)  # the same in-action write as Powertools', on the same kind of client
            crashes.maybe_crash(request["request_id"])
            return {"charged": request["request_id"]}

        workers = [OursWorker(env, f"w{i}", scope, args.lease, like_write) for i in range(args.workers)]
        for w in workers:
            w.library = OURS_LIKE
        expected = unique + len(crash_ids)
    else:

        def ours_write(request: dict[str, Any], worker: Worker) -> Effect:
            # effect and completion commit together, so "right after the effect" is impossible here: the crash
            # happens before the commit, and nothing is written
            crashes.maybe_crash(request["request_id"])
            return Effect(
                result={"charged": request["request_id"]}, writes=[env.ledger_put(ledger_id(request), "ours")]
            )

        workers = [
            OursWorker(env, f"w{i}", scope, args.lease, ours_write, transactional=True) for i in range(args.workers)
        ]
        expected = unique

    def count() -> int:
        return sum(1 for row in env.ledger_rows() if row["request"].startswith(scope + "/"))

    return run_pass(args, workers, sequence, crashes, count, expected)


def workload(env: Backend, args: Args, kind: str, costs: dict[str, float]) -> dict[str, Any]:
    """Workload A (kind='memory'): in-memory side effect. B (kind='dynamodb'): the side effect is a DynamoDB
    write: Powertools does it inside the function; ours the same way (like-for-like), and in one transaction."""
    sequence, crash_ids, unique = make_requests(args)
    variants = (OURS, POWERTOOLS) if kind == "memory" else (OURS_TXN, OURS_LIKE, POWERTOOLS)
    best: dict[str, PassResult] = {}
    for rep in range(args.repeat):
        order = variants if rep % 2 == 0 else tuple(reversed(variants))
        for library in order:
            result = _pass(env, args, kind, library, sequence, crash_ids, unique)
            if library not in best or result.rps > best[library].rps:
                best[library] = result
    pt = best[POWERTOOLS]
    comparisons = [
        {
            "ours": name,
            "throughput_ratio": best[name].rps / pt.rps if pt.rps else float("nan"),
            "emulator": emulator_bias(best[name], pt, costs),
        }
        for name in variants
        if name != POWERTOOLS
    ]
    return {
        "kind": kind,
        "unique": unique,
        "crashes": len(crash_ids),
        "results": [best[name] for name in variants],
        "ours": best[variants[0]],
        "powertools": pt,
        "throughput_ratio": comparisons[0]["throughput_ratio"],
        "comparisons": comparisons,
    }


def emulator_bias(ours: PassResult, pt: PassResult, costs: dict[str, float]) -> dict[str, Any]:
    """Whether this backend's per-call costs, not the libraries, favour one side of the throughput ratio.

    By call counts alone ours should be ``pt_calls / ours_calls`` times as fast; weighting each call by what this
    backend charges for it gives ``pt_cost / ours_cost``. When the two differ by more than 10 %, the difference is
    the emulator's price list (on AWS single-item reads and writes have similar latency; a transaction costs
    twice the write capacity of its items)."""
    mean = statistics.mean(costs.values()) if costs else 0.0

    def model(r: PassResult) -> float:
        return sum(n * costs.get(op, mean) for op, n in r.ops.items())

    by_calls = pt.round_trips / ours.round_trips if ours.round_trips else float("nan")
    ours_ms, pt_ms = model(ours), model(pt)
    by_cost = pt_ms / ours_ms if ours_ms else float("nan")
    bias = by_cost / by_calls if by_calls and by_calls == by_calls else float("nan")
    favours = "ours" if bias > 1.1 else POWERTOOLS if bias < 1 / 1.1 else None
    return {
        "ratio_by_calls": by_calls,
        "ratio_by_call_cost": by_cost,
        "bias": bias,
        "favours": favours,
        "ours_ops": dict(ours.ops),
        "powertools_ops": dict(pt.ops),
        "ours_store_ms_per_request": ours_ms / ours.requests if ours.requests else 0.0,
        "powertools_store_ms_per_request": pt_ms / pt.requests if pt.requests else 0.0,
    }
