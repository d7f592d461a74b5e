"""``python -m benchmarks.idempotency``: parse the flags, run every measurement, print the report (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from .env import Backend
from .probes import cost_profile, probe_call_costs, probe_round_trips
from .report import jsonable, report
from .takeover import takeover_scenarios
from .workload import Args, workload


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.idempotency",
        description="helpers.idempotency vs Powertools idempotency, on the same backend in one run",
    )
    p.add_argument("--requests", type=int, default=200, help="requests per workload (default 200)")
    p.add_argument("--duplicates", type=float, default=0.3, help="share of requests that repeat an earlier one")
    p.add_argument("--workers", type=int, default=4, help="worker threads, each its own container (default 4)")
    p.add_argument(
        "--crash-rate",
        type=float,
        default=0.0,
        help="share of unique requests whose first attempt crashes right after the side effect (default 0)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lease", type=float, default=0.5, help="lease in seconds (ours; Powertools' stand-in context)")
    p.add_argument("--takeover-lease", type=float, default=0.3, help="lease for the takeover scenarios")
    p.add_argument("--repeat", type=int, default=2, help="timed passes per library; the best is reported")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    ns = p.parse_args(argv)
    if not 0 <= ns.duplicates < 1 or not 0 <= ns.crash_rate <= 1 or ns.requests < 1 or ns.workers < 1:
        p.error("need requests >= 1, workers >= 1, 0 <= duplicates < 1, 0 <= crash-rate <= 1")
    return Args(**{k.replace("-", "_"): v for k, v in vars(ns).items()})


def run(args: Args) -> dict[str, Any]:
    import aws_lambda_powertools

    env = Backend()
    try:
        started = time.perf_counter()
        probe = probe_round_trips(env, args.lease)
        costs = probe_call_costs(env)
        profile = cost_profile(env, args)
        a = workload(env, args, "memory", costs)
        b = workload(env, args, "dynamodb", costs)
        takeover = takeover_scenarios(env, args.takeover_lease)
        return {
            "args": asdict(args),
            "backend": f"{env.backend.name} at {env.backend.endpoint_url or 'AWS'}",
            "powertools_version": aws_lambda_powertools.__version__
            if hasattr(aws_lambda_powertools, "__version__")
            else _dist_version("aws-lambda-powertools"),
            "round_trips": probe,
            "call_costs_ms": costs,
            "cost_profile": profile,
            "workloads": [a, b],
            "takeover": takeover,
            "seconds": time.perf_counter() - started,
        }
    finally:
        env.close()


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    if args.json:
        json.dump(jsonable(results), sys.stdout, indent=2, default=str)
        print()
    else:
        print(report(results))
    return 0
