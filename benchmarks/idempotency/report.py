"""The report: tables of round trips per path, per-call costs, workloads, where the time goes, and the takeover."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from typing import Any

from .workload import PassResult


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_PATH_ORDER = {"first": 0, "duplicate": 1, "cached": 2, "in_progress": 3, "crashed": 4}


def report(results: dict[str, Any]) -> str:
    a = results["args"]
    out = [
        f"Idempotency benchmark: helpers.idempotency vs Powertools {results['powertools_version']} "
        f"(backend: {results['backend']}, same server for both)",
        f"{a['requests']} requests, {a['duplicates']:.0%} duplicates, {a['workers']} workers, crash rate "
        f"{a['crash_rate']:.2f}, seed {a['seed']}, lease {a['lease']} s, best of {a['repeat']} timed passes",
        "",
        "Round trips per request (DynamoDB API calls counted by a botocore hook; ours also by the library itself)",
    ]
    probe = results["round_trips"]
    rows = []
    for path in (
        "first call",
        "duplicate",
        "cached",
        "transactional first",
        "transactional duplicate",
        "transactional cached",
    ):
        ours = probe["helpers.idempotency"].get(path)
        pt = probe["Powertools"].get(path)
        rows.append(
            [
                path,
                f"{ours['botocore']} (library says {ours['library']})" if ours else "n/a",
                pt["botocore"] if pt else "n/a (no transactional mode)",
            ]
        )
    out += [_table(rows, ["path", "helpers.idempotency", "Powertools"]), ""]

    costs = results["call_costs_ms"]
    out.append("What this backend charges per call (median ms, single-threaded; on AWS single-item calls are alike)")
    out += [_table([[op, f"{ms:.2f}"] for op, ms in costs.items()], ["operation", "ms"]), ""]

    out += [cost_table(results["cost_profile"]), ""]

    for w in results["workloads"]:
        title = (
            "Workload A: side effect in memory"
            if w["kind"] == "memory"
            else "Workload B: side effect is a DynamoDB write (Powertools and ours like-for-like: a PutItem inside "
            "the function; ours in one transaction: the write commits with the record)"
        )
        out.append(f"{title}; {w['unique']} unique requests, {w['crashes']} crash right after the side effect")
        rows = []
        for r in w["results"]:
            rts = f"{r.round_trips}" + (
                f" (library {r.library_round_trips})" if r.library_round_trips is not None else ""
            )
            errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "none"
            ops = ", ".join(f"{op} {n}" for op, n in sorted(r.ops.items()))
            rows.append(
                [
                    r.library,
                    f"{r.rps:.0f}",
                    f"{r.side_effects} (expected {r.expected_side_effects})",
                    rts,
                    f"{r.round_trips / r.requests:.2f}",
                    ops,
                    errors,
                ]
            )
        header = ["library", "req/s", "side effects", "round trips", "rt/request", "calls", "errors"]
        out.append(_table(rows, header))
        out.append("paths (requests x round trips each):")
        for r in w["results"]:
            paths = ", ".join(
                f"{k} {v} x {r.path_round_trips[k] / v:.2f}" if k != "crashed" and "crashed" not in k else f"{k} {v}"
                for k, v in sorted(r.paths.items(), key=lambda kv: _PATH_ORDER.get(kv[0], 99))
            )
            out.append(f"  {r.library:<36} {paths}")
        for c in w["comparisons"]:
            e = c["emulator"]
            out.append(
                f"throughput ratio ({c['ours']} / Powertools): {c['throughput_ratio']:.2f}; expected from call "
                f"counts {e['ratio_by_calls']:.2f}, from this backend's call costs {e['ratio_by_call_cost']:.2f}"
            )
            if e["favours"] is not None:
                out.append(
                    f"  -> this backend's per-call costs favour {e['favours']} by {abs(e['bias'] - 1):.0%}: at its "
                    f"prices the calls cost {e['ours_store_ms_per_request']:.2f} vs "
                    f"{e['powertools_store_ms_per_request']:.2f} ms per request; priced alike, as single-item calls "
                    f"are on AWS, the calls alone predict {e['ratio_by_calls']:.2f}. That part does not carry over."
                )
            else:
                out.append("  -> per-call costs on this backend favour neither side (within 10 %)")
        out.append("")

    out.append(
        f"Lease takeover: worker A claims, stalls past a {a['takeover_lease']} s lease, B takes over and "
        "charges, then A resumes"
    )
    rows = [
        [
            t["variant"],
            f"{len(t['charges'])} ({', '.join(t['charges'])})",
            t["stale_worker_told"],
            t["record_ends_with"],
        ]
        for t in results["takeover"]
    ]
    out.append(_table(rows, ["variant", "charges", "what A was told", "record ends with"]))
    out += [
        "",
        "Fairness notes: Powertools expires IN_PROGRESS records only when it knows the Lambda's remaining time;",
        "outside Lambda each Powertools worker registers a stand-in context whose get_remaining_time_in_millis()",
        f"returns the same lease we give our library ({a['lease']} s; {a['takeover_lease']} s in the takeover runs).",
        "Both use their own client per worker, the same payload validation, local cache on, and the same request",
        "order and partition, and fresh tables per pass; passes alternate which library runs first.",
        "What carries over to AWS: the round trips per path and the side-effect counts. Throughput on an emulator",
        "measures client-side cost plus the emulator's price per kind of call (moto copies every table a",
        "TransactWriteItems touches; an UpdateItem and a PutItem cost differently on each emulator): compare the",
        "like-for-like row for the libraries, and read the 'favour' lines before quoting a ratio. On AWS a",
        "transaction is one round trip at twice the write capacity of its items. 'Where the time goes' sends the",
        "same requests one at a time, the libraries taking turns, so each call is timed alone: where both make the",
        "same calls, a difference per request is what this backend charges for each kind of call.",
        f"total run time {results['seconds']:.1f} s",
    ]
    return "\n".join(out)


def jsonable(value: Any) -> Any:
    if isinstance(value, PassResult):  # not asdict(): it rebuilds a Counter from (key, value) pairs as keys
        data = {f.name: getattr(value, f.name) for f in fields(value)}
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in data.items()} | {"rps": value.rps}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def cost_table(profile: dict[str, Any]) -> str:
    """Where the time of workload A goes, per kind of call, for both libraries side by side (ms per request)."""
    libraries = list(profile["libraries"])
    kinds = sorted({kind for lib in libraries for kind in profile["libraries"][lib]["kinds"]})
    rows = []
    for kind in kinds:
        row = [kind]
        for lib in libraries:
            k = profile["libraries"][lib]["kinds"].get(kind)
            row += (
                ["", "", ""]
                if k is None
                else [
                    f"{k['calls_per_request']:.2f}",
                    f"{k['median_ms']:.2f}",
                    f"{k['ms_per_request']:.2f}",
                ]
            )
        rows.append(row)
    for label, field_name in (
        ("all calls", "in_calls_ms_per_request"),
        ("outside calls (library + SDK)", "outside_ms_per_request"),
        ("total per request", "total_ms_per_request"),
    ):
        row = [label]
        for lib in libraries:
            p = profile["libraries"][lib]
            calls = f"{p['calls_per_request']:.2f}" if field_name == "in_calls_ms_per_request" else ""
            row += [calls, "", f"{p[field_name]:.2f}"]
        rows.append(row)
    header = ["call (operation, role)"]
    for lib in libraries:
        short = "ours" if lib.startswith("helpers") else lib
        header += [f"{short} calls/req", "ms/call", "ms/req"]
    ours, pt = (profile["libraries"][lib] for lib in libraries)
    gap = ours["total_ms_per_request"] - pt["total_ms_per_request"]
    calls_gap = ours["in_calls_ms_per_request"] - pt["in_calls_ms_per_request"]
    outside_gap = ours["outside_ms_per_request"] - pt["outside_ms_per_request"]
    return "\n".join(
        [
            f"Where the time goes: workload A's {profile['requests']} requests sent to its {profile['workers']} "
            "containers one at a time (each call timed alone; ms/call is the median)",
            _table(rows, header),
            f"ours - Powertools per request: {gap:+.2f} ms = {calls_gap:+.2f} ms in calls "
            f"({ours['calls_per_request']:.2f} vs {pt['calls_per_request']:.2f} calls) {outside_gap:+.2f} ms outside "
            "calls",
        ]
    )
