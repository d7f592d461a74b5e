"""The side-effect ledger: every card charge is a row in DynamoDB, so duplicates are counted, never asserted in prose.

A charge gets its own id, so charging twice for one order leaves two rows: that is the damage the course makes
visible. The ids count up in a process (so a notebook's stored outputs stay the same); a forked process (the labs'
worker processes) starts its own range, so two processes never write the same id and one charge never hides another.
``charges_per_order()`` is the number a notebook asserts ("was my card charged twice?").
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from helpers.aws.resources import Resources

_sequence = itertools.count(1)


def _new_range_in_child() -> None:
    """After a fork: a range of ids of this process's own (the parent's counter was copied into the child)."""
    global _sequence
    _sequence = itertools.count(1_000_000 * (1 + secrets.randbelow(1_000_000)))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_range_in_child)


def dynamodb_number(value: float | str | Decimal) -> str:
    """The number as DynamoDB returns it: normalised (``18.0`` -> ``18``, ``5.50`` -> ``5.5``), never in exponent form.

    AWS and LocalStack normalise stored numbers; moto keeps the string it was given. Writing the normalised form makes
    every backend read back the same amount.
    """
    number = Decimal(str(value)).normalize()
    return format(number, "f")


@dataclass
class Ledger:
    """A DynamoDB table of charges, one item per charge actually made."""

    resources: Resources
    name: str = "ledger"
    table: str = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = self.resources.ensure_table(self.name, partition_key="charge_id")
        self._ddb = self.resources.backend.client("dynamodb")

    def charge(self, order_id: str, amount: float | str | Decimal, *, by: str = "service", key: str = "") -> str:
        """Record one charge (the side effect). Returns the charge id; charging again makes another row."""
        put = self.put_item_request(order_id, amount, by=by, key=key)["Put"]
        self._ddb.put_item(**put)
        return put["Item"]["charge_id"]["S"]

    def put_item_request(self, order_id: str, amount: float | str | Decimal, *, by: str, key: str = "") -> dict:
        """The charge as a TransactWriteItems ``Put``, for a side effect fenced by an idempotency claim."""
        with self._lock:
            seq = next(_sequence)
        item = {
            "charge_id": {"S": f"ch-{seq:06d}"},
            "order_id": {"S": str(order_id)},
            "amount": {"N": dynamodb_number(amount)},
            "by": {"S": by},
            "seq": {"N": str(seq)},
        }
        if key:
            item["idempotency_key"] = {"S": key}
        return {"Put": {"TableName": self.table, "Item": item}}

    def charges(self) -> list[dict[str, Any]]:
        """All charges in the order they were made (a consistent scan; the ledger is small by design)."""
        items: list[dict[str, Any]] = []
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
            for raw in page["Items"]:
                items.append(
                    {
                        "order_id": raw["order_id"]["S"],
                        "amount": Decimal(raw["amount"]["N"]),
                        "by": raw["by"]["S"],
                        "idempotency_key": raw.get("idempotency_key", {}).get("S", ""),
                        "seq": int(raw["seq"]["N"]),
                    }
                )
        return sorted(items, key=lambda c: c["seq"])

    def count(self) -> int:
        return len(self.charges())

    def charges_per_order(self) -> dict[str, int]:
        return dict(sorted(Counter(c["order_id"] for c in self.charges()).items()))

    def duplicates(self) -> int:
        """Charges beyond the first for each order: the money a customer would ask back."""
        return sum(n - 1 for n in self.charges_per_order().values())

    def frame(self) -> Any:
        """The charges as a pandas DataFrame, without the volatile charge ids."""
        import pandas as pd

        rows = self.charges()
        frame = pd.DataFrame(rows, columns=["order_id", "amount", "by", "idempotency_key", "seq"])
        return frame.drop(columns=["seq"]).reset_index(drop=True)

    def clear(self) -> None:
        """Forget every charge (between demos in one notebook).

        A demo that starts again after the notebook's cleanup cell (a widget used after Run All) finds its table
        gone: clearing then means creating it afresh, so the demo runs instead of failing on a missing table.
        """
        try:
            pages = list(
                self._ddb.get_paginator("scan").paginate(TableName=self.table, ProjectionExpression="charge_id")
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.table = self.resources.ensure_table(self.name, partition_key="charge_id")
            return
        for page in pages:
            for raw in page["Items"]:
                self._ddb.delete_item(TableName=self.table, Key={"charge_id": raw["charge_id"]})
