"""The instructor's board, as data: learner x lab, per learner where they are, per lab what to explain to the room.

Pure functions of the records the board received and the hub's view of the learners' servers, so the rules (done is
sticky, stuck is the same first miss three times in ten minutes, the most common first miss) are unit-tested without a
hub. One learner's records are folded by ``helpers.progress.summarise``, the function behind a learner's own "where
am I", so the board and the learner never disagree.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from helpers import course, progress
from helpers.progress import LabProgress, parse_time


@dataclass
class LearnerRow:
    name: str
    server: str  # running / starting / stopping / stopped
    last_activity_min: int | None
    furthest_chapter: str | None
    labs: dict[str, LabProgress]
    records: int

    @property
    def stuck(self) -> list[str]:
        return [key for key, lab in self.labs.items() if lab.stuck]


@dataclass
class LabColumn:
    key: str
    title: str
    done: int = 0
    tried: int = 0
    not_started: int = 0
    stuck: int = 0
    common_miss: str | None = None  # the first miss most learners who are not done are at now
    common_miss_count: int = 0
    misses: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Board:
    rows: list[LearnerRow]
    columns: list[LabColumn]
    generated_at: datetime

    @property
    def running(self) -> int:
        return sum(1 for row in self.rows if row.server == "running")


def lab_titles() -> dict[str, str]:
    return {progress.lab_key(lab.folder): lab.title for lab in course.LABS}


def server_state(user: Mapping[str, Any] | None) -> str:
    """A learner's default server as the hub's user model describes it."""
    server = ((user or {}).get("servers") or {}).get("")
    if not server:
        pending = (user or {}).get("pending")
        return {"spawn": "starting", "stop": "stopping"}.get(str(pending), "stopped")
    if server.get("stopped"):  # listed with include_stopped_servers
        return "stopped"
    if server.get("pending") == "spawn":
        return "starting"
    if server.get("pending") == "stop":
        return "stopping"
    return "running" if server.get("ready") else "starting"


def _minutes(since: str | None, now: datetime) -> int | None:
    if not since:
        return None
    try:
        return max(0, int((now - parse_time(since)).total_seconds() // 60))
    except ValueError:
        return None


def build(
    records: Mapping[str, Iterable[Mapping[str, Any]]],
    users: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    instructors: Iterable[str] = (),
) -> Board:
    """The board from every learner's records and the hub's user models (learners with either appear)."""
    hub = {str(u["name"]): u for u in users if not u.get("admin") and u.get("kind", "user") == "user"}
    skip = set(instructors)
    names = sorted((set(hub) | set(records)) - skip)
    titles = lab_titles()
    rows = []
    for name in names:
        summary = progress.summarise(records.get(name, []))
        user = hub.get(name)
        server = (user or {}).get("servers", {}).get("", {}) if user else {}
        activity = server.get("last_activity") or (user or {}).get("last_activity")
        own = summary.last_at
        last: int | None
        if own is not None:
            mine = int((now - own).total_seconds() // 60)
            hubs = _minutes(activity, now)
            last = mine if hubs is None else min(mine, hubs)
        else:
            last = _minutes(activity, now)
        rows.append(LearnerRow(name, server_state(user), last, summary.furthest_chapter, summary.labs, summary.records))
    columns = []
    for key, title in titles.items():
        column = LabColumn(key, title)
        misses: Counter[str] = Counter()
        for row in rows:
            lab = row.labs.get(key)
            state = lab.state if lab else "not started"
            if state == "done":
                column.done += 1
            elif state == "tried":
                column.tried += 1
                if lab is not None and lab.first_miss:
                    misses[lab.first_miss] += 1
                if lab is not None and lab.stuck:
                    column.stuck += 1
            else:
                column.not_started += 1
        column.misses = misses.most_common()
        if column.misses:
            column.common_miss, column.common_miss_count = column.misses[0]
        columns.append(column)
    return Board(rows, columns, now)


# -- exports -------------------------------------------------------------------------------------------------------
CSV_FIELDS = [
    "learner", "server", "furthest_chapter", "minutes_since_activity", "lab", "state", "met", "total", "runs",
    "first_miss", "stuck", "minutes_since_last_run",
]  # fmt: skip


def to_csv(board: Board) -> str:
    """One line per learner and lab: what a spreadsheet or an end-of-day report wants."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in board.rows:
        for key, lab in row.labs.items():
            writer.writerow(
                {
                    "learner": row.name,
                    "server": row.server,
                    "furthest_chapter": row.furthest_chapter or "",
                    "minutes_since_activity": "" if row.last_activity_min is None else row.last_activity_min,
                    "lab": key,
                    "state": lab.state,
                    "met": lab.met if lab.runs else "",
                    "total": lab.total if lab.runs else "",
                    "runs": lab.runs,
                    "first_miss": lab.first_miss or "",
                    "stuck": "yes" if lab.stuck else "",
                    "minutes_since_last_run": "" if lab.last_at is None else lab.minutes_since(board.generated_at),
                }
            )
    return out.getvalue()


def to_json(board: Board) -> dict[str, Any]:
    """The board for scripts and tests: rows and columns, no presentation."""
    return {
        "generated_at": board.generated_at.isoformat(),
        "learners": [
            {
                "name": row.name,
                "server": row.server,
                "furthest_chapter": row.furthest_chapter,
                "last_activity_min": row.last_activity_min,
                "records": row.records,
                "labs": {
                    key: {
                        "state": lab.state,
                        "met": lab.met,
                        "total": lab.total,
                        "runs": lab.runs,
                        "done": lab.done,
                        "first_miss": lab.first_miss,
                        "stuck": lab.stuck,
                        "minutes_since": lab.minutes_since(board.generated_at),
                    }
                    for key, lab in row.labs.items()
                },
            }
            for row in board.rows
        ],
        "labs": [
            {
                "key": c.key,
                "title": c.title,
                "done": c.done,
                "tried": c.tried,
                "not_started": c.not_started,
                "stuck": c.stuck,
                "common_miss": c.common_miss,
                "common_miss_count": c.common_miss_count,
            }
            for c in board.columns
        ],
    }


def chart_svg(board: Board, width: int = 560, bar: int = 26) -> str:
    """Per lab, a bar of done / tried / not started: inline SVG, no script, no download."""
    total = max(1, len(board.rows))
    label_w, gap = 70, 10
    height = len(board.columns) * (bar + gap) + 30
    scale = (width - label_w - 10) / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="labs done, tried, not started" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="chart">'
    ]
    for i, column in enumerate(board.columns):
        y = i * (bar + gap)
        parts.append(
            f'<text x="0" y="{y + bar * 0.72:.0f}" class="chart-label">Lab {escape(column.key[3:])}'
            f"<title>{escape(column.title)}</title></text>"
        )
        x = float(label_w)
        for count, css, what in (
            (column.done, "done", "done"),
            (column.tried, "tried", "tried"),
            (column.not_started, "idle", "not started"),
        ):
            if count:
                w = count * scale
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" class="{css}">'
                    f"<title>{count} {what}</title></rect>"
                )
                if w > 18:
                    parts.append(
                        f'<text x="{x + w / 2:.1f}" y="{y + bar * 0.72:.0f}" class="chart-count">{count}</text>'
                    )
                x += w
    legend_y = height - 8
    parts.append(
        f'<text x="{label_w}" y="{legend_y}" class="chart-legend">'
        '<tspan class="done-text">■ done</tspan>  <tspan class="tried-text">■ tried</tspan>  '
        '<tspan class="idle-text">■ not started</tspan></text>'
    )
    parts.append("</svg>")
    return "".join(parts)
