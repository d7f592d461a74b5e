"""chapters.orchestration: notebook 05's machines deployed together, and each integration pattern run live."""

from __future__ import annotations

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import orchestration as orc
from helpers.chapters.choreography import Shop
from helpers.instruments.ledger import Ledger
from helpers.instruments.trace import Trace
from helpers.services import stepfunctions as sf

PREFIX = "torc"


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
    yield shop, machines, sf.Runner(backend)
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
    assert sf.count_events(bad.events, "TaskFailed") == 2  # the first try and one retry
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
    assert sf.count_events(outcomes["t-12"].events, "TaskTimedOut") == 1
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
