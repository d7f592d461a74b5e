"""The benchmark at a tiny size, so it cannot rot: correctness numbers only, never timings."""

from __future__ import annotations

import json

import pytest

from benchmarks import idempotency as bench
from helpers.chapters import consumer


@pytest.fixture(scope="module")
def results(backend):
    args = bench.Args(
        requests=12, duplicates=0.5, workers=2, crash_rate=0.34, seed=3, lease=0.2, takeover_lease=0.2, repeat=1
    )
    return bench.run(args)


def test_round_trips_per_path(results):
    ours, pt = results["round_trips"]["helpers.idempotency"], results["round_trips"]["Powertools"]
    for path, expected in (("first call", 2), ("duplicate", 1), ("cached", 0)):
        assert ours[path] == {"botocore": expected, "library": expected}, path
        assert pt[path]["botocore"] == expected, path
    for path, expected in (("transactional first", 1), ("transactional duplicate", 1), ("transactional cached", 0)):
        assert ours[path] == {"botocore": expected, "library": expected}, path
    assert results["round_trips"]["side_effects"] == {"helpers.idempotency": 2, "Powertools": 1}


def per_path(result):
    return {k: result.path_round_trips[k] / v for k, v in result.paths.items() if v and "crashed" not in k}


def test_workloads_count_side_effects_and_round_trips(results):
    memory, dynamo = results["workloads"]
    assert memory["unique"] == 6 and memory["crashes"] == 2
    for w in (memory, dynamo):
        for r in (w["ours"], w["powertools"]):
            assert r.errors == {}, r.library
            assert r.side_effects == r.expected_side_effects, r.library
            assert r.paths["crashed"] == 2, r.library
        assert w["ours"].round_trips == w["ours"].library_round_trips  # the library counts what botocore sees
    # unfenced, a crash right after the effect costs a second effect, for both libraries
    assert memory["ours"].side_effects == memory["powertools"].side_effects == 6 + 2
    # a transactional effect cannot be split from its completion: no second effect
    assert dynamo["ours"].side_effects == 6 and dynamo["powertools"].side_effects == 6 + 2
    for name, expected in (("first", 2.0), ("duplicate", 1.0), ("cached", 0.0), ("in_progress", 1.0)):
        if name in memory["ours"].paths:
            assert per_path(memory["ours"])[name] == expected, name
    # Powertools under concurrency with 0.2 s leases: a duplicate that meets a record whose lease is just ending
    # sometimes reads it again (2 calls), so its average depends on timing; the exact single-threaded counts are
    # asserted in test_round_trips_per_path.
    powertools = per_path(memory["powertools"])
    assert powertools["first"] == 2.0 and powertools.get("cached", 0.0) == 0.0
    assert 1.0 <= powertools.get("duplicate", 1.0) <= 2.0
    assert per_path(dynamo["ours"])["first"] == 1.0
    assert per_path(dynamo["powertools"])["first"] == 3.0


def test_the_like_for_like_variant_does_what_powertools_does(results):
    dynamo = results["workloads"][1]
    rows = {r.library: r for r in dynamo["results"]}
    assert list(rows) == [bench.OURS_TXN, bench.OURS_LIKE, bench.POWERTOOLS]
    like, pt, txn = rows[bench.OURS_LIKE], rows[bench.POWERTOOLS], rows[bench.OURS_TXN]
    assert like.errors == {} and like.side_effects == like.expected_side_effects == 6 + 2  # unfenced, like Powertools
    assert per_path(like)["first"] == per_path(pt)["first"] == 3.0  # claim, the in-action write, completion
    # the same number of writes of the same kind, except the completion: our conditional PutItem, their UpdateItem
    assert set(like.ops) <= {"PutItem", "DeleteItem"} and "UpdateItem" in pt.ops
    assert set(txn.ops) <= {"TransactWriteItems", "GetItem"}
    assert [c["ours"] for c in dynamo["comparisons"]] == [bench.OURS_TXN, bench.OURS_LIKE]
    for c in dynamo["comparisons"]:
        assert c["emulator"]["favours"] in (None, "ours", "Powertools")
        assert c["emulator"]["ratio_by_calls"] > 0


def test_call_costs_are_measured_for_every_operation_used(results):
    assert set(results["call_costs_ms"]) == set(bench.COST_OPS)
    assert all(ms > 0 for ms in results["call_costs_ms"].values())


def test_lease_takeover_scenarios(results):
    """The benchmark runs notebook 09's takeover (one implementation), with real time."""
    a, b = consumer.A, consumer.B
    rows = {t["variant"]: t for t in results["takeover"]}
    pt = rows["Powertools"]
    assert pt["charges"] == [a, b] and pt["stale_worker_told"].startswith("nothing") and pt["record_ends_with"] == a
    unfenced = rows["ours, unfenced"]
    assert unfenced["charges"] == [a, b] and unfenced["stale_worker_told"].startswith("LeaseLost")
    assert unfenced["record_ends_with"] == b
    fenced = rows["ours, fenced (2 round trips)"]
    assert fenced["charges"] == [b] and fenced["stale_worker_told"].startswith("LeaseLost")
    single = rows["ours, single round trip"]
    assert single["charges"] == [b] and single["stale_worker_told"] == "replayed B's result"
    assert fenced["record_ends_with"] == single["record_ends_with"] == b


def test_report_and_json_render(results):
    text = bench.report(results)
    assert "throughput ratio (helpers.idempotency, like-for-like / Powertools)" in text and "stand-in context" in text
    assert "per-call costs" in text and "What carries over to AWS" in text
    assert json.loads(json.dumps(bench.jsonable(results), default=str))["workloads"][0]["kind"] == "memory"


def test_arguments_are_checked():
    assert bench.parse_args(["--requests", "5", "--crash-rate", "0.5"]).crash_rate == 0.5
    with pytest.raises(SystemExit):
        bench.parse_args(["--duplicates", "1.5"])


def test_where_the_time_goes_shows_the_same_calls_for_both_libraries(results):
    profile = results["cost_profile"]
    ours, pt = profile["libraries"][bench.OURS], profile["libraries"][bench.POWERTOOLS]
    assert profile["requests"] == 12 and profile["workers"] == 2
    # the same number of calls per request, role by role; only the completion's operation differs
    assert ours["calls_per_request"] == pt["calls_per_request"]
    roles = {"PutItem (claim)", "PutItem (claim, refused)"}
    assert roles <= set(ours["kinds"]) and roles <= set(pt["kinds"])
    for kind in roles:
        assert ours["kinds"][kind]["calls_per_request"] == pt["kinds"][kind]["calls_per_request"]
    assert set(ours["kinds"]) - roles == {"PutItem (completion, owner condition)"}
    assert set(pt["kinds"]) - roles == {"UpdateItem (completion, unconditional)"}
    for p in (ours, pt):
        assert p["total_ms_per_request"] == pytest.approx(p["in_calls_ms_per_request"] + p["outside_ms_per_request"])
        assert all(k["median_ms"] > 0 for k in p["kinds"].values())
    assert "Where the time goes" in bench.report(results) and "outside calls (library + SDK)" in bench.report(results)
