"""The idempotent Step Functions workflow (services.stepfunctions) on the embedded backend: every path it can take."""

from __future__ import annotations

import json
import time

import pytest

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger
from helpers.services import stepfunctions as wf

PREFIX = "twf"


@pytest.fixture(scope="module")
def flow(backend):
    res = Resources(PREFIX, backend)
    res.teardown()
    ledger = Ledger(res)
    workflow = wf.IdempotentWorkflow(res, ledger, ttl_seconds=3600, poll_seconds=1, max_polls=10)
    workflow.deploy()
    yield workflow
    res.teardown()


def _charges(flow, order_id: str) -> int:
    return flow.ledger.charges_per_order().get(order_id, 0)


# -- definition and key (no backend needed) ------------------------------------------------------------------------
def test_loader_fills_placeholders_and_refuses_missing_ones():
    definition = wf.load(wf.IDEMPOTENT_WORKFLOW, IdempotencyTable="t-idem", LedgerTable="t-ledger")
    text = json.dumps(definition)
    assert "${" not in text and "t-idem" in text and "t-ledger" in text
    with pytest.raises(KeyError, match="LedgerTable"):
        wf.load(wf.IDEMPOTENT_WORKFLOW, IdempotencyTable="t-idem")


def test_key_is_canonical_and_any_selected_value_works():
    a = {"order_id": "o-1", "amount": 25, "items": [{"sku": "x", "qty": 1}]}
    b = {"items": [{"qty": 1, "sku": "x"}], "amount": 25, "order_id": "o-1"}
    assert wf.idempotency_key(a) == wf.idempotency_key(b)
    assert wf.seed_key(a) != wf.seed_key(b)  # the seed's json.dumps without sort_keys
    assert wf.idempotency_key(a, select="order_id") == wf.idempotency_key("o-1")  # a scalar is a fine key
    assert wf.idempotency_key(a, select="items[0]") == wf.idempotency_key({"qty": 1, "sku": "x"})
    with pytest.raises(ValueError, match="selects nothing"):
        wf.idempotency_key(a, select="customer")
    assert len(wf.idempotency_key(a)) == 64


def test_the_seeds_selection_check_works_only_for_lists():
    a = {"order_id": "o-1", "amount": 25, "items": [{"sku": "x", "qty": 1}], "note": ""}
    assert wf.seed_key(a, select="[order_id, amount]") == wf.seed_key(["o-1", 25])  # the README's list form
    assert wf.seed_key(a, select="order_id") == wf.seed_key("o-1")  # a string passes by its first character
    with pytest.raises(TypeError):
        wf.seed_key(a, select="amount")  # a number
    with pytest.raises(TypeError):
        wf.seed_key(a, select="customer")  # nothing selected: a crash, not the seed's own error
    with pytest.raises(KeyError):
        wf.seed_key(a, select="items[0]")  # an object
    with pytest.raises(IndexError):
        wf.seed_key(a, select="note")  # an empty string
    with pytest.raises(ValueError, match="did not yield"):
        wf.seed_key(a, select="[customer]")  # the only case the seed's check was written for
    assert wf.idempotency_key(a, select="amount") == wf.idempotency_key(25)  # the fix takes any value


def test_the_key_uses_the_idempotency_librarys_canonical_json():
    from decimal import Decimal

    from helpers import idempotency

    assert wf.canonical_json is idempotency.canonical_json  # one canonical form in the course
    # so an amount read back from DynamoDB (a Decimal) or sent as 25.0 gives the key 25 gives
    same = {wf.idempotency_key({"amount": v}) for v in (25, 25.0, Decimal("25"))}
    assert len(same) == 1


def test_status_names_written_are_the_ones_tested():
    names = wf.status_names(wf.load(wf.IDEMPOTENT_WORKFLOW, IdempotencyTable="t", LedgerTable="l"))
    assert names["written"] == {"IN_PROGRESS", "SUCCEEDED", "FAILED"}
    assert names["written"] <= names["tested"] <= set(wf.STATUSES)


def test_retry_and_catch_names_match_their_integration():
    rows = wf.error_matchers(wf.load(wf.IDEMPOTENT_WORKFLOW, IdempotencyTable="t", LedgerTable="l"))
    assert rows
    for row in rows:
        if row["error"].startswith("States."):
            continue
        expected = {"optimised": "DynamoDB.", "aws-sdk": "DynamoDb."}[row["integration"]]
        assert row["error"].startswith(expected), row


# -- the paths, on the backend -------------------------------------------------------------------------------------
def test_first_run_locks_charges_and_stores_its_result(flow):
    order = {"order_id": "t-first", "amount": 25}
    run = flow.run(order, label="first", ttl_seconds=900)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["replayed"] is False
    assert run.output["result"]["orderId"] == "t-first"
    record = flow.record(run.key)
    assert record["executionstatus"] == "SUCCEEDED"
    assert record["executionresult"] == run.output["result"]
    assert record["held by"] == "first"
    assert record["ttl"] - run.input["idempotencyConfig"]["now"] == 900  # the TTL asked for, not a fixed 24 h
    assert _charges(flow, "t-first") == 1
    entered = wf.states_entered(run.events)
    assert "Charge the card" in entered and "Get idempotency record" not in entered


def test_duplicate_after_success_replays_the_stored_result(flow):
    order = {"order_id": "t-dup", "amount": 5, "note": "a"}
    first = flow.run(order, label="first")
    again = flow.run({"note": "a", "amount": 5, "order_id": "t-dup"}, label="reordered")  # same order, keys moved
    assert again.status == "SUCCEEDED"
    assert again.output == {"result": first.output["result"], "replayed": True}
    assert "Charge the card" not in wf.states_entered(again.events)
    assert _charges(flow, "t-dup") == 1


def test_concurrent_start_waits_then_replays(flow):
    order = {"order_id": "t-concurrent", "amount": 10}
    holder = flow.start(order, label="A", hold_seconds=2)
    flow.wait_for_state(holder, "Hold (test input)")
    duplicate = flow.start(order, label="B")  # another execution name, the same key, while A is RUNNING
    assert flow.sfn.describe_execution(executionArn=holder.arn)["status"] == "RUNNING"
    flow.wait(holder)
    flow.wait(duplicate)
    assert (holder.status, duplicate.status) == ("SUCCEEDED", "SUCCEEDED")
    assert duplicate.output == {"result": holder.output["result"], "replayed": True}
    entered = wf.states_entered(duplicate.events)
    assert entered.count("Still IN_PROGRESS, wait") >= 1
    assert "Charge the card" not in entered
    assert _charges(flow, "t-concurrent") == 1


def test_failure_marks_failed_and_the_next_run_reacquires(flow):
    order = {"order_id": "t-fail", "amount": 7}
    failed = flow.run(order, label="fails", fail=True)
    assert (failed.status, failed.error) == ("FAILED", "ChildWorkflowException")
    record = flow.record(failed.key)
    assert record["executionstatus"] == "FAILED"
    assert record["executionresult"]["Error"] == "PaymentProviderUnavailable"
    assert _charges(flow, "t-fail") == 0
    retry = flow.run(order, label="retry")
    assert retry.status == "SUCCEEDED" and retry.output["replayed"] is False
    record = flow.record(retry.key)
    assert (record["executionstatus"], record["held by"]) == ("SUCCEEDED", "retry")
    assert record["executionresult"] == retry.output["result"]
    assert _charges(flow, "t-fail") == 1


def test_bounded_wait_gives_up_on_a_holder_that_never_finishes(flow):
    order = {"order_id": "t-stuck", "amount": 3}
    key = wf.idempotency_key(order)
    flow.put_record(key, status="IN_PROGRESS", execution="crashed-execution", ttl=int(time.time()) + 3600)
    run = flow.run(order, label="waiter", max_polls=2, poll_seconds=0)
    assert (run.status, run.error) == ("FAILED", "IdempotencyWaitTimeout")
    entered = wf.states_entered(run.events)
    assert entered.count("Still IN_PROGRESS, wait") == 2 and entered[-1] == "Give up waiting"
    assert _charges(flow, "t-stuck") == 0


def test_an_expired_record_is_taken_over(flow):
    order = {"order_id": "t-expired", "amount": 4}
    key = wf.idempotency_key(order)
    flow.put_record(key, status="IN_PROGRESS", execution="crashed-execution", ttl=int(time.time()) - 1)
    run = flow.run(order, label="later")
    assert run.status == "SUCCEEDED" and flow.record(key)["held by"] == "later"
    assert _charges(flow, "t-expired") == 1


def test_a_status_the_choice_does_not_know_fails_clearly(flow):
    order = {"order_id": "t-readme", "amount": 2}
    key = wf.idempotency_key(order)
    flow.put_record(key, status="SUCCESS", execution="written-by-the-readme", ttl=int(time.time()) + 3600)
    run = flow.run(order, label="readme")
    assert (run.status, run.error) == ("FAILED", "UndefinedExecutionState")


def test_a_run_that_lost_its_lock_does_not_overwrite_the_record(flow):
    order = {"order_id": "t-fenced", "amount": 6}
    run = flow.start(order, label="slow", hold_seconds=1)
    flow.wait_for_state(run, "Hold (test input)")
    flow.put_record(run.key, status="IN_PROGRESS", execution="newer-execution", ttl=int(time.time()) + 3600)
    flow.wait(run)
    assert (run.status, run.error) == ("FAILED", "IdempotencyLockLost")
    assert flow.record(run.key)["held by"] == "newer-execution"


def test_error_names_differ_by_integration(flow):
    assert flow.probe_error_names() == {
        "optimised": "DynamoDB.ConditionalCheckFailedException",
        "aws-sdk": "DynamoDb.ConditionalCheckFailedException",
    }


def test_flowchart_and_history_show_the_path(flow):
    run = flow.run({"order_id": "t-draw", "amount": 1}, label="draw", fail=True)
    chart = str(wf.flowchart(flow.definition, run.events))
    ids = {name: f"s{i}" for i, (name, _, _) in enumerate(wf.iter_states(flow.definition))}
    assert chart.startswith("flowchart TD")
    visited_line = next(line for line in chart.splitlines() if line.strip().startswith("class ") and "visited" in line)
    assert ids["Save failure"] in visited_line and ids["Charge the card"] not in visited_line
    failed_line = next(line for line in chart.splitlines() if line.strip().startswith("class ") and "failed" in line)
    assert ids["Injected failure"] in failed_line and ids["Failure"] in failed_line
    assert ("Your workflow", "Save failure") in wf.edges_taken(run.events)
    frame = wf.history_frame(run.events)
    assert list(frame.columns) == ["event", "state", "resource", "error"]
    assert frame.iloc[-1]["event"] == "ExecutionFailed" and frame.iloc[-1]["error"] == "ChildWorkflowException"
