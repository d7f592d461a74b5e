"""Random interleavings of claim / effect / complete / crash / fail / time among several workers.

Each worker is its own Idempotency object (its own cache, like its own process) over a shared store and clock.
Every step is checked against a ten-line reference model of the record, and at the end two safety properties:

- **fenced** (the effect commits together with the completion, conditional on the lease): every committed effect
  is a successful commit, and two effects are never closer than the expiry window -- i.e. at most one side effect
  per key per window, whatever crashes, stalls and takeovers happen;
- **unfenced** (effect, then a separate completion): effects CAN double when a lease expires mid-effect -- that is
  physics, not a bug -- so the promise is different: at most one *successful completion* per window, and every
  worker whose completion or release was refused was told so with LeaseLost (the run would error otherwise).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.idempotency import (
    Effect,
    Idempotency,
    InProgress,
    LeaseLost,
    ManualClock,
    MemoryStore,
    Status,
)

WORKERS = 3
LEASE = 10.0
WINDOW = 100.0
PAYLOAD = {"idempotency_key": "k", "amount": 1}

worker_ids = st.integers(0, WORKERS - 1)
# "next" moves a worker one step along its own path (idle -> claim -> effect -> complete), so most generated steps
# do something; crashes, retryable failures and time jumps are mixed in between.
step = st.one_of(
    st.tuples(st.sampled_from(["next", "next", "next", "crash", "fail"]), worker_ids),
    st.tuples(st.just("advance"), st.sampled_from([1.0, LEASE / 2, LEASE, WINDOW])),
)
steps = st.lists(step, min_size=8, max_size=40)


@dataclass
class ModelRecord:
    status: str
    token: int
    worker: str
    lease_until: float
    expires: float


class Model:
    """The reference: what the record must be after each step."""

    def __init__(self) -> None:
        self.rec: ModelRecord | None = None

    def free(self, now: float) -> bool:
        r = self.rec
        return r is None or r.expires <= now or (r.status == "IN_PROGRESS" and r.lease_until <= now)

    def claim(self, token: int, worker: str, now: float) -> str:
        if self.free(now):
            self.rec = ModelRecord("IN_PROGRESS", token, worker, now + LEASE, now + WINDOW)
            return "acquired"
        return "replay" if self.rec.status == "COMPLETED" else "busy"

    def owns(self, token: int) -> bool:
        return self.rec is not None and self.rec.status == "IN_PROGRESS" and self.rec.token == token

    def complete(self, token: int, now: float) -> bool:
        if not self.owns(token):
            return False
        self.rec.status, self.rec.expires = "COMPLETED", now + WINDOW
        return True

    def release(self, token: int) -> bool:
        if not self.owns(token):
            return False
        self.rec = None
        return True


@dataclass
class Worker:
    idem: Idempotency
    guard: object = None
    token: int = 0
    effected: bool = False


def run_scenario(store, scope: str, script, *, fenced: bool, ledger) -> dict:
    clock = ManualClock()
    workers = [
        Worker(
            Idempotency(
                store=store,
                clock=clock,
                scope=scope,
                token_field="idempotency_key",
                worker=f"w{i}",
                lease_duration=LEASE,
                expires_after=WINDOW,
            )
        )
        for i in range(WORKERS)
    ]
    model = Model()
    tokens = itertools.count(1)
    effects: list[tuple[str, float]] = []  # unfenced side effects (worker, time), done by the worker itself
    completions: list[float] = []
    told_lease_lost = 0

    for action, arg in script:
        now = clock.now()
        if action == "advance":
            clock.advance(arg)
            continue
        w = workers[arg]
        name = f"w{arg}"
        if action == "next":
            action = "claim" if w.guard is None else ("complete" if w.effected else "effect")
        if action == "claim":
            if w.guard is not None:
                continue
            token = next(tokens)
            expected = model.claim(token, name, now)
            try:
                guard = w.idem.guard(PAYLOAD)
                got = "replay" if guard.replayed else "acquired"
            except InProgress:
                got = "busy"
            assert got == expected, f"claim by {name} at {now}: library {got}, model {expected}"
            if got == "acquired":
                w.guard, w.token, w.effected = guard, token, False
        elif action == "effect" and w.guard is not None:
            if fenced:  # effect + completion in one conditional step
                expected = model.complete(w.token, now)
                try:
                    w.guard.commit(ledger.effect(name, now))
                    got = True
                    completions.append(now)
                except LeaseLost:
                    got = False
                    told_lease_lost += 1
                assert got == expected, f"fenced commit by {name} at {now}: library {got}, model {expected}"
                w.guard = None
            elif not w.effected:
                effects.append((name, now))
                w.effected = True
        elif action == "complete" and not fenced and w.guard is not None and w.effected:
            expected = model.complete(w.token, now)
            try:
                w.guard.complete({"by": name})
                got = True
                completions.append(now)
            except LeaseLost:
                got = False
                told_lease_lost += 1
            assert got == expected, f"completion by {name} at {now}: library {got}, model {expected}"
            w.guard = None
        elif action == "crash" and w.guard is not None:
            w.guard = None  # the process is gone; the record stays until its lease expires
        elif action == "fail" and w.guard is not None:
            expected = model.release(w.token)
            try:
                w.guard.fail(RuntimeError("retryable"))
                got = True
            except LeaseLost:
                got = False
                told_lease_lost += 1
            assert got == expected, f"release by {name} at {now}: library {got}, model {expected}"
            w.guard = None

    # the stored record agrees with the model
    stored = store.get(workers[0].idem.identify(PAYLOAD).key)
    if model.rec is None:
        assert stored is None
    else:
        assert stored is not None and stored.status is Status(model.rec.status) and stored.worker == model.rec.worker

    for earlier, later in itertools.pairwise(sorted(completions)):
        assert later - earlier >= WINDOW, f"two successful completions within one window: {completions}"
    if fenced:
        effects = ledger.effects()  # what the store really committed
        assert len(effects) == len(completions), "a fenced effect was applied without its completion"
        times = sorted(t for _, t in effects)
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= WINDOW, f"two side effects within one window: {effects}"
    return {"effects": len(effects), "completions": len(completions), "lease_lost": told_lease_lost}


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def effect(self, name: str, now: float) -> Effect:
        return Effect(result={"by": name}, apply=lambda: self.rows.append((name, now)))

    def effects(self) -> list[tuple[str, float]]:
        return list(self.rows)


class DynamoLedger:
    """Charges as items of a DynamoDB table, written in the same transaction as the completion."""

    def __init__(self, ddb, table: str, scope: str) -> None:
        self.ddb, self.table, self.scope = ddb, table, scope
        self.n = itertools.count()

    def effect(self, name: str, now: float) -> Effect:
        item = {
            "order": {"S": self.scope},
            "charge": {"S": f"{next(self.n)}"},
            "by": {"S": name},
            "at": {"N": str(now)},
        }
        return Effect(result={"by": name}, writes=[{"Put": {"TableName": self.table, "Item": item}}])

    def effects(self) -> list[tuple[str, float]]:
        items = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "order"},
            ExpressionAttributeValues={":o": {"S": self.scope}},
            ConsistentRead=True,
        )["Items"]
        return [(i["by"]["S"], float(i["at"]["N"])) for i in items]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(script=steps, fenced=st.booleans())
def test_interleavings_on_the_memory_store(script, fenced):
    run_scenario(MemoryStore(), "prop", script, fenced=fenced, ledger=MemoryLedger())


def test_unfenced_effects_can_double_but_the_stale_worker_is_told():
    # the case the property deliberately does not forbid, shown explicitly
    script = [("next", 0), ("next", 0), ("advance", LEASE), ("next", 1), ("next", 1), ("next", 1), ("next", 0)]
    result = run_scenario(MemoryStore(), "doubles", script, fenced=False, ledger=MemoryLedger())
    assert result == {"effects": 2, "completions": 1, "lease_lost": 1}
    fenced = [("next", 0), ("advance", LEASE), ("next", 1), ("next", 1), ("next", 0)]
    result = run_scenario(MemoryStore(), "fenced", fenced, fenced=True, ledger=MemoryLedger())
    assert result == {"effects": 1, "completions": 1, "lease_lost": 1}


_examples = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=st.lists(step, min_size=8, max_size=20), fenced=st.booleans())
def test_interleavings_on_dynamodb(ddb_store, ddb, ledger_table, script, fenced):
    scope = f"prop-{next(_examples)}"  # a fresh key per example, one table per test
    run_scenario(ddb_store, scope, script, fenced=fenced, ledger=DynamoLedger(ddb, ledger_table, scope))
