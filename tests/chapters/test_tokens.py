"""chapters.tokens: the token store's one conditional write, and each broken rule of notebook 07 counted on the backend.

The wrong key functions (server-made, content hash, a field an intermediary drops) are kept here as the wrong
solutions they are: each must cost a double or a missing charge, and the well-behaved token none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers import course
from helpers.aws.resources import Resources
from helpers.chapters import tokens as tk
from helpers.instruments.faults import FaultPlan
from helpers.instruments.ledger import Ledger
from helpers.instruments.tokens import SeededTokens
from helpers.instruments.trace import Trace

LOSSY = {"lose_response": {"*": [1]}}  # every order's first answer is lost


PREFIX = "t-tok"  # what the shared ``res`` fixture (tests/conftest.py) names this file's resources after


class World:
    def __init__(self, res: Resources) -> None:
        self.trace = Trace("t")
        self.ledger = Ledger(res)
        self.store = tk.TokenStore(res, self.trace)
        self.orders = tk.Orders(self.trace, SeededTokens(7))

    def payments(self, key_of: tk.KeyOf = tk.by_dedicated_field) -> tk.Payments:
        return tk.Payments(key_of, self.store, self.ledger, self.trace)


@pytest.fixture
def world(res: Resources):  # type: ignore[no-untyped-def]
    w = World(res)
    yield w
    w.store.close()


def test_a_claim_wins_once_and_hands_back_the_first_receipt(world: World) -> None:
    assert world.store.claim("k-1", "receipt A") is None
    assert world.store.claim("k-1", "receipt B") == "receipt A"
    assert world.store.claim("k-2", "receipt B") is None
    assert world.trace.count(dst="token store", label="PutItem key k-1") == 2


def test_a_claim_does_not_swallow_other_errors(world: World, res: Resources) -> None:
    res.backend.client("dynamodb").delete_table(TableName=world.store.table)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        world.store.claim("k-1", "receipt")


def test_the_well_behaved_token_charges_once_and_replays_the_receipt(world: World) -> None:
    outcome = world.orders.checkout(tk.order("o-1"), FaultPlan.script(LOSSY), world.payments())
    assert (outcome.attempts, outcome.result) == (2, "receipt o-1 (replayed)")
    assert world.ledger.charges_per_order() == {"o-1": 1}


@pytest.mark.parametrize(
    ("key", "charges"),
    [("once", 1), ("per-attempt", 2), ("none", 2)],
    ids=["made once", "rule 2 broken: made per attempt", "no token: no protection"],
)
def test_how_the_client_makes_its_token(world: World, key: str, charges: int) -> None:
    world.orders.checkout(tk.order("o-1"), FaultPlan.script(LOSSY), world.payments(), key=key)
    assert world.ledger.charges_per_order() == {"o-1": charges}


def test_an_unknown_way_to_make_a_token_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="per-attempt"):
        world.orders.checkout(tk.order("o-1"), FaultPlan.none(), world.payments(), key="twice")


def test_rule_1_broken_a_server_made_token_charges_every_retry(world: World) -> None:
    server = SeededTokens(8)
    payments = world.payments(lambda request: server.new())
    world.orders.checkout(tk.order("o-1"), FaultPlan.script(LOSSY), payments, key="none")
    assert world.ledger.charges_per_order() == {"o-1": 2}


def _content_hash(request: Mapping[str, Any]) -> str:
    d = request["data"]
    return hashlib.sha256(
        repr(sorted((k, d[k]) for k in ("customer", "item", "amount", "currency"))).encode()
    ).hexdigest()


def test_rule_3_broken_a_content_hash_merges_two_genuine_orders(world: World) -> None:
    payments = world.payments(_content_hash)
    first = world.orders.checkout(tk.order("o-1"), FaultPlan.script(LOSSY), payments, key="none")
    second = world.orders.checkout(tk.order("o-2"), FaultPlan.none(), payments, key="none")
    assert first.attempts == 2 and second.result == "receipt o-1 (replayed)"
    assert world.ledger.charges_per_order() == {"o-1": 1}  # o-2 never charged: a missing charge


def _mapper(request: Mapping[str, Any]) -> dict[str, Any]:
    d = request["data"]
    return {"metadata": request["metadata"], "data": {k: d[k] for k in ("order-id", "amount")}}


def test_rule_4_broken_an_intermediary_drops_a_token_in_the_payload(world: World) -> None:
    by_reference = world.payments(lambda request: request["data"].get("reference"))
    lossy = FaultPlan.script(LOSSY)
    world.orders.checkout(tk.order("o-1"), lossy, by_reference, field="data", via=_mapper)
    world.orders.checkout(tk.order("o-2"), lossy, world.payments(), via=_mapper)
    assert world.ledger.charges_per_order() == {"o-1": 2, "o-2": 1}


def test_the_queue_message_id_catches_a_redelivery_and_misses_a_producer_retry(world: World, backend, res) -> None:  # type: ignore[no-untyped-def]
    sqs = backend.client("sqs")
    queue = res.ensure_queue("payments", visibility_timeout=1)
    lost_send = FaultPlan.script({"lose_response": {"o-retry": [1], "o-token": [1]}})
    for oid in ("o-retry", "o-redelivered"):
        assert world.orders.send(sqs, queue, tk.order(oid), lost_send, key="none").ok
    crash = FaultPlan.script({"crash_after_effect": {"o-redelivered": [1]}})
    received = tk.consume(sqs, queue, world.payments(tk.by_message_id), crash, expect=4, wait_s=2)
    ids = {oid: [r.message_id for r in received if r.order_id == oid] for oid in ("o-retry", "o-redelivered")}
    assert len(set(ids["o-retry"])) == 2 and len(ids["o-redelivered"]) == 2 and len(set(ids["o-redelivered"])) == 1
    assert [r.receive_count for r in received if r.order_id == "o-redelivered"] == [1, 2]
    assert [r.answer for r in received if r.order_id == "o-redelivered"] == [None, "receipt o-redelivered (replayed)"]
    assert world.ledger.charges_per_order() == {"o-redelivered": 1, "o-retry": 2}

    world.orders.send(sqs, queue, tk.order("o-token"), lost_send)  # the client's token, kept on the retry
    received = tk.consume(sqs, queue, world.payments(), FaultPlan.none(), expect=2, wait_s=1)
    assert len({r.message_id for r in received}) == 2 and world.ledger.charges_per_order()["o-token"] == 1


def test_damage_table_counts_double_and_missing_charges(world: World) -> None:
    world.ledger.charge("o-1", 5)
    world.ledger.charge("o-1", 5)
    world.ledger.charge("o-2", 5)
    table = tk.damage_table(world.ledger, {"twice": ["o-1"], "merged": ["o-2", "o-3"]})
    assert table.loc["twice"].tolist() == [1, 2, 1, 0] and table.loc["merged"].tolist() == [2, 1, 0, 1]


def test_notebook_07_says_how_many_of_06s_demos_charged_twice() -> None:
    """07 opens with a number that 06 measures: the two must agree (06's stored output is checked by nbval)."""
    words = {"four": 4, "five": 5, "six": 6, "seven": 7}
    nb06 = json.loads(course.notebook_path(course.chapter("06")).read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb06["cells"] for o in c.get("outputs", []))
    measured = re.search(r"demos that charged a card twice: (\d+) of (\d+)", printed)
    nb07 = json.loads(course.notebook_path(course.chapter("07")).read_text())
    told = re.search(r"charged cards twice in (\w+) of its (\w+) demos", "".join(nb07["cells"][0]["source"]))
    assert measured and told, "06 prints the count and 07's introduction states it"
    assert (words[told.group(1)], words[told.group(2)]) == (int(measured.group(1)), int(measured.group(2)))
