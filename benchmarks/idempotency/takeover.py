"""Lease takeover in the benchmark: the same scenario notebook 09 runs (``helpers.chapters.consumer.lease_takeover``),
on the benchmark's tables and with real time.

Worker A claims, stalls past its lease (it really sleeps: the benchmark measures with the wall clock), worker B takes
over, charges and completes; then A resumes. One implementation serves both: this module only says where the charges
go (:class:`BenchmarkCharges`, rows in the benchmark's ledger table) and which tables and clients each worker uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helpers.chapters.consumer import TAKEOVER_VARIANTS, TakeoverStage, lease_takeover
from helpers.idempotency import Effect, IdempotencyConfig, SystemClock

from .env import FINGERPRINT, Backend


@dataclass
class BenchmarkCharges:
    """The takeover's side effect as rows of the benchmark's ledger table, one request id per variant."""

    env: Backend
    request_id: str

    def result(self, by: str) -> dict[str, Any]:
        return {"charged_by": by}

    def charge(self, by: str) -> dict[str, Any]:
        self.env.ddb.put_item(**self.env.ledger_put(self.request_id, by)["Put"])
        return self.result(by)

    def effect(self, by: str) -> Effect:
        return Effect(result=self.result(by), writes=[self.env.ledger_put(self.request_id, by)])

    def made_by(self) -> list[str]:
        return [row["by"] for row in self.env.ledger_rows(self.request_id)]


def takeover_scenarios(env: Backend, lease: float) -> list[dict[str, Any]]:
    """Every variant of notebook 09's takeover on the backend's tables, with a ``lease``-second lease."""
    config = IdempotencyConfig(
        scope="takeover",
        token_field="request_id",
        fingerprint_expression=FINGERPRINT,
        lease_duration=lease,
    )
    rows = []
    for n, variant in enumerate(TAKEOVER_VARIANTS, 1):
        request = {"request_id": f"takeover-{n}", "customer": "c", "amount": 42, "currency": "EUR"}
        stage = TakeoverStage(
            client=lambda worker: env.client(),
            reader=env.ddb,
            config=config,
            table=env.ours_table,
            clock=SystemClock(),
            powertools_table=env.pt_table,
            powertools_lease_s=lease,
            powertools_prefix=f"takeover-{n}",
        )
        result = lease_takeover(variant, stage, request, BenchmarkCharges(env, f"takeover/{request['request_id']}"))
        rows.append(
            {
                "variant": result.variant,
                "charges": sorted(result.charged_by),
                "stale_worker_told": result.told,
                "record_ends_with": result.record_holds,
            }
        )
    return rows
