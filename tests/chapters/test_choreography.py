"""helpers.chapters.choreography: domains that react to each other's events through one bus, run live on the backend."""

from __future__ import annotations

import pytest

from helpers.aws.resources import Resources
from helpers.chapters.choreography import NotSettled, Shop
from helpers.instruments.ledger import Ledger

PREFIX = "tcho"


@pytest.fixture
def shop(backend):
    res = Resources(PREFIX, backend)
    res.teardown()
    ledger = Ledger(res)
    s = Shop(res, ledger)
    s.wire_standard_domains()
    yield s
    res.teardown()


def test_an_order_travels_through_the_domains(shop):
    shop.place_order("c-1", 10, card="ok")
    shop.place_order("c-2", 5, card="declined")
    delivered = shop.settle(
        lambda: shop.shipment_status("c-1") == "SHIPPED" and shop.trace.count(label="PaymentDeclined c-2") == 1
    )
    assert delivered == 3
    assert shop.ledger.charges_per_order() == {"c-1": 1}
    answers = [row["answer"] for row in shop.where_is("c-1")]
    assert answers == ["CREATED", "1 charge(s)", "SHIPPED"]  # orders never heard that c-1 shipped
    assert [row["answer"] for row in shop.where_is("c-2")] == ["CREATED", "0 charge(s)", "no shipment"]
    kinds = [s.kind for s in shop.trace.view(key="c-1")]
    assert kinds.count("send") == 5 and kinds.count("effect") == 3


def test_a_new_subscriber_changes_nothing_that_exists(shop):
    before = shop.subscriptions()
    shop.add_notifications()
    after = shop.subscriptions()
    assert {k: after[k] for k in before} == before
    assert after[f"{PREFIX}-notifications-subscription"]["pattern"] == {"detail-type": ["OrderShipped"]}
    shop.place_order("c-3", 7)
    shop.settle(lambda: "c-3" in shop.notifications)
    assert shop.notifications == ["c-3"]


def test_settle_gives_up_with_a_clear_error(shop):
    with pytest.raises(NotSettled, match="did not settle"):
        shop.settle(lambda: False, timeout=0.2)
