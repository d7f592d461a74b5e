"""helpers.instruments.ledger: every charge is a row, so a double charge is counted, never guessed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from helpers.aws.resources import Resources
from helpers.instruments.ledger import Ledger

PREFIX = "test-ledger"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


@pytest.fixture
def ledger(res: Resources) -> Ledger:
    return Ledger(res)


def test_the_table_is_created_under_the_prefix_and_starts_empty(res: Resources, ledger: Ledger) -> None:
    assert ledger.table == "test-ledger-ledger"
    assert ("dynamodb", "test-ledger-ledger") in res.inventory()
    assert ledger.count() == 0 and ledger.charges_per_order() == {} and ledger.duplicates() == 0


def test_each_charge_is_a_row_so_charging_twice_is_a_duplicate(ledger: Ledger) -> None:
    first = ledger.charge("order-1", "24.62", by="payments")
    second = ledger.charge("order-1", "24.62", by="payments")
    ledger.charge("order-2", 10, by="payments")
    assert first != second
    assert ledger.count() == 3
    assert ledger.charges_per_order() == {"order-1": 2, "order-2": 1}
    assert ledger.duplicates() == 1


def test_duplicates_count_every_charge_beyond_the_first_per_order(ledger: Ledger) -> None:
    for _ in range(4):
        ledger.charge("order-1", 1)
    for _ in range(2):
        ledger.charge("order-2", 1)
    ledger.charge("order-3", 1)
    assert ledger.duplicates() == 3 + 1 + 0


def test_charges_keep_order_amount_actor_and_key(ledger: Ledger) -> None:
    ledger.charge("order-2", "0.10", by="worker-a", key="tok-2")
    ledger.charge("order-1", Decimal("24.62"), by="worker-b")
    charges = ledger.charges()
    assert [c["order_id"] for c in charges] == ["order-2", "order-1"], "charges come back in the order made"
    assert charges[0]["amount"] == Decimal("0.10") and charges[1]["amount"] == Decimal("24.62")
    assert (charges[0]["by"], charges[0]["idempotency_key"]) == ("worker-a", "tok-2")
    assert charges[1]["idempotency_key"] == ""


def test_frame_has_no_volatile_ids(ledger: Ledger) -> None:
    ledger.charge("order-1", "5", by="api", key="k")
    frame = ledger.frame()
    assert list(frame.columns) == ["order_id", "amount", "by", "idempotency_key"]
    assert frame.to_dict("records") == [
        {"order_id": "order-1", "amount": Decimal("5"), "by": "api", "idempotency_key": "k"}
    ]
    assert list(frame.index) == [0]


def test_clear_forgets_every_charge(ledger: Ledger) -> None:
    for i in range(30):
        ledger.charge(f"order-{i % 3}", 1)
    ledger.clear()
    assert ledger.count() == 0 and ledger.duplicates() == 0
    ledger.charge("order-1", 1)
    assert ledger.count() == 1


def test_a_second_ledger_on_the_same_table_sees_the_same_charges(res: Resources, ledger: Ledger) -> None:
    ledger.charge("order-1", 1)
    again = Ledger(res)  # ensure_table is idempotent
    assert again.table == ledger.table and again.count() == 1


def test_put_item_request_fences_a_charge_inside_a_transaction(res: Resources, ledger: Ledger) -> None:
    ddb = res.backend.client("dynamodb")
    claims = res.ensure_table("claims", partition_key="pk")
    put = ledger.put_item_request("order-7", "9.99", by="consumer", key="tok-7")
    claim = {
        "Put": {
            "TableName": claims,
            "Item": {"pk": {"S": "tok-7"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    ddb.transact_write_items(TransactItems=[claim, put])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[claim, ledger.put_item_request("order-7", "9.99", by="consumer")])
    assert ledger.charges_per_order() == {"order-7": 1}, "the refused claim took its charge with it"
    assert ledger.charges()[0]["idempotency_key"] == "tok-7"


def test_a_hundred_and_twenty_charges_are_all_counted(ledger: Ledger) -> None:
    for i in range(120):
        ledger.charge(f"order-{i % 40}", 1)
    assert ledger.count() == 120
    assert ledger.duplicates() == 80
    assert len(ledger.charges_per_order()) == 40


def test_amounts_are_stored_as_dynamodb_normalises_them() -> None:
    """AWS and LocalStack return 18.0 as 18; moto returns what it was given: write the normalised form."""
    from helpers.instruments.ledger import dynamodb_number

    assert [dynamodb_number(v) for v in (18.0, "5.50", 100, 24.62, "0.10")] == ["18", "5.5", "100", "24.62", "0.1"]


def test_clear_after_cleanup_creates_the_table_afresh(res: Resources) -> None:
    """A demo started again after the notebook's cleanup (a widget used after Run All) runs instead of failing."""
    ledger = Ledger(res, name="after-cleanup")
    ledger.charge("o-1", 5)
    res.teardown()
    ledger.clear()
    ledger.charge("o-2", 5)
    assert [c["order_id"] for c in ledger.charges()] == ["o-2"]


def test_a_forked_process_never_writes_the_parent_s_charge_ids(ledger) -> None:  # type: ignore[no-untyped-def]
    """A child of fork copies the parent's counter: without its own range, its first charge would overwrite one."""
    import os

    first = ledger.charge("o-parent", 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: charge once, report the id, leave without running the parent's cleanup
        os.close(read)
        os.write(write, ledger.put_item_request("o-child", 1, by="child")["Put"]["Item"]["charge_id"]["S"].encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert (
        child_id != first
        and child_id != ledger.put_item_request("o-next", 1, by="parent")["Put"]["Item"]["charge_id"]["S"]
    )
