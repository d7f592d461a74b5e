"""Lease takeover: worker A claims, stalls past its lease; worker B takes over, charges and completes; then A resumes.

Four plain functions, one per variant, each taking the two workers, the payload, what a charge is, and how to let
A's lease run out (``past_lease``: ``time.sleep`` on the wall clock, ``ManualClock.advance`` on a manual one). B runs
*inside* A's stall (a fault hook for our library, the body of A's function for Powertools), on one thread, so the
interleaving is exact. Each returns what A got: its value, its Outcome, or the exception it was told.

- :func:`powertools`: Powertools' completion (``UpdateItem``) and delete are unconditional;
- :func:`unfenced`: ours, the charge between claim and completion (``execute``);
- :func:`fenced`: ours, the charge committed with the completion only while A still holds the lease (``guard``
  then ``commit``, 2 round trips);
- :func:`single_round_trip`: ours, claim + charge + completion in one transaction (``execute_transactional``).

:func:`takeover_scenarios` runs all four for the benchmark, on the backend's tables.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from helpers.idempotency import DynamoDBStore, Effect, Idempotency, IdempotencyError, LeaseLost, SystemClock

from .env import FINGERPRINT, Backend, PowertoolsWorker

Charge = Callable[[str], Any]  # the unfenced side effect, done by the named worker; returns its result
EffectFor = Callable[[str], Effect]  # the fenced side effect of the named worker
PastLease = Callable[[], None]  # let the lease run out


def powertools(
    wrap: Callable[[str, Callable[[Any], Any]], Callable[[Any], Any]],
    payload: Any,
    charge: Charge,
    past_lease: PastLease,
) -> Any:
    """``wrap(worker, body)`` gives ``body`` protected by Powertools for that worker (its own client and lease)."""
    worker_b = wrap("B", lambda data: charge("B"))

    def a_body(data: Any) -> Any:
        past_lease()  # A stalls past its lease; meanwhile the redelivered request reaches B
        worker_b(data)
        return charge("A")

    try:
        return wrap("A", a_body)(payload)
    except Exception as exc:  # what A was told is the point
        return exc


def unfenced(a: Idempotency, b: Idempotency, payload: Any, charge: Charge, past_lease: PastLease) -> Any:
    def a_stalls(ctx: Any) -> None:
        past_lease()
        b.execute(payload, lambda: charge("B"))

    hook = a.hooks.add("after_claim", a_stalls, times=1)
    try:
        return a.execute(payload, lambda: charge("A"))
    except IdempotencyError as exc:
        return exc
    finally:
        hook.remove()


def fenced(a: Idempotency, b: Idempotency, payload: Any, effect_for: EffectFor, past_lease: PastLease) -> Any:
    guard = a.guard(payload)  # A claims...
    past_lease()  # ...and stalls past its lease; B takes over and commits
    b.guard(payload).commit(effect_for("B"))
    try:
        return guard.commit(effect_for("A"))  # A's charge is written only if A still owns the record
    except IdempotencyError as exc:
        return exc


def single_round_trip(
    a: Idempotency, b: Idempotency, payload: Any, effect_for: EffectFor, past_lease: PastLease
) -> Any:
    def b_meanwhile(ctx: Any) -> None:
        past_lease()
        b.execute_transactional(payload, effect_for("B"))

    hook = a.hooks.add("before_completion", b_meanwhile, times=1)  # A stalls just before its single write
    try:
        return a.execute_transactional(payload, effect_for("A"))
    except IdempotencyError as exc:
        return exc
    finally:
        hook.remove()


def told(a_result: Any) -> str:
    """What the stalled worker A was told, in words."""
    if isinstance(a_result, LeaseLost):
        return f"LeaseLost ({a_result.during} refused)"
    if isinstance(a_result, BaseException):
        return f"{type(a_result).__name__}: {a_result}"
    if hasattr(a_result, "replayed"):
        return "replayed B's result" if a_result.replayed else "completed"
    return "nothing (returned normally)"


def takeover_scenarios(env: Backend, lease: float) -> list[dict[str, Any]]:
    """The four variants on the backend's tables, with real time (A really sleeps past a ``lease``-second lease)."""
    req = {"request_id": "takeover-1", "customer": "c", "amount": 42, "currency": "EUR"}

    def past_lease() -> None:
        time.sleep(lease + 0.1)

    def ledger_id(scope: str) -> str:
        return f"{scope}/{req['request_id']}"

    def charge_in(scope: str, client: Any) -> Charge:
        def charge(by: str) -> dict[str, str]:
            client.put_item(**env.ledger_put(ledger_id(scope), by)["Put"])
            return {"charged_by": by}

        return charge

    def effect_in(scope: str) -> EffectFor:
        return lambda by: Effect(result={"charged_by": by}, writes=[env.ledger_put(ledger_id(scope), by)])

    def charges(scope: str) -> list[str]:
        return sorted(r["by"] for r in env.ledger_rows(ledger_id(scope)))

    def ours(scope: str) -> tuple[Idempotency, Idempotency]:
        def worker(name: str) -> Idempotency:
            return Idempotency(
                store=DynamoDBStore(env.ours_table, env.ddb),
                clock=SystemClock(),
                worker=name,
                scope=scope,
                token_field="request_id",
                fingerprint_expression=FINGERPRINT,
                lease_duration=lease,
                local_cache=False,
            )

        return worker("A"), worker("B")

    def ends_with(idem: Idempotency) -> str | None:
        record = idem.lookup(req)
        return (record.value() or {}).get("charged_by") if record and record.response else None

    results = []
    scope = f"pt-{secrets.token_hex(2)}"

    def wrap(name: str, body: Callable[[Any], Any]) -> Callable[[Any], Any]:
        worker = PowertoolsWorker(env, name, scope, lease, lambda r, w: None)
        fn = worker.wrap(lambda request: body(request))  # Powertools passes the payload as request=
        return lambda data: fn(request=data)

    a_result = powertools(wrap, req, charge_in(scope, env.ddb), past_lease)
    results.append(
        {
            "variant": "Powertools",
            "charges": charges(scope),
            "stale_worker_told": told(a_result),
            "record_ends_with": _pt_record(env, scope),
        }
    )
    for variant, label in (
        ("unfenced", "ours, unfenced effect"),
        ("fenced", "ours, effect fenced by the lease (2 round trips)"),
        ("single", "ours, single round trip"),
    ):
        scope = f"{variant}-{secrets.token_hex(2)}"
        a, b = ours(scope)
        if variant == "unfenced":
            a_result = unfenced(a, b, req, charge_in(scope, env.ddb), past_lease)
        elif variant == "fenced":
            a_result = fenced(a, b, req, effect_in(scope), past_lease)
        else:
            a_result = single_round_trip(a, b, req, effect_in(scope), past_lease)
        results.append(
            {
                "variant": label,
                "charges": charges(scope),
                "stale_worker_told": told(a_result),
                "record_ends_with": ends_with(a),
            }
        )
    return results


def _pt_record(env: Backend, prefix: str) -> str | None:
    items = env.ddb.scan(
        TableName=env.pt_table,
        FilterExpression="begins_with(#id, :p)",
        ExpressionAttributeNames={"#id": "id"},
        ExpressionAttributeValues={":p": {"S": prefix + "#"}},
        ConsistentRead=True,
    )["Items"]
    if len(items) != 1 or "data" not in items[0]:
        return None
    result: str | None = json.loads(items[0]["data"]["S"]).get("charged_by")
    return result
