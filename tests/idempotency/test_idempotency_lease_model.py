"""The lease protocol, model-checked (benchmarks/lease_model): random sequences on both stores, and exhaustively.

A hypothesis state machine drives 2 or 3 workers over one key with a manual clock: claims, tampered claims,
transactions, unfenced effects, fenced commits, completions, retryable and terminal failures, crashes, clock moves
within a lease, past it and past the expiry window, local-cache hits, and a store fault injected on any store call
(request never sent, answer lost after the write, write retried by the SDK). After every step the world checks the
library's answer and the stored record against a reference model, and the invariants (see world.py). The explorer
runs every sequence up to a depth; ``python -m benchmarks.lease_model`` runs it deeper.

The broken protocols at the end are the wrong versions this must tell apart (each patched in, each caught).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from benchmarks.lease_model.explore import explore, replay
from benchmarks.lease_model.world import FAULTS, LEASE, STORE_ACTIONS, WINDOW, Action, Violation, World, memory_world
from benchmarks.lease_model.world import dynamodb_world as make_dynamodb_world
from helpers.idempotency import MemoryStore, Record, Status
from helpers.idempotency.core import Idempotency
from helpers.idempotency.errors import LeaseLost

#: Random sequences per store in `make test`: 2,000 on the memory store (about 27 s of CPU), 100 on DynamoDB (about
#: 22 s of CPU, most of it moto), each test on its own xdist worker.
MEMORY_SEQUENCES = 2_000
DYNAMODB_SEQUENCES = 100


def weighted(world: World) -> list[Action]:
    """The actions possible now, each plain store call listed six times beside its three faulty variants: a fault on
    one store call in three, and one draw per step (hypothesis's overhead is per draw)."""
    out: list[Action] = []
    for action in world.enabled(faults=True):
        out.extend([action] * (6 if action.kind in STORE_ACTIONS and action.fault is None else 1))
    return out


def machine_for(make_world: Callable[[int], World], counter: list[int]) -> type[RuleBasedStateMachine]:
    class LeaseProtocol(RuleBasedStateMachine):
        world: World

        @initialize(workers=st.integers(2, 3))
        def start(self, workers: int) -> None:
            self.world = make_world(workers)
            counter[0] += 1

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            self.world.apply(data.draw(st.sampled_from(weighted(self.world)), label="action"))

        @invariant()
        def the_store_is_legal_and_agrees_with_the_model(self) -> None:
            if hasattr(self, "world"):
                self.world.check()

    return LeaseProtocol


def run_machine(make_world: Callable[[int], World], examples: int, steps: int) -> int:
    counter = [0]
    run_state_machine_as_test(
        machine_for(make_world, counter),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    return counter[0]


def test_random_sequences_on_the_memory_store() -> None:
    sequences = run_machine(lambda n: memory_world(n), MEMORY_SEQUENCES, steps=25)
    assert sequences >= MEMORY_SEQUENCES


@pytest.fixture
def model_table(ddb: Any, table_name: Callable[[str], str]) -> Iterator[str]:
    from helpers.idempotency import DynamoDBStore

    store = DynamoDBStore(table_name("model"), ddb)
    store.create_table()
    yield store.table_name
    store.delete_table()


def test_random_sequences_on_dynamodb(ddb: Any, model_table: str) -> None:
    sequences = run_machine(lambda n: make_dynamodb_world(ddb, model_table, n), DYNAMODB_SEQUENCES, steps=20)
    assert sequences >= DYNAMODB_SEQUENCES


def test_every_sequence_of_five_steps_with_two_workers() -> None:
    result = explore(5)
    assert result.violations == []
    assert result.sequences == 15_335_611  # every action, each store call also with each fault, and the clock
    assert {"lease_lost", "executed", "replay:cache", "mismatch:store", "terminal", "unavailable"} <= set(
        result.outcomes
    )


# ----------------------------------------------------------------------------- scenarios, step by step


def w(i: int, kind: str, fault: str | None = None) -> Action:
    return Action(kind, i, fault)


PAST_LEASE = Action("advance", seconds=LEASE + 1)
PAST_WINDOW = Action("advance", seconds=WINDOW + 1)


def test_the_documented_unfenced_double_and_the_stale_worker_is_told() -> None:
    world = replay([w(0, "claim"), w(0, "effect"), PAST_LEASE, w(1, "claim"), w(1, "effect"), w(1, "complete")])
    assert world.apply(w(0, "complete")) == "lease_lost"
    assert [(e.attempt, e.live) for e in world.effects] == [(1, True), (2, True)]  # two effects, one per lease


def test_a_fenced_commit_after_a_takeover_applies_nothing() -> None:
    world = replay([w(0, "claim"), PAST_LEASE, w(1, "claim"), w(1, "commit")])
    assert world.apply(w(0, "commit")) == "lease_lost"
    assert [e.kind for e in world.effects] == ["fenced"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_store_fault_on_the_completion(fault: str) -> None:
    world = replay([w(0, "claim"), w(0, "effect")])
    expected = {"before": "unavailable", "after": "unavailable", "retried": "executed"}[fault]
    assert world.apply(w(0, "complete", fault)) == expected
    # whatever the fault, a retry is answered from the record or runs after the lease: never a silent second result
    world.apply(PAST_LEASE)
    assert world.apply(w(1, "claim")) == ("acquired" if fault == "before" else "replay:store")


def test_a_lost_claim_answer_blocks_the_key_until_the_lease_ends() -> None:
    world = replay([w(0, "claim", "after")])
    assert world.apply(w(1, "claim")) == "busy"
    world.apply(PAST_LEASE)
    assert world.apply(w(1, "claim")) == "acquired"


def test_an_expired_record_starts_a_new_generation() -> None:
    world = replay([w(0, "txn"), w(1, "tamper"), PAST_WINDOW])
    assert world.apply(w(1, "tamper")) == "acquired"
    assert world.generation == 2


# ----------------------------------------------------------------------------- the checker tells right from wrong


def _unconditional_owned(self: MemoryStore, key: str, owner: str, during: str) -> Record:
    current = self._records.get(key)  # Powertools' shape: complete, fail and delete whatever the record is
    if current is None:
        raise LeaseLost(key, during=during, owner=owner, current=None)
    return current


def _claim_through_live_leases(self: Record, now: float) -> bool:
    return self.is_expired(now) or self.status is Status.IN_PROGRESS


def _lease_ends_early(self: Record, now: float) -> bool:
    return self.status is Status.IN_PROGRESS and self.lease_expires_at is not None and self.lease_expires_at - 1 <= now


BROKEN = {
    "completion and release without the owner condition": (MemoryStore, "_owned", _unconditional_owned),
    "a claim that takes a live lease": (Record, "claimable", _claim_through_live_leases),
    "a lease that ends a second early on one side": (Record, "lease_expired", _lease_ends_early),
    "the SDK's retried write not recognised as our own": (Idempotency, "_own_write", lambda *a: None),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_the_model_check_catches_a_broken_protocol(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, attribute, broken = BROKEN[name]
    monkeypatch.setattr(owner, attribute, broken)
    with pytest.raises(Violation):
        explore(6, max_violations=1)
