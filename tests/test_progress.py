"""The learner's progress records: written silently, posted without ever slowing a check, summed up honestly."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from helpers import progress
from helpers.idempotency import HttpResponse
from helpers.labs.report import LabCheckFailed, Report
from helpers.services.http import LoopbackServer, free_port, read_body, send

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def check(minute: float, lab: str = "lab01", *, met: int = 2, total: int = 5, miss: str | None = "x") -> dict:
    return {"kind": "check", "at": at(minute), "lab": lab, "met": met, "total": total, "first_miss": miss}


def opened(minute: float, prefix: str) -> dict:
    return {"kind": "setup", "at": at(minute), "notebook": prefix}


class Receiver(LoopbackServer):
    """The board's record endpoint, reduced to what the poster needs: it keeps what arrives and answers 204."""

    def __init__(self, port: int = 0, status: int = 204) -> None:
        super().__init__(port=port)
        self.batches: list[list[dict]] = []
        self.tokens: list[str] = []
        self.status = status

    def serve(self, http: BaseHTTPRequestHandler) -> None:
        self.batches.append(json.loads(read_body(http)))
        self.tokens.append(http.headers.get("Authorization", ""))
        send(http, HttpResponse(self.status, {}, b""))

    @property
    def ids(self) -> list[str]:
        return [entry["id"] for batch in self.batches for entry in batch]


@pytest.fixture
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "progress.jsonl"
    monkeypatch.setenv(progress.FILE_ENV, str(target))
    monkeypatch.delenv(progress.URL_ENV, raising=False)
    return target


def test_a_record_is_one_json_line_and_nothing_is_printed(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    progress.record_setup("nb06")
    progress.record_check("Lab 01 · the double-charging consumer", met=3, total=5, first_miss="every order is charged")
    assert capsys.readouterr() == ("", "")
    first, second = (json.loads(line) for line in recording.read_text().splitlines())
    assert first["kind"] == "setup" and first["notebook"] == "nb06" and first["v"] == progress.SCHEMA
    assert second["lab"] == "lab01" and (second["met"], second["total"]) == (3, 5)
    assert first["id"] != second["id"] and len(first["id"]) == 32
    assert progress.read(recording) == [first, second]


def test_under_test_nothing_is_recorded_unless_a_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.FILE_ENV, raising=False)
    assert progress.under_test()
    assert progress.progress_file() is None
    assert progress.record("setup", notebook="nb00") is None


def test_a_record_that_cannot_be_written_breaks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(progress.FILE_ENV, str(blocker / "progress.jsonl"))  # a directory that cannot exist
    assert progress.record("setup", notebook="nb00") is None


def test_setup_and_a_lab_verdict_each_leave_a_record(recording: Path, backend: Any) -> None:
    from helpers.notebook import setup

    setup("nb97", quiet=True).cleanup()
    report = Report("Lab 04 · route AU/NZ and big orders")
    report.expect("every pattern is one AWS accepts", True, observed="ok", hint="-")
    report.expect("au-nz receives exactly ...", False, observed="missing", hint="list them")
    with pytest.raises(LabCheckFailed):
        report.verdict()
    setup_record, check_record = progress.read(recording)
    assert setup_record["notebook"] == "nb97"
    assert check_record["lab"] == "lab04" and check_record["first_miss"] == "au-nz receives exactly ..."
    assert (check_record["met"], check_record["total"]) == (1, 2)


def test_records_are_posted_with_the_learners_token(recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Receiver() as board:
        monkeypatch.setenv(progress.URL_ENV, f"{board.url}/records")
        monkeypatch.setenv(progress.TOKEN_ENV, "learner-token")
        entry = progress.record("setup", notebook="nb01")
        assert progress.flush(5)
        assert entry is not None and entry["id"] in board.ids
        assert set(board.tokens) == {"token learner-token"}


def test_an_unreachable_board_costs_a_check_nothing_and_records_wait_for_the_next_post(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv(progress.URL_ENV, f"http://127.0.0.1:{port}/records")
    monkeypatch.setenv(progress.TOKEN_ENV, "learner-token")
    started = time.monotonic()
    lost = progress.record("check", lab="lab02", met=1, total=7, first_miss="x")
    assert time.monotonic() - started < 0.5, "recording waited on the network"
    assert not progress.flush(0.5), "nothing listens: the record must still be pending"
    with Receiver(port=port) as board:
        later = progress.record("check", lab="lab02", met=7, total=7, first_miss=None)
        assert progress.flush(5)
        assert lost is not None and later is not None
        assert board.ids[-2:] == [lost["id"], later["id"]], "the waiting record goes first, in order"


def test_a_slow_board_never_slows_the_notebook(recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    class Slow(Receiver):
        def serve(self, http: BaseHTTPRequestHandler) -> None:
            release.wait(10)
            super().serve(http)

    with Slow() as board:
        monkeypatch.setenv(progress.URL_ENV, f"{board.url}/records")
        monkeypatch.setenv(progress.TOKEN_ENV, "learner-token")
        started = time.monotonic()
        for n in range(5):
            progress.record("setup", notebook=f"nb0{n}")
        assert time.monotonic() - started < 0.5
        release.set()
        assert progress.flush(10)


def test_done_is_sticky_and_the_latest_run_says_what_to_fix() -> None:
    runs = [check(0), check(1, met=5, miss=None), check(2, met=4, miss="a later regression")]
    lab = progress.summarise(runs).labs["lab01"]
    assert lab.done and lab.state == "done" and lab.runs == 3
    assert lab.first_miss == "a later regression" and (lab.met, lab.total) == (4, 5)
    assert not lab.stuck


def test_stuck_means_the_same_first_miss_three_times_in_ten_minutes() -> None:
    three_in_ten = [check(0, miss="A"), check(4, miss="A"), check(9, miss="A")]
    assert progress.summarise(three_in_ten).labs["lab01"].stuck
    spread_out = [check(0, miss="A"), check(6, miss="A"), check(12, miss="A")]
    assert not progress.summarise(spread_out).labs["lab01"].stuck
    moving_on = [check(0, miss="A"), check(1, miss="A"), check(2, miss="B")]
    assert not progress.summarise(moving_on).labs["lab01"].stuck
    two = [check(0, miss="A"), check(1, miss="A")]
    assert not progress.summarise(two).labs["lab01"].stuck
    solved = [*three_in_ten, check(10, met=5, miss=None)]
    assert not progress.summarise(solved).labs["lab01"].stuck


def test_records_arrive_in_any_order_and_a_reset_starts_afresh() -> None:
    records = [check(5, met=5, miss=None), opened(0, "nb06"), opened(1, "nb09"), opened(2, "lab02")]
    summary = progress.summarise(reversed(records))
    assert summary.furthest_chapter == "09" and summary.labs["lab01"].done and "lab02" in summary.opened
    after_reset = progress.summarise([*records, {"kind": "reset", "at": at(6)}, opened(7, "nb01")])
    assert after_reset.furthest_chapter == "01" and not after_reset.labs["lab01"].done and after_reset.records == 1


def test_every_course_lab_has_a_row_and_its_key_matches_the_check_titles() -> None:
    summary = progress.summarise([])
    assert list(summary.labs) == ["lab01", "lab02", "lab03", "lab04", "lab05"]
    assert progress.lab_key("Lab 05 · keys that survive the pipeline") == "lab05"
    assert progress.lab_key("05_keys_that_survive_the_pipeline") == "lab05"
    assert progress.lab_key("lab03") == "lab03"


def test_where_am_i_names_the_furthest_chapter_and_each_labs_state() -> None:
    records = [opened(0, "nb06"), check(1, met=5, miss=None), check(3, "lab02", met=3, total=7, miss="a 409")]
    text = progress.where_am_i(records, reference=T0 + timedelta(minutes=13))
    assert "Furthest chapter opened: 06 · Where duplicates come from" in text
    assert "01 · Route AU/NZ and big orders" in text and "done (1 run)" in text
    assert "tried: 3 of 7 met, fix first: a 409 (1 runs, last 10 min ago)" in text
    assert "03 · The double-charging consumer" in text and "not started" in text
    assert text.endswith("Next: finish lab02 · The callback that waits forever.")
    assert progress.where_am_i([]).startswith("No progress recorded yet")


def test_where_am_i_runs_as_a_command(recording: Path) -> None:
    import subprocess
    import sys

    progress.record_setup("nb03")
    out = subprocess.run(
        [sys.executable, "-m", "helpers.progress", str(recording)], capture_output=True, text=True, check=True
    ).stdout
    assert f"Progress recorded in {recording}" in out and "03 · Event bus routing" in out
