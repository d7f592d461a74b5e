"""services.stepfunctions: every ASL file loads and is well formed, histories read, diagrams draw, the one wait loop."""

from __future__ import annotations

import json
import re

import pytest

from helpers.services import stepfunctions as sf

#: Every state machine of the course: a new ASL file is checked here without an entry.
ASL_NAMES = sorted(p.name.removesuffix(".asl.json") for p in sf.ASL_DIR.glob("*.asl.json"))


# -- definitions (no backend needed) --------------------------------------------------------------------------------
def _filled(name: str) -> dict:
    values = {
        "OrdersTable": "t-orders",
        "LedgerTable": "t-ledger",
        "StockTable": "t-stock",
        "WarehouseQueueUrl": "http://q/warehouse",
        "BusName": "bus",
        "PaymentRequestsQueueUrl": "http://q/payments",
        "PackJobArn": "arn:aws:states:us-east-1:000000000000:stateMachine:pack",
        "IdempotencyTable": "t-idempotency",
        "TasksQueueUrl": "http://q/tasks",
        "Source": "capstone.workflow",
    }
    needed = set(re.findall(r"\$\{(\w+)\}", (sf.ASL_DIR / f"{name}.asl.json").read_text()))
    return sf.load(name, **{k: v for k, v in values.items() if k in needed})


def test_every_asl_file_loads_and_refuses_missing_placeholders():
    for name in ASL_NAMES:
        definition = _filled(name)
        assert "${" not in json.dumps(definition) and definition["StartAt"] in definition["States"]
    with pytest.raises(KeyError, match="StockTable"):
        sf.load("order_process", OrdersTable="a", LedgerTable="b", WarehouseQueueUrl="c", BusName="d")
    with pytest.raises(FileNotFoundError, match="known: capstone_payment, emit_and_wait"):
        sf.load("no_such_machine")


def test_every_next_names_a_state_and_error_names_fit_optimised_integrations():
    for name in ASL_NAMES:
        definition = _filled(name)
        for _state_name, state, _ in sf.iter_states(definition):
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
            scope = {n for n, _, _ in sf.iter_states(definition)}
            assert all(t in scope for t in targets if t), (name, _state_name)
            # Optimised DynamoDB integrations raise DynamoDB.*, AWS SDK ones DynamoDb.*: the other spelling never fires.
            resource = state.get("Resource", "")
            wrong = "DynamoDB." if ":::aws-sdk:dynamodb:" in resource else "DynamoDb."
            for matcher in state.get("Retry", []) + state.get("Catch", []):
                assert not any(e.startswith(wrong) for e in matcher["ErrorEquals"]), (name, _state_name)


def test_features_integrations_and_nested_states():
    process = _filled("order_process")
    assert sf.features(process) == {
        "Catch": 1,
        "Choice": 1,
        "Fail": 2,
        "Map": 1,
        "Parallel": 1,
        "Retry": 1,
        "Task": 9,
    }
    assert sf.integrations(process)[0] == "dynamodb:putItem"
    parents = {name: parent for name, _, parent in sf.iter_states(process)}
    assert parents["Charge the card"] == "Charge and reserve"
    assert parents["Reserve one item"] == "Reserve the items"


def test_insert_after_and_definition_diff():
    process = _filled("order_process")
    step = {"Type": "Pass"}
    new = sf.insert_after(process, "Mark shipped", "Notify", step)
    assert list(new["States"]).index("Notify") == list(new["States"]).index("Mark shipped") + 1
    assert new["States"]["Mark shipped"]["Next"] == "Notify"
    assert new["States"]["Notify"]["Next"] == "Announce OrderShipped"
    assert sf.definition_diff(process, new) == {"added": ["Notify"], "removed": [], "changed": ["Mark shipped"]}
    assert "Notify" not in process["States"], "the original is not modified"
    last = sf.insert_after(process, "Announce OrderShipped", "After", step)
    assert last["States"]["After"]["End"] is True and last["States"]["Announce OrderShipped"]["Next"] == "After"


# -- histories (synthetic events) -------------------------------------------------------------------------------------
def _entered(i: int, name: str, kind: str = "TaskStateEntered") -> dict:
    return {"id": i, "type": kind, "stateEnteredEventDetails": {"name": name}}


def test_flowchart_colours_what_was_entered_and_the_fail_state():
    process = _filled("order_process")
    events = [
        _entered(1, "Record the order"),
        _entered(2, "Valid order?", "ChoiceStateEntered"),
        _entered(3, "Reject the order"),
        _entered(4, "Invalid order", "FailStateEntered"),
    ]
    text = sf.flowchart(process, events).source
    assert "class s0,s1,s2 visited" in text and "class s3 failed" in text
    assert text.count("subgraph") == 2  # the Parallel and the Map
    plain = sf.flowchart(process).source
    assert "classDef" not in plain


def test_flowchart_does_not_depend_on_which_parallel_branch_finished_first():
    # LocalStack ran notebook 05's branches in either order; the stored drawing must be the same both ways.
    process = _filled("order_process")
    names = [name for name, _, _ in sf.iter_states(process)]
    forward = [_entered(i, name) for i, name in enumerate(names[:6])]
    backward = forward[:2] + forward[2:][::-1]

    def coloured(events: list[dict]) -> list[str]:
        return [line for line in sf.flowchart(process, events).source.splitlines() if line.strip().startswith("class ")]

    assert coloured(forward) == coloured(backward) == ["    class s0,s1,s2,s4,s5 visited", "    class s3 failed"]


def test_history_trace_matches_interleaved_results_to_their_requests():
    def scheduled(i, prev, resource_type, resource):
        details = {"resourceType": resource_type, "resource": resource}
        return {"id": i, "previousEventId": prev, "type": "TaskScheduled", "taskScheduledEventDetails": details}

    events = [
        scheduled(1, 0, "dynamodb", "putItem"),
        scheduled(2, 0, "sqs", "sendMessage"),
        {"id": 3, "previousEventId": 2, "type": "TaskStarted"},
        {"id": 4, "previousEventId": 3, "type": "TaskFailed", "taskFailedEventDetails": {"error": "Boom"}},
        {"id": 5, "previousEventId": 1, "type": "TaskSucceeded"},
    ]
    trace = sf.history_trace(events, "wf", key="k")
    rows = [(s.src, s.dst, s.label, s.kind) for s in trace]
    assert rows == [
        ("wf", "DynamoDB", "putItem", "call"),
        ("wf", "SQS", "sendMessage", "call"),
        ("SQS", "wf", "Boom", "error"),
        ("DynamoDB", "wf", "ok", "reply"),
    ]


class _FakeSfn:
    def __init__(self, running: int) -> None:
        self.running = running
        self.calls = 0

    def describe_execution(self, executionArn: str) -> dict:
        self.calls += 1
        return {"status": "RUNNING" if self.calls <= self.running else "SUCCEEDED", "output": "{}"}


def test_poll_until_done_counts_polls_and_gives_up():
    seen = []
    described, polls = sf.poll_until_done(
        _FakeSfn(running=3), "arn", poll_seconds=0, on_poll=lambda n, s: seen.append((n, s))
    )
    assert described["status"] == "SUCCEEDED" and polls == 4
    assert seen == [(1, "RUNNING"), (2, "RUNNING"), (3, "RUNNING"), (4, "SUCCEEDED")]
    with pytest.raises(sf.WorkflowTimeout, match="still RUNNING"):
        sf.poll_until_done(_FakeSfn(running=10**6), "arn", poll_seconds=0.01, timeout=0.05)
