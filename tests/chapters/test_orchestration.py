"""chapters.orchestration: the ASL files, the history readers, the poll loop, and each integration pattern run live."""

from __future__ import annotations

import json

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import orchestration as orc
from helpers.chapters.choreography import Shop
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace

PREFIX = "torc"
ASL_NAMES = ("order_process", "payment_callback", "pack_job", "run_job", "emit_and_wait")


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
    }
    return orc.load(name, **values)


def test_every_asl_file_loads_and_refuses_missing_placeholders():
    for name in ASL_NAMES:
        definition = _filled(name)
        assert "${" not in json.dumps(definition) and definition["StartAt"] in definition["States"]
    with pytest.raises(KeyError, match="StockTable"):
        orc.load("order_process", OrdersTable="a", LedgerTable="b", WarehouseQueueUrl="c", BusName="d")
    with pytest.raises(FileNotFoundError, match="known: emit_and_wait"):
        orc.load("no_such_machine")


def test_every_next_names_a_state_and_error_names_fit_optimised_integrations():
    for name in ASL_NAMES:
        definition = _filled(name)
        for _state_name, state, _ in orc.iter_states(definition):
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
            scope = {n for n, _, _ in orc.iter_states(definition)}
            assert all(t in scope for t in targets if t), (name, _state_name)
            for retry in state.get("Retry", []):
                # optimised DynamoDB integrations raise DynamoDB.*, never DynamoDb.*
                assert all(not e.startswith("DynamoDb.") for e in retry["ErrorEquals"])


def test_features_integrations_and_nested_states():
    process = _filled("order_process")
    assert orc.features(process) == {
        "Catch": 1,
        "Choice": 1,
        "Fail": 2,
        "Map": 1,
        "Parallel": 1,
        "Retry": 1,
        "Task": 9,
    }
    assert orc.integrations(process)[0] == "dynamodb:putItem"
    parents = {name: parent for name, _, parent in orc.iter_states(process)}
    assert parents["Charge the card"] == "Charge and reserve"
    assert parents["Reserve one item"] == "Reserve the items"


def test_insert_after_and_definition_diff():
    process = _filled("order_process")
    step = {"Type": "Pass"}
    new = orc.insert_after(process, "Mark shipped", "Notify", step)
    assert list(new["States"]).index("Notify") == list(new["States"]).index("Mark shipped") + 1
    assert new["States"]["Mark shipped"]["Next"] == "Notify"
    assert new["States"]["Notify"]["Next"] == "Announce OrderShipped"
    assert orc.definition_diff(process, new) == {"added": ["Notify"], "removed": [], "changed": ["Mark shipped"]}
    assert "Notify" not in process["States"], "the original is not modified"
    last = orc.insert_after(process, "Announce OrderShipped", "After", step)
    assert last["States"]["After"]["End"] is True and last["States"]["Announce OrderShipped"]["Next"] == "After"


# -- histories (synthetic events) -------------------------------------------------------------------------------------
def _entered(i: int, name: str, kind: str = "TaskStateEntered") -> dict:
    return {"id": i, "type": kind, "stateEnteredEventDetails": {"name": name}}


def test_path_diagram_colours_what_was_entered_and_the_fail_state():
    process = _filled("order_process")
    events = [
        _entered(1, "Record the order"),
        _entered(2, "Valid order?", "ChoiceStateEntered"),
        _entered(3, "Reject the order"),
        _entered(4, "Invalid order", "FailStateEntered"),
    ]
    text = orc.path_diagram(process, events).source
    assert "class s0,s1,s2 visited" in text and "class s3 failed" in text
    assert text.count("subgraph") == 2  # the Parallel and the Map
    plain = orc.path_diagram(process).source
    assert "classDef" not in plain


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
    trace = orc.history_trace(events, "wf", key="k")
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
    described, polls = orc.poll_until_done(
        _FakeSfn(running=3), "arn", poll_seconds=0, on_poll=lambda n, s: seen.append((n, s))
    )
    assert described["status"] == "SUCCEEDED" and polls == 4
    assert seen == [(1, "RUNNING"), (2, "RUNNING"), (3, "RUNNING"), (4, "SUCCEEDED")]
    with pytest.raises(orc.WorkflowTimeout, match="still RUNNING"):
        orc.poll_until_done(_FakeSfn(running=10**6), "arn", poll_seconds=0.01, timeout=0.05)


# -- live on the backend ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployed(backend):
    res = Resources(PREFIX, backend)
    res.teardown()
    ledger = Ledger(res)
    shop = Shop(res, ledger)
    shop.wire_standard_domains()
    machines = orc.Machines(res, shop.orders_table, ledger.table, shop.bus, heartbeat_seconds=1)
    machines.deploy({"book": 2, "lamp": 0})
    yield shop, machines, orc.Runner(backend)
    res.teardown()


def _order(ledger: Ledger, order_id: str, amount: int, items: list[dict]) -> dict:
    item = ledger.put_item_request(order_id, amount, by="workflow")["Put"]["Item"]
    charge = {"chargeId": item["charge_id"]["S"], "seq": int(item["seq"]["N"])}
    return {"orderId": order_id, "amount": amount, "items": items, "charge": charge}


def test_order_process_ships_or_compensates(deployed):
    shop, machines, runner = deployed
    arn = machines.arns["order-process"]
    good = runner.run(arn, _order(shop.ledger, "t-1", 10, [{"sku": "book", "qty": 1}]), label="t-1")
    assert good.status == "SUCCEEDED" and shop.order_status("t-1") == "SHIPPED"
    bad = runner.run(arn, _order(shop.ledger, "t-2", 10, [{"sku": "lamp", "qty": 1}]), label="t-2")
    assert (bad.status, bad.error) == ("FAILED", "OrderCancelled")
    assert orc.count_events(bad.events, "TaskFailed") == 2  # the first try and one retry
    assert shop.order_status("t-2") == "CANCELLED" and "t-2" not in shop.ledger.charges_per_order()
    assert machines.stock() == {"book": 1, "lamp": 0}


def test_callback_success_decline_timeout_and_a_used_token(deployed):
    shop, machines, runner = deployed
    worker = orc.PaymentWorker(machines.resources.backend, machines.payment_requests.url, Trace("t"))
    arn = machines.arns["payment-callback"]
    outcomes = {}
    for order_id, behaviour in (("t-10", "approve"), ("t-11", "decline"), ("t-12", "silent")):
        execution = runner.start(arn, {"orderId": order_id, "amount": 1}, label=order_id)
        worker.handle(behaviour)
        outcomes[order_id] = runner.wait(execution)
    assert outcomes["t-10"].status == "SUCCEEDED" and shop.order_status("t-10") == "PAID"
    assert outcomes["t-11"].status == "FAILED" and shop.order_status("t-11") == "CANCELLED"
    assert orc.count_events(outcomes["t-12"].events, "TaskTimedOut") == 1
    assert worker.answer_again("t-10") in ("InvalidToken", "TaskTimedOut")
    with pytest.raises(ValueError, match="behaviour"):
        worker.handle("shrug")


def test_emit_and_wait_is_answered_by_the_fulfilment_domain(deployed):
    shop, machines, runner = deployed
    execution = runner.start(machines.arns["emit-and-wait"], {"orderId": "t-20", "items": []}, label="t-20")
    shop.settle(lambda: runner.sfn.describe_execution(executionArn=execution.arn)["status"] != "RUNNING")
    runner.wait(execution)
    assert execution.status == "SUCCEEDED" and execution.output["shipment"] == {"tracking": "TRK-t-20"}
    assert shop.order_status("t-20") == "SHIPPED"


def test_run_job_follows_the_backend(deployed, backend):
    _shop, machines, runner = deployed
    parent = runner.run(machines.arns["run-job"], {"orderId": "t-30", "seconds": 1}, label="t-30")
    if orc.runs_sync(backend):
        assert parent.status == "SUCCEEDED" and parent.output["packing"]["job"]["packed"] is True
    else:
        assert (parent.status, parent.error) == ("FAILED", "States.Runtime")
        assert "poll loop" in orc.explain_sync(backend)
