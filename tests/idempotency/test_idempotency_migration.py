"""The README's migration section, run as written: a Powertools configuration beside ours, on a real API Gateway
event and a client's retry of it; and the trap of fingerprinting the whole event."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers.idempotency as library
from helpers.idempotency import DynamoDBStore, Idempotency, ManualClock, MemoryStore, PayloadMismatch
from helpers.services import powertools as powertools_setup
from tests.idempotency.event_shapes import body_of, client_retry, load

README = Path(library.__file__).with_name("README.md")
EVENT = "apigw_rest_create_order"


def readme_blocks() -> dict[str, str]:
    """The two Python blocks of the README's migration section: Powertools' and ours."""
    section = README.read_text().split("## Migrating from Powertools", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2 and "<!-- migration:ours -->" in section
    return {"powertools": blocks[0], "ours": blocks[1]}


@pytest.fixture
def tables(ddb: Any) -> Iterator[None]:
    """The tables the README's blocks name, on the test backend."""
    DynamoDBStore("idempotency", ddb).create_table()
    powertools_setup.create_table(ddb, "idempotency-powertools")
    yield
    for name in ("idempotency", "idempotency-powertools"):
        ddb.delete_table(TableName=name)


def test_the_readme_configurations_replay_a_client_retry_of_the_same_api_gateway_event(
    ddb: Any, tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "idempotency", library)  # the name the README copies the folder under
    created: list[str] = []

    def create_order(order: dict[str, Any]) -> dict[str, Any]:
        created.append(order["order_id"])
        return {"order_id": order["order_id"], "status": "created", "n": len(created)}

    event, retry = load(EVENT), client_retry(load(EVENT))
    assert event["requestContext"]["requestId"] != retry["requestContext"]["requestId"]
    assert body_of(event) == body_of(retry) and event["body"] != retry["body"]  # same order, re-serialised
    answers = {}
    for name, code in readme_blocks().items():
        namespace: dict[str, Any] = {"dynamodb": ddb, "create_order": create_order}
        exec(compile(code, f"README.md ({name})", "exec"), namespace)
        context = powertools_setup.StandInLambdaContext(30_000)
        first = namespace["handler"](event, context)
        again = namespace["handler"](retry, context)
        answers[name] = (first, again)
        assert again == first, name
    # each library ran the order once, and both replayed the retry
    assert created == ["order-1001", "order-1001"]
    assert answers["ours"][0]["n"] == 2 and answers["powertools"][0]["n"] == 1


def test_fingerprinting_the_whole_api_gateway_event_makes_every_retry_a_422() -> None:
    event, retry = load(EVENT), client_retry(load(EVENT))
    runs: list[int] = []

    def make(**options: Any) -> Idempotency:
        return Idempotency(
            store=MemoryStore(), clock=ManualClock(), scope="orders", token_header="Idempotency-Key", **options
        )

    whole = make()  # the default: the whole payload is fingerprinted
    whole.execute(event, lambda: runs.append(1))
    with pytest.raises(PayloadMismatch) as info:
        whole.execute(retry, lambda: runs.append(1))
    assert info.value.http_status == 422 and runs == [1]

    for expression in ("body", "powertools_json(body)", "body.[order_id, amount, currency]"):
        body_only = make(fingerprint_expression=expression)
        first = body_only.execute(event, lambda: runs.append(2) or "created")
        again = body_only.execute(retry, lambda: runs.append(2))
        assert (first.replayed, again.replayed, again.value) == (False, True, "created"), expression
        # and a different order under the same key is still refused
        tampered = {**retry, "body": json.dumps({**body_of(retry), "amount": 1})}
        with pytest.raises(PayloadMismatch):
            body_only.execute(tampered, lambda: runs.append(3))
    assert runs == [1, 2, 2, 2]
