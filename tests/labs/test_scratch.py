"""helpers/labs/scratch.py: what a check makes for itself is gone when it ends, also when it raises."""

from __future__ import annotations

import pytest

from helpers.labs.scratch import scratch
from helpers.notebook import setup


def test_a_checks_resources_go_and_the_learners_stay(backend) -> None:  # type: ignore[no-untyped-def]
    wb = setup("t-scratch", quiet=True)
    try:
        wb.resources.ensure_table("ledger", partition_key="charge_id")  # the learner's
        with pytest.raises(RuntimeError), scratch(wb) as resources:
            resources.ensure_queue("orders-r1")
            resources.ensure_bus("routing-r1")
            assert resources.prefix == "t-scratch-check"
            raise RuntimeError("the learner's code raised")
        assert [n for _, n in wb.resources.inventory()] == ["t-scratch-ledger"]
    finally:
        wb.cleanup()
