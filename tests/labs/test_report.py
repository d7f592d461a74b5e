"""helpers/labs/report.py: the table, the verdict (the one place a check's outcome is decided), the stable error."""

from __future__ import annotations

import pytest

from helpers.labs.report import Expectation, LabCheckFailed, Report, plural


def test_a_report_with_a_miss_prints_its_table_and_raises_naming_the_first_miss(capsys) -> None:  # type: ignore[no-untyped-def]
    report = Report("Lab 99 · a test")
    report.expect("one", True, observed="fine", hint="-", key="one")
    report.expect("two", False, observed="not fine", hint="do this", key="two")
    report.expect("three", False, observed="neither", hint="and that", key="three")
    with pytest.raises(LabCheckFailed) as failed:
        report.verdict()
    assert str(failed.value) == "2 of 3 expectations missed. Fix first: two. Hint: do this"
    assert failed.value.report is report
    assert (report.met, report.total, report.first_miss.key) == (1, 3, "two")
    assert report.keys_missed() == ["two", "three"] and not report.passed
    assert report.seconds is not None and report.seconds >= 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Lab 99 · a test: 1 of 3 expectations met"
    assert "[MISSED] two" in out and "hint: do this" in out and "hint: -" not in out
    assert failed.value._render_traceback_() == [
        "LabCheckFailed: 2 of 3 expectations missed. Fix first: two. Hint: do this"
    ]


def test_a_report_without_a_miss_says_the_lab_is_done(capsys) -> None:  # type: ignore[no-untyped-def]
    report = Report("Lab 99 · a test", [Expectation("one", True, "fine", "-")])
    assert report.verdict() is report and report.passed and report.first_miss is None
    assert "All 1 expectations met: Lab 99 · a test is done." in capsys.readouterr().out


def test_plural() -> None:
    assert [plural(1, "charge"), plural(2, "charge"), plural(2, "crash"), plural(0, "process")] == [
        "1 charge",
        "2 charges",
        "2 crashes",
        "0 processes",
    ]
