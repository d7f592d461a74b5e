"""instruments.faults: the same plan gives the same faults, in any order, in any thread; scripts strike exactly."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.instruments import faults
from helpers.instruments.faults import (
    FAULTS,
    FaultPlan,
    ReceiverDown,
    ResponseLost,
    Throttled,
    WorkerCrashed,
    retry,
)


def decisions(plan: FaultPlan, keys: list[str], fault: str = "lose_response", attempts: int = 3) -> dict:
    return {(k, a): plan.should(fault, k) for a in range(1, attempts + 1) for k in keys}


def test_vocabulary_is_the_six_faults_in_table_order() -> None:
    assert FAULTS == (
        "lose_response",
        "crash_after_effect",
        "exceed_visibility",
        "deliver_twice",
        "throttle",
        "receiver_down",
    )
    assert set(faults.DESCRIPTIONS) == set(FAULTS)
    assert set(faults.EXCEPTIONS) == {"lose_response", "crash_after_effect", "throttle", "receiver_down"}


def test_same_seed_same_faults_whatever_the_order_of_keys() -> None:
    keys = [f"order-{i}" for i in range(50)]
    first = decisions(FaultPlan(seed=7, lose_response=0.3), keys)
    second = decisions(FaultPlan(seed=7, lose_response=0.3), list(reversed(keys)))
    assert first == second
    assert 0 < sum(first.values()) < len(first), "a 30 % rate over 150 decisions strikes some, not all"


def test_another_seed_gives_other_faults() -> None:
    keys = [f"order-{i}" for i in range(50)]
    assert decisions(FaultPlan(seed=1, lose_response=0.3), keys) != decisions(
        FaultPlan(seed=2, lose_response=0.3), keys
    )


def test_decision_depends_on_fault_key_and_attempt_only() -> None:
    plan = FaultPlan(seed=3, lose_response=0.5)
    expected = faults.draw(3, "lose_response", "order-9", 2) < 0.5
    plan.should("lose_response", "order-1")  # other keys do not shift order-9's attempts
    plan.should("lose_response", "order-9")
    assert plan.should("lose_response", "order-9") is expected
    assert plan.attempts("lose_response", "order-9") == 2


def test_explicit_attempt_does_not_advance_the_counter() -> None:
    plan = FaultPlan(seed=5, throttle=0.5)
    a = plan.should("throttle", "k", attempt=4)
    assert plan.should("throttle", "k", attempt=4) is a
    assert plan.attempts("throttle", "k") == 0


def test_rates_are_respected_over_many_keys() -> None:
    plan = FaultPlan(seed=11, deliver_twice=0.2)
    hits = sum(plan.should("deliver_twice", f"m-{i}") for i in range(5000))
    assert 900 < hits < 1100
    assert plan.count("deliver_twice") == hits


def test_zero_and_one_rates_are_never_and_always() -> None:
    never = FaultPlan(seed=1)
    always = FaultPlan(seed=1, receiver_down=1.0)
    assert not any(never.should(f, f"k{i}") for f in FAULTS for i in range(100))
    assert all(always.should("receiver_down", f"k{i}") for i in range(100))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_rates_outside_zero_one_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(lose_response=bad)


def test_unknown_fault_names_are_refused_with_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="lose_response, crash_after_effect"):
        FaultPlan().should("lose_reponse", "k")
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan.script({"network_gremlin": [1]})


def test_script_by_call_number_strikes_the_nth_decision_whatever_the_key() -> None:
    plan = FaultPlan.script({"lose_response": [2, 4]})
    got = [plan.should("lose_response", k) for k in ("a", "b", "a", "c", "d")]
    assert got == [False, True, False, True, False]
    assert [(i.key, i.attempt) for i in plan.injected] == [("b", 1), ("c", 1)]


def test_script_by_key_and_attempt() -> None:
    plan = FaultPlan.script({"crash_after_effect": {"order-1": [1, 3]}})
    assert [plan.should("crash_after_effect", "order-1") for _ in range(4)] == [True, False, True, False]
    assert not plan.should("crash_after_effect", "order-2")


def test_script_wildcards_and_true() -> None:
    every_first = FaultPlan.script({"throttle": {"*": [1]}})
    assert every_first.should("throttle", "x") and every_first.should("throttle", "y")
    assert not every_first.should("throttle", "x")
    always = FaultPlan.script({"receiver_down": True})
    assert all(always.should("receiver_down", k) for k in "abc")
    per_key = FaultPlan.script({"receiver_down": {"k": True}})
    assert per_key.should("receiver_down", "k") and per_key.should("receiver_down", "k")
    assert not per_key.should("receiver_down", "other")


def test_scripted_fault_ignores_its_rate_but_others_keep_theirs() -> None:
    plan = FaultPlan.script({"lose_response": [1]}, seed=0, throttle=1.0, lose_response=1.0)
    assert plan.should("lose_response", "a") and not plan.should("lose_response", "a")
    assert plan.should("throttle", "a")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_script_attempts_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="integers from 1"):
        FaultPlan.script({"lose_response": [bad]})


def test_check_raises_the_named_exception_with_key_and_attempt() -> None:
    plan = FaultPlan.script({"throttle": {"k": [2]}, "receiver_down": [1], "crash_after_effect": [1]})
    plan.check("throttle", "k")
    with pytest.raises(Throttled) as caught:
        plan.check("throttle", "k")
    assert (caught.value.key, caught.value.attempt, caught.value.fault) == ("k", 2, "throttle")
    assert "attempt 2" in str(caught.value)
    with pytest.raises(ReceiverDown):
        plan.check("receiver_down", "k")
    with pytest.raises(WorkerCrashed):
        plan.after_effect("k")
    with pytest.raises(ValueError, match="decision"):
        plan.check("deliver_twice", "k")


def test_call_stops_before_the_work_when_down_or_throttled() -> None:
    done: list[str] = []
    plan = FaultPlan.script({"receiver_down": [1], "throttle": [1]})
    with pytest.raises(ReceiverDown):
        plan.call("k", done.append, "first")
    with pytest.raises(Throttled):
        plan.call("k", done.append, "second")
    assert plan.call("k", lambda: "third") == "third"
    assert done == [], "no work happens when the receiver is down or throttles"


def test_call_loses_the_response_after_the_work_and_keeps_the_result() -> None:
    effects: list[int] = []
    plan = FaultPlan.script({"lose_response": {"order-1": [1]}})

    def charge() -> str:
        effects.append(1)
        return f"receipt-{len(effects)}"

    with pytest.raises(ResponseLost) as caught:
        plan.call("order-1", charge)
    assert caught.value.result == "receipt-1" and caught.value.attempt == 1
    assert plan.call("order-1", charge) == "receipt-2"
    assert len(effects) == 2, "the lost response still did the work: that is the duplicate"


def test_deliveries_is_two_when_deliver_twice_strikes() -> None:
    plan = FaultPlan.script({"deliver_twice": {"m2": [1]}})
    assert [plan.deliveries(k) for k in ("m1", "m2", "m2")] == [1, 2, 1]


def test_counts_frame_log_and_reset() -> None:
    plan = FaultPlan(seed=4, lose_response=1.0, throttle=0.0)
    for k in ("a", "b", "c"):
        plan.should("lose_response", k)
        plan.should("throttle", k)
    assert plan.counts() == {f: (3 if f == "lose_response" else 0) for f in FAULTS}
    assert plan.total() == 3
    frame = plan.frame()
    assert list(frame.columns) == ["fault", "what happens", "configured", "injected"]
    assert frame.set_index("fault").loc["lose_response", "injected"] == 3
    assert list(plan.frame(only_injected=True)["fault"]) == ["lose_response"]
    assert [row["step"] for row in plan.log()] == [1, 2, 3]
    before = [plan.should("lose_response", "z") for _ in range(3)]
    plan.reset()
    assert plan.total() == 0 and plan.attempts("lose_response", "z") == 0
    assert [plan.should("lose_response", "z") for _ in range(3)] == before


def test_describe_names_rates_and_scripts() -> None:
    assert repr(FaultPlan(seed=2, lose_response=0.25)) == "FaultPlan(seed=2, lose_response=0.25)"
    assert repr(FaultPlan.script({"throttle": [1]})) == "FaultPlan(seed=0, throttle=script)"
    assert repr(FaultPlan.none()) == "FaultPlan(seed=0)"


def test_decisions_are_counted_exactly_under_threads() -> None:
    plan = FaultPlan(seed=9, lose_response=0.5)
    keys = [f"k{i}" for i in range(200)]
    expected = sum(faults.draw(9, "lose_response", k, a) < 0.5 for k in keys for a in (1, 2))

    def worker(part: list[str]) -> None:
        for k in part:
            plan.should("lose_response", k)

    threads = [threading.Thread(target=worker, args=(keys[i::4] * 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert plan.count("lose_response") == expected
    assert all(plan.attempts("lose_response", k) == 2 for k in keys)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), key=st.text(max_size=12), attempt=st.integers(1, 20), rate=st.floats(0, 1))
def test_decision_is_a_pure_function_of_its_inputs(seed: int, key: str, attempt: int, rate: float) -> None:
    a = FaultPlan(seed=seed, crash_after_effect=rate).should("crash_after_effect", key, attempt=attempt)
    b = FaultPlan(seed=seed, crash_after_effect=rate).should("crash_after_effect", key, attempt=attempt)
    assert a == b == (faults.draw(seed, "crash_after_effect", key, attempt) < rate)


# -- retry -----------------------------------------------------------------------------------------------------------
def test_retry_returns_the_first_success_and_counts_attempts() -> None:
    seen: list[int] = []

    def op(attempt: int) -> str:
        if attempt < 3:
            raise ResponseLost("k", attempt, result="lost")
        return "done"

    out = retry(op, max_attempts=5, on_error=lambda n, e: seen.append(n))
    assert (out.result, out.attempts, out.ok, out.gave_up) == ("done", 3, True, False)
    assert seen == [1, 2] and len(out.errors) == 2


def test_retry_gives_up_without_raising_a_retryable_error() -> None:
    def op(attempt: int) -> None:
        raise Throttled("k", attempt)

    out = retry(op, max_attempts=3)
    assert (out.result, out.attempts, out.ok, out.gave_up) == (None, 3, False, True)
    assert all(isinstance(e, Throttled) for e in out.errors)


def test_retry_lets_other_errors_through() -> None:
    def op(attempt: int) -> None:
        raise WorkerCrashed("k", attempt)

    with pytest.raises(WorkerCrashed):
        retry(op)
    with pytest.raises(ValueError):
        retry(lambda a: a, max_attempts=0)
    assert faults.LAMBDA_ASYNC_MAX_ATTEMPTS == 3
