"""The course map: every notebook and lab in order, linked when its file exists (notebook 00 and the README use it).

A chapter or lab whose file does not exist yet is *planned*. Notebook prose may name a planned chapter or lab, never one
the map does not know: ``tests/test_course_references.py`` checks every notebook against this map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Chapter:
    number: str
    title: str
    sees: str
    stem: str


CURRICULUM: tuple[Chapter, ...] = (
    Chapter("00", "Welcome and setup", "backend health, what runs where, how to reset", "00_welcome"),
    Chapter("01", "Coupling", "a call fails while the receiver is down; a queued message waits", "01_coupling"),
    Chapter("02", "Sync vs queue vs router vs bus", "the same order flow four ways, measured", "02_integration_styles"),
    Chapter(
        "03", "Event bus routing", "content-based rules matching and not matching real events", "03_event_bus_routing"
    ),
    Chapter(
        "04", "Sparse vs full events", "callbacks, schema evolution, cost of full state", "04_sparse_vs_full_events"
    ),
    Chapter(
        "05",
        "Choreography vs orchestration",
        "events between domains vs a Step Functions workflow",
        "05_choreography_vs_orchestration",
    ),
    Chapter(
        "06",
        "Where duplicates come from",
        "transmission, receiver and service duplicates, counted",
        "06_where_duplicates_come_from",
    ),
    Chapter("07", "Idempotency tokens", "each rule of a good token broken on purpose", "07_idempotency_tokens"),
    Chapter(
        "08",
        "Idempotent AWS services",
        "SQS FIFO, SNS FIFO, execution names; classic-bus PutEvents is not",
        "08_idempotent_aws_services",
    ),
    Chapter("09", "The idempotent consumer", "helpers.idempotency on DynamoDB vs Powertools", "09_idempotent_consumer"),
    Chapter("10", "The idempotent workflow", "Step Functions with a DynamoDB semaphore", "10_idempotent_workflow"),
    Chapter(
        "11",
        "API destinations and Idempotency-Key",
        "EventBridge to an HTTP API with IETF semantics",
        "11_api_destinations_idempotency_key",
    ),
    Chapter(
        "12",
        "Tokens flow through systems",
        "one key from client to downstream API, exactly-once effects",
        "12_tokens_flow_through_systems",
    ),
)


@dataclass(frozen=True)
class Lab:
    """One lab as the course map and the instructor notes list it (the lab's own README and notebook say more)."""

    folder: str
    title: str
    follows: str  # the notebook number the lab comes after
    minutes: str  # time to complete, as the lab states it (an estimate for a learner, not a measurement)
    goal: str

    @property
    def number(self) -> str:
        """The lab's number: its place in course order, the first two characters of its folder."""
        return self.folder[:2]


# The labs in course order, each after the notebook it follows; a lab lives in labs/<folder>/ (starter, solution,
# README, lab.md). Its number is its place in this order, so the map reads 01 to 05 from top to bottom.
LABS: tuple[Lab, ...] = (
    Lab(
        "01_route_au_nz_and_big_orders",
        "Route AU/NZ and big orders",
        "03",
        "15-20",
        "event patterns checked against real deliveries, also of events you were not shown",
    ),
    Lab(
        "02_callback_that_waits_forever",
        "The callback that waits forever",
        "05",
        "20-30",
        "heartbeat, timeout and Catch on a task-token callback: dead, silent, slow and stuck workers",
    ),
    Lab(
        "03_double_charging_consumer",
        "The double-charging consumer",
        "09",
        "20-30",
        "exactly one charge per order through crashes, restarts and concurrent duplicates",
    ),
    Lab(
        "04_idempotent_payment_endpoint",
        "The idempotent payment endpoint",
        "11",
        "20-30",
        "Idempotency-Key over real HTTP on two instances: replay, 422, 409, 400, a burst, a failed charge",
    ),
    Lab(
        "05_keys_that_survive_the_pipeline",
        "Keys that survive the pipeline",
        "12",
        "15-25",
        "one execution per client request with every fault on, in any process",
    ),
)


def chapter(number: str) -> Chapter | None:
    """The chapter with this two-digit number, or None when the course map has none."""
    return next((c for c in CURRICULUM if c.number == number), None)


def notebook_path(chapter: Chapter) -> Path:
    return ROOT / "notebooks" / f"{chapter.stem}.ipynb"


def map_rows(link_base: str = "") -> list[dict[str, str]]:
    """One row per chapter; a link where the notebook exists, 'planned' where it does not yet."""
    rows = []
    for chapter in CURRICULUM:
        path = notebook_path(chapter)
        if path.exists():
            link = f"[{chapter.title}]({link_base}{path.name})"
            status = "available"
        else:
            link, status = chapter.title, "planned"
        rows.append({"#": chapter.number, "notebook": link, "what you see happen": chapter.sees, "status": status})
    return rows


def lab_path(lab: Lab) -> Path:
    return ROOT / "labs" / lab.folder


def map_markdown(link_base: str = "") -> str:
    """The course map: a row per notebook, and each lab in a row of its own after the notebook it follows.

    ``link_base`` is where notebooks are relative to the page that shows the map (``notebooks/`` for the README,
    nothing for notebook 00); labs are linked from the repository root accordingly.
    """
    labs_base = "labs/" if link_base == "notebooks/" else "../labs/"
    lines = ["| # | notebook | what you see happen | status |", "|---|---|---|---|"]
    for row in map_rows(link_base):
        lines.append(f"| {row['#']} | {row['notebook']} | {row['what you see happen']} | {row['status']} |")
        for lab in (lab for lab in LABS if lab.follows == row["#"]):
            exists = (lab_path(lab) / "starter.ipynb").exists()
            title = f"lab {lab.number}: {lab.title}"
            link = f"[{title}]({labs_base}{lab.folder}/starter.ipynb)" if exists else title
            status = "available" if exists else "planned"
            lines.append(f"| | {link} | {lab.goal} ({lab.minutes} min) | {status} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(map_markdown("notebooks/"), end="")
