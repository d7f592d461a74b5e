"""The board's rules without a hub: rows and columns, sticky done, stuck, the most common first miss, the exports;
the record endpoint's cleaning and de-duplication; the claims that keep a learner name with its first browser."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tools.classroom import board
from tools.classroom.auth import Claims
from tools.classroom.board_service import Store, clean

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def check(minute: float, lab: str = "lab02", *, met: int = 3, total: int = 7, miss: str | None = "409") -> dict:
    return {"kind": "check", "at": at(minute), "lab": lab, "met": met, "total": total, "first_miss": miss}


def user(name: str, *, ready: bool = True, pending: str | None = None, admin: bool = False) -> dict:
    servers = {"": {"ready": ready, "pending": pending, "last_activity": at(1)}} if ready or pending else {}
    return {"name": name, "admin": admin, "kind": "user", "servers": servers, "last_activity": at(1)}


def test_a_learner_row_per_hub_user_and_per_learner_with_records_and_no_instructor() -> None:
    records = {"alice": [check(0)], "carol": [{"kind": "setup", "at": at(0), "notebook": "nb03"}]}
    users = [user("alice"), user("bob", ready=False), user("instructor", admin=True)]
    b = board.build(records, users, T0 + timedelta(minutes=5), instructors=["instructor"])
    assert [r.name for r in b.rows] == ["alice", "bob", "carol"]
    servers = {r.name: r.server for r in b.rows}
    assert servers == {"alice": "running", "bob": "stopped", "carol": "stopped"}
    assert next(r for r in b.rows if r.name == "carol").furthest_chapter == "03"
    assert b.running == 1


def test_server_states_as_the_hub_reports_them() -> None:
    assert board.server_state(None) == "stopped"
    assert board.server_state(user("a", ready=False, pending="spawn")) == "starting"
    assert board.server_state(user("a", ready=True, pending="stop")) == "stopping"
    assert board.server_state({"name": "a", "servers": {"": {"ready": False, "pending": None}}}) == "starting"
    assert board.server_state(user("a")) == "running"
    stopped = {"name": "a", "servers": {"": {"ready": False, "pending": None, "stopped": True}}}
    assert board.server_state(stopped) == "stopped", "include_stopped_servers lists a stopped server"


def test_per_lab_done_tried_not_started_and_the_most_common_first_miss() -> None:
    records = {
        "a": [check(0, miss="409"), check(2, met=7, miss=None)],  # done
        "b": [check(1, miss="409")],
        "c": [check(1, miss="409"), check(2, miss="409"), check(3, miss="409")],  # stuck
        "d": [check(1, miss="replay")],
        "e": [],
    }
    b = board.build(records, [], T0 + timedelta(minutes=4))
    lab02 = next(c for c in b.columns if c.key == "lab02")
    assert (lab02.done, lab02.tried, lab02.not_started) == (1, 3, 1)
    assert (lab02.common_miss, lab02.common_miss_count) == ("409", 2)
    assert lab02.misses == [("409", 2), ("replay", 1)]
    assert lab02.stuck == 1
    assert next(r for r in b.rows if r.name == "c").stuck == ["lab02"]
    lab01 = next(c for c in b.columns if c.key == "lab01")
    assert (lab01.done, lab01.tried, lab01.not_started) == (0, 0, 5)


def test_done_stays_done_on_the_board() -> None:
    b = board.build({"a": [check(0, met=7, miss=None), check(5, miss="a regression")]}, [], T0)
    lab = b.rows[0].labs["lab02"]
    assert lab.done and lab.first_miss == "a regression"
    assert next(c for c in b.columns if c.key == "lab02").common_miss is None, "a done learner is nobody's miss"


def test_csv_has_a_line_per_learner_and_lab() -> None:
    b = board.build({"a": [check(0)], "b": [check(0, lab="lab01", met=5, total=5, miss=None)]}, [], T0)
    rows = list(csv.DictReader(io.StringIO(board.to_csv(b))))
    assert len(rows) == 2 * 5 and set(rows[0]) == set(board.CSV_FIELDS)
    a02 = next(r for r in rows if r["learner"] == "a" and r["lab"] == "lab02")
    assert (a02["state"], a02["met"], a02["total"], a02["first_miss"], a02["runs"]) == ("tried", "3", "7", "409", "1")
    b01 = next(r for r in rows if r["learner"] == "b" and r["lab"] == "lab01")
    assert b01["state"] == "done"


def test_json_and_chart() -> None:
    b = board.build({"a": [check(0)]}, [user("a")], T0 + timedelta(minutes=3))
    data = board.to_json(b)
    assert json.loads(json.dumps(data))["learners"][0]["labs"]["lab02"]["minutes_since"] == 3
    svg = board.chart_svg(b)
    assert (
        svg.startswith("<svg")
        and svg.endswith("</svg>")
        and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    ), "the chart loads nothing"


def test_records_are_cleaned_bounded_and_timed_sensibly() -> None:
    now = T0
    good = {
        "kind": "check",
        "id": "ab" * 16,
        "at": at(-1),
        "lab": "lab02",
        "met": 3,
        "total": 7,
        "first_miss": "x" * 999,
    }
    kept = clean({**good, "learner": "mallory", "extra": "dropped"}, now)
    assert kept is not None and "learner" not in kept and "extra" not in kept and len(kept["first_miss"]) == 300
    assert clean({**good, "kind": "reset"}, now) is None, "a learner cannot reset their own row"
    assert clean({**good, "id": "not hex!"}, now) is None
    assert clean({**good, "lab": ""}, now) is None
    future = clean({**good, "at": (T0 + timedelta(days=30)).isoformat()}, now)
    assert future is not None and future["at"] == "2026-12-04T09:00:00Z", "a wild clock gets the receive time"
    assert clean("not a record", now) is None


def test_the_store_files_by_learner_counts_a_record_once_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    store = Store(path)
    entry = {"kind": "setup", "id": "cd" * 16, "at": at(0), "notebook": "nb00"}
    assert store.add("alice", [entry, entry]) == 1
    assert store.add("alice", [entry]) == 0, "a re-post (a lost response, a retry) counts once"
    store.reset("alice")
    again = Store(path)
    assert [e["kind"] for e in again.by_learner["alice"]] == ["setup", "reset"]
    assert board.build(again.by_learner, [], T0).rows[0].records == 0, "records before a reset do not count"


def test_a_learner_name_stays_with_the_browser_that_claimed_it(tmp_path: Path) -> None:
    claims = Claims(tmp_path / "claims.json")
    seat = claims.admit("alice", None)
    assert seat
    assert claims.admit("alice", seat) == seat, "the same browser comes back"
    assert claims.admit("alice", None) is None, "another browser with the room password is refused"
    assert claims.admit("alice", "forged") is None
    assert claims.admit("bob", None) not in (None, seat)
    assert claims.taken() == {"alice", "bob"}
    assert claims.release("alice") and not claims.release("alice")
    assert claims.admit("alice", None), "after 'let in again' the next browser claims it"
    assert oct((tmp_path / "claims.json").stat().st_mode & 0o777) == "0o600"
